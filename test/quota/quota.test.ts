/**
 * Quotas over HTTP (issue 6): 429 RATE_LIMITED with Retry-After and RateLimit-* headers, per
 * tenant and per key; CONCURRENCY_LIMITED; the storage quota refusing writes but not reads;
 * runtime changes by platform admins reaching every gateway process within seconds; warnings.
 * And that one tenant's quota never touches another's.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApiKey } from '../../src/identify/api-keys.ts';
import { BACKENDS, createFixture, fixture, type Fixture } from '../support/backends.ts';
import { serve, type Served } from '../http/support.ts';

const Q = { dataset: 'orders', dimensions: ['region'], metrics: ['revenue'] };
// Tenants (pooled tier) are held tight; platform callers use the roomy defaults.
const QUOTAS = `defaults:
  quotas: { requests_per_minute: 100000, burst: 10000 }
  tier_quotas:
    pooled: { requests_per_minute: 60, burst: 4, concurrent_queries: 8, queue_timeout_ms: 5000, warn_at: 0.75 }
quota_refresh: { overrides_ms: 200, storage_ms: 3600000 }
quota_webhook: { url_env: TG_QUOTA_HOOK, retries: 1 }
datasets:`;
const yaml = () => fixture('seed003.yaml').replace(/# Quotas out of the way[\s\S]*?\ndatasets:/, QUOTAS);

describe.each(BACKENDS)('quotas over HTTP on %s', (kind) => {
  let fx: Fixture;
  let s: Served;
  let hook: { server: Server; url: string; events: Array<{ tenant: string; quota: string }> };
  beforeAll(async () => {
    hook = { server: undefined as unknown as Server, url: '', events: [] };
    hook.server = createServer((req, res) => {
      let b = '';
      req.on('data', (c) => (b += c));
      req.on('end', () => {
        hook.events.push(...(JSON.parse(b) as { events: Array<{ tenant: string; quota: string }> }).events);
        res.writeHead(204).end();
      });
    });
    await new Promise<void>((r) => hook.server.listen(0, '127.0.0.1', r));
    hook.url = `http://127.0.0.1:${(hook.server.address() as AddressInfo).port}/`;
    fx = await createFixture(kind, { sql: fixture('seed003.sql'), yaml: yaml() });
    s = await serve(fx, { env: { TG_QUOTA_HOOK: hook.url } });
  });
  afterAll(async () => {
    await s?.close();
    await fx?.cleanup();
    await new Promise((r) => hook.server.close(r));
  });
  const key = async (tenant: string, role = 'analyst') => (await createApiKey(fx.db, fx.config, fx.names, fx.secret, { tenant, role })).key;

  it('a tenant past its burst gets 429 RATE_LIMITED with Retry-After and RateLimit-*; the other tenant does not', async () => {
    const statuses: number[] = [];
    let last: Awaited<ReturnType<Served['post']>> | undefined;
    for (let i = 0; i < 6; i++) {
      last = await s.post('/v1/query', Q, { 'x-api-key': s.keys.acme });
      statuses.push(last.status);
      if (i === 0) {
        expect(last.headers.get('ratelimit-limit')).toBe('4');
        expect(last.headers.get('ratelimit-remaining')).toBe('3');
        expect(Number(last.headers.get('ratelimit-reset'))).toBeGreaterThanOrEqual(0);
      }
    }
    expect(statuses).toEqual([200, 200, 200, 200, 429, 429]);
    expect(last!.json.error.code).toBe('RATE_LIMITED');
    expect(Number(last!.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    expect(last!.headers.get('ratelimit-remaining')).toBe('0');
    // globex_inc is not slowed or refused by acme_corp's flood.
    expect((await s.post('/v1/query', Q, { 'x-api-key': s.keys.globex })).status).toBe(200);
    // The warning went out at 75%, once, for acme_corp only.
    await s.gateway.admission.flush();
    expect(hook.events.filter((e) => e.quota === 'rate').map((e) => e.tenant)).toEqual(['acme_corp']);
  });

  it('rotating among many keys of one tenant does not raise its limit', async () => {
    const keys = await Promise.all(Array.from({ length: 8 }, () => key('globex_inc')));
    await new Promise((r) => setTimeout(r, 1100)); // globex spent a token above; let one come back
    let ok = 0;
    for (let i = 0; i < 24; i++) if ((await s.post('/v1/query', Q, { 'x-api-key': keys[i % keys.length]! })).status === 200) ok++;
    // The burst of 4 (minus the one spent above, plus at most one refilled) across all 8 keys.
    expect(ok).toBeGreaterThanOrEqual(3);
    expect(ok).toBeLessThanOrEqual(5);
  });

  it('platform admins change a tenant\'s quotas at runtime; a second gateway follows within the refresh', async () => {
    const other = await serve(fx, { env: { TG_QUOTA_HOOK: hook.url } });
    try {
      const ops = { 'x-api-key': s.keys.ops };
      // Only platform admins; validated; the tenant must exist.
      expect((await s.patch('/v1/admin/tenants/acme_corp/quotas', { burst: 100 }, { 'x-api-key': s.keys.acmeAdmin })).json.error.code).toBe('POLICY_DENIED');
      expect((await s.patch('/v1/admin/tenants/acme_corp/quotas', { bursts: 100 }, ops)).json.error.code).toBe('QUERY_INVALID');
      expect((await s.patch('/v1/admin/tenants/acme_corp/quotas', { burst: -1 }, ops)).json.error.code).toBe('QUERY_INVALID');
      expect((await s.patch('/v1/admin/tenants/nobody/quotas', { burst: 1 }, ops)).json.error.code).toBe('TENANT_UNKNOWN');
      const changed = await s.patch('/v1/admin/tenants/acme_corp/quotas', { requests_per_minute: 6000, burst: 50 }, ops);
      expect(changed.status).toBe(200);
      expect(changed.json).toMatchObject({ tenant: 'acme_corp', quotas: { requests_per_minute: 6000, burst: 50 }, overrides: { requests_per_minute: 6000, burst: 50 } });
      // The other process sees it within its refresh (200 ms here).
      await new Promise((r) => setTimeout(r, 600));
      const r = await other.post('/v1/query', Q, { 'x-api-key': s.keys.acme });
      expect(r.status).toBe(200);
      expect(r.headers.get('ratelimit-limit')).toBe('50');
      expect((await other.get('/v1/tenant', { 'x-api-key': s.keys.acme })).json.quotas).toMatchObject({ burst: 50, requests_per_minute: 6000 });
      // null drops the change: back to the config's value.
      const back = await s.patch('/v1/admin/tenants/acme_corp/quotas', { burst: null, requests_per_minute: null }, ops);
      expect(back.json).toMatchObject({ quotas: { burst: 4, requests_per_minute: 60 }, overrides: {} });
      expect((await s.get('/v1/admin/tenants/globex_inc/quotas', ops)).json.overrides).toEqual({});
    } finally {
      await other.close();
    }
  });

  it('writes over the storage quota are refused (QUOTA_EXCEEDED), reads go on, and other tenants write as before', async () => {
    const ops = { 'x-api-key': s.keys.ops };
    await s.patch('/v1/admin/tenants/acme_corp/quotas', { storage_bytes: 1, requests_per_minute: 60000, burst: 1000 }, ops);
    await s.patch('/v1/admin/tenants/globex_inc/quotas', { requests_per_minute: 60000, burst: 1000 }, ops);
    await s.gateway.admission.storage!.refresh();
    // A raised limit refills at its own rate from an empty bucket: one interval (1 ms here) later.
    await new Promise((r) => setTimeout(r, 20));
    const acmeWriter = s.keys.acmeWriter;
    const globexWriter = await key('globex_inc', 'writer');
    try {
      const w = await s.post('/v1/queries', { sql: "INSERT INTO orders (region, amount) VALUES ('Quota', 1)" }, { 'x-api-key': acmeWriter });
      expect(w.status, JSON.stringify(w.json)).toBe(403);
      expect(w.json.error.code).toBe('QUOTA_EXCEEDED');
      expect((await s.post('/v1/query', Q, { 'x-api-key': s.keys.acme })).status).toBe(200);
      const g = await s.post('/v1/queries', { sql: "INSERT INTO orders (region, amount) VALUES ('Quota', 1)" }, { 'x-api-key': globexWriter });
      expect(g.status).toBe(200);
      // Usage is reported to the tenant itself, and only its own.
      const t = await s.get('/v1/tenant', { 'x-api-key': s.keys.acme });
      expect(t.json.usage.storage_bytes).toBeGreaterThan(0);
      expect(t.json.quotas.storage_bytes).toBe(1);
      expect(hook.events.some((e) => e.tenant === 'acme_corp' && e.quota === 'storage')).toBe(true);
    } finally {
      await s.patch('/v1/admin/tenants/acme_corp/quotas', { storage_bytes: null }, ops);
      await fx.db.query(`DELETE FROM public.orders WHERE region = 'Quota'`);
    }
  });

  // PGlite runs each query on the gateway's own thread (WASM, synchronous): requests never overlap there.
  it.skipIf(kind === 'pglite')('concurrent queries past the limit wait, then are refused with CONCURRENCY_LIMITED (server)', async () => {
    const ops = { 'x-api-key': s.keys.ops };
    await s.patch('/v1/admin/tenants/acme_corp/quotas', { concurrent_queries: 1, queue_timeout_ms: 0, requests_per_minute: 60000, burst: 1000 }, ops);
    await new Promise((r) => setTimeout(r, 1100)); // the bucket refills at the raised rate
    // Enough rows that a three-way cross join takes a while: the eight requests overlap.
    await fx.db.query(`INSERT INTO public.orders (tenant_id, region, amount) SELECT 'acme_corp', 'Slow', 1 FROM generate_series(1, 100)`);
    try {
      const [results, globex] = await Promise.all([
        Promise.all(Array.from({ length: 8 }, () => s.post('/v1/queries', { sql: 'SELECT count(*) FROM orders a, orders b, orders c' }, { 'x-api-key': s.keys.acme }))),
        // Meanwhile another tenant's queries are admitted as usual.
        new Promise((r) => setTimeout(r, 50)).then(() => Promise.all(Array.from({ length: 3 }, () => s.post('/v1/query', Q, { 'x-api-key': s.keys.globexAdmin })))),
      ]);
      expect(globex.map((r) => r.status)).toEqual([200, 200, 200]);
      const codes = results.map((r) => (r.status === 200 ? 'ok' : r.json.error.code));
      expect(codes).toContain('ok');
      expect(codes).toContain('CONCURRENCY_LIMITED');
      expect(codes.every((c) => c === 'ok' || c === 'CONCURRENCY_LIMITED')).toBe(true);
      expect(results.find((r) => r.status === 429)!.headers.get('retry-after')).toBe('1');
      // With a wait long enough, every one gets its turn.
      await s.patch('/v1/admin/tenants/acme_corp/quotas', { queue_timeout_ms: 10000 }, ops);
      const waited = await Promise.all(Array.from({ length: 6 }, () => s.post('/v1/query', Q, { 'x-api-key': s.keys.acme })));
      expect(waited.map((r) => r.status)).toEqual([200, 200, 200, 200, 200, 200]);
    } finally {
      await s.patch('/v1/admin/tenants/acme_corp/quotas', { concurrent_queries: null, queue_timeout_ms: null }, ops);
      await fx.db.query(`DELETE FROM public.orders WHERE region = 'Slow'`);
    }
  });
});
