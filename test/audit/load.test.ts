/**
 * Issue 5 acceptance: requests from mixed tenants under load, then a graceful stop: exactly one
 * audit record per request, and every tenant's chain verifies. The buffer is kept small so the
 * run goes through backpressure (requests waiting for room) as well.
 */
import { describe, expect, it } from 'vitest';
import { verifyChains } from '../../src/audit/store.ts';
import { BACKENDS, createFixture, fixture } from '../support/backends.ts';
import { serve } from '../http/support.ts';

const SMALL_BUFFER = 'audit: { buffer_limit: 200, batch_size: 50, flush_interval_ms: 50 }\ndatasets:';

describe.each(BACKENDS)('audit under load on %s', (kind) => {
  // PGlite is one session in this process: fewer requests keep the suite quick; the server takes the full 10,000.
  const total = kind === 'postgres' ? 10_000 : 2_000;
  it(`${total.toLocaleString('en')} requests from mixed tenants, then a graceful stop: exactly ${total.toLocaleString('en')} records, every chain verifies`, { timeout: 240_000 }, async () => {
    const fx = await createFixture(kind, { sql: fixture('seed003.sql'), yaml: fixture('seed003.yaml').replace('datasets:', SMALL_BUFFER) });
    try {
      const s = await serve(fx);
      const keys = [s.keys.acme, s.keys.globex, s.keys.acmeWriter, s.keys.acmeAdmin, s.keys.globexAdmin];
      let next = 0;
      const statuses = new Map<number, number>();
      const worker = async () => {
        while (next < total) {
          const i = next++;
          const key = keys[i % keys.length]!;
          const headers = { 'x-api-key': key, 'x-request-id': `load-${i}` };
          // A mix: semantic, SQL, denied (another tenant named), invalid.
          const r =
            i % 10 === 7
              ? await s.post('/v1/query', { dataset: 'orders', dimensions: ['region'] }, { ...headers, 'x-tenant-id': 'globex_inc' })
              : i % 10 === 8
                ? await s.post('/v1/queries', { sql: 'SELECT region FROM orders WHERE amount > $1', params: [i] }, headers)
                : i % 10 === 9
                  ? await s.post('/v1/query', { dataset: 'nope' }, headers)
                  : await s.post('/v1/query', { dataset: 'orders', dimensions: ['region'], metrics: ['revenue'] }, headers);
          statuses.set(r.status, (statuses.get(r.status) ?? 0) + 1);
        }
      };
      await Promise.all(Array.from({ length: 16 }, worker));
      const waited = s.gateway.audit!.stats;
      await s.close(); // graceful: the buffer is flushed before close returns
      expect([...statuses.keys()].every((st) => st < 500), JSON.stringify([...statuses])).toBe(true);
      const n = (await fx.db.query<{ n: number; d: number }>(`SELECT count(*)::int AS n, count(DISTINCT event::jsonb->>'request_id')::int AS d FROM tenantgate.audit_log WHERE event::jsonb->>'request_id' LIKE 'load-%'`)).rows[0]!;
      expect(n).toEqual({ n: total, d: total });
      expect(waited.dropped).toBe(0);
      const report = await verifyChains(fx.db);
      expect(report.problems).toEqual([]);
      expect(report.chains).toBeGreaterThanOrEqual(2);
    } finally {
      await fx.cleanup();
    }
  });
});
