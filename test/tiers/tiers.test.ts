/**
 * Isolation tiers (issue 7): the same API contract answers the same for a tenant in each tier; a
 * schema-tier tenant reaches neither pooled rows nor another tenant's schema; a database-tier
 * tenant's roles cannot connect to another tenant's database. plan/apply make and then find nothing.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApiKey } from '../../src/identify/api-keys.ts';
import { planProvision } from '../../src/provision/apply.ts';
import { ownerDatabases } from '../../src/tiers/databases.ts';
import { tenantDatabase } from '../../src/tiers/location.ts';
import { BACKENDS, pgliteFactory, SERVER_URL, type Fixture } from '../support/backends.ts';
import { tierFixture } from './support.ts';
import { serve, type Served } from '../http/support.ts';

/** A login to the fixture's server, to its own database or another. */
async function connectTo(user: string, password: string, database?: string) {
  const { openDatabase } = await import('../../src/db/database.ts');
  const u = new URL(SERVER_URL!);
  u.username = encodeURIComponent(user);
  u.password = encodeURIComponent(password);
  u.pathname = `/${database ?? currentDb}`;
  return openDatabase(u.toString(), { max: 1 });
}
let currentDb = '';

describe.each(BACKENDS)('tiers on %s', (kind) => {
  let fx: Fixture;
  let s: Served;
  const keys = new Map<string, string>();
  beforeAll(async () => {
    fx = await tierFixture(kind);
    if (kind === 'postgres') currentDb = decodeURIComponent(new URL(fx.url).pathname.slice(1));
    s = await serve(fx);
    for (const t of fx.config.tenants.keys()) keys.set(t, (await createApiKey(fx.db, fx.config, fx.names, fx.secret, { tenant: t, role: 'analyst' })).key);
  }, 120_000);
  afterAll(async () => {
    await s?.close();
    await fx?.cleanup();
  });

  it('apply made each tier in its place, and a second plan finds nothing to do', async () => {
    const env = { TG_TEST_DB: fx.url, TG_TEST_PREFIX: fx.prefix };
    const plan = await planProvision(fx.config, fx.db, fx.secret, env, { databases: ownerDatabases(fx.config, fx.db, {}, pgliteFactory) });
    expect(plan.changes.map((c) => `${c.action} ${c.object}: ${c.reason}`)).toEqual([]);
    // Pooled rows only for the pooled tenant; each schema tenant's rows in its schema.
    expect((await fx.db.query(`SELECT DISTINCT tenant_id FROM public.orders`)).rows).toEqual([{ tenant_id: 'acme_corp' }]);
    expect((await fx.db.query(`SELECT count(*)::int AS n FROM t_globex_inc.orders WHERE tenant_id = 'globex_inc'`)).rows[0]).toEqual({ n: 4 });
    expect((await fx.db.query(`SELECT count(*)::int AS n FROM t_hooli.orders`)).rows[0]).toEqual({ n: 4 });
    const owner = ownerDatabases(fx.config, fx.db, {}, pgliteFactory);
    const initech = await owner.get('default', tenantDatabase(fx.prefix, 'initech'));
    expect((await initech.query(`SELECT DISTINCT tenant_id FROM public.orders`)).rows).toEqual([{ tenant_id: 'initech' }]);
    await owner.close();
  });

  it('the API answers the same for a tenant in each tier', async () => {
    const requests: Array<[string, unknown]> = [
      ['/v1/query', { dataset: 'orders', dimensions: ['region'], metrics: ['revenue', 'orders'] }],
      ['/v1/query', { dataset: 'orders', dimensions: ['status'], metrics: ['revenue'], filters: [{ field: 'region', op: '=', value: 'North' }] }],
      ['/v1/query', { dataset: 'orders', dimensions: ['region', 'status'], order: [{ field: 'region', dir: 'desc' }], limit: 2 }],
      ['/v1/queries', { sql: 'SELECT region, sum(amount) AS s FROM orders GROUP BY region ORDER BY region' }],
      ['/v1/queries', { sql: 'SELECT count(*) FROM orders WHERE amount > $1', params: [60] }],
      ['/v1/queries', { sql: 'SELECT email FROM orders ORDER BY amount' }],
    ];
    const answers = new Map<string, unknown[]>();
    for (const [t, key] of keys) {
      const out: unknown[] = [];
      for (const [path, body] of requests) {
        const r = await s.post(path, body, { 'x-api-key': key });
        expect(r.status, `${t} ${path} ${JSON.stringify(body)}: ${JSON.stringify(r.json)}`).toBe(200);
        // The masked email is salted with the tenant: compare its shape, not its value.
        out.push(JSON.stringify(r.json).replace(/"[0-9a-f]{64}"/g, '"<hash>"'));
      }
      out.push((await s.get('/v1/datasets', { 'x-api-key': key })).json);
      answers.set(t, out);
    }
    const [first, ...rest] = [...answers.values()];
    expect(first![0]).toContain('"North",150,2');
    for (const a of rest) expect(a).toEqual(first);
    // And /v1/tenant says where each one is.
    for (const [t, key] of keys) expect((await s.get('/v1/tenant', { 'x-api-key': key })).json.tier).toBe(fx.config.tenants.get(t)!.tier);
  });

  it('storage is measured per tier: the pooled tenant by its rows, the others by their own tables', async () => {
    const meter = s.gateway.admission.storage!;
    await meter.refresh();
    for (const t of fx.config.tenants.keys()) expect(meter.used(t), t).toBeGreaterThan(0);
    expect((await s.get('/v1/admin/tenants/initech/quotas', { 'x-api-key': s.keys.ops })).json.usage.storage_bytes).toBeGreaterThan(0);
  });

  it('a schema-tier tenant reaches neither pooled rows nor another tenant\'s schema through the library', async () => {
    const gate = await fx.gate();
    const seen = await gate.withTenant({ tenant: 'globex_inc', access: 'read' }, async (db) => {
      const own = (await db.query<{ t: string }>(`SELECT DISTINCT tenant_id AS t FROM orders`)).rows.map((r) => r.t);
      const pooled = (await db.query(`SELECT 1 FROM public.orders`)).rowCount;
      const other = (await db.query(`SELECT 1 FROM t_hooli.orders`)).rowCount;
      return { own, pooled, other };
    });
    // Unqualified names find its own schema; the rest answers nothing (RLS).
    expect(seen).toEqual({ own: ['globex_inc'], pooled: 0, other: 0 });
  });

  it('a database-tier tenant answers from its own database, and writes land there', async () => {
    const gate = await fx.gate();
    await gate.withTenant({ tenant: 'umbrella', access: 'write' }, (db) => db.query(`INSERT INTO orders (tenant_id, region, amount) VALUES ('umbrella', 'West', 7)`));
    const r = await s.post('/v1/query', { dataset: 'orders', dimensions: ['region'], metrics: ['revenue'], filters: [{ field: 'region', op: '=', value: 'West' }] }, { 'x-api-key': keys.get('umbrella')! });
    expect(r.json.rows).toEqual([['West', 7]]);
    // Nowhere else.
    expect((await fx.db.query(`SELECT count(*)::int AS n FROM public.orders WHERE region = 'West'`)).rows[0]).toEqual({ n: 0 });
    expect((await s.post('/v1/query', { dataset: 'orders', dimensions: ['region'], filters: [{ field: 'region', op: '=', value: 'West' }] }, { 'x-api-key': keys.get('initech')! })).json.rows).toEqual([]);
  });

  it('verify covers every pair across the tiers and finds no leak; canaries go to each tenant\'s place and are removed', { timeout: 120_000 }, async () => {
    const { runVerify } = await import('../../src/verify/run.ts');
    const gate = await fx.gate();
    const report = await runVerify({
      config: fx.config,
      names: fx.names,
      owner: fx.db,
      gate,
      secret: fx.secret,
      url: s.url,
      env: { TG_TEST_DB: fx.url, TG_TEST_PREFIX: fx.prefix },
      ...(kind === 'postgres' ? { connectAs: (u: string, p: string, db?: string) => connectTo(u, p, db) } : {}),
    });
    const problems = report.results.filter((r) => r.status === 'LEAK' || r.status === 'error');
    expect(problems.map((r) => `${r.probe} ${r.a}>${r.b} ${r.status}: ${r.detail}`).slice(0, 40)).toEqual([]);
    expect(report.pairs.covered).toBe(20);
    expect(report.canaries.planted).toBe(5);
    expect(report.canaries.removed).toBeGreaterThanOrEqual(5);
    if (kind === 'postgres') {
      const ran = (id: string) => report.results.filter((r) => r.probe === id && r.status === 'pass').map((r) => `${r.a}>${r.b}`);
      expect(ran('D-other-schema')).toContain('acme_corp>globex_inc');
      expect(ran('D-other-database')).toContain('globex_inc>initech');
      expect(ran('D-other-database')).toContain('umbrella>initech');
    }
    // Each tenant's rows untouched, no canary left at any place.
    expect((await fx.db.query(`SELECT count(*)::int AS n FROM t_globex_inc.orders WHERE region LIKE 'tg-canary-%'`)).rows[0]).toEqual({ n: 0 });
  });

  it('doctor examines every tier: clean as applied; a schema or database wall opened, or RLS off in a tenant\'s own database, is found', { timeout: 60_000 }, async () => {
    const { runDoctor } = await import('../../src/doctor/run.ts');
    const doctor = () => runDoctor({ db: fx.db, main: fx.db, env: { TG_TEST_DB: fx.url, TG_TEST_PREFIX: fx.prefix }, config: fx.config, names: fx.names, gatewayRole: fx.names.gateway });
    const serious = (fs: Awaited<ReturnType<typeof doctor>>) => fs.filter((f) => f.severity === 'critical' || f.severity === 'high').map((f) => `${f.id} ${f.object}`);
    expect(serious(await doctor())).toEqual([]);
    const owner = ownerDatabases(fx.config, fx.db, {}, pgliteFactory);
    const initech = await owner.get('default', tenantDatabase(fx.prefix, 'initech'));
    const hooliGroup = fx.names.tenant('hooli');
    try {
      await fx.db.query(`GRANT USAGE ON SCHEMA t_globex_inc TO "${hooliGroup}"; ALTER TABLE t_globex_inc.orders NO FORCE ROW LEVEL SECURITY`);
      await initech.query(`ALTER TABLE public.orders DISABLE ROW LEVEL SECURITY`);
      if (kind === 'postgres') await fx.db.query(`GRANT CONNECT ON DATABASE "${tenantDatabase(fx.prefix, 'umbrella')}" TO PUBLIC`);
      const found = serious(await doctor());
      expect(found).toContain(`TG021 schema t_globex_inc`);
      expect(found).toContain(`TG003 table t_globex_inc.orders`);
      expect(found).toContain(`TG003 database ${tenantDatabase(fx.prefix, 'initech')}: table orders`);
      if (kind === 'postgres') expect(found).toContain(`TG021 database ${tenantDatabase(fx.prefix, 'umbrella')}`);
    } finally {
      await fx.db.query(`REVOKE USAGE ON SCHEMA t_globex_inc FROM "${hooliGroup}"; ALTER TABLE t_globex_inc.orders FORCE ROW LEVEL SECURITY`);
      await initech.query(`ALTER TABLE public.orders ENABLE ROW LEVEL SECURITY`);
      if (kind === 'postgres') await fx.db.query(`REVOKE CONNECT ON DATABASE "${tenantDatabase(fx.prefix, 'umbrella')}" FROM PUBLIC`);
      await owner.close();
    }
    expect(serious(await doctor())).toEqual([]);
  });

  it.skipIf(kind === 'pglite')('direct logins: a schema-tier tenant cannot use another schema; a database-tier tenant cannot connect to another tenant\'s database (server)', async () => {
    const globex = await createApiKey(fx.db, fx.config, fx.names, fx.secret, { tenant: 'globex_inc', role: 'analyst', dbLogin: true });
    const g = await fx.connectAs(globex.db_login!.user, globex.db_login!.password);
    expect((await g.query(`SELECT DISTINCT tenant_id FROM t_globex_inc.orders`)).rows).toEqual([{ tenant_id: 'globex_inc' }]);
    await expect(g.query(`SELECT 1 FROM t_hooli.orders`)).rejects.toMatchObject({ code: '42501' });
    expect((await g.query(`SELECT 1 FROM public.orders`)).rowCount).toBe(0);
    expect(globex.db_login).toMatchObject({ database: currentDb, schema: 't_globex_inc' });
    const initech = await createApiKey(fx.db, fx.config, fx.names, fx.secret, { tenant: 'initech', role: 'analyst', dbLogin: true });
    expect(initech.db_login).toMatchObject({ database: tenantDatabase(fx.prefix, 'initech') });
    expect(initech.db_login!.schema).toBeUndefined();
    const url = (db: string) => {
      const u = new URL(fx.url);
      u.pathname = `/${db}`;
      u.username = initech.db_login!.user;
      u.password = initech.db_login!.password;
      return u.toString();
    };
    const { openDatabase } = await import('../../src/db/database.ts');
    const own = await openDatabase(url(tenantDatabase(fx.prefix, 'initech')), { max: 1 });
    try {
      expect((await own.query(`SELECT DISTINCT tenant_id FROM public.orders`)).rows).toEqual([{ tenant_id: 'initech' }]);
    } finally {
      await own.close();
    }
    const other = await openDatabase(url(tenantDatabase(fx.prefix, 'umbrella')), { max: 1 });
    try {
      await expect(other.query('SELECT 1')).rejects.toMatchObject({ code: '42501' });
    } finally {
      await other.close();
    }
  });
});
