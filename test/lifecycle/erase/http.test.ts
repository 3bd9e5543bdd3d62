/**
 * POST /v1/admin/tenants/{id}/erase (issue 14 §4): platform admins only; the confirm must repeat the
 * id; the job runs on the gateway's runner and its result is the signed certificate; a tenant's own
 * admin sees neither the endpoint's effect nor the job; a second erase is TENANT_ERASED; nothing 500s.
 * Then the tombstone at the door: every way a request names a tenant (a JWT's tenant claim, the
 * tenant header, the /v1/tenants/{id}/ path, the subdomain; tenant, platform and other tenants'
 * credentials) meets an erased id exactly as one that never existed, on a gateway that was serving
 * it before the erasure and on one started after; platform admins' tenant endpoints say
 * TENANT_ERASED; nothing 500s.
 */
import { SignJWT, type JWTPayload } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { verifyCertificate } from '../../../src/lifecycle/erase/certificate.ts';
import { jobServiceOf } from '../../../src/lifecycle/jobs/service.ts';
import { Gateway } from '../../../src/gateway/gateway.ts';
import { buildServer } from '../../../src/http/server.ts';
import { BACKENDS, type Fixture } from '../../support/backends.ts';
import { jobEnded, serve, type Served } from '../../http/support.ts';
import { checksums, ERASE_YAML, eraseFixture, SIGNING_PEM } from './support.ts';

describe.each(BACKENDS)('admin erase endpoint on %s', (kind) => {
  let fx: Fixture;
  let s: Served;
  const had = process.env['TENANTGATE_SIGNING_KEY'];
  beforeAll(async () => {
    process.env['TENANTGATE_SIGNING_KEY'] = SIGNING_PEM; // the route runs jobs with the process's environment
    fx = await eraseFixture(kind);
    s = await serve(fx);
    await jobServiceOf(s.gateway).startRunner({ pollMs: 50 });
  }, 120_000);
  afterAll(async () => {
    await s?.close();
    await fx?.cleanup();
    if (had === undefined) delete process.env['TENANTGATE_SIGNING_KEY'];
    else process.env['TENANTGATE_SIGNING_KEY'] = had;
  });
  const ops = () => ({ 'x-api-key': s.keys.ops });

  it('refuses non-platform callers and a wrong confirm; erases as a job whose result is the certificate', { timeout: 120_000 }, async () => {
    const before = await checksums(fx, 'globex_inc');
    const tenantAdmin = await s.post('/v1/admin/tenants/acme_corp/erase', { confirm: 'acme_corp' }, { 'x-api-key': s.keys.acmeAdmin });
    expect(tenantAdmin.status).toBe(403);
    const wrong = await s.post('/v1/admin/tenants/acme_corp/erase', { confirm: 'globex_inc' }, ops());
    expect(wrong.status).toBe(400);
    expect(wrong.json.error.code).toBe('ERASE_CONFIRM_MISMATCH');
    const none = await s.post('/v1/admin/tenants/acme_corp/erase', {}, ops());
    expect(none.status).toBe(400);
    expect((await s.post('/v1/admin/tenants/nobody_here/erase', { confirm: 'nobody_here' }, ops())).json.error.code).toBe('TENANT_UNKNOWN');

    const started = await s.post('/v1/admin/tenants/acme_corp/erase', { confirm: 'acme_corp', batch_rows: 2 }, ops());
    expect(started.status, JSON.stringify(started.json)).toBe(202);
    expect(started.json.job).toMatchObject({ kind: 'erase', tenant: 'acme_corp', requested_by: expect.stringMatching(/^key:/) });
    const id = started.json.job.id as string;
    const job = await jobEnded(s, started.json.job, ops());
    expect(job.state, JSON.stringify(job.error)).toBe('done');
    expect(job.result.certificate).toMatchObject({ tenant: 'acme_corp', check: { ok: true } });
    expect(await checksums(fx, 'globex_inc')).toEqual(before);
    const verdict = await verifyCertificate({ config: fx.config, env: { TENANTGATE_SIGNING_KEY: SIGNING_PEM } }, fx.db, job.result.certificate);
    expect(verdict).toMatchObject({ ok: true, problems: [] });
    // Another tenant's admin cannot see the job; a second erase is refused with a stable code.
    expect((await s.get(`/v1/admin/jobs/${id}`, { 'x-api-key': s.keys.globexAdmin })).status).toBe(404);
    const again = await s.post('/v1/admin/tenants/acme_corp/erase', { confirm: 'acme_corp' }, ops());
    expect(again.status).toBe(409);
    expect(again.json.error.code).toBe('TENANT_ERASED');
  });

  it('a gateway that was running before the erasure meets the erased id as an unknown one within its routes interval', { timeout: 60_000 }, async () => {
    const query = (tenant: string, key = s.keys.ops) => s.post('/v1/query', { dataset: 'orders', dimensions: ['region'], metrics: ['revenue'] }, { 'x-api-key': key, 'x-tenant-id': tenant });
    const unknown = await query('nobody_here');
    let erased = await query('acme_corp');
    for (let i = 0; i < 30 && erased.status !== unknown.status; i++) {
      await new Promise((r) => setTimeout(r, 100));
      erased = await query('acme_corp');
    }
    // Same status, code and message as an id that never existed (the config this process loaded still names it).
    expect(erased.status).toBe(unknown.status);
    expect(erased.json.error).toMatchObject({ code: unknown.json.error.code, message: unknown.json.error.message });
    expect(fx.config.tenants.has('acme_corp')).toBe(true);
    // A tenant key naming it meets what any other tenant's id gets; the library refuses it too.
    const asGlobex = await query('acme_corp', s.keys.globexAdmin);
    const asGlobexUnknown = await query('nobody_here', s.keys.globexAdmin);
    expect([asGlobex.status, asGlobex.json.error.code]).toEqual([asGlobexUnknown.status, asGlobexUnknown.json.error.code]);
    await expect(s.gateway.gate.withTenant({ tenant: 'acme_corp', access: 'read' }, (db) => db.query('SELECT 1'))).rejects.toMatchObject({ code: 'TENANT_UNKNOWN' });
    // Platform admins may know it was erased.
    expect((await s.post('/v1/admin/tenants/acme_corp/suspend', { reason: 'x' }, ops())).json.error.code).toBe('TENANT_ERASED');
    // Neighbours go on.
    expect((await query('globex_inc')).status).toBe(200);
  });
});

