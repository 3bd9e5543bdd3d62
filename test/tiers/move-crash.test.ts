/**
 * `kill -9` of the mover (issue 7): the CLI process is killed at each point of a move while the
 * tenant keeps writing through the library; before the cut-over the tenant stays whole and
 * writable at its old place, after it at its new one, and rerunning the same command completes
 * the move with every acknowledged write there exactly once. Server only: the embedded database
 * lives inside one process.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TenantGate } from '../../src/gate.ts';
import { applyProvision } from '../../src/provision/apply.ts';
import { readMove } from '../../src/tiers/move/state.ts';
import { createFixture, SERVER_URL, type Fixture } from '../support/backends.ts';
import { expectSameRows, MOVE_SQL, MOVE_YAML, rowsOf, seedPooled, startWriter, type Writer } from './move-support.ts';

const ROOT = join(import.meta.dirname, '..', '..');

describe.skipIf(!SERVER_URL)('tenant move killed with SIGKILL', () => {
  let fx: Fixture;
  let gate: TenantGate;
  let dir: string;
  const run = (args: string[], killAt?: string) =>
    new Promise<{ code: number | null; signal: NodeJS.Signals | null; out: string }>((resolve) => {
      const child = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'src/cli/main.ts'), '--config', join(dir, 'tenantgate.yaml'), ...args], {
        cwd: ROOT,
        env: { ...process.env, TG_TEST_DB: fx.url, TG_TEST_PREFIX: fx.prefix, TENANTGATE_SECRET: fx.secret.toString(), ...(killAt ? { TENANTGATE_MOVE_KILL_AT: killAt } : {}) },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let out = '';
      child.stdout.on('data', (d: Buffer) => (out += d.toString()));
      child.stderr.on('data', (d: Buffer) => (out += d.toString()));
      child.on('exit', (code, signal) => resolve({ code, signal, out }));
    });

  beforeAll(async () => {
    fx = await createFixture('postgres', { sql: MOVE_SQL, yaml: MOVE_YAML, apply: false });
    await applyProvision(fx.config, fx.db, fx.secret, { env: { TG_TEST_DB: fx.url, TG_TEST_PREFIX: fx.prefix } });
    await seedPooled(fx, 'acme_corp', 200);
    await seedPooled(fx, 'globex_inc', 40_000);
    gate = await fx.gate();
    dir = mkdtempSync(join(tmpdir(), 'tg-move-crash-'));
    writeFileSync(join(dir, 'tenantgate.yaml'), MOVE_YAML);
  }, 120_000);
  afterAll(async () => {
    await fx?.cleanup();
  });

  // A tour: pooled → database → schema → pooled → database → schema → pooled, each move killed once at a different point.
  const plan: Array<[string, string]> = [
    ['database', 'prepared'],
    ['schema', 'copy-chunk:3'],
    ['pooled', 'caught-up'],
    ['database', 'verified'],
    ['schema', 'sealed'],
    ['pooled', 'switched'],
  ];
  for (const [tier, killAt] of plan) {
    it(`to tier ${tier}, killed at ${killAt}: the tenant stays whole, the rerun completes`, { timeout: 120_000 }, async () => {
      await gate.routes.refresh();
      const from = gate.routes.get('globex_inc').tier;
      let writer: Writer = startWriter(gate, 'globex_inc', await rowsOf(gate, 'globex_inc'));
      const killed = await run(['tenant', 'move', 'globex_inc', '--tier', tier, '--chunk-rows', '5000', '--grace', '0.5'], killAt);
      expect(killed.signal, killed.out).toBe('SIGKILL');
      const m = await readMove(fx.db, 'globex_inc');
      const switched = m?.phase === 'cleanup';
      expect(switched).toBe(killAt === 'switched');
      if (killAt === 'sealed') {
        // The mover died holding the seal: the tenant's writes wait (TENANT_MOVING, retried) until the lease
        // runs out or the rerun goes on. Check what is there, then let the rerun finish.
        await writer.stop();
        expectSameRows(await rowsOf(gate, 'globex_inc'), writer.model);
        writer = startWriter(gate, 'globex_inc', writer.model);
      } else {
        // Still writable where it lives; every acknowledged write is there.
        await new Promise((r) => setTimeout(r, 300));
        await writer.stop();
        await gate.routes.refresh();
        expect(gate.routes.get('globex_inc').tier).toBe(switched ? tier : from);
        expectSameRows(await rowsOf(gate, 'globex_inc'), writer.model);
        writer = startWriter(gate, 'globex_inc', writer.model);
      }
      const rerun = await run(['tenant', 'move', 'globex_inc', '--tier', tier, '--chunk-rows', '5000', '--grace', '0.5']);
      expect(rerun.code, rerun.out).toBe(0);
      expect(rerun.out).toMatch(new RegExp(`resuming the move to tier ${tier}`));
      await gate.routes.refresh();
      await new Promise((r) => setTimeout(r, 200));
      await writer.stop();
      expect(gate.routes.get('globex_inc').tier).toBe(tier);
      expectSameRows(await rowsOf(gate, 'globex_inc'), writer.model);
      expect(await readMove(fx.db, 'globex_inc')).toMatchObject({ phase: 'done' });
      // The config file now says where the tenant is.
      expect(readFileSync(join(dir, 'tenantgate.yaml'), 'utf8')).toContain(`{ id: globex_inc, tier: ${tier} }`);
    });
  }
});
