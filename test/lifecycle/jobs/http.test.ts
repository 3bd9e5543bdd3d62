/**
 * The admin job endpoints (issue 14 §1): platform admins list, show and cancel jobs; any other
 * caller gets exactly the answer of an unknown route, so nothing says that jobs exist. The
 * runner `serve` starts runs jobs in the gateway process.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { enqueueJob } from '../../../src/lifecycle/jobs/runner.ts';
import { jobServiceOf } from '../../../src/lifecycle/jobs/service.ts';
import { getJob, type Job } from '../../../src/lifecycle/jobs/store.ts';
import { BACKENDS, type Fixture } from '../../support/backends.ts';
import { serve, type Served } from '../../http/support.ts';
import { countKind, exactlyOnce, itemsOf, jobFixture, registryWith, until } from './support.ts';

describe.each(BACKENDS)('admin job endpoints on %s', (kind) => {
  let fx: Fixture;
  let s: Served;
  const registry = registryWith(countKind());
  const jobs: Job[] = [];
  beforeAll(async () => {
    fx = await jobFixture(kind);
    s = await serve(fx);
    jobs.push(await enqueueJob(fx.db, { kind: 'count', tenant: 'acme_corp', params: { items: 2 }, requestedBy: 'cli:alice' }, registry));
    jobs.push(await enqueueJob(fx.db, { kind: 'count', tenant: 'globex_inc', params: { items: 2 }, requestedBy: 'key:abc' }, registry));
    jobs.push(await enqueueJob(fx.db, { kind: 'other', tenant: 'acme_corp', requestedBy: 'cli:bob' }, registry));
  });
  afterAll(async () => {
    await s?.close();
    await fx?.cleanup();
  });
  const ops = () => ({ 'x-api-key': s.keys.ops });

  it('platform admins list jobs newest first, filtered, in pages that say when more match', async () => {
    const all = await s.get('/v1/admin/jobs', ops());
    expect(all.status).toBe(200);
    expect(all.json).toMatchObject({ truncated: false, next: null });
    expect(all.json.jobs.map((j: { id: string }) => j.id)).toEqual(jobs.map((j) => j.id).reverse());
    expect(all.json.jobs[2]).toMatchObject({
      id: jobs[0]!.id,
      kind: 'count',
      tenant: 'acme_corp',
      state: 'queued',
      cancel_requested: false,
      progress: { done: 0, total: null, phase: null },
      params: { items: 2 },
      result: null,
      error: null,
      requested_by: 'cli:alice',
      attempts: 0,
      created_at: expect.stringMatching(/^\d{4}-/),
    });
    expect(all.json.jobs[2]).not.toHaveProperty('checkpoint');
    const acme = await s.get('/v1/admin/jobs?tenant=acme_corp', ops());
    expect(acme.json.jobs.map((j: { id: string }) => j.id)).toEqual([jobs[2]!.id, jobs[0]!.id]);
    expect((await s.get('/v1/admin/jobs?tenant=acme_corp&kind=count', ops())).json.jobs.map((j: { id: string }) => j.id)).toEqual([jobs[0]!.id]);
    expect((await s.get('/v1/admin/jobs?state=done', ops())).json.jobs).toEqual([]);
    const p1 = await s.get('/v1/admin/jobs?limit=2', ops());
    expect(p1.json).toMatchObject({ truncated: true, next: expect.any(String) });
    expect(p1.json.jobs).toHaveLength(2);
    const p2 = await s.get(`/v1/admin/jobs?limit=2&before=${p1.json.next}`, ops());
    expect(p2.json).toMatchObject({ truncated: false, next: null });
    expect(p2.json.jobs.map((j: { id: string }) => j.id)).toEqual([jobs[0]!.id]);
    for (const bad of ['state=lost', 'limit=0', 'limit=5000', 'before=abc', 'tenant=Not%20A%20Tenant', 'colour=red']) {
      const r = await s.get(`/v1/admin/jobs?${bad}`, ops());
      expect([r.status, r.json.error.code], bad).toEqual([400, 'QUERY_INVALID']);
    }
  });

  it('platform admins show one job; an unknown or malformed id is JOB_UNKNOWN', async () => {
    const r = await s.get(`/v1/admin/jobs/${jobs[1]!.id}`, ops());
    expect(r.status).toBe(200);
    expect(r.json.job).toMatchObject({ id: jobs[1]!.id, tenant: 'globex_inc', state: 'queued', requested_by: 'key:abc' });
    for (const id of [randomUUID(), 'nope', "x'--"]) {
      const u = await s.get(`/v1/admin/jobs/${encodeURIComponent(id)}`, ops());
      expect([u.status, u.json.error.code], id).toEqual([404, 'JOB_UNKNOWN']);
    }
  });

  it('tenant keys, tenant admins included, get exactly the answer of an unknown route; no credential is AUTH_MISSING as on every admin endpoint', async () => {
    for (const key of [s.keys.acme, s.keys.acmeAdmin, s.keys.acmeWriter, s.keys.globexAdmin]) {
      const h = { 'x-api-key': key };
      const unknownRoute = await s.get('/v1/admin/no-such-thing', h);
      expect(unknownRoute.status).toBe(404);
      for (const r of [
        await s.get('/v1/admin/jobs', h),
        await s.get('/v1/admin/jobs?tenant=acme_corp', h),
        await s.get(`/v1/admin/jobs/${jobs[0]!.id}`, h),
        await s.get(`/v1/admin/jobs/${jobs[1]!.id}`, h),
        await s.get(`/v1/admin/jobs/${randomUUID()}`, h),
        await s.delete(`/v1/admin/jobs/${jobs[0]!.id}`, h),
        await s.delete(`/v1/admin/jobs/${jobs[1]!.id}`, h),
      ]) {
        expect(r.status).toBe(404);
        expect(r.json).toEqual(unknownRoute.json);
        expect(r.headers.get('ratelimit-limit')).toBeNull();
      }
    }
    // Nothing was cancelled.
    for (const j of jobs) expect((await getJob(fx.db, j.id))!.state).toBe('queued');
    expect((await s.get('/v1/admin/jobs')).json.error.code).toBe('AUTH_MISSING');
    expect((await s.get('/v1/admin/jobs', { 'x-api-key': 'tg_aaaaaaaaaaaa_nope' })).json.error.code).toBe('AUTH_INVALID');
  });

  it('platform admins cancel: a queued job at once; a finished one is JOB_FINISHED; every call is audited', async () => {
    const r = await s.delete(`/v1/admin/jobs/${jobs[2]!.id}`, ops());
    expect(r.status).toBe(200);
    expect(r.json.job).toMatchObject({ id: jobs[2]!.id, state: 'cancelled', cancel_requested: true, finished_at: expect.any(String) });
    const again = await s.delete(`/v1/admin/jobs/${jobs[2]!.id}`, ops());
    expect([again.status, again.json.error.code]).toEqual([409, 'JOB_FINISHED']);
    expect((await s.delete(`/v1/admin/jobs/${randomUUID()}`, ops())).json.error.code).toBe('JOB_UNKNOWN');
    await s.gateway.audit?.flush();
    const audited = await fx.db.query(
      `SELECT tenant, event::jsonb ->> 'endpoint' AS endpoint, event::jsonb ->> 'code' AS code, event::jsonb ->> 'principal' AS principal FROM tenantgate.audit_log
        WHERE event::jsonb ->> 'endpoint' LIKE '% /v1/admin/jobs%' ORDER BY at, seq`,
    );
    const rows = audited.rows as Array<{ tenant: string; endpoint: string; code: string | null; principal: string }>;
    expect(rows.length).toBeGreaterThan(20);
    // The cancel is on acme_corp's own chain, allowed and then refused; the tenant keys' tries are there too, as NOT_FOUND.
    expect(rows.filter((x) => x.endpoint === 'DELETE /v1/admin/jobs/:id' && x.tenant === 'acme_corp' && x.principal.startsWith('key:')).map((x) => x.code)).toEqual(
      expect.arrayContaining([null, 'JOB_FINISHED']),
    );
    expect(rows.some((x) => x.code === 'NOT_FOUND' && x.endpoint === 'DELETE /v1/admin/jobs/:id')).toBe(true);
  });

  it('the OpenAPI document has the job endpoints', async () => {
    const doc = (await s.get('/openapi.json')).json;
    expect(doc.paths['/v1/admin/jobs'].get.parameters.map((p: { name: string }) => p.name)).toEqual(['tenant', 'state', 'kind', 'before', 'limit']);
    expect(Object.keys(doc.paths['/v1/admin/jobs/{id}'])).toEqual(['get', 'delete']);
    expect(doc.components.schemas.Job.properties.state.enum).toEqual(['queued', 'running', 'done', 'failed', 'cancelled']);
    expect(doc.components.schemas.Error.properties.error.properties.code.enum).toEqual(expect.arrayContaining(['JOB_UNKNOWN', 'JOB_FINISHED']));
  });

  it("the gateway's own runner runs queued jobs, and a cancel through the API stops a running one", async () => {
    const service = jobServiceOf(s.gateway);
    await service.startRunner({ registry, pollMs: 50, heartbeatMs: 100 });
    const done = await until('the served runner to finish a job', async () => {
      const j = (await getJob(fx.db, jobs[0]!.id))!;
      return j.state === 'done' ? j : undefined;
    });
    expect(done.result).toEqual({ items: 2 });
    expect(await itemsOf(fx.db, jobs[0]!.id)).toEqual(exactlyOnce(2));
    const long = await enqueueJob(fx.db, { kind: 'count', tenant: 'globex_inc', params: { items: 500, sleepMs: 20 }, requestedBy: 'cli:alice' }, registry);
    await until('it to run', async () => ((await getJob(fx.db, long.id))!.progress.done >= 2 ? true : undefined));
    const r = await s.delete(`/v1/admin/jobs/${long.id}`, ops());
    expect(r.json.job).toMatchObject({ state: 'running', cancel_requested: true });
    const ended = await until('it to stop', async () => {
      const j = (await getJob(fx.db, long.id))!;
      return j.state === 'cancelled' ? j : undefined;
    }, 5_000);
    expect(ended.progress.done).toBeLessThan(500);
    const shown = await s.get(`/v1/admin/jobs/${long.id}`, ops());
    expect(shown.json.job).toMatchObject({ state: 'cancelled', progress: { total: 500, phase: 'counting' } });
  });
});
