/**
 * POST /v1/admin/tenants/{id}/erase (issue 14 §4): platform admins only; the confirm must repeat the
 * id; the job runs on the gateway's runner and its result is the signed certificate; a tenant's own
 * admin sees neither the endpoint's effect nor the job; a second erase is TENANT_ERASED; nothing 500s.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { verifyCertificate } from '../../../src/lifecycle/erase/certificate.ts';
import { jobServiceOf } from '../../../src/lifecycle/jobs/service.ts';
import { BACKENDS, type Fixture } from '../../support/backends.ts';
import { jobEnded, serve, type Served } from '../../http/support.ts';
import { checksums, eraseFixture, SIGNING_PEM } from './support.ts';

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
