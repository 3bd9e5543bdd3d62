/**
 * Observability (issue 5): /metrics for platform admins, per-tenant series bounded to the top N
 * tenants plus `other` (10,000 active tenants stay under the series budget), security events to
 * the log, the metrics and a webhook with retries, and /readyz failing when the database is gone.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTenantGate } from '../../src/gate.ts';
import { Gateway } from '../../src/gateway/gateway.ts';
import { buildServer } from '../../src/http/server.ts';
import { TenantLabels } from '../../src/observe/tenant-labels.ts';
import { BACKENDS, createFixture, fixture, gatewayUrl, SERVER_URL, type Fixture } from '../support/backends.ts';
import { serve, type Served } from '../http/support.ts';

const Q = { dataset: 'orders', dimensions: ['region'], metrics: ['revenue'] };
const series = (text: string) => text.split('\n').filter((l) => l && !l.startsWith('#'));

describe('TenantLabels', () => {
  it('gives the top N tenants by traffic a label of their own and everyone else `other`; evicted tenants are reported', () => {
    const evicted: string[][] = [];
    const labels = new TenantLabels(2, 60_000, (t) => evicted.push(t));
    expect(labels.label('a')).toBe('a');
    expect(labels.label('b')).toBe('b');
    expect(labels.label('c')).toBe('other');
    expect(labels.label(null)).toBe('none');
    for (let i = 0; i < 50; i++) labels.label('c');
    for (let i = 0; i < 30; i++) labels.label('d');
    labels.rebalance();
    expect(evicted).toEqual([['a', 'b']]);
    expect(labels.label('c')).toBe('c');
    expect(labels.label('d')).toBe('d');
    expect(labels.label('a')).toBe('other');
  });

  it('counts heavy hitters in bounded memory among 100,000 tenants', () => {
    const labels = new TenantLabels(3);
    for (let i = 0; i < 100_000; i++) {
      labels.label(`t${i}`);
      if (i % 10 === 0) labels.label('busy-1');
      if (i % 20 === 0) labels.label('busy-2');
    }
    labels.rebalance();
    expect(labels.labelled).toEqual(expect.arrayContaining(['busy-1', 'busy-2']));
  });
});

describe.each(BACKENDS)('metrics and security events on %s', (kind) => {
  let fx: Fixture;
  let s: Served;
  let hook: { url: string; bodies: Array<{ events: Array<{ code: string; tenant: string }> }>; failFirst: number; server: Server };
  beforeAll(async () => {
    hook = { url: '', bodies: [], failFirst: 2, server: undefined as unknown as Server };
    hook.server = createServer((req, res) => {
      let body = '';
      req.on('data', (c) => (body += c));
      req.on('end', () => {
        if (hook.failFirst-- > 0) return res.writeHead(500).end();
        hook.bodies.push(JSON.parse(body));
        res.writeHead(204).end();
      });
    });
    await new Promise<void>((r) => hook.server.listen(0, '127.0.0.1', r));
    hook.url = `http://127.0.0.1:${(hook.server.address() as AddressInfo).port}/hook`;
    fx = await createFixture(kind, { sql: fixture('seed003.sql'), yaml: fixture('seed003.yaml').replace('datasets:', 'audit: { security_webhook: { url_env: TG_HOOK, retries: 4 } }\ndatasets:') });
    s = await serve(fx, { env: { TG_HOOK: hook.url } });
  });
  afterAll(async () => {
    await s?.close();
    await fx?.cleanup();
    await new Promise((r) => hook.server.close(r));
  });

  it('/metrics is for platform credentials and shows requests, latency, rows, denials, pool and audit-buffer series', async () => {
    await s.post('/v1/query', Q, { 'x-api-key': s.keys.acme });
    await s.post('/v1/query', Q, { 'x-api-key': s.keys.globex, 'x-tenant-id': 'acme_corp' });
    expect((await s.get('/metrics')).status).toBe(401);
    expect((await s.get('/metrics', { 'x-api-key': s.keys.acmeAdmin })).status).toBe(403);
    const r = await fetch(`${s.url}/metrics`, { headers: { 'x-api-key': s.keys.ops } });
    expect(r.status).toBe(200);
    expect(r.headers.get('content-type')).toContain('text/plain');
    const text = await r.text();
    expect(text).toMatch(/tenantgate_requests_total\{tenant="acme_corp",endpoint="POST \/v1\/query",outcome="ok"\} [1-9]/);
    expect(text).toMatch(/tenantgate_denials_total\{tenant="globex_inc",code="TENANT_MISMATCH"\} [1-9]/);
    expect(text).toMatch(/tenantgate_tenant_request_duration_seconds_bucket\{le="0.005",tenant="acme_corp"\}/);
    expect(text).toMatch(/tenantgate_rows_total\{tenant="acme_corp"\} [1-9]/);
    expect(text).toMatch(/tenantgate_db_pool_connections\{state="total"\} \d/);
    expect(text).toMatch(/tenantgate_audit_buffered_events \d/);
    expect(text).toMatch(/tenantgate_errors_total\{code="TENANT_MISMATCH"\} [1-9]/);
    expect(series(text).length).toBeLessThanOrEqual(s.gateway.metrics.seriesBound);
  });

  it('tenant mismatches, forbidden SQL and denied writes are security events: log, metric and webhook (retried)', async () => {
    await s.post('/v1/query', Q, { 'x-api-key': s.keys.acme, 'x-tenant-id': 'globex_inc' });
    await s.post('/v1/queries', { sql: 'SELECT * FROM pg_authid' }, { 'x-api-key': s.keys.acme });
    await s.post('/v1/queries', { sql: "UPDATE orders SET status = 'x'" }, { 'x-api-key': s.keys.acme });
    // Not security events: a bad body, a missing credential.
    await s.post('/v1/query', { dataset: 'nope' }, { 'x-api-key': s.keys.acme });
    await s.gateway.security.flush();
    const codes = hook.bodies.flatMap((b) => b.events).filter((e) => e.tenant === 'acme_corp').map((e) => e.code);
    expect(codes).toEqual(expect.arrayContaining(['TENANT_MISMATCH', 'SQL_FORBIDDEN', 'POLICY_DENIED']));
    expect(codes).not.toContain('QUERY_INVALID');
    expect(s.gateway.security.delivered).toBeGreaterThanOrEqual(3);
    const text = await (await fetch(`${s.url}/metrics`, { headers: { 'x-api-key': s.keys.ops } })).text();
    expect(text).toMatch(/tenantgate_security_events_total\{tenant="acme_corp",code="SQL_FORBIDDEN"\} [1-9]/);
  });

  it('a config whose top_tenants could exceed the series budget is refused at startup', async () => {
    await fx.reload(fixture('seed003.yaml').replace('datasets:', 'metrics: { top_tenants: 500, series_budget: 5000 }\ndatasets:'));
    try {
      await expect(Gateway.create({ gate: await fx.gate(), secret: fx.secret, env: {} })).rejects.toMatchObject({ code: 'CONFIG_INVALID', message: expect.stringContaining('metrics.top_tenants') });
    } finally {
      await fx.reload(fixture('seed003.yaml'));
    }
  });

  it.skipIf(kind === 'pglite' || !SERVER_URL)('/readyz fails when the database cannot be reached, and recovers', async () => {
    const gate = await createTenantGate({ config: fx.config, gatewayUrl: gatewayUrl(fx), secret: fx.secret, env: {}, poolSize: 2 });
    const gateway = await Gateway.create({ gate, secret: fx.secret, env: { TG_HOOK: hook.url } });
    const app = buildServer(gateway);
    await app.listen({ host: '127.0.0.1', port: 0 });
    const url = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
    try {
      expect((await fetch(`${url}/readyz`)).status).toBe(200);
      // The gateway's login can no longer connect, and its open connections are gone.
      await fx.db.query(`ALTER ROLE ${fx.names.gateway} NOLOGIN`);
      await fx.db.query(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND usename = $1`, [fx.names.gateway]);
      const down = await fetch(`${url}/readyz`);
      expect(down.status).toBe(503);
      expect(((await down.json()) as { error: { code: string } }).error.code).toBe('DB_UNAVAILABLE');
      expect((await fetch(`${url}/healthz`)).status).toBe(200);
    } finally {
      await fx.db.query(`ALTER ROLE ${fx.names.gateway} LOGIN`);
    }
    expect((await fetch(`${url}/readyz`)).status).toBe(200);
    await app.close();
    await gate.close();
  });
});

describe('10,000 active tenants', () => {
  const TENANTS = 10_000;
  const SECRET = 'a-jwt-secret-of-at-least-32-characters!!';
  it('keep /metrics under the series budget: the top N tenants have their own series, the rest share `other`', { timeout: 180_000 }, async () => {
    const fx = await createFixture('pglite', { sql: fixture('seed003.sql') });
    const tenants = Array.from({ length: TENANTS }, (_, i) => `t${String(i).padStart(5, '0')}`);
    const yaml = fixture('seed003.yaml')
      .replace('datasets:', `identity:\n  jwt: { secret_env: TG_JWT, algorithms: [HS256] }\nmetrics: { top_tenants: 20, series_budget: 3000 }\ndatasets:`)
      .replace('\ntenants:\n', `\ntenants:\n${tenants.map((t) => `  - { id: ${t} }`).join('\n')}\n`);
    await fx.reload(yaml);
    const s = await serve(fx, { env: { TG_JWT: SECRET } });
    try {
      const key = new TextEncoder().encode(SECRET);
      const exp = Math.floor(Date.now() / 1000) + 600;
      let next = 0;
      const worker = async () => {
        while (next < TENANTS) {
          const t = tenants[next++]!;
          const token = await new SignJWT({ tenant_id: t, role: 'analyst' }).setProtectedHeader({ alg: 'HS256' }).setExpirationTime(exp).sign(key);
          const r = await s.get('/v1/tenant', { authorization: `Bearer ${token}` });
          if (r.status !== 200) throw new Error(`${t}: ${r.status} ${JSON.stringify(r.json)}`);
        }
      };
      await Promise.all(Array.from({ length: 8 }, worker));
      const ops = await s.get('/metrics', { 'x-api-key': s.keys.ops }).then(() => fetch(`${s.url}/metrics`, { headers: { 'x-api-key': s.keys.ops } }));
      const text = await ops.text();
      const lines = series(text);
      expect(lines.length).toBeLessThanOrEqual(3000);
      expect(lines.length).toBeLessThanOrEqual(s.gateway.metrics.seriesBound);
      const labelled = new Set([...text.matchAll(/tenant="([^"]+)"/g)].map((m) => m[1]));
      expect(labelled.size).toBeLessThanOrEqual(20 + 2);
      expect(labelled).toContain('other');
      // Every request was still counted: the per-tenant series and `other` add up to all of them.
      const total = [...text.matchAll(/^tenantgate_requests_total\{tenant="[^"]+",endpoint="GET \/v1\/tenant",outcome="ok"\} (\d+)$/gm)].reduce((n, m) => n + Number(m[1]), 0);
      expect(total).toBe(TENANTS);
    } finally {
      await s.close();
      await fx.cleanup();
    }
  });
});
