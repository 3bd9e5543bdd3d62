/**
 * Issue 13, defect 1: a platform key naming `all` on a config without a `defaults:` block was
 * answered 429 "more than NaN queries in flight" (its quotas came from the partial defaults).
 * Platform callers are held to the fully defaulted table; no quota the admission reads may be
 * anything but a finite number, for any config the schema accepts.
 */
import fc from 'fast-check';
import pino from 'pino';
import { stringify } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/load.ts';
import { quotaSchema } from '../../src/config/schema.ts';
import type { Quotas } from '../../src/config/types.ts';
import type { Principal } from '../../src/identify/principal.ts';
import { Admission } from '../../src/quota/admit.ts';
import { MemoryBuckets } from '../../src/quota/buckets.ts';
import { QuotaBook } from '../../src/quota/quota-book.ts';
import { serve, type Served } from '../http/support.ts';
import { BACKENDS, createFixture, fixture, type Fixture } from '../support/backends.ts';

const QUOTA_KEYS = Object.keys(quotaSchema.shape) as Array<keyof Quotas>;
const OPTIONAL = new Set(['key_requests_per_minute', 'key_burst']);
const platform: Principal = { kind: 'api_key', id: 'ops1', role: 'ops', access: 'platform', tenants: [] };
const analyst: Principal = { kind: 'api_key', id: 'k1', role: 'analyst', access: 'read', tenants: ['acme_corp'] };

/** A partial quota table the schema accepts (any subset of keys, values in range). */
const partialQuotas = fc.record(
  {
    requests_per_minute: fc.integer({ min: 1, max: 1e7 }),
    burst: fc.integer({ min: 1, max: 1e6 }),
    key_requests_per_minute: fc.integer({ min: 1, max: 1e7 }),
    key_burst: fc.integer({ min: 1, max: 1e6 }),
    concurrent_queries: fc.integer({ min: 1, max: 1000 }),
    queue_timeout_ms: fc.integer({ min: 0, max: 60_000 }),
    max_rows: fc.integer({ min: 1, max: 1e7 }),
    statement_timeout_ms: fc.integer({ min: 1, max: 1e6 }),
    storage_bytes: fc.integer({ min: 1, max: 2 ** 40 }),
    warn_at: fc.double({ min: 0.01, max: 1, noNaN: true }),
  },
  { requiredKeys: [] },
);

const configText = fc
  .record(
    {
      defaults: fc.record({ quotas: partialQuotas, tier_quotas: fc.record({ pooled: partialQuotas, schema: partialQuotas }, { requiredKeys: [] }) }, { requiredKeys: [] }),
      server: fc.record({ pool_size: fc.integer({ min: 1, max: 1000 }), tenant_pool_share: fc.double({ min: 0.01, max: 1, noNaN: true }) }, { requiredKeys: [] }),
      acme: fc.record({ tier: fc.constantFrom('pooled', 'schema', 'database'), quotas: partialQuotas }, { requiredKeys: [] }),
    },
    { requiredKeys: [] },
  )
  .map(({ defaults, server, acme }) =>
    stringify({
      version: 1,
      database: { url: 'pglite://memory' },
      ...(server ? { server } : {}),
      ...(defaults ? { defaults } : {}),
      datasets: [{ name: 'orders', table: 'public.orders', dimensions: ['region'], metrics: { revenue: 'sum(amount)' } }],
      tenants: [{ id: 'acme_corp', ...acme }, { id: 'globex_inc' }],
    }),
  );

function expectFinite(q: Quotas, who: string): void {
  for (const k of QUOTA_KEYS) {
    if (OPTIONAL.has(k) && q[k] === undefined) continue;
    expect(Number.isFinite(q[k]), `${who}: ${k} = ${String(q[k])}`).toBe(true);
  }
}

describe('every quota the admission reads is a finite number', () => {
  it('for any config the schema accepts, platform and tenant callers alike (property)', async () => {
    await fc.assert(
      fc.asyncProperty(configText, async (text) => {
        const config = await parseConfig(text, '/virtual/tenantgate.yaml', { env: {} });
        const admission = new Admission(config, new MemoryBuckets(), new QuotaBook({ query: async () => ({ rows: [] }) }), undefined, pino({ level: 'silent' }));
        expectFinite(admission.quotasFor(null), 'platform');
        for (const t of config.tenants.values()) expectFinite(admission.quotasFor(t), t.id);
        // What admission grants and says: numbers, never NaN or undefined, in every header.
        for (const [who, tenant] of [[platform, null], [analyst, config.tenants.get('acme_corp')!]] as const) {
          const permit = await admission.admit(who, tenant, { slot: true });
          for (const [h, v] of Object.entries(permit.headers)) expect(Number.isFinite(Number(v)), `${h}: ${v}`).toBe(true);
          permit.release();
        }
      }),
      { numRuns: 200 },
    );
  });

  it('a config without a defaults block gives platform callers the default table', async () => {
    const config = await parseConfig('version: 1\ndatabase: { url: pglite://memory }\ntenants: [{ id: acme_corp }]\n', '/virtual/tenantgate.yaml', { env: {} });
    expect(config.defaultQuotas).toMatchObject({ requests_per_minute: 600, burst: 60, concurrent_queries: 4, max_rows: 10000, statement_timeout_ms: 5000 });
  });
});

// The defect as a user met it: the demo's platform curl line, over HTTP, on a config with no `defaults:`.
const NO_DEFAULTS = fixture('seed003.yaml').replace(/^defaults:\n(?: .*\n)+/m, '');

describe.each(BACKENDS)('a platform key naming all, with no defaults block (%s)', (kind) => {
  let fx: Fixture;
  let s: Served;
  beforeAll(async () => {
    expect(NO_DEFAULTS).not.toMatch(/^defaults:/m);
    fx = await createFixture(kind, { sql: fixture('seed003.sql'), yaml: NO_DEFAULTS });
    s = await serve(fx);
  });
  afterAll(async () => {
    await s?.close();
    await fx?.cleanup();
  });

  it('answers the query across tenants (was 429 CONCURRENCY_LIMITED "more than NaN")', async () => {
    const r = await s.post('/v1/query', { dataset: 'orders', dimensions: ['region'], metrics: ['revenue'] }, { 'x-api-key': s.keys.ops, 'x-tenant-id': 'all' });
    expect(r.status, JSON.stringify(r.json)).toBe(200);
    expect(r.json.row_count).toBeGreaterThan(0);
    for (const h of ['ratelimit-limit', 'ratelimit-remaining']) expect(Number.isFinite(Number(r.headers.get(h)))).toBe(true);
    const sql = await s.post('/v1/queries', { sql: 'SELECT count(*) FROM orders' }, { 'x-api-key': s.keys.ops, 'x-tenant-id': 'all' });
    expect(sql.status, JSON.stringify(sql.json)).toBe(200);
  });
});
