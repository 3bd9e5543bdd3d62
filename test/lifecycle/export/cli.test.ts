/**
 * `tenantgate export ID --out DIR …` and `tenantgate export verify DIR` as an operator types them
 * (in-process, on a data directory or a server database), and, on a server, the export killed with
 * SIGKILL at several points: running the same command again resumes the same job, which finishes
 * once with a folder that verifies.
 */
import { spawn } from 'node:child_process';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cliFolder } from '../../support/cli.ts';
import { openDatabase } from '../../../src/db/database.ts';
import { BACKENDS, SERVER_URL } from '../../support/backends.ts';
import { EXPORT_SQL, EXPORT_YAML, signingKeyPem } from './support.ts';

const ROOT = join(import.meta.dirname, '..', '..', '..');


describe.each(BACKENDS)('tenantgate export through the CLI on %s', (kind) => {
  const cli = cliFolder(kind, { sql: EXPORT_SQL, yaml: EXPORT_YAML, env: { TENANTGATE_SIGNING_KEY: signingKeyPem() }, name: 'export-cli' });
  const { dir, file, env, run } = cli;

  beforeAll(async () => {
    await cli.setup();
    const applied = await run('apply', '--json');
    expect(applied.code, applied.out + applied.err).toBe(0);
    const db = await openDatabase(env['TG_TEST_DB'] as string, { baseDir: dir, max: 1 });
    try {
      await db.query(`INSERT INTO public.orders (tenant_id, region, amount, email) SELECT 'acme_corp', 'r' || g, g, 'e' || g FROM generate_series(1, 500) g`);
      await db.query(`INSERT INTO public.vals (tenant_id, n, note) VALUES ('acme_corp', 1.5, 'x'), ('globex_inc', 2, 'canary-globex')`);
    } finally {
      await db.close();
    }
  }, 120_000);
  afterAll(() => cli.cleanup());

  it('exports, verifies, and exits 1 naming the file an edit broke', async () => {
    const e = await run('export', 'acme_corp', '--out', 'out-a', '--format', 'csv', '--json');
    expect(e.code, e.out + e.err).toBe(0);
    const doc = JSON.parse(e.out) as { job: string; result: { rows: number; files: Array<{ file: string }> } };
    expect(doc.result.rows).toBe(501);
    expect(doc.result.files.map((f) => f.file).sort()).toEqual(['orders.csv', 'vals.csv']);
    expect(readFileSync(join(dir, 'out-a', 'vals.csv'), 'utf8')).not.toContain('globex');
    const ok = await run('export', 'verify', 'out-a');
    expect(ok.code, ok.out + ok.err).toBe(0);
    expect(ok.out).toMatch(/^OK/);
    const f = join(dir, 'out-a', 'orders.csv');
    writeFileSync(f, readFileSync(f, 'utf8').replace('r17', 'r71'));
    const bad = await run('export', 'verify', 'out-a');
    expect(bad.code).toBe(1);
    expect(bad.out).toContain('orders.csv');
    expect(bad.out).not.toContain('vals.csv');
    const json = await run('export', 'verify', 'out-a', '--json');
    expect(json.code).toBe(1);
    expect(JSON.parse(json.out)).toMatchObject({ ok: false, problems: [expect.objectContaining({ file: 'orders.csv' })], error: { code: 'EXPORT_VERIFY_FAILED' } });
  });

  it('refuses clearly: unknown tenant, a non-empty folder, an unknown format, a missing signing key on a server', async () => {
    const unknown = await run('export', 'nobody_here', '--out', 'out-x');
    expect(unknown.code).toBe(2);
    expect(unknown.err).toContain('TENANT_UNKNOWN');
    const busy = await run('export', 'acme_corp', '--out', 'out-a');
    expect(busy.code).toBe(2);
    expect(busy.err).toContain('EXPORT_TARGET_NOT_EMPTY');
    const format = await run('export', 'acme_corp', '--out', 'out-p', '--format', 'xml');
    expect(format.code).toBe(2);
    expect(format.err).toContain('EXPORT_INVALID');
    if (kind === 'postgres') {
      const key = env['TENANTGATE_SIGNING_KEY'];
      delete env['TENANTGATE_SIGNING_KEY'];
      try {
        const missing = await run('export', 'acme_corp', '--out', 'out-k');
        expect(missing.code).toBe(2);
        expect(missing.err).toContain('SIGNING_KEY_MISSING');
        expect(missing.err).toContain('openssl genpkey');
      } finally {
        env['TENANTGATE_SIGNING_KEY'] = key;
      }
    }
    const forced = await run('export', 'acme_corp', '--out', 'out-a', '--force', '--datasets', 'vals');
    expect(forced.code, forced.out + forced.err).toBe(0);
  });

  it.skipIf(kind !== 'postgres' || !SERVER_URL)('killed with SIGKILL at a point, then run again: the same job resumes and finishes once', { timeout: 180_000 }, async () => {
    const child = (args: string[], killAt?: string) =>
      new Promise<{ code: number | null; signal: NodeJS.Signals | null; out: string }>((resolve) => {
        const c = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'src/cli/main.ts'), '--config', file, ...args], {
          cwd: ROOT,
          env: { ...process.env, ...env, ...(killAt ? { TENANTGATE_EXPORT_KILL_AT: killAt } : {}) } as NodeJS.ProcessEnv,
          stdio: ['ignore', 'pipe', 'pipe'],
        });
        let out = '';
        c.stdout.on('data', (d: Buffer) => (out += d.toString()));
        c.stderr.on('data', (d: Buffer) => (out += d.toString()));
        c.on('exit', (code, signal) => resolve({ code, signal, out }));
      });
    for (const [i, point] of ['dataset:1', 'manifest:1'].entries()) {
      const out = `out-kill-${i}`;
      const killed = await child(['export', 'acme_corp', '--out', join(dir, out), '--format', 'ndjson'], point);
      expect(killed.signal, killed.out).toBe('SIGKILL');
      expect(readdirSync(join(dir, out)).length).toBeGreaterThan(0);
      const again = await child(['export', 'acme_corp', '--out', join(dir, out), '--format', 'ndjson', '--json']);
      expect(again.code, again.out).toBe(0);
      expect(again.out).toContain('resuming');
      const ok = await run('export', 'verify', out);
      expect(ok.code, ok.out).toBe(0);
      const db = await openDatabase(env['TG_TEST_DB'] as string, { max: 1 });
      try {
        const jobs = await db.query<{ state: string; attempts: number }>(`SELECT state, attempts FROM tenantgate.jobs WHERE kind = 'export' AND params ->> 'out' = $1`, [join(dir, out)]);
        expect(jobs.rows).toEqual([{ state: 'done', attempts: 2 }]);
      } finally {
        await db.close();
      }
      expect(readdirSync(join(dir, out)).sort()).toEqual(['manifest.json', 'orders.ndjson', 'vals.ndjson']);
    }
  });
});
