/**
 * Issue 14 §2: suspend and resume a tenant. While suspended every request naming it answers
 * 403 TENANT_SUSPENDED (by key, header, path, subdomain; SQL and semantic; platform keys too), with
 * no hint about other tenants; its neighbours are untouched; withTenant refuses; its direct logins
 * cannot log in and their sessions end (server); apply keeps it suspended; both changes are audited
 * with the reason; resume restores everything. Every tier.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { applyProvision } from '../../src/provision/apply.ts';
import { createApiKey } from '../../src/identify/api-keys.ts';
import { changeSuspension, readTenantStatus } from '../../src/lifecycle/suspend.ts';
import { describeTenants } from '../../src/lifecycle/tenants.ts';
import { openDatabase } from '../../src/db/database.ts';
import { ownerDatabases } from '../../src/tiers/databases.ts';
import { tenantDatabase } from '../../src/tiers/location.ts';
import type { TenantGate } from '../../src/gate.ts';
import { BACKENDS, pgliteFactory, type Fixture } from '../support/backends.ts';
import { serve, type Served } from '../http/support.ts';
import { median, SUBDOMAIN_BASE, suspendFixture } from './suspend-support.ts';

describe.each(BACKENDS)('suspend and resume a tenant on %s', (kind) => {
  let fx: Fixture;
  let s: Served;
  let gate: TenantGate;
  const env = () => ({ TG_TEST_DB: fx.url, TG_TEST_PREFIX: fx.prefix });
  beforeAll(async () => {
    fx = await suspendFixture(kind);
    s = await serve(fx);
    gate = await fx.gate();
  }, 120_000);
  afterAll(async () => {
    await s?.close();
    await fx?.cleanup();
  });

  const summary = { dataset: 'orders', dimensions: ['region'], metrics: ['revenue'] };
  const ops = () => ({ 'x-api-key': s.keys.ops });
  /** fetch always sends the address as Host: the subdomain goes through Fastify's inject. */
  const bySubdomain = async (tenant: string, key: string) => {
    const r = await s.app.inject({ method: 'POST', url: '/v1/query', headers: { host: `${tenant}.${SUBDOMAIN_BASE}`, 'x-api-key': key, 'content-type': 'application/json' }, payload: JSON.stringify(summary) });
    return { status: r.statusCode, json: r.json() };
  };
  /** Every way the tenant's own callers (and a platform key) reach it, and the answers' status and code. */
  const everyWay = async (tenant: string, key: string, admin: string) => {
    const k = { 'x-api-key': key };
    const answers = {
      key: await s.post('/v1/query', summary, k),
      header: await s.post('/v1/query', summary, { ...k, 'x-tenant-id': tenant }),
      path: await s.post(`/v1/tenants/${tenant}/query`, summary, k),
      subdomain: await bySubdomain(tenant, key),
      sql: await s.post('/v1/queries', { sql: 'SELECT region, sum(amount) FROM orders GROUP BY region' }, k),
      datasets: await s.get('/v1/datasets', k),
      tenant: await s.get('/v1/tenant', k),
      audit: await s.get('/v1/audit', { 'x-api-key': admin }),
      platform: await s.post('/v1/query', summary, { ...ops(), 'x-tenant-id': tenant }),
    };
    return Object.fromEntries(Object.entries(answers).map(([way, r]) => [way, r.status === 200 ? 200 : `${r.status} ${r.json.error?.code}`]));
  };
  const allOk = (tenant: string, key: string, admin: string) => everyWay(tenant, key, admin).then((a) => Object.values(a).every((v) => v === 200) || a);

  it('suspend through the admin API: every way of naming A answers 403 TENANT_SUSPENDED; B is untouched; no hint about anyone else', async () => {
    expect(await allOk('acme_corp', s.keys.acme, s.keys.acmeAdmin)).toBe(true);
    // Only platform admins may suspend; an unknown tenant is TENANT_UNKNOWN; an unknown field is refused.
    for (const key of [s.keys.acme, s.keys.acmeAdmin, s.keys.globexAdmin]) {
      expect((await s.post('/v1/admin/tenants/acme_corp/suspend', {}, { 'x-api-key': key })).json.error.code).toBe('POLICY_DENIED');
    }
    expect((await s.post('/v1/admin/tenants/nobody/suspend', {}, ops())).json.error.code).toBe('TENANT_UNKNOWN');
    expect((await s.post('/v1/admin/tenants/acme_corp/suspend', { reason: 'x', extra: 1 }, ops())).json.error.code).toBe('QUERY_INVALID');
    expect((await s.post('/v1/admin/tenants/acme_corp/suspend', { reason: 'y'.repeat(501) }, ops())).json.error.code).toBe('QUERY_INVALID');

    const done = await s.post('/v1/admin/tenants/acme_corp/suspend', { reason: 'unpaid invoice 42' }, ops());
    expect(done.status, JSON.stringify(done.json)).toBe(200);
    expect(done.json).toMatchObject({ tenant: 'acme_corp', status: 'suspended', config_status: 'active', changed: true, suspension: { reason: 'unpaid invoice 42', by: expect.stringMatching(/^key:/), since: expect.any(String) } });

    const refused = await everyWay('acme_corp', s.keys.acme, s.keys.acmeAdmin);
    expect(refused).toEqual(Object.fromEntries(Object.keys(refused).map((k) => [k, '403 TENANT_SUSPENDED'])));
    const one = await s.post('/v1/query', summary, { 'x-api-key': s.keys.acme });
    expect(JSON.stringify(one.json)).not.toMatch(/globex|hooli|initech/);
    // B naming A learns nothing new: a mismatch, as for any tenant not its own (or one that does not exist).
    expect((await s.post('/v1/query', summary, { 'x-api-key': s.keys.globex, 'x-tenant-id': 'acme_corp' })).json.error.code).toBe('TENANT_MISMATCH');
    expect((await s.post('/v1/query', summary, { 'x-api-key': s.keys.globex, 'x-tenant-id': 'nobody_at_all' })).json.error.code).toBe('TENANT_MISMATCH');
    // B itself: untouched, every way.
    expect(await allOk('globex_inc', s.keys.globex, s.keys.globexAdmin)).toBe(true);
    // Platform `all` still reads every tenant's rows (support; docs/operations.md says why).
    const all = await s.post('/v1/queries', { sql: 'SELECT DISTINCT tenant_id FROM orders ORDER BY 1' }, { ...ops(), 'x-tenant-id': 'all' });
    expect(all.status).toBe(200);
    expect(all.json.rows.flat()).toContain('acme_corp');
    // The admin API still answers for it: its status, its quotas, a second suspend (idempotent: the first reason stays).
    expect((await s.get('/v1/admin/tenants/acme_corp', ops())).json).toMatchObject({ id: 'acme_corp', tier: 'pooled', status: 'suspended', suspension: { reason: 'unpaid invoice 42' } });
    expect((await s.get('/v1/admin/tenants/acme_corp/quotas', ops())).status).toBe(200);
    expect((await s.get('/v1/admin/audit?tenant=acme_corp', ops())).status).toBe(200);
    const again = await s.post('/v1/admin/tenants/acme_corp/suspend', { reason: 'another reason' }, ops());
    expect(again.json).toMatchObject({ status: 'suspended', changed: false, suspension: { reason: 'unpaid invoice 42' } });
    // tenant show (the owner's view) says the same.
    const [view] = await describeTenants(fx.db, fx.config, fx.names, 'acme_corp');
    expect(view).toMatchObject({ status: 'suspended', suspension: { source: 'runtime', reason: 'unpaid invoice 42', by: expect.stringMatching(/^key:/) } });
  });

  it('withTenant refuses a suspended tenant (allowSuspended lets lifecycle jobs through); B is untouched', async () => {
    await gate.routes.refresh();
    await expect(gate.withTenant({ tenant: 'acme_corp', access: 'read' }, (db) => db.query('SELECT 1'))).rejects.toMatchObject({ code: 'TENANT_SUSPENDED' });
    await expect(gate.statement({ tenant: 'acme_corp', access: 'platform' }, { text: 'SELECT 1', values: [] })).rejects.toMatchObject({ code: 'TENANT_SUSPENDED' });
    const rows = await gate.withTenant({ tenant: 'acme_corp', access: 'platform', allowSuspended: true }, (db) => db.query('SELECT count(*)::int AS n FROM orders'));
    expect(rows.rows[0]?.n).toBe(2);
    const b = await gate.withTenant({ tenant: 'globex_inc', access: 'read' }, (db) => db.query('SELECT DISTINCT tenant_id FROM orders'));
    expect(b.rows).toEqual([{ tenant_id: 'globex_inc' }]);
  });

  it('apply keeps a runtime suspension, and a second apply changes nothing', async () => {
    const databases = ownerDatabases(fx.config, fx.db, {}, pgliteFactory);
    const first = await applyProvision(fx.config, fx.db, fx.secret, { env: env(), databases });
    expect(first.changes.map((c) => c.object)).toEqual([]);
    expect((await readTenantStatus(fx.db, 'acme_corp')).status).toBe('suspended');
    await gate.routes.refresh();
    expect(gate.routes.suspended('acme_corp')).toBe(true);
    expect((await s.post('/v1/query', summary, { 'x-api-key': s.keys.acme })).json.error.code).toBe('TENANT_SUSPENDED');
  });

  it('both changes are audited with their reason; resume restores every way in', async () => {
    const resumed = await s.post('/v1/admin/tenants/acme_corp/resume', { reason: 'paid' }, ops());
    expect(resumed.status, JSON.stringify(resumed.json)).toBe(200);
    expect(resumed.json).toMatchObject({ tenant: 'acme_corp', status: 'active', changed: true, suspension: null });
    expect(await allOk('acme_corp', s.keys.acme, s.keys.acmeAdmin)).toBe(true);
    expect((await s.post('/v1/admin/tenants/acme_corp/resume', undefined, ops())).json).toMatchObject({ status: 'active', changed: false });
    await gate.routes.refresh();
    expect((await gate.withTenant({ tenant: 'acme_corp', access: 'read' }, (db) => db.query('SELECT count(*)::int AS n FROM orders'))).rows[0]?.n).toBe(2);

    await s.gateway.audit?.flush();
    const trail = await s.get('/v1/admin/audit?tenant=acme_corp&limit=1000', ops());
    const changes = (trail.json.events as Array<{ endpoint: string; lifecycle?: unknown; principal: string }>).filter((e) => e.lifecycle);
    expect(changes.map((e) => [e.endpoint, e.lifecycle]).reverse()).toEqual([
      ['POST /v1/admin/tenants/:id/suspend', { action: 'suspend', reason: 'unpaid invoice 42', changed: true }],
      ['POST /v1/admin/tenants/:id/suspend', { action: 'suspend', reason: 'another reason', changed: false }],
      ['POST /v1/admin/tenants/:id/resume', { action: 'resume', reason: 'paid', changed: true }],
      ['POST /v1/admin/tenants/:id/resume', { action: 'resume', reason: null, changed: false }],
    ]);
    // The refusals are in the trail too, as denials with the code.
    const refusals = (trail.json.events as Array<{ code: string | null; decision: string }>).filter((e) => e.code === 'TENANT_SUSPENDED');
    expect(refusals.length).toBeGreaterThanOrEqual(9);
    expect(new Set(refusals.map((e) => e.decision))).toEqual(new Set(['deny']));
  });

  it('suspending A does not slow B', async () => {
    const b = { 'x-api-key': s.keys.globex };
    const time = async () => {
      const out: number[] = [];
      for (let i = 0; i < 60; i++) {
        const t0 = performance.now();
        const r = await s.post('/v1/query', summary, b);
        out.push(performance.now() - t0);
        expect(r.status).toBe(200);
      }
      return median(out);
    };
    await time(); // warm
    const before = await time();
    await s.post('/v1/admin/tenants/acme_corp/suspend', { reason: 'load test' }, ops());
    // A hammering the gateway while suspended: refused in the authorize stage, before any database work.
    const a = Array.from({ length: 40 }, () => s.post('/v1/query', summary, { 'x-api-key': s.keys.acme }));
    const during = await time();
    const refused = await Promise.all(a);
    expect(new Set(refused.map((r) => r.json.error?.code))).toEqual(new Set(['TENANT_SUSPENDED']));
    // Refused before admit, plan or execute: no quota spent, no database work.
    for (const r of refused) expect(r.headers.get('server-timing')).not.toMatch(/admit|plan|execute/);
    await s.post('/v1/admin/tenants/acme_corp/resume', {}, ops());
    console.log(`B's median latency (${kind}): ${before.toFixed(2)} ms before, ${during.toFixed(2)} ms while A is suspended and refused`);
    // Loose on purpose: the machine is shared; a refused neighbour must not cost B anything like a request's work.
    expect(during).toBeLessThan(before * 3 + 20);
  });

  it('schema- and database-tier tenants: suspended and resumed the same way (the database tier in its own database too)', async () => {
    for (const tenant of ['hooli', 'initech']) {
      const key = (await createApiKey(fx.db, fx.config, fx.names, fx.secret, { tenant, role: 'analyst' })).key;
      const admin = (await createApiKey(fx.db, fx.config, fx.names, fx.secret, { tenant, role: 'owner' })).key;
      expect(await allOk(tenant, key, admin)).toBe(true);
      // Server: a direct login of the tenant (for the database tier, into its own database) cannot log in while it is suspended.
      const login = kind === 'postgres' ? (await createApiKey(fx.db, fx.config, fx.names, fx.secret, { tenant, role: 'analyst', dbLogin: true })).db_login : undefined;
      const loginTo = () => {
        const u = new URL(fx.url);
        u.pathname = `/${login!.database}`;
        u.username = login!.user;
        u.password = login!.password;
        return openDatabase(u.toString(), { max: 1 });
      };
      const done = await s.post(`/v1/admin/tenants/${tenant}/suspend`, { reason: `tier test ${tenant}` }, ops());
      expect(done.status, JSON.stringify(done.json)).toBe(200);
      if (tenant === 'initech') expect(done.json.own_database).toEqual({ ok: true });
      const refused = await everyWay(tenant, key, admin);
      expect(refused).toEqual(Object.fromEntries(Object.keys(refused).map((k) => [k, '403 TENANT_SUSPENDED'])));
      expect(await allOk('globex_inc', s.keys.globex, s.keys.globexAdmin)).toBe(true);
      await gate.routes.refresh();
      await expect(gate.withTenant({ tenant, access: 'read' }, (db) => db.query('SELECT 1'))).rejects.toMatchObject({ code: 'TENANT_SUSPENDED' });
      if (login) {
        const refusedLogin = await loginTo();
        await expect(refusedLogin.query('SELECT 1')).rejects.toMatchObject({ code: '28000' });
        await refusedLogin.close();
      }
      if (tenant === 'initech') {
        // The tenant's own database holds the suspension too: its direct-login policy sees no tenant there.
        const dbs = ownerDatabases(fx.config, fx.db, {}, pgliteFactory);
        const own = await dbs.get('default', tenantDatabase(fx.prefix, 'initech'));
        expect((await own.query(`SELECT reason FROM tenantgate.suspensions WHERE tenant = 'initech'`)).rows).toEqual([{ reason: 'tier test initech' }]);
        expect((await s.post(`/v1/admin/tenants/${tenant}/resume`, {}, ops())).json).toMatchObject({ status: 'active', changed: true, own_database: { ok: true } });
        expect((await own.query(`SELECT count(*)::int AS n FROM tenantgate.suspensions`)).rows[0]?.n).toBe(0);
      } else {
        expect((await s.post(`/v1/admin/tenants/${tenant}/resume`, {}, ops())).json).toMatchObject({ status: 'active', changed: true });
      }
      expect(await allOk(tenant, key, admin)).toBe(true);
      if (login) {
        const back = await loginTo();
        expect((await back.query(`SELECT DISTINCT tenant_id FROM ${login.schema ? `${login.schema}.` : ''}orders`)).rows).toEqual([{ tenant_id: tenant }]);
        await back.close();
      }
    }
  });

  it('direct logins: NOLOGIN and sessions ended while suspended, LOGIN again on resume (a revoked key\'s login stays gone)', async () => {
    const key = await createApiKey(fx.db, fx.config, fx.names, fx.secret, { tenant: 'acme_corp', role: 'analyst', dbLogin: true });
    const user = key.db_login!.user;
    const canLogin = async (role: string) => (await fx.db.query<{ c: boolean }>(`SELECT rolcanlogin AS c FROM pg_roles WHERE rolname = $1`, [role])).rows[0]?.c;
    expect(await canLogin(user)).toBe(true);
    const open = kind === 'postgres' ? await fx.connectAs(user, key.db_login!.password) : undefined;
    if (open) expect((await open.query(`SELECT DISTINCT tenant_id FROM public.orders`)).rows).toEqual([{ tenant_id: 'acme_corp' }]);

    const r = await changeSuspension(fx.db, undefined, 'acme_corp', true, 'logins test', 'test:suspend');
    expect(r.logins).toMatchObject({ suspended: true, logins: [user], changed: 1, failed: [] });
    expect(await canLogin(user)).toBe(false);
    // A key made while suspended gets a login that cannot log in either.
    const late = await createApiKey(fx.db, fx.config, fx.names, fx.secret, { tenant: 'acme_corp', role: 'analyst', dbLogin: true });
    expect(await canLogin(late.db_login!.user)).toBe(false);
    if (kind === 'postgres') {
      expect(r.logins.sessions_ended).toBeGreaterThanOrEqual(1);
      // The open session is gone; a new one is refused at login.
      await expect(open!.query('SELECT 1')).rejects.toThrow();
      const again = await fx.connectAs(user, key.db_login!.password);
      await expect(again.query('SELECT 1')).rejects.toMatchObject({ code: '28000' });
    } else {
      // PGlite: one superuser session, a login is no boundary; the policy still sees no tenant for it.
      const clone = await fx.connectAs(user);
      expect((await clone.query(`SELECT count(*)::int AS n FROM public.orders`)).rows[0]?.n).toBe(0);
    }
    // Revoke one key while suspended: resume gives LOGIN back to the others only.
    const { revokeApiKey } = await import('../../src/identify/api-keys.ts');
    await revokeApiKey(fx.db, late.key_id);
    const back = await changeSuspension(fx.db, undefined, 'acme_corp', false, null, 'test:resume');
    expect(back.logins).toMatchObject({ suspended: false, logins: [user], changed: 1, failed: [] });
    expect(await canLogin(user)).toBe(true);
    expect(await canLogin(late.db_login!.user)).toBeUndefined();
    if (kind === 'postgres') {
      const fresh = await fx.connectAs(user, key.db_login!.password);
      expect((await fresh.query(`SELECT DISTINCT tenant_id FROM public.orders`)).rows).toEqual([{ tenant_id: 'acme_corp' }]);
    }
  });
});
