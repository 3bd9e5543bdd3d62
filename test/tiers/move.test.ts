/**
 * Moving a tenant between tiers online (issue 7): pooled → database → schema → pooled while the
 * tenant keeps writing; after each move its rows are exactly the acknowledged writes, the checksums
 * matched, the old place is gone, and the other tenants' answers never changed. Plus: dry run,
 * abort, a stop at each phase then a rerun, and the errors of bad moves.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TenantGate } from '../../src/gate.ts';
import { applyProvision, planProvision } from '../../src/provision/apply.ts';
import { ownerDatabases, type DatabaseSet } from '../../src/tiers/databases.ts';
import { tenantDatabase } from '../../src/tiers/location.ts';
import { abortMove, moveTenant, type MoveOptions } from '../../src/tiers/move/move.ts';
import { readMove } from '../../src/tiers/move/state.ts';
import type { TenantLocation } from '../../src/tiers/location.ts';
import { BACKENDS, createFixture, pgliteFactory, type Fixture } from '../support/backends.ts';
import { answers, expectSameRows, MOVE_SQL, MOVE_YAML, rowsOf, seedPooled, startWriter } from './move-support.ts';

const OTHERS = ['acme_corp', 'hooli', 'initech'];

describe.each(BACKENDS)('tenant move on %s', (kind) => {
  let fx: Fixture;
  let gate: TenantGate;
  let dbs: DatabaseSet;
  const rows = kind === 'postgres' ? 30_000 : 3_000;
  const env = () => ({ TG_TEST_DB: fx.url, TG_TEST_PREFIX: fx.prefix });
  const options = (to: TenantLocation, extra: Partial<MoveOptions> = {}): MoveOptions => ({
    config: fx.config,
    main: fx.db,
    secret: fx.secret,
    env: env(),
    databases: dbs,
    tenant: 'globex_inc',
    to,
    graceMs: 300,
    chunkRows: kind === 'postgres' ? 7_000 : 1_000,
    ...extra,
  });

  beforeAll(async () => {
    fx = await createFixture(kind, { sql: MOVE_SQL, yaml: MOVE_YAML, apply: false });
    dbs = ownerDatabases(fx.config, fx.db, {}, pgliteFactory);
    await applyProvision(fx.config, fx.db, fx.secret, { env: env(), databases: dbs });
    await seedPooled(fx, 'acme_corp', 500);
    gate = await fx.gate();
    for (const t of ['hooli', 'initech']) {
      await gate.withTenant({ tenant: t, access: 'write' }, (db) => db.query(`INSERT INTO orders (tenant_id, region, amount) SELECT $1, 'North', g FROM generate_series(1, 50) g`, [t]));
    }
    await seedPooled(fx, 'globex_inc', rows);
  }, 120_000);
  afterAll(async () => {
    await dbs?.close();
    await fx?.cleanup();
  });

  it('a dry run says what it would do and changes nothing', async () => {
    const r = await moveTenant(options({ tier: 'schema', placement: 'default' }, { dryRun: true }));
    expect(r.dryRun).toBe(true);
    expect(r.rows).toBe(rows);
    expect(r.steps.join('\n')).toMatch(/create schema t_globex_inc/);
    expect(r.steps.join('\n')).toMatch(/copy: public\.orders 3?0?,?000 row/);
    expect((await fx.db.query(`SELECT to_regnamespace('t_globex_inc') AS s`)).rows[0]).toEqual({ s: null });
    expect(await readMove(fx.db, 'globex_inc')).toBeUndefined();
  });

  it('bad moves get clear errors and change nothing', async () => {
    await expect(moveTenant(options({ tier: 'pooled', placement: 'default' }))).rejects.toMatchObject({ code: 'MOVE_UNSUPPORTED' });
    await expect(moveTenant(options({ tier: 'schema', placement: 'far' }))).rejects.toMatchObject({ code: 'TIER_UNSUPPORTED' });
    await expect(moveTenant(options({ tier: 'database', placement: 'far' }))).rejects.toMatchObject({ code: 'PLACEMENT_UNKNOWN' });
    await expect(moveTenant(options({ tier: 'attic' as 'pooled', placement: 'default' }))).rejects.toMatchObject({ code: 'USAGE' });
    await expect(moveTenant({ ...options({ tier: 'schema', placement: 'default' }), tenant: 'nobody' })).rejects.toMatchObject({ code: 'TENANT_UNKNOWN' });
    await expect(abortMove(options({ tier: 'schema', placement: 'default' }))).rejects.toMatchObject({ code: 'MOVE_UNSUPPORTED' });
    expect(await readMove(fx.db, 'globex_inc')).toBeUndefined();
  });

  for (const to of ['database', 'schema', 'pooled'] as const) {
    it(`moves the tenant to tier ${to} while it writes: nothing lost, nothing doubled, others untouched`, { timeout: 180_000 }, async () => {
      const before = await answers(gate, OTHERS);
      const start = await rowsOf(gate, 'globex_inc');
      const writer = startWriter(gate, 'globex_inc', start);
      const report = await moveTenant(options({ tier: to, placement: 'default' }));
      // Gateways follow within their routes interval (1 s; the default grace is 5 s): this one now.
      await gate.routes.refresh();
      // Keep writing a little at the new place, then stop.
      await new Promise((r) => setTimeout(r, 300));
      await writer.stop();
      expect(report.phase).toBe('done');
      expect(report.tables[0]!.checksum!.rows).toMatch(/^\d+$/);
      expect(writer.stats.inserts + writer.stats.updates + writer.stats.deletes).toBeGreaterThan(10);
      expect(gate.routes.get('globex_inc').tier).toBe(to);
      expectSameRows(await rowsOf(gate, 'globex_inc'), writer.model);
      expect(await answers(gate, OTHERS)).toEqual(before);
      // The old place is gone.
      expect((await fx.db.query(`SELECT count(*)::int AS n FROM public.orders WHERE tenant_id = 'globex_inc'`)).rows[0]).toEqual({ n: to === 'pooled' ? writer.model.size : 0 });
      expect((await fx.db.query(`SELECT to_regnamespace('t_globex_inc') IS NOT NULL AS s`)).rows[0]).toEqual({ s: to === 'schema' });
      expect(dbs.embeddedExists('default', tenantDatabase(fx.prefix, 'globex_inc')) || (kind === 'postgres' && (await fx.db.query(`SELECT 1 FROM pg_database WHERE datname = $1`, [tenantDatabase(fx.prefix, 'globex_inc')])).rowCount === 1)).toBe(to === 'database');
      expect((await fx.db.query(`SELECT count(*)::int AS n FROM tenantgate.move_log`)).rows[0]).toEqual({ n: 0 });
      expect(await readMove(fx.db, 'globex_inc')).toMatchObject({ phase: 'done', to: { tier: to } });
      // plan finds nothing to change once the config says where the tenant is.
      const moved = await fx.reload(MOVE_YAML.replace('{ id: globex_inc, tier: pooled }', `{ id: globex_inc, tier: ${to} }`));
      const plan = await planProvision(moved, fx.db, fx.secret, env(), { databases: dbs });
      expect(plan.changes.map((c) => `${c.action} ${c.object}`)).toEqual([]);
      await fx.reload(MOVE_YAML);
    });
  }

  it('stopped at each phase, a rerun finishes the move; before the cut-over the tenant stays whole where it was', { timeout: 180_000 }, async () => {
    const points = ['prepared', 'copy-chunk', 'caught-up', 'verified', 'sealed', 'switched'];
    let to: TenantLocation = { tier: 'schema', placement: 'default' };
    for (const point of points) {
      const start = await rowsOf(gate, 'globex_inc');
      const stop = async (p: string) => {
        if (p === point) throw new Error(`stopped at ${p}`);
      };
      await expect(moveTenant(options(to, { checkpoint: stop }))).rejects.toThrow(`stopped at ${point}`);
      const m = await readMove(fx.db, 'globex_inc');
      const cut = point === 'switched';
      expect(m?.phase).toBe(cut ? 'cleanup' : m?.phase);
      // Still whole and writable where the routes say it is.
      await gate.routes.refresh();
      expect(gate.routes.get('globex_inc').tier).toBe(cut ? to.tier : m!.from.tier);
      const w = startWriter(gate, 'globex_inc', start);
      await new Promise((r) => setTimeout(r, 100));
      await w.stop();
      expectSameRows(await rowsOf(gate, 'globex_inc'), w.model);
      // The rerun finishes it.
      const done = await moveTenant(options(to));
      expect(done.phase).toBe('done');
      await gate.routes.refresh();
      expectSameRows(await rowsOf(gate, 'globex_inc'), w.model);
      to = to.tier === 'schema' ? { tier: 'pooled', placement: 'default' } : { tier: 'schema', placement: 'default' };
    }
  });

  it('a copy that differs from the original is caught by the checksums: no cut-over, the copy cleared, the rerun copies again', { timeout: 60_000 }, async () => {
    await gate.routes.refresh();
    const from = gate.routes.get('globex_inc').tier;
    const to: TenantLocation = { tier: from === 'schema' ? 'pooled' : 'schema', placement: 'default' };
    const target = to.tier === 'schema' ? 't_globex_inc.orders' : 'public.orders';
    const start = await rowsOf(gate, 'globex_inc');
    // Between the catch-up and the checksums, a row at the new place goes wrong (a bug, a stray hand).
    const tamper = async (p: string) => {
      if (p === 'caught-up') await fx.db.query(`UPDATE ${target} SET amount = amount + 1 WHERE id = (SELECT min(id) FROM ${target} WHERE tenant_id = 'globex_inc')`);
    };
    await expect(moveTenant(options(to, { checkpoint: tamper }))).rejects.toMatchObject({ code: 'MOVE_VERIFY_FAILED' });
    expect(await readMove(fx.db, 'globex_inc')).toMatchObject({ phase: 'copy', error: expect.stringMatching(/checksums differ for public\.orders/) });
    expect((await fx.db.query(`SELECT count(*)::int AS n FROM ${target} WHERE tenant_id = 'globex_inc'`)).rows[0]).toEqual({ n: 0 });
    await gate.routes.refresh();
    expect(gate.routes.get('globex_inc').tier).toBe(from);
    expectSameRows(await rowsOf(gate, 'globex_inc'), start);
    expect((await moveTenant(options(to))).phase).toBe('done');
    await gate.routes.refresh();
    expectSameRows(await rowsOf(gate, 'globex_inc'), start);
  });

  it('--abort before the cut-over: the new place goes, the tenant stays and writes at its old place', { timeout: 60_000 }, async () => {
    await gate.routes.refresh();
    const from = gate.routes.get('globex_inc').tier;
    const to: TenantLocation = { tier: 'database', placement: 'default' };
    await expect(moveTenant(options(to, { checkpoint: (p) => { if (p === 'caught-up') throw new Error('stop'); } }))).rejects.toThrow('stop');
    // Another move while this one is unfinished: refused, pointing at it.
    await expect(moveTenant(options({ tier: from === 'schema' ? 'pooled' : 'schema', placement: 'default' }))).rejects.toMatchObject({ code: 'MOVE_CONFLICT' });
    const start = await rowsOf(gate, 'globex_inc');
    const aborted = await abortMove(options(to));
    expect(aborted.phase).toBe('aborted');
    expect(gate.routes.get('globex_inc').tier).toBe(from);
    expect(dbs.embeddedExists('default', tenantDatabase(fx.prefix, 'globex_inc')) || (kind === 'postgres' && (await fx.db.query(`SELECT 1 FROM pg_database WHERE datname = $1`, [tenantDatabase(fx.prefix, 'globex_inc')])).rowCount === 1)).toBe(false);
    const w = startWriter(gate, 'globex_inc', start);
    await new Promise((r) => setTimeout(r, 100));
    await w.stop();
    expectSameRows(await rowsOf(gate, 'globex_inc'), w.model);
    expect((await fx.db.query(`SELECT count(*)::int AS n FROM tenantgate.move_log`)).rows[0]).toEqual({ n: 0 });
  });
});

describe.each(BACKENDS)('tenant move collisions on %s', (kind) => {
  it('keys from one shared sequence that collide on the way back: MOVE_CONFLICT, nothing overwritten, --abort restores', { timeout: 120_000 }, async () => {
    const fx = await createFixture(kind, { sql: MOVE_SQL, yaml: MOVE_YAML, apply: false });
    const dbs = ownerDatabases(fx.config, fx.db, {}, pgliteFactory);
    try {
      const env = { TG_TEST_DB: fx.url, TG_TEST_PREFIX: fx.prefix };
      await applyProvision(fx.config, fx.db, fx.secret, { env, databases: dbs });
      await seedPooled(fx, 'globex_inc', 100);
      const o = (to: TenantLocation): MoveOptions => ({ config: fx.config, main: fx.db, secret: fx.secret, env, databases: dbs, tenant: 'globex_inc', to, graceMs: 0 });
      await moveTenant(o({ tier: 'schema', placement: 'default' }));
      const gate = await fx.gate();
      // Both sides draw the next ids from where the pooled sequence was.
      await gate.withTenant({ tenant: 'acme_corp', access: 'write' }, (db) => db.query(`INSERT INTO orders (tenant_id, region, amount) VALUES ('acme_corp', 'N', 1)`));
      await gate.withTenant({ tenant: 'globex_inc', access: 'write' }, (db) => db.query(`INSERT INTO orders (tenant_id, region, amount) VALUES ('globex_inc', 'N', 2)`));
      const acme = await answers(gate, ['acme_corp']);
      const globex = await rowsOf(gate, 'globex_inc');
      await expect(moveTenant(o({ tier: 'pooled', placement: 'default' }))).rejects.toMatchObject({ code: 'MOVE_CONFLICT' });
      expect(await answers(gate, ['acme_corp'])).toEqual(acme);
      expectSameRows(await rowsOf(gate, 'globex_inc'), globex);
      await abortMove(o({ tier: 'pooled', placement: 'default' }));
      expect((await fx.db.query(`SELECT count(*)::int AS n FROM public.orders WHERE tenant_id = 'globex_inc'`)).rows[0]).toEqual({ n: 0 });
      expectSameRows(await rowsOf(gate, 'globex_inc'), globex);
    } finally {
      await dbs.close();
      await fx.cleanup();
    }
  });
});
