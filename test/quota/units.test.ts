/**
 * The quota building blocks without HTTP: the token bucket (GCRA), the concurrency slots, and the
 * admit stage's arithmetic (key before tenant, the pool share). These take no database: the
 * clock is injected; HTTP and Redis are covered in quota.test.ts and redis.test.ts.
 */
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/load.ts';
import type { Principal } from '../../src/identify/principal.ts';
import { Admission } from '../../src/quota/admit.ts';
import { gcra, MemoryBuckets, type BucketState } from '../../src/quota/buckets.ts';
import { ConcurrencySlots } from '../../src/quota/concurrency.ts';
import { QuotaBook } from '../../src/quota/quota-book.ts';

describe('GCRA token bucket', () => {
  it('lets a full burst through at once, then one request per 60/rate seconds', async () => {
    let now = 1_000_000;
    const b = new MemoryBuckets(() => now);
    const spec = { ratePerMin: 60, burst: 3 };
    const allowed = async (n: number) => {
      let ok = 0;
      for (let i = 0; i < n; i++) if ((await b.take('k', spec)).allowed) ok++;
      return ok;
    };
    expect(await allowed(10)).toBe(3);
    const refused = await b.take('k', spec);
    expect(refused).toMatchObject({ allowed: false, remaining: 0, retryAfterS: 1 });
    now += 1000;
    expect(await allowed(10)).toBe(1);
    now += 10_000;
    expect(await allowed(10)).toBe(3); // refilled, but never above the burst
    // Remaining counts down.
    now += 10_000;
    expect((await b.take('k', spec)).remaining).toBe(2);
    expect((await b.take('other', spec)).remaining).toBe(2);
  });

  it('over a long run holds the rate: burst + rate × time', () => {
    let state: BucketState | undefined;
    let ok = 0;
    for (let t = 0; t < 60_000; t += 10) {
      const s = gcra(t, state, { ratePerMin: 600, burst: 20 });
      if (s.state !== null) state = s.state;
      if (s.decision.allowed) ok++;
    }
    expect(ok).toBeGreaterThanOrEqual(600 + 20 - 1);
    expect(ok).toBeLessThanOrEqual(600 + 20 + 1);
  });

  it('a quota changed at runtime counts at once: the drained share is kept, rescaled to the new burst', async () => {
    let now = 0;
    const b = new MemoryBuckets(() => now);
    for (let i = 0; i < 4; i++) await b.take('k', { ratePerMin: 60, burst: 4 });
    expect((await b.take('k', { ratePerMin: 60, burst: 4 })).allowed).toBe(false);
    now += 2000; // half refilled under the old spec
    let ok = 0;
    for (let i = 0; i < 200; i++) if ((await b.take('k', { ratePerMin: 6000, burst: 100 })).allowed) ok++;
    expect(ok).toBe(50); // half of the new burst
    now += 10;
    expect((await b.take('k', { ratePerMin: 6000, burst: 100 })).allowed).toBe(true); // and refills at the new rate
  });
});

describe('ConcurrencySlots', () => {
  it('grants up to the limit, queues the rest in order, and refuses after the wait', async () => {
    const s = new ConcurrencySlots();
    const a = await s.acquire('t', 2, 0);
    const b = await s.acquire('t', 2, 0);
    expect(a && b).toBeTruthy();
    expect(await s.acquire('t', 2, 0)).toBeNull();
    const order: string[] = [];
    const c = Promise.resolve(s.acquire('t', 2, 1_000)).then((r) => (order.push('c'), r));
    const d = Promise.resolve(s.acquire('t', 2, 1_000)).then((r) => (order.push('d'), r));
    expect(s.waiting('t')).toBe(2);
    a!();
    a!(); // twice is once
    const rc = await c;
    expect(order).toEqual(['c']);
    b!();
    await d;
    expect(order).toEqual(['c', 'd']);
    expect(s.inUse('t')).toBe(2);
    expect(await s.acquire('t', 2, 20)).toBeNull();
    expect(s.waiting('t')).toBe(0);
    rc!();
    expect(s.inUse('t')).toBe(1);
    // Other keys are unaffected.
    expect(await s.acquire('u', 1, 0)).toBeTruthy();
  });
});

