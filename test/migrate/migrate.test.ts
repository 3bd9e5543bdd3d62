/**
 * Migrations across every tier (issue 15): the main database's pooled tables, a schema-tier tenant's
 * schema and a database-tier tenant's own database each get every migration once, in order, with
 * its ledger row; status says which targets have what; an edited migration and a gap are refused
 * before anything runs; a migration failing on one target stops the run there (what committed
 * stays, the same command finishes the rest); two runners at once apply each migration once; new
 * dataset tables get RLS in every tier once declared; tenants still see only their own rows.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/load.ts';
import { isTenantGateError } from '../../src/errors/index.ts';
import { migrateUp, type MigrateOptions } from '../../src/migrate/run.ts';
import { migrationStatus } from '../../src/migrate/status.ts';
import { beginMove, setPhase } from '../../src/tiers/move/state.ts';
import { runDoctor } from '../../src/doctor/run.ts';
import { applyProvision } from '../../src/provision/apply.ts';
import { ownerDatabases, type DatabaseSet } from '../../src/tiers/databases.ts';
import { tenantDatabase } from '../../src/tiers/location.ts';
import { BACKENDS, pgliteFactory, type Fixture } from '../support/backends.ts';
import { ERASE_YAML, eraseFixture } from '../lifecycle/erase/support.ts';

const M1 = `-- a column with a default
ALTER TABLE public.orders ADD COLUMN note text NOT NULL DEFAULT 'none';\n`;
const M2 = `CREATE INDEX orders_note_idx ON public.orders (note);\n`;
const M3 = `CREATE TABLE public.invoices (
  id serial PRIMARY KEY,
  tenant_id varchar(50) NOT NULL,
  order_id int REFERENCES public.orders (id),
  total numeric(12, 2) NOT NULL
);
CREATE INDEX invoices_tenant_idx ON public.invoices (tenant_id, id);\n`;
// Fails where an order is worth 999 or more (planted in one target only).
const M4 = `ALTER TABLE public.orders ADD CONSTRAINT orders_amount_small CHECK (amount < 999);\n`;

describe.each(BACKENDS)('migrate on %s', (kind) => {
  let fx: Fixture;
  let dbs: DatabaseSet;
  const dir = mkdtempSync(join(tmpdir(), 'tg-migrate-'));
  const env = () => ({ TG_TEST_DB: fx.url, TG_TEST_PREFIX: fx.prefix });
  const up = (o: Partial<MigrateOptions> = {}) => migrateUp({ config: fx.config, main: fx.db, env: env(), dir, databases: dbs, concurrency: 1, ...o });
  const initech = () => dbs.get('default', tenantDatabase(fx.prefix, 'initech'));
  const columns = async (db: { query: Fixture['db']['query'] }, schema: string, table: string) =>
    (await db.query<{ c: string }>(`SELECT column_name::text AS c FROM information_schema.columns WHERE table_schema = $1 AND table_name = $2 ORDER BY ordinal_position`, [schema, table])).rows.map((r) => r.c);
  const index = async (db: { query: Fixture['db']['query'] }, schema: string, name: string) =>
    (await db.query<{ n: number }>(`SELECT count(*)::int AS n FROM pg_indexes WHERE schemaname = $1 AND indexname = $2`, [schema, name])).rows[0]!.n;

  /** verify's probes (library, SQL and direct paths) over every pair of tenants: no leak, no probe that failed to run. */
  const noLeak = async (config = fx.config) => {
    const { runVerify } = await import('../../src/verify/run.ts');
    const gate = await fx.gate();
    const report = await runVerify({ config, names: fx.names, owner: fx.db, gate, secret: fx.secret, env: env() });
    const problems = report.results.filter((r) => r.status === 'LEAK' || r.status === 'error');
    expect(problems.map((r) => `${r.probe} ${r.a}>${r.b} ${r.status}: ${r.detail}`).slice(0, 20)).toEqual([]);
    expect(report.results.filter((r) => r.status === 'pass').length).toBeGreaterThan(0);
    // items (order_id NOT NULL REFERENCES orders) cannot take a made-up canary row: skipped, saying why.
    expect(report.results.filter((r) => r.status === 'skipped' && /foreign key to/.test(r.detail ?? '')).length).toBeGreaterThan(0);
  };

  beforeAll(async () => {
    fx = await eraseFixture(kind);
    dbs = ownerDatabases(fx.config, fx.db, {}, pgliteFactory);
  }, 120_000);
  afterAll(async () => {
    await dbs?.close();
    await fx?.cleanup();
    rmSync(dir, { recursive: true, force: true });
  });

  it('applies each migration once to the pooled tables, the schema and the tenant database, with its ledger row', { timeout: 120_000 }, async () => {
    const before = await migrationStatus({ config: fx.config, main: fx.db, env: env(), dir, databases: dbs });
    expect(before.migrations).toEqual([]);
    expect(before.targets.map((t) => t.target)).toEqual(['main', 'schema:hooli', 'database:initech']);
    writeFileSync(join(dir, '0001_add_note.sql'), M1);
    writeFileSync(join(dir, '0002_note_index.sql'), M2);
    writeFileSync(join(dir, '0003_invoices.sql'), M3);
    const dry = await up({ dryRun: true });
    expect(dry.plan).toEqual(['main', 'schema:hooli', 'database:initech'].map((target) => ({ target, pending: ['0001_add_note', '0002_note_index', '0003_invoices'] })));
    expect(await columns(fx.db, 'public', 'orders')).not.toContain('note'); // a dry run changes nothing

    const r = await up();
    expect(r.failures).toEqual([]);
    expect(r.applied).toBe(9);
    for (const [db, schema] of [[fx.db, 'public'], [fx.db, 't_hooli'], [await initech(), 'public']] as const) {
      expect(await columns(db, schema, 'orders')).toContain('note');
      expect(await index(db, schema, 'orders_note_idx')).toBe(1);
      expect(await columns(db, schema, 'invoices')).toEqual(['id', 'tenant_id', 'order_id', 'total']);
    }
    // The schema target's copy got it in its own schema, not a second time in public.
    expect((await fx.db.query<{ n: number }>(`SELECT count(*)::int AS n FROM pg_indexes WHERE indexname = 'orders_note_idx'`)).rows[0]!.n).toBe(2);
    const status = await migrationStatus({ config: fx.config, main: fx.db, env: env(), dir, databases: dbs });
    expect(status.upToDate).toBe(true);
    expect(status.migrations.map((m) => [m.name, m.applied, m.targets])).toEqual([
      ['0001_add_note', 3, 3],
      ['0002_note_index', 3, 3],
      ['0003_invoices', 3, 3],
    ]);
    const ledger = await (await initech()).query<{ target: string; version: string }>(`SELECT target, version FROM tenantgate.migrations ORDER BY version`);
    expect(ledger.rows).toEqual(['0001', '0002', '0003'].map((version) => ({ target: 'database:initech', version })));
    expect((await up()).applied).toBe(0); // nothing left
    // What `migrate up` ends with: the provisioning (the new column is granted like any column the config does not restrict).
    await applyProvision(fx.config, fx.db, fx.secret, { env: env(), databases: dbs });
    await noLeak();
  });

  it('refuses an edited migration and a gap before anything runs, naming the file and the targets', async () => {
    writeFileSync(join(dir, '0001_add_note.sql'), `${M1}-- edited\n`);
    const err = await up().catch((e: unknown) => e);
    expect(isTenantGateError(err) && err.code).toBe('MIGRATION_CHANGED');
    expect(String((err as Error).message)).toMatch(/0001_add_note\.sql changed.*main, schema:hooli, database:initech/);
    writeFileSync(join(dir, '0001_add_note.sql'), M1);
    const status = await migrationStatus({ config: fx.config, main: fx.db, env: env(), dir, databases: dbs });
    expect(status.upToDate).toBe(true);
    // A gap: a target with 0003 but not 0002.
    await fx.db.query(`DELETE FROM tenantgate.migrations WHERE target = 'schema:hooli' AND version = '0002'`);
    const gap = await up().catch((e: unknown) => e);
    expect(isTenantGateError(gap) && gap.code).toBe('MIGRATION_GAP');
    expect(String((gap as Error).message)).toContain('schema:hooli');
    await fx.db.query(`INSERT INTO tenantgate.migrations (target, version, name, checksum, duration_ms) SELECT 'schema:hooli', version, name, checksum, 0 FROM tenantgate.migrations WHERE target = 'main' AND version = '0002'`);
  });

  it('a migration failing on one target stops there: what committed stays, the same command finishes the rest once fixed', { timeout: 120_000 }, async () => {
    await fx.db.query(`INSERT INTO t_hooli.orders (tenant_id, region, amount) VALUES ('hooli', 'North', 5000)`);
    writeFileSync(join(dir, '0004_small_amounts.sql'), M4);
    const r = await up();
    expect(r.applied).toBe(1); // main
    expect(r.failures).toHaveLength(1);
    expect(r.failures[0]).toMatchObject({ target: 'schema:hooli', version: '0004', file: '0004_small_amounts.sql', code: 'MIGRATION_FAILED', sqlstate: '23514' });
    expect(r.failures[0]!.message).toMatch(/orders_amount_small/);
    expect(r.notStarted).toEqual(['database:initech']);
    const status = await migrationStatus({ config: fx.config, main: fx.db, env: env(), dir, databases: dbs });
    expect(status.migrations.find((m) => m.version === '0004')).toMatchObject({ applied: 1, missing: ['schema:hooli', 'database:initech'] });
    // --continue-on-error goes on with the others.
    const more = await up({ continueOnError: true });
    expect(more.applied).toBe(1);
    expect(more.failures.map((f) => f.target)).toEqual(['schema:hooli']);
    // Fixed: the same command does what is left, once.
    await fx.db.query(`DELETE FROM t_hooli.orders WHERE amount = 5000`);
    const last = await up();
    expect(last).toMatchObject({ applied: 1, failures: [], notStarted: [] });
    expect((await migrationStatus({ config: fx.config, main: fx.db, env: env(), dir, databases: dbs })).upToDate).toBe(true);
  });

  it('new dataset tables get RLS and grants in every tier once declared; tenants still see only their own rows', { timeout: 120_000 }, async () => {
    const yaml = ERASE_YAML.replace('datasets:\n', 'datasets:\n  - name: invoices\n    table: public.invoices\n    tenant_column: tenant_id\n    dimensions: [order_id]\n    metrics: { total: sum(total) }\n');
    const config = await parseConfig(yaml, fx.config.file, { env: env() });
    await applyProvision(config, fx.db, fx.secret, { env: env(), databases: dbs });
    for (const [db, schema] of [[fx.db, 'public'], [fx.db, 't_hooli'], [await initech(), 'public']] as const) {
      const rls = await db.query<{ rls: boolean; force: boolean }>(`SELECT relrowsecurity AS rls, relforcerowsecurity AS force FROM pg_class WHERE oid = to_regclass($1)`, [`${schema}.invoices`]);
      expect(rls.rows[0], `${schema}.invoices`).toMatchObject({ rls: true });
    }
    const gate = await fx.gate();
    for (const t of ['acme_corp', 'hooli', 'initech']) {
      await gate.withTenant({ tenant: t, access: 'write' }, async (db) => {
        const o = await db.query<{ id: number }>(`SELECT id FROM orders ORDER BY id LIMIT 1`);
        await db.query(`INSERT INTO invoices (tenant_id, order_id, total) VALUES ($1, $2, 10)`, [t, o.rows[0]!.id]);
      });
    }
    for (const t of ['acme_corp', 'hooli', 'initech']) {
      const seen = await gate.withTenant({ tenant: t, access: 'read' }, (db) => db.query<{ tenant_id: string }>(`SELECT DISTINCT tenant_id FROM orders UNION SELECT DISTINCT tenant_id FROM invoices`));
      expect(seen.rows.map((r) => r.tenant_id)).toEqual([t]);
    }
    await noLeak(config);
  });

  it.skipIf(kind === 'pglite')('two runners at once apply each migration to each target once', { timeout: 120_000 }, async () => {
    writeFileSync(join(dir, '0005_more.sql'), `ALTER TABLE public.orders ADD COLUMN extra int;\nCREATE INDEX orders_extra_idx ON public.orders (extra);\n`);
    writeFileSync(join(dir, '0006_more.sql'), `ALTER TABLE public.orders ADD COLUMN extra2 int DEFAULT 2;\n`);
    const [a, b] = await Promise.all([up({ concurrency: 2 }), up({ concurrency: 2 })]);
    expect([...a.failures, ...b.failures]).toEqual([]);
    expect(a.applied + b.applied).toBe(6);
    const n = await fx.db.query<{ n: number }>(`SELECT count(*)::int AS n FROM tenantgate.migrations WHERE version IN ('0005', '0006')`);
    expect(n.rows[0]!.n).toBe(4); // main and schema:hooli here; initech's in its own database
    expect(readFileSync(join(dir, '0005_more.sql'), 'utf8')).toContain('extra');
  });

  it('doctor TG023 names a copy that drifted from the pooled table, and nothing while every copy matches', { timeout: 120_000 }, async () => {
    const doctor = async () => (await runDoctor({ db: fx.db, main: fx.db, env: env(), config: fx.config, names: fx.names, gatewayRole: fx.names.gateway })).filter((f) => f.id === 'TG023');
    expect(await doctor()).toEqual([]);
    await fx.db.query(`DROP INDEX t_hooli.orders_note_idx`);
    await fx.db.query(`ALTER TABLE t_hooli.orders ALTER COLUMN note DROP DEFAULT`);
    await (await initech()).query(`ALTER TABLE public.orders ADD COLUMN by_hand int`);
    const found = await doctor();
    expect(found.map((f) => f.object).sort()).toEqual([`database ${tenantDatabase(fx.prefix, 'initech')}: table public.orders`, 'table t_hooli.orders']);
    const hooli = found.find((f) => f.object === 'table t_hooli.orders')!;
    expect(hooli.message).toMatch(/tenant hooli's copy of public\.orders differs/);
    expect(hooli.message).toMatch(/column note is .*no default/);
    expect(hooli.message).toMatch(/index orders_note_idx missing/);
    expect(found.find((f) => f.object.startsWith('database'))!.message).toMatch(/column by_hand is extra/);
  });

  it('a move in progress holds its targets: the moving tenant\'s place, and everything while it leaves or enters the pooled tables', { timeout: 60_000 }, async () => {
    writeFileSync(join(dir, '0007_wait.sql'), `ALTER TABLE public.orders ADD COLUMN waited int;\n`);
    // hooli (schema) on its way to its own database: its schema waits, the rest goes.
    const m = await beginMove(fx.db, 'hooli', { tier: 'schema', placement: 'default' }, { tier: 'database', placement: 'default' });
    const r = await up();
    expect(r.blocked).toEqual(['schema:hooli']);
    expect(r.plan.map((p) => p.target)).toEqual(['main', 'database:initech']);
    await setPhase(fx.db, m, 'aborted');
    expect(await up()).toMatchObject({ applied: 1, blocked: [] });
    // acme_corp (pooled) on its way to a schema: the main database waits, and so does every target.
    writeFileSync(join(dir, '0008_wait.sql'), `ALTER TABLE public.orders ADD COLUMN waited2 int;\n`);
    const n = await beginMove(fx.db, 'acme_corp', { tier: 'pooled', placement: 'default' }, { tier: 'schema', placement: 'default' });
    const held = await up();
    expect(held).toMatchObject({ applied: 0, blocked: ['main', 'schema:hooli', 'database:initech'] });
    expect((await migrationStatus({ config: fx.config, main: fx.db, env: env(), dir, databases: dbs })).targets.find((t) => t.target === 'main')!.moving).toBe(true);
    await setPhase(fx.db, n, 'aborted');
    expect(await up()).toMatchObject({ applied: 3, blocked: [] });
  });
});
