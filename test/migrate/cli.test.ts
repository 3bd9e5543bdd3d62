/**
 * `tenantgate migrate new|status|up` as an operator types them: the CLI in-process on a data
 * directory or a server database (ten targets: the main database and nine schema-tier tenants from
 * tenants/<id>.yaml), then, on the server only, `migrate up` as a separate process killed with
 * SIGKILL after its 1st, 3rd and 5th commit and two `migrate up` processes started at once.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDatabase, type Database } from '../../src/db/database.ts';
import { tenantDatabase } from '../../src/tiers/location.ts';
import { BACKENDS, createServerDatabase, SERVER_URL, TEST_SECRET, type ServerDatabase } from '../support/backends.ts';
import { cliFolder } from '../support/cli.ts';
import { cliYaml, ERASE_SQL } from '../lifecycle/erase/support.ts';

const ROOT = join(import.meta.dirname, '..', '..');
const M_NOTE = `ALTER TABLE public.orders ADD COLUMN note text NOT NULL DEFAULT 'none';\n`;
const M_INDEX = `CREATE INDEX orders_note_idx ON public.orders (note);\n`;
// Fails only where an order is worth 999 or more (planted in one schema only).
const M_CHECK = `ALTER TABLE public.orders ADD CONSTRAINT orders_amount_small CHECK (amount < 999);\n`;
const M_ITEMS = `ALTER TABLE public.order_items ADD COLUMN qty int NOT NULL DEFAULT 1;\n`;
// The nine schema-tier tenants, in id order: the targets after main are schema:s1 … schema:s9.
const SCHEMA_TENANTS = Array.from({ length: 9 }, (_, i) => `s${i + 1}`);
const TARGETS = ['main', ...SCHEMA_TENANTS.map((t) => `schema:${t}`)];

describe.each(BACKENDS)('tenantgate migrate through the CLI on %s', (kind) => {
  const cli = cliFolder(kind, { sql: ERASE_SQL, yaml: cliYaml(), name: 'migrate-cli' });
  const { dir, run, owner } = cli;
  const migrations = join(dir, 'migrations');
  const out = (r: { out: string; err: string }) => r.out + r.err;
  const columns = (schema: string, table = 'orders') =>
    owner(async (db) => (await db.query<{ c: string }>(`SELECT column_name::text AS c FROM information_schema.columns WHERE table_schema = $1 AND table_name = $2 ORDER BY ordinal_position`, [schema, table])).rows.map((r) => r.c));
  const ledger = (version: string) =>
    owner(async (db) => (await db.query<{ target: string }>(`SELECT target FROM tenantgate.migrations WHERE version = $1 ORDER BY target`, [version])).rows.map((r) => r.target));

  beforeAll(async () => {
    await cli.setup();
    mkdirSync(join(dir, 'tenants'));
    writeFileSync(join(dir, 'tenants', 'acme_corp.yaml'), 'id: acme_corp\n');
    for (const t of SCHEMA_TENANTS) writeFileSync(join(dir, 'tenants', `${t}.yaml`), `id: ${t}\ntier: schema\n`);
    const applied = await run('apply', '--json');
    expect(applied.code, out(applied)).toBe(0);
    await owner(async (db) => {
      for (const [schema, tenant] of [['public', 'acme_corp'], ...SCHEMA_TENANTS.map((t) => [`t_${t}`, t])] as const) {
        for (let i = 0; i < 3; i++) await db.query(`INSERT INTO "${schema}".orders (tenant_id, region, amount) VALUES ($1, 'North', $2)`, [tenant, 10 + i]);
      }
    });
  }, 180_000);
  afterAll(() => cli.cleanup());

  it('migrate new numbers the files 0001, 0002 in migrations/ beside the config; a bad name exits 2', async () => {
    const first = await run('migrate', 'new', 'add_note');
    expect(first.code, out(first)).toBe(0);
    expect(first.out).toContain(join(migrations, '0001_add_note.sql'));
    expect(readFileSync(join(migrations, '0001_add_note.sql'), 'utf8')).toMatch(/^-- 0001_add_note\n/);
    const second = await run('migrate', 'new', 'note_index', '--json');
    expect(second.code, out(second)).toBe(0);
    expect(second.json()).toEqual({ file: join(migrations, '0002_note_index.sql') });
    for (const bad of ['Add-Note', 'add note', '../escape', '']) {
      const r = await run('migrate', 'new', bad, '--json');
      expect(r.code, `${bad}: ${out(r)}`).toBe(2);
      expect(r.json().error.code).toBe('MIGRATION_INVALID');
    }
    const none = await run('migrate', 'new');
    expect(none.code).toBe(2);
    expect(readdirSync(migrations).sort()).toEqual(['0001_add_note.sql', '0002_note_index.sql']);
    writeFileSync(join(migrations, '0001_add_note.sql'), M_NOTE);
    writeFileSync(join(migrations, '0002_note_index.sql'), M_INDEX);
  });

  it('status --json lists every target and exits 1 while one is behind; up --dry-run changes nothing; up applies and names the counts; status then exits 0', { timeout: 180_000 }, async () => {
    const before = await run('migrate', 'status', '--json');
    expect(before.code, out(before)).toBe(1);
    const s = before.json();
    expect(s.upToDate).toBe(false);
    expect(s.dir).toBe(migrations);
    expect(s.targets.map((t: { target: string }) => t.target)).toEqual(TARGETS);
    expect(s.targets[1]).toMatchObject({ target: 'schema:s1', tier: 'schema', tenant: 's1', applied: [], pending: ['0001', '0002'], changed: [], moving: false });
    expect(s.migrations).toEqual([
      { version: '0001', name: '0001_add_note', applied: 0, targets: 10, missing: TARGETS },
      { version: '0002', name: '0002_note_index', applied: 0, targets: 10, missing: TARGETS },
    ]);
    const text = await run('migrate', 'status');
    expect(text.code).toBe(1);
    expect(text.out).toMatch(/0001_add_note\s+0\/10\s+main, schema:s1, schema:s2, schema:s3, schema:s4 and 5 more/);

    const dry = await run('migrate', 'up', '--dry-run', '--json');
    expect(dry.code, out(dry)).toBe(0);
    expect(dry.json()).toMatchObject({ dryRun: true, applied: 0, targets: 10, failures: [], plan: TARGETS.map((target) => ({ target, pending: ['0001_add_note', '0002_note_index'] })) });
    const dryText = await run('migrate', 'up', '--dry-run');
    expect(dryText.code).toBe(0);
    expect(dryText.out).toMatch(/^Would apply/);
    expect(await columns('public')).not.toContain('note');
    expect(await columns('t_s5')).not.toContain('note');
    expect(await ledger('0001')).toEqual([]);
    expect((await run('migrate', 'status')).code).toBe(1);

    const up = await run('migrate', 'up');
    expect(up.code, out(up)).toBe(0);
    expect(up.out).toMatch(/^Applied 20 migration\(s\) to 10 of 10 target\(s\) that needed them \(10 in all\) in \d+\.\d s\.\n$/);
    for (const schema of ['public', ...SCHEMA_TENANTS.map((t) => `t_${t}`)]) expect(await columns(schema), schema).toContain('note');
    const idx = await owner(async (db) => (await db.query<{ s: string }>(`SELECT schemaname::text AS s FROM pg_indexes WHERE indexname = 'orders_note_idx' ORDER BY 1`)).rows.map((r) => r.s));
    expect(idx).toEqual(['public', ...SCHEMA_TENANTS.map((t) => `t_${t}`)]);
    expect(await ledger('0001')).toEqual([...TARGETS].sort());
    expect(await ledger('0002')).toEqual([...TARGETS].sort());

    const after = await run('migrate', 'status', '--json');
    expect(after.code, out(after)).toBe(0);
    expect(after.json().upToDate).toBe(true);
    expect(after.json().migrations.map((m: { applied: number; missing: string[] }) => [m.applied, m.missing])).toEqual([[10, []], [10, []]]);
    expect((await run('migrate', 'status')).out).toMatch(/Every target is up to date\.\n$/);

    // Nothing left: the --json report's whole shape.
    const again = await run('migrate', 'up', '--json');
    expect(again.code, out(again)).toBe(0);
    const report = again.json();
    expect(Object.keys(report).sort()).toEqual(['applied', 'blocked', 'dryRun', 'failures', 'migrations', 'notStarted', 'plan', 'seconds', 'targets']);
    expect(report).toMatchObject({ dryRun: false, migrations: ['0001_add_note', '0002_note_index'], targets: 10, plan: [], applied: 0, blocked: [], failures: [], notStarted: [] });
    expect(typeof report.seconds).toBe('number');
  });

  it('a migration failing on the third target stops there naming target, file and SQL error; status shows who has it; --continue-on-error does the others; fixed, a rerun finishes', { timeout: 180_000 }, async () => {
    await owner((db) => db.query(`INSERT INTO t_s2.orders (tenant_id, region, amount) VALUES ('s2', 'South', 5000)`));
    writeFileSync(join(migrations, '0003_small_amounts.sql'), M_CHECK);
    const failed = await run('migrate', 'up', '--concurrency', '1');
    expect(failed.code, out(failed)).toBe(1);
    expect(failed.out).toMatch(/^Applied 2 migration\(s\) to 2 of 10 target\(s\)/);
    expect(failed.out).toMatch(/FAILED schema:s2: 0003_small_amounts\.sql \[MIGRATION_FAILED 23514\] check constraint "orders_amount_small" of relation "orders" is violated by some row/);
    expect(failed.out).toMatch(/Not started \(a target failed\): 7 target\(s\)/);
    const status = await run('migrate', 'status', '--json');
    expect(status.code).toBe(1);
    const m3 = status.json().migrations.find((m: { version: string }) => m.version === '0003');
    expect(m3).toEqual({ version: '0003', name: '0003_small_amounts', applied: 2, targets: 10, missing: TARGETS.slice(2) });
    expect(await ledger('0003')).toEqual(['main', 'schema:s1']);
    // The failed target's transaction left nothing behind.
    const hasCheck = (schema: string) => owner(async (db) => (await db.query<{ n: number }>(`SELECT count(*)::int AS n FROM pg_constraint WHERE conname = 'orders_amount_small' AND connamespace = $1::regnamespace`, [schema])).rows[0]!.n);
    expect(await hasCheck('t_s2')).toBe(0);
    expect(await hasCheck('t_s1')).toBe(1);

    const json = await run('migrate', 'up', '--concurrency', '1', '--continue-on-error', '--json');
    expect(json.code, out(json)).toBe(1);
    const r = json.json();
    expect(r).toMatchObject({ applied: 7, notStarted: [] });
    expect(r.failures).toEqual([
      expect.objectContaining({ target: 'schema:s2', version: '0003', file: '0003_small_amounts.sql', code: 'MIGRATION_FAILED', sqlstate: '23514', message: expect.stringContaining('orders_amount_small') }),
    ]);
    expect(await ledger('0003')).toEqual(TARGETS.filter((t) => t !== 'schema:s2').sort());
    const left = await run('migrate', 'status', '--json');
    expect(left.code).toBe(1);
    expect(left.json().targets.filter((t: { pending: string[] }) => t.pending.length).map((t: { target: string; pending: string[] }) => [t.target, t.pending])).toEqual([['schema:s2', ['0003']]]);

    await owner((db) => db.query(`DELETE FROM t_s2.orders WHERE amount = 5000`));
    const fixed = await run('migrate', 'up', '--concurrency', '1');
    expect(fixed.code, out(fixed)).toBe(0);
    expect(fixed.out).toMatch(/^Applied 1 migration\(s\) to 1 of 1 target\(s\) that needed them \(10 in all\)/);
    expect(await ledger('0003')).toEqual([...TARGETS].sort());
    expect(await hasCheck('t_s2')).toBe(1);
    expect((await run('migrate', 'status')).code).toBe(0);
  });
});

/* ------------------------------------------------------------------------------------------
 * Separate processes on the server: kill -9 between commits, and two runners at once.
 * ---------------------------------------------------------------------------------------- */

