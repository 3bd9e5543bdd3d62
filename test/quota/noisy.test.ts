/**
 * Noisy neighbour (issue 6 acceptance, server): tenant A floods at ten times its rate limit with
 * slow queries while tenant B sends steady traffic. B is never refused; A is held to its limit,
 * one query at a time, and the statement timeout cuts its slow queries. (B's latency with and
 * without A is measured by bench/noisy.ts, not asserted here.)
 */
import { describe, expect, it } from 'vitest';
import { createTenantGate } from '../../src/gate.ts';
import { Gateway } from '../../src/gateway/gateway.ts';
import { buildServer } from '../../src/http/server.ts';
import { createApiKey } from '../../src/identify/api-keys.ts';
import { createFixture, fixture, gatewayUrl, SERVER_URL } from '../support/backends.ts';

const YAML = fixture('seed003.yaml')
  .replace(/# Quotas out of the way[\s\S]*?\ndatasets:/, 'defaults:\n  quotas: { requests_per_minute: 100000, burst: 10000, concurrent_queries: 8 }\ndatasets:')
  .replace('  - id: acme_corp\n', '  - id: acme_corp\n    quotas: { requests_per_minute: 60, burst: 2, concurrent_queries: 1, queue_timeout_ms: 0, statement_timeout_ms: 300 }\n');

describe.skipIf(!SERVER_URL)('noisy neighbour', () => {
  it('A floods at 10x its limit with slow queries: B is never refused, A is limited and cut by its statement timeout', { timeout: 60_000 }, async () => {
    const fx = await createFixture('postgres', { sql: fixture('seed003.sql'), yaml: YAML });
    // Enough of A's rows that a three-way cross join runs for seconds unless cut.
    await fx.db.query(`INSERT INTO public.orders (tenant_id, region, amount) SELECT 'acme_corp', 'Bulk', 1 FROM generate_series(1, 300)`);
    const gate = await createTenantGate({ config: fx.config, gatewayUrl: gatewayUrl(fx), secret: fx.secret, env: {}, poolSize: 8 });
    const gateway = await Gateway.create({ gate, secret: fx.secret, env: {} });
    const app = buildServer(gateway);
    await app.listen({ host: '127.0.0.1', port: 0 });
    const url = `http://127.0.0.1:${(app.server.address() as { port: number }).port}`;
    const a = (await createApiKey(fx.db, fx.config, fx.names, fx.secret, { tenant: 'acme_corp', role: 'analyst' })).key;
    const b = (await createApiKey(fx.db, fx.config, fx.names, fx.secret, { tenant: 'globex_inc', role: 'analyst' })).key;
    const post = async (key: string, path: string, body: unknown) => {
      const r = await fetch(url + path, { method: 'POST', headers: { 'x-api-key': key, 'content-type': 'application/json' }, body: JSON.stringify(body) });
      const j = (await r.json()) as { error?: { code: string } };
      return { status: r.status, code: j.error?.code };
    };
    try {
      const seconds = 4;
      const started = Date.now();
      const aCodes: string[] = [];
      const bStatuses: number[] = [];
      const flood = async () => {
        // 10 requests a second against a limit of 1 a second (burst 2).
        while (Date.now() - started < seconds * 1000) {
          void post(a, '/v1/queries', { sql: 'SELECT count(*) FROM orders x, orders y, orders z' }).then((r) => aCodes.push(r.code ?? 'ok'));
          await new Promise((r) => setTimeout(r, 100));
        }
      };
      const steady = async () => {
        while (Date.now() - started < seconds * 1000) {
          bStatuses.push((await post(b, '/v1/query', { dataset: 'orders', dimensions: ['region'], metrics: ['revenue'] })).status);
          await new Promise((r) => setTimeout(r, 20));
        }
      };
      await Promise.all([flood(), steady(), steady()]);
      await new Promise((r) => setTimeout(r, 1000)); // A's last admitted queries end (cut at 300 ms)
      expect(new Set(bStatuses)).toEqual(new Set([200]));
      expect(bStatuses.length).toBeGreaterThan(50);
      const count = (c: string) => aCodes.filter((x) => x === c).length;
      expect(aCodes.length).toBeGreaterThanOrEqual(30);
      expect(count('RATE_LIMITED')).toBeGreaterThan(aCodes.length / 2);
      expect(count('QUERY_TIMEOUT')).toBeGreaterThanOrEqual(2);
      expect(count('ok')).toBe(0); // none of A's slow queries ran to the end
      expect(aCodes.every((c) => ['RATE_LIMITED', 'QUERY_TIMEOUT', 'CONCURRENCY_LIMITED'].includes(c))).toBe(true);
    } finally {
      await app.close();
      await gate.close();
      await fx.cleanup();
    }
  });
});