describe('Admission', () => {
  const principal = (id: string): Principal => ({ kind: 'api_key', id, role: 'analyst', access: 'read', tenants: ['acme_corp'] });
  async function admission(yaml: string) {
    const config = await parseConfig(
      `version: 1\ndatabase: { url: 'pglite://memory' }\nserver: { pool_size: 4, tenant_pool_share: 0.5 }\n${yaml}\ntenants:\n  - id: acme_corp\n  - id: globex_inc\n`,
      '/virtual/tenantgate.yaml',
      { env: {} },
    );
    const book = new QuotaBook({ query: async () => ({ rows: [] }) });
    return { a: new Admission(config, new MemoryBuckets(), book, undefined, pino({ level: 'silent' })), config };
  }

  it("a key's own limit refuses before its tenant's is spent; other keys and other tenants go on", async () => {
    const { a, config } = await admission('defaults: { quotas: { requests_per_minute: 60, burst: 5, key_burst: 2 } }');
    const acme = config.tenants.get('acme_corp')!;
    const globex = config.tenants.get('globex_inc')!;
    await a.admit(principal('k1'), acme, { slot: false });
    await a.admit(principal('k1'), acme, { slot: false });
    await expect(a.admit(principal('k1'), acme, { slot: false })).rejects.toMatchObject({ code: 'RATE_LIMITED', headers: expect.objectContaining({ 'retry-after': expect.any(String) }) });
    // Rotating keys does not raise the tenant's limit: 5 in all.
    let ok = 2;
    for (const k of ['k2', 'k3', 'k4', 'k5', 'k6']) ok += await Promise.resolve(a.admit(principal(k), acme, { slot: false })).then(() => 1, () => 0);
    expect(ok).toBe(5);
    // The other tenant is untouched.
    await expect(Promise.resolve(a.admit(principal('g1'), globex, { slot: false }))).resolves.toMatchObject({ headers: { 'ratelimit-limit': '2' } });
  });

  it('never more slots than the tenant share of the pool, whatever concurrent_queries says', async () => {
    const { a, config } = await admission('defaults: { quotas: { concurrent_queries: 10, queue_timeout_ms: 0 } }');
    const acme = config.tenants.get('acme_corp')!;
    const p1 = await a.admit(principal('k1'), acme, { slot: true });
    await a.admit(principal('k2'), acme, { slot: true });
    await expect(a.admit(principal('k3'), acme, { slot: true })).rejects.toMatchObject({ code: 'CONCURRENCY_LIMITED' });
    p1.release();
    await expect(Promise.resolve(a.admit(principal('k3'), acme, { slot: true }))).resolves.toBeTruthy();
    // The other tenant has slots of its own.
    await expect(Promise.resolve(a.admit(principal('g1'), config.tenants.get('globex_inc')!, { slot: true }))).resolves.toBeTruthy();
  });

  it('warns once a minute per tenant and quota at warn_at', async () => {
    const { config } = await admission('defaults: { quotas: { requests_per_minute: 60, burst: 4, warn_at: 0.5 } }');
    const warnings: string[] = [];
    const a = new Admission(config, new MemoryBuckets(), new QuotaBook({ query: async () => ({ rows: [] }) }), undefined, pino({ level: 'silent' }), undefined, (w) => warnings.push(`${w.tenant} ${w.quota} ${w.ratio}`));
    const acme = config.tenants.get('acme_corp')!;
    for (let i = 0; i < 4; i++) await a.admit(principal('k'), acme, { slot: false });
    expect(warnings).toEqual(['acme_corp rate 0.5']);
  });
});