const CRASH_MIGRATIONS: Array<[string, string]> = [
  ['0001_add_note.sql', M_NOTE],
  ['0002_note_index.sql', M_INDEX],
  ['0003_item_qty.sql', M_ITEMS],
];
// The columns each table had before any migration: what the neighbours' checksums cover.
const ORDERS_COLS = 'id, tenant_id, region, status, amount, internal_cost, email, deleted_at, created_at';
const ITEMS_COLS = 'id, tenant_id, order_id, sku';

describe.skipIf(!SERVER_URL)('tenantgate migrate up as separate processes on the server', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tg-migrate-crash-'));
  const file = join(dir, 'tenantgate.yaml');
  let server: ServerDatabase;
  let db: Database;
  let initech: Database;
  let newdb: Database | undefined;
  const env = () => ({ ...process.env, TG_TEST_DB: server.url, TG_TEST_PREFIX: server.prefix, TENANTGATE_SECRET: TEST_SECRET.toString() });
  const cli = (args: string[], extra: Record<string, string> = {}) =>
    new Promise<{ code: number | null; signal: NodeJS.Signals | null; out: string; stdout: string }>((resolve) => {
      const child = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'src/cli/main.ts'), '--config', file, ...args], {
        cwd: ROOT,
        env: { ...env(), ...extra },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let out = '';
      let stdout = '';
      child.stdout.on('data', (d: Buffer) => ((out += d.toString()), (stdout += d.toString())));
      child.stderr.on('data', (d: Buffer) => (out += d.toString()));
      child.on('exit', (code, signal) => resolve({ code, signal, out, stdout }));
    });
  // Every target and where its tables are: [target, database, schema, tenants whose rows live there].
  const places = (): Array<[string, Database, string, string[]]> => [
    ['main', db, 'public', ['acme_corp', 'globex_inc']],
    ['schema:hooli', db, 't_hooli', ['hooli']],
    ['schema:pied_piper', db, 't_pied_piper', ['pied_piper']],
    ['database:initech', initech, 'public', ['initech']],
  ];
  const checksums = async () => {
    const out: Record<string, string> = {};
    for (const [, d, schema, tenants] of places()) {
      for (const t of tenants) {
        for (const [table, cols] of [['orders', ORDERS_COLS], ['order_items', ITEMS_COLS]]) {
          const r = await d.query<{ c: string }>(
            `SELECT count(*)::text || ':' || coalesce(string_agg(md5(x::text), ',' ORDER BY x.id), '') AS c FROM (SELECT ${cols} FROM "${schema}"."${table}" WHERE tenant_id = $1) x`,
            [t],
          );
          out[`${t}/${table}`] = r.rows[0]!.c;
        }
      }
    }
    return out;
  };
  // Ledger rows over every place: [target, version, count].
  const ledgers = async () => {
    const rows: string[] = [];
    for (const d of [db, initech, ...(newdb ? [newdb] : [])]) {
      const r = await d.query<{ target: string; version: string; n: number }>(`SELECT target, version, count(*)::int AS n FROM tenantgate.migrations GROUP BY 1, 2 ORDER BY 1, 2`);
      rows.push(...r.rows.map((x) => `${x.target}@${x.version}x${x.n}`));
    }
    return rows.sort();
  };
  const cols = async (d: Database, schema: string, table: string) =>
    (await d.query<{ c: string }>(`SELECT column_name::text AS c FROM information_schema.columns WHERE table_schema = $1 AND table_name = $2`, [schema, table])).rows.map((r) => r.c);

  beforeAll(async () => {
    server = await createServerDatabase(ERASE_SQL);
    writeFileSync(file, cliYaml());
    mkdirSync(join(dir, 'tenants'));
    writeFileSync(join(dir, 'tenants', 'acme_corp.yaml'), 'id: acme_corp\n');
    writeFileSync(join(dir, 'tenants', 'globex_inc.yaml'), 'id: globex_inc\n');
    writeFileSync(join(dir, 'tenants', 'hooli.yaml'), 'id: hooli\ntier: schema\n');
    writeFileSync(join(dir, 'tenants', 'pied_piper.yaml'), 'id: pied_piper\ntier: schema\n');
    writeFileSync(join(dir, 'tenants', 'initech.yaml'), 'id: initech\ntier: database\n');
    const applied = await cli(['apply']);
    expect(applied.code, applied.out).toBe(0);
    db = await openDatabase(server.url, { max: 2 });
    const u = new URL(server.url);
    u.pathname = `/${tenantDatabase(server.prefix, 'initech')}`;
    initech = await openDatabase(u.toString(), { max: 2 });
    for (const [, d, schema, tenants] of places()) {
      for (const t of tenants) {
        for (let i = 0; i < 12; i++) {
          const o = await d.query<{ id: number }>(`INSERT INTO "${schema}".orders (tenant_id, region, amount, email) VALUES ($1, $2, $3, $4) RETURNING id`, [t, i % 2 ? 'North' : 'South', i * 7, `${t}-${i}@x.example`]);
          await d.query(`INSERT INTO "${schema}".order_items (tenant_id, order_id, sku) VALUES ($1, $2, $3)`, [t, o.rows[0]!.id, `sku-${i}`]);
        }
      }
    }
    mkdirSync(join(dir, 'migrations'));
    for (const [name, sql] of CRASH_MIGRATIONS) writeFileSync(join(dir, 'migrations', name), sql);
  }, 180_000);
  afterAll(async () => {
    await initech?.close();
    await newdb?.close();
    await db?.close();
    await server?.drop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('killed with SIGKILL after its 1st, 3rd and 5th commit, the next run does what is left: every migration once per target, neighbours byte-identical', { timeout: 300_000 }, async () => {
    const before = await checksums();
    expect(Object.keys(before)).toHaveLength(10);
    expect(await ledgers()).toEqual([]);
    const targets = places().length;
    let committed = 0;
    for (const n of [1, 3, 5]) {
      const r = await cli(['migrate', 'up'], { TENANTGATE_MIGRATE_KILL_AT: `commit:${n}` });
      expect(r.signal, `commit:${n}: ${r.out}`).toBe('SIGKILL');
      const rows = await ledgers();
      // Each run committed at least n more (other targets' transactions in flight may have committed too), never a duplicate.
      expect(rows.length, `commit:${n}`).toBeGreaterThanOrEqual(committed + n);
      expect(rows.every((x) => x.endsWith('x1'))).toBe(true);
      committed = rows.length;
      const status = await cli(['migrate', 'status', '--json']);
      expect(status.code, status.out).toBe(1);
    }
    expect(committed).toBeLessThan(targets * CRASH_MIGRATIONS.length);

    const last = await cli(['migrate', 'up', '--json']);
    expect(last.code, last.out).toBe(0);
    const report = JSON.parse(last.stdout);
    expect(report).toMatchObject({ failures: [], notStarted: [], blocked: [], targets });
    expect(report.applied).toBe(targets * CRASH_MIGRATIONS.length - committed);
    const expected = places().flatMap(([t]) => ['0001', '0002', '0003'].map((v) => `${t}@${v}x1`)).sort();
    expect(await ledgers()).toEqual(expected);
    for (const [target, d, schema] of places()) {
      expect(await cols(d, schema, 'orders'), target).toContain('note');
      expect(await cols(d, schema, 'order_items'), target).toContain('qty');
      const idx = await d.query(`SELECT 1 FROM pg_indexes WHERE schemaname = $1 AND indexname = 'orders_note_idx'`, [schema]);
      expect(idx.rowCount, target).toBe(1);
    }
    expect(await checksums()).toEqual(before);
    const status = await cli(['migrate', 'status', '--json']);
    expect(status.code, status.out).toBe(0);
    expect(JSON.parse(status.stdout).upToDate).toBe(true);
  });

  it('a schema-tier and a database-tier tenant added after the migrations start up to date (they inherit the main ledger)', { timeout: 120_000 }, async () => {
    const added = await cli(['tenant', 'add', 'newbie', '--tier', 'schema']);
    expect(added.code, added.out).toBe(0);
    writeFileSync(join(dir, 'tenants', 'newdb.yaml'), 'id: newdb\ntier: database\n');
    const applied = await cli(['apply']);
    expect(applied.code, applied.out).toBe(0);
    const u = new URL(server.url);
    u.pathname = `/${tenantDatabase(server.prefix, 'newdb')}`;
    newdb = await openDatabase(u.toString(), { max: 2 });
    for (const [d, schema] of [[db, 't_newbie'], [newdb, 'public']] as const) {
      expect(await cols(d, schema, 'orders'), schema).toContain('note');
      expect(await cols(d, schema, 'order_items'), schema).toContain('qty');
    }
    const status = await cli(['migrate', 'status', '--json']);
    expect(status.code, status.out).toBe(0);
    const s = JSON.parse(status.stdout);
    for (const target of ['schema:newbie', 'database:newdb']) {
      expect(s.targets.find((t: { target: string }) => t.target === target), target).toMatchObject({ applied: ['0001', '0002', '0003'], pending: [], changed: [] });
    }
    expect(s.migrations.map((m: { applied: number; targets: number }) => [m.applied, m.targets])).toEqual([[6, 6], [6, 6], [6, 6]]);
    const up = await cli(['migrate', 'up', '--json']);
    expect(up.code, up.out).toBe(0);
    expect(JSON.parse(up.stdout)).toMatchObject({ applied: 0, plan: [] });
  });

  it('two migrate up processes started at once both exit 0 and apply each migration once per target', { timeout: 180_000 }, async () => {
    // The pause keeps each target's transaction open long enough that the two runners meet on the advisory locks.
    writeFileSync(join(dir, 'migrations', '0004_more.sql'), `ALTER TABLE public.orders ADD COLUMN extra int;\nSELECT pg_sleep(0.3);\nCREATE INDEX orders_extra_idx ON public.orders (extra);\n`);
    writeFileSync(join(dir, 'migrations', '0005_more.sql'), `ALTER TABLE public.orders ADD COLUMN extra2 int DEFAULT 2;\n`);
    const before = await checksums();
    const [a, b] = await Promise.all([cli(['migrate', 'up', '--json', '--concurrency', '2']), cli(['migrate', 'up', '--json', '--concurrency', '2'])]);
    expect(a.code, a.out).toBe(0);
    expect(b.code, b.out).toBe(0);
    const ra = JSON.parse(a.stdout);
    const rb = JSON.parse(b.stdout);
    expect([...ra.failures, ...rb.failures]).toEqual([]);
    const targets = [...places().map(([t]) => t), 'schema:newbie', 'database:newdb'];
    expect(ra.applied + rb.applied).toBe(targets.length * 2);
    const rows = await ledgers();
    expect(rows.filter((x) => /@000[45]x/.test(x))).toEqual(targets.flatMap((t) => [`${t}@0004x1`, `${t}@0005x1`]).sort());
    expect(rows.every((x) => x.endsWith('x1'))).toBe(true);
    for (const [target, d, schema] of [...places(), ['schema:newbie', db, 't_newbie'] as const, ['database:newdb', newdb!, 'public'] as const]) {
      expect(await cols(d, schema, 'orders'), target).toEqual(expect.arrayContaining(['extra', 'extra2']));
    }
    expect(await checksums()).toEqual(before);
    expect(existsSync(join(dir, 'migrations', '0005_more.sql'))).toBe(true);
  });

  it('the kill point <target>@<version> stops right after that target committed it, for a schema and a database target too', { timeout: 180_000 }, async () => {
    writeFileSync(join(dir, 'migrations', '0006_tag.sql'), `ALTER TABLE public.orders ADD COLUMN tag text;\n`);
    const has = async () => (await ledgers()).filter((x) => x.includes('@0006')).map((x) => x.split('@')[0]);
    // --concurrency 1: main, then the tenants by id (hooli, initech, newbie, newdb, pied_piper).
    const a = await cli(['migrate', 'up', '--concurrency', '1'], { TENANTGATE_MIGRATE_KILL_AT: 'schema:hooli@0006' });
    expect(a.signal, a.out).toBe('SIGKILL');
    expect(await has()).toEqual(['main', 'schema:hooli']);
    const b = await cli(['migrate', 'up', '--concurrency', '1'], { TENANTGATE_MIGRATE_KILL_AT: 'database:initech@0006' });
    expect(b.signal, b.out).toBe('SIGKILL');
    expect(await has()).toEqual(['database:initech', 'main', 'schema:hooli']);
    const c = await cli(['migrate', 'up', '--concurrency', '1']);
    expect(c.code, c.out).toBe(0);
    expect(await has()).toEqual(['database:initech', 'database:newdb', 'main', 'schema:hooli', 'schema:newbie', 'schema:pied_piper']);
  });
});
