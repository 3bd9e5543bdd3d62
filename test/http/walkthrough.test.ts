/** The seed-003 walkthrough and the seed-000 flow, over HTTP, on every backend. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SignJWT } from 'jose';
import { BACKENDS, createFixture, fixture, type Fixture } from '../support/backends.ts';
import { serve, type Served } from './support.ts';

const JWT_SECRET = 'a-jwt-secret-of-at-least-32-characters!!';
const YAML = fixture('seed003.yaml').replace(
  'datasets:',
  `identity:\n  jwt:\n    secret_env: TG_JWT_SECRET\n    algorithms: [HS256]\n    issuer: https://idp.example.test/\n    audience: tenantgate\ndatasets:`,
);
const Q = { dataset: 'orders', dimensions: ['region'], metrics: ['revenue'] };
const sorted = (rows: unknown[][]) => [...rows].sort((a, b) => String(a[0]).localeCompare(String(b[0])));

describe.each(BACKENDS)('query API walkthrough on %s', (kind) => {
  let fx: Fixture;
  let s: Served;
  beforeAll(async () => {
    fx = await createFixture(kind, { sql: fixture('seed003.sql'), yaml: YAML });
    s = await serve(fx, { env: { TG_JWT_SECRET: JWT_SECRET } });
  });
  afterAll(async () => {
    await s?.close();
    await fx?.cleanup();
  });
  const jwt = (claims: Record<string, unknown>) =>
    new SignJWT(claims).setProtectedHeader({ alg: 'HS256' }).setIssuer('https://idp.example.test/').setAudience('tenantgate').setSubject('user-1').setExpirationTime('5m').sign(new TextEncoder().encode(JWT_SECRET));

  it("acme_corp's key gives North 100 and South 200; globex_inc's North 300 and East 400", async () => {
    const acme = await s.post('/v1/query', Q, { 'x-api-key': s.keys.acme });
    expect(acme.status).toBe(200);
    expect(acme.json).toEqual({ columns: ['region', 'revenue'], rows: [['North', 100], ['South', 200]], row_count: 2, truncated: false });
    const globex = await s.post('/v1/query', Q, { authorization: `Bearer ${s.keys.globex}` });
    expect(sorted(globex.json.rows)).toEqual(sorted([['North', 300], ['East', 400]]));
    expect(acme.headers.get('server-timing')).toMatch(/identify;dur=.*execute;dur=/);
  });

  it('acme_corp filtering on tenant_id = globex_inc gets no globex_inc row (RLS is additive)', async () => {
    const r = await s.post('/v1/query', { dataset: 'orders', dimensions: ['region'], metrics: ['revenue'], filters: [{ field: 'tenant_id', op: '=', value: 'globex_inc' }] }, { 'x-api-key': s.keys.acme });
    expect(r.status).toBe(200);
    expect(r.json.rows).toEqual([]);
    const sql = await s.post('/v1/queries', { sql: "SELECT tenant_id, amount FROM orders WHERE tenant_id = 'globex_inc'" }, { 'x-api-key': s.keys.acme });
    expect(sql.json.rows).toEqual([]);
  });

  it('a platform admin naming all gets all four rows', async () => {
    const r = await s.post('/v1/queries', { sql: 'SELECT tenant_id, region, amount FROM orders ORDER BY amount' }, { 'x-api-key': s.keys.ops, 'x-tenant-id': 'all' });
    expect(r.status).toBe(200);
    expect(r.json.rows).toEqual([['acme_corp', 'North', 100], ['acme_corp', 'South', 200], ['globex_inc', 'North', 300], ['globex_inc', 'East', 400]]);
    const agg = await s.post('/v1/query', Q, { 'x-api-key': s.keys.ops, 'x-tenant-id': 'all' });
    expect(agg.json.rows).toEqual([['East', 400], ['North', 400], ['South', 200]]);
    const one = await s.post('/v1/tenants/globex_inc/query', Q, { 'x-api-key': s.keys.ops });
    expect(sorted(one.json.rows)).toEqual(sorted([['North', 300], ['East', 400]]));
    const none = await s.post('/v1/query', Q, { 'x-api-key': s.keys.ops });
    expect(none.json.error.code).toBe('TENANT_REQUIRED');
  });

  it('seed-000 flow: POST /v1/queries with a JWT and X-Tenant-ID returns only that tenant; another tenant is TENANT_MISMATCH', async () => {
    const token = await jwt({ tenant_id: 'acme_corp', role: 'analyst' });
    const ok = await s.post('/v1/queries', { sql: 'SELECT tenant_id, amount FROM orders ORDER BY amount' }, { authorization: `Bearer ${token}`, 'x-tenant-id': 'acme_corp' });
    expect(ok.status).toBe(200);
    expect(ok.json.rows).toEqual([['acme_corp', 100], ['acme_corp', 200]]);
    const other = await s.post('/v1/queries', { sql: 'SELECT tenant_id FROM orders' }, { authorization: `Bearer ${token}`, 'x-tenant-id': 'globex_inc' });
    expect(other.status).toBe(403);
    expect(other.json.error.code).toBe('TENANT_MISMATCH');
    const unknown = await s.post('/v1/queries', { sql: 'SELECT tenant_id FROM orders' }, { authorization: `Bearer ${token}`, 'x-tenant-id': 'no_such_tenant' });
    expect(unknown.status).toBe(403);
    expect(unknown.json).toEqual(other.json); // no existence oracle
  });

  it('a multi-tenant JWT acts for the tenant it names, and must name one', async () => {
    const token = await jwt({ tenants: ['acme_corp', 'globex_inc'], role: 'analyst' });
    const g = await s.post('/v1/tenants/globex_inc/queries', { sql: 'SELECT DISTINCT tenant_id FROM orders' }, { authorization: `Bearer ${token}` });
    expect(g.json.rows).toEqual([['globex_inc']]);
    const none = await s.post('/v1/queries', { sql: 'SELECT 1' }, { authorization: `Bearer ${token}` });
    expect(none.json.error.code).toBe('TENANT_REQUIRED');
    const disagree = await s.post('/v1/tenants/globex_inc/queries', { sql: 'SELECT 1' }, { authorization: `Bearer ${token}`, 'x-tenant-id': 'acme_corp' });
    expect(disagree.json.error.code).toBe('TENANT_MISMATCH');
  });

  it('datasets and tenant describe only what the caller may use', async () => {
    const acme = await s.get('/v1/datasets', { 'x-api-key': s.keys.acme });
    const orders = acme.json.datasets[0];
    expect(orders.dimensions).toEqual(['region', 'status', 'created_at']);
    expect(orders.metrics).toEqual(['revenue', 'orders']);
    expect(orders.columns.map((c: { name: string }) => c.name)).not.toContain('internal_cost');
    const globex = await s.get('/v1/datasets', { 'x-api-key': s.keys.globex });
    expect(globex.json.datasets[0].dimensions).not.toContain('status');
    const t = await s.get('/v1/tenant', { 'x-api-key': s.keys.acme });
    expect(t.json).toMatchObject({ id: 'acme_corp', tier: 'pooled', status: 'active', access: 'read' });
  });

  it('writers write only their own tenant; readers cannot write', async () => {
    const ins = await s.post('/v1/queries', { sql: "INSERT INTO orders (region, amount) VALUES ('West', 7) RETURNING region, amount" }, { 'x-api-key': s.keys.acmeWriter });
    expect(ins.status).toBe(200);
    expect(ins.json.rows).toEqual([['West', 7]]);
    const owner = await fx.db.query(`SELECT tenant_id FROM public.orders WHERE region = 'West'`);
    expect(owner.rows).toEqual([{ tenant_id: 'acme_corp' }]);
    const upd = await s.post('/v1/queries', { sql: "UPDATE orders SET status = 'x'" }, { 'x-api-key': s.keys.acmeWriter });
    expect(upd.json.row_count).toBe(3);
    const globexStatus = await fx.db.query(`SELECT DISTINCT status FROM public.orders WHERE tenant_id = 'globex_inc'`);
    expect(globexStatus.rows).toEqual([{ status: 'open' }]);
    const reader = await s.post('/v1/queries', { sql: "DELETE FROM orders" }, { 'x-api-key': s.keys.acme });
    expect(reader.status).toBe(403);
    expect(reader.json.error.code).toBe('POLICY_DENIED');
    const tenantCol = await s.post('/v1/queries', { sql: "UPDATE orders SET tenant_id = 'globex_inc'" }, { 'x-api-key': s.keys.acmeWriter });
    expect(tenantCol.json.error.code).toBe('SQL_FORBIDDEN');
  });

  it('health, readiness and the OpenAPI document', async () => {
    expect((await s.get('/healthz')).status).toBe(200);
    expect((await s.get('/readyz')).json).toEqual({ status: 'ready' });
    const doc = await s.get('/openapi.json');
    expect(doc.json.openapi).toMatch(/^3\./);
    expect(doc.json.paths['/v1/query'].post.requestBody).toBeDefined();
    expect(doc.json.components.schemas.SemanticQuery.properties.filters).toBeDefined();
  });
});