const JWT_SECRET = 'a-jwt-secret-of-at-least-32-characters!!';
const DOOR_YAML = ERASE_YAML.replace('datasets:', `identity:
  subdomain_base: tenants.example.test
  jwt:
    secret_env: TG_JWT_SECRET
    algorithms: [HS256]
datasets:`);
const Q = { dataset: 'orders', dimensions: ['region'], metrics: ['revenue'] };
type Answer = { status: number; code: string | undefined; message: string | undefined };

describe.each(BACKENDS)('an erased tenant at the door on %s', (kind) => {
  let fx: Fixture;
  let s: Served;
  const had = process.env['TENANTGATE_SIGNING_KEY'];
  beforeAll(async () => {
    process.env['TENANTGATE_SIGNING_KEY'] = SIGNING_PEM;
    fx = await eraseFixture(kind, 3, DOOR_YAML);
    s = await serve(fx, { env: { TG_JWT_SECRET: JWT_SECRET } });
    await jobServiceOf(s.gateway).startRunner({ pollMs: 50 });
  }, 120_000);
  afterAll(async () => {
    await s?.close();
    await fx?.cleanup();
    if (had === undefined) delete process.env['TENANTGATE_SIGNING_KEY'];
    else process.env['TENANTGATE_SIGNING_KEY'] = had;
  });
  const ops = () => ({ 'x-api-key': s.keys.ops });
  const jwt = (claims: JWTPayload) =>
    new SignJWT({ sub: 'user-1', iat: Math.floor(Date.now() / 1000), exp: Math.floor(Date.now() / 1000) + 300, ...claims })
      .setProtectedHeader({ alg: 'HS256' })
      .sign(new TextEncoder().encode(JWT_SECRET));
  const answer = (r: { status: number; json: { error?: { code?: string; message?: string } } }): Answer => ({ status: r.status, code: r.json?.error?.code, message: r.json?.error?.message });

  /** Another gateway process on the same database and config (the keys of the first one's fixture work on it). */
  const restarted = async (): Promise<Pick<Served, 'app' | 'get' | 'post' | 'patch' | 'delete' | 'close'>> => {
    const gateway = await Gateway.create({ gate: await fx.gate(), secret: fx.secret, env: { TG_JWT_SECRET: JWT_SECRET } });
    const app = buildServer(gateway, {});
    await app.ready();
    const call = async (method: 'GET' | 'POST' | 'PATCH' | 'DELETE', url: string, body: unknown, headers: Record<string, string> = {}) => {
      const r = await app.inject({ method, url, headers, ...(body === undefined ? {} : { payload: body as object }) });
      return { status: r.statusCode, json: r.json(), headers: new Headers() };
    };
    return {
      app,
      get: (url, headers) => call('GET', url, undefined, headers),
      post: (url, body, headers) => call('POST', url, body, headers),
      patch: (url, body, headers) => call('PATCH', url, body, headers),
      delete: (url, headers) => call('DELETE', url, undefined, headers),
      close: () => app.close(),
    };
  };

  /** Every way a request names the tenant `id`, through gateway `g`: what each answers. */
  const door = async (g: Pick<Served, 'app' | 'get' | 'post'>, id: string): Promise<Record<string, Answer>> => {
    const bearer = async (claims: JWTPayload) => ({ authorization: `Bearer ${await jwt(claims)}` });
    const member = await bearer({ tenant_id: id, role: 'analyst' });
    const owner = await bearer({ tenant_id: id, role: 'owner' });
    const listed = await bearer({ tenants: [id], role: 'analyst' });
    const platform = await bearer({ role: 'ops' });
    const subdomain = await g.app.inject({ method: 'POST', url: '/v1/query', payload: Q, headers: { host: `${id}.tenants.example.test`, 'x-api-key': s.keys.ops } });
    const ways: Record<string, Promise<{ status: number; json: any }>> = { // eslint-disable-line @typescript-eslint/no-explicit-any
      'jwt tenant claim: query': g.post('/v1/query', Q, member),
      'jwt tenant claim: sql': g.post('/v1/queries', { sql: 'SELECT region, count(*) FROM orders GROUP BY region' }, member),
      'jwt tenant claim: tenant': g.get('/v1/tenant', member),
      'jwt tenant claim: datasets': g.get('/v1/datasets', member),
      'jwt tenant claim (owner): audit': g.get('/v1/audit', owner),
      'jwt tenant claim (owner): export': g.post('/v1/exports', {}, owner),
      'jwt tenants claim: query': g.post('/v1/query', Q, listed),
      'jwt tenant claim and path': g.post(`/v1/tenants/${id}/query`, Q, member),
      'jwt tenant claim and header': g.post('/v1/query', Q, { ...member, 'x-tenant-id': id }),
      'platform jwt, header': g.post('/v1/query', Q, { ...platform, 'x-tenant-id': id }),
      'platform key, header': g.post('/v1/query', Q, { ...ops(), 'x-tenant-id': id }),
      'platform key, path': g.post(`/v1/tenants/${id}/query`, Q, ops()),
      'platform key, path: tenant': g.get(`/v1/tenants/${id}/tenant`, ops()),
      'another tenant key, header': g.post('/v1/query', Q, { 'x-api-key': s.keys.globex, 'x-tenant-id': id }),
      'another tenant key, path': g.post(`/v1/tenants/${id}/query`, Q, { 'x-api-key': s.keys.globex }),
    };
    const out: Record<string, Answer> = { 'platform key, subdomain': answer({ status: subdomain.statusCode, json: subdomain.json() }) };
    for (const [way, r] of Object.entries(ways)) out[way] = answer(await r);
    return out;
  };
  /** A platform admin's endpoints naming the tenant `id`. */
  const admin = async (g: Pick<Served, 'get' | 'post' | 'patch' | 'delete'>, id: string): Promise<Record<string, Answer>> => ({
    'GET tenant': answer(await g.get(`/v1/admin/tenants/${id}`, ops())),
    suspend: answer(await g.post(`/v1/admin/tenants/${id}/suspend`, { reason: 'x' }, ops())),
    resume: answer(await g.post(`/v1/admin/tenants/${id}/resume`, {}, ops())),
    'GET quotas': answer(await g.get(`/v1/admin/tenants/${id}/quotas`, ops())),
    'PATCH quotas': answer(await g.patch(`/v1/admin/tenants/${id}/quotas`, { requests_per_minute: 10 }, ops())),
    'GET move': answer(await g.get(`/v1/admin/tenants/${id}/move`, ops())),
    'POST move': answer(await g.post(`/v1/admin/tenants/${id}/move`, { to: { tier: 'schema' } }, ops())),
    'DELETE move': answer(await g.delete(`/v1/admin/tenants/${id}/move`, ops())),
    export: answer(await g.post(`/v1/admin/tenants/${id}/export`, {}, ops())),
    erase: answer(await g.post(`/v1/admin/tenants/${id}/erase`, { confirm: id }, ops())),
    audit: answer(await g.get(`/v1/admin/audit?tenant=${id}`, ops())),
  });

  it('every way of naming an erased tenant answers as for an unknown one, before and after a gateway restart; admins meet TENANT_ERASED; nothing 500s', { timeout: 120_000 }, async () => {
    // Before the erasure, acme_corp is served every way its own credentials and the platform's name it.
    const served = await door(s, 'acme_corp');
    for (const [way, a] of Object.entries(served)) {
      if (way.startsWith('another tenant')) expect(a.status, way).toBe(403);
      else expect(a.status, `${way}: ${JSON.stringify(a)}`).toBeLessThan(300);
    }
    const exportJob = (await s.get('/v1/admin/jobs?tenant=acme_corp&kind=export', ops())).json.jobs as Array<{ id: string; state: string }>;
    for (const j of exportJob) await jobEnded(s, j, ops());

    const started = await s.post('/v1/admin/tenants/acme_corp/erase', { confirm: 'acme_corp' }, ops());
    expect(started.status, JSON.stringify(started.json)).toBe(202);
    const job = await jobEnded(s, started.json.job, ops());
    expect(job.state, JSON.stringify(job.error)).toBe('done');
    expect(fx.config.tenants.has('acme_corp')).toBe(true); // this process's config still names it

    const trail = async () => {
      await s.gateway.audit?.flush();
      return (await fx.db.query(`SELECT count(*)::int AS n, max(seq)::int AS last FROM tenantgate.audit_log WHERE tenant = 'acme_corp'`)).rows[0];
    };
    const unknown = await door(s, 'nobody_here');
    let erased = await door(s, 'acme_corp');
    for (let i = 0; i < 30 && JSON.stringify(erased) !== JSON.stringify(unknown); i++) {
      await new Promise((r) => setTimeout(r, 100));
      erased = await door(s, 'acme_corp');
    }
    expect(erased).toEqual(unknown);
    // From now on (the routes read), nothing a request naming it does is written on its (pseudonymised) audit chain.
    const trailAfter = await trail();
    expect(await door(s, 'acme_corp')).toEqual(unknown);
    for (const [way, a] of Object.entries(erased)) expect(a.status, way).toBeGreaterThanOrEqual(400);
    for (const [way, a] of Object.entries(erased)) expect(a.status, way).toBeLessThan(500);

    // A platform admin's endpoints naming it: TENANT_ERASED, each of them, never a 500 nor a job for it.
    const jobsBefore = (await s.get('/v1/admin/jobs?tenant=acme_corp', ops())).json.jobs.length;
    const toAdmin = await admin(s, 'acme_corp');
    for (const [what, a] of Object.entries(toAdmin)) expect([what, a.status, a.code]).toEqual([what, 409, 'TENANT_ERASED']);
    expect((await s.get('/v1/admin/jobs?tenant=acme_corp', ops())).json.jobs.length).toBe(jobsBefore);
    const toUnknown = await admin(s, 'nobody_here');
    for (const [what, a] of Object.entries(toUnknown)) expect([what, a.status, a.code]).toEqual([what, 404, 'TENANT_UNKNOWN']);

    expect(await trail()).toEqual(trailAfter);

    // A gateway started after the erasure, its config still naming the tenant, answers the same.
    const later = await restarted();
    try {
      expect(await door(later, 'acme_corp')).toEqual(await door(later, 'nobody_here'));
      expect(await admin(later, 'acme_corp')).toEqual(toAdmin);
    } finally {
      await later.close();
    }
    // The neighbours go on, every way.
    const globex = await door(s, 'globex_inc');
    expect(globex['platform key, header']!.status).toBe(200);
    expect(globex['jwt tenant claim: query']!.status).toBe(200);
  });
});
