/**
 * The audit trail (issue 5): one record per request, allowed or denied, hash-chained per tenant;
 * `audit verify` names an edited, removed or reordered record; a tenant admin reads its own trail
 * only, by every filter and path; the gateway cannot edit the trail; retention keeps chains
 * verifiable; durable mode writes the record in the request's own transaction.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { appendEvents, appendStatement, pruneAudit, verifyChains } from '../../src/audit/store.ts';
import type { AuditEvent } from '../../src/audit/event.ts';
import { createTenantGate } from '../../src/gate.ts';
import { BACKENDS, createFixture, fixture, gatewayUrl, type Fixture } from '../support/backends.ts';
import { serve, type Served } from '../http/support.ts';
import { runCli } from '../support/cli.ts';

const Q = { dataset: 'orders', dimensions: ['region'], metrics: ['revenue'] };

async function trail(fx: Fixture, where = 'true'): Promise<AuditEvent[]> {
  const r = await fx.db.query<{ event: string }>(`SELECT event FROM tenantgate.audit_log WHERE ${where} ORDER BY tenant, seq`);
  return r.rows.map((x) => JSON.parse(x.event) as AuditEvent);
}

describe.each(BACKENDS)('audit trail on %s', (kind) => {
  let fx: Fixture;
  let s: Served;
  beforeAll(async () => {
    fx = await createFixture(kind, { sql: fixture('seed003.sql') });
    s = await serve(fx);
  });
  afterAll(async () => {
    await s?.close();
    await fx?.cleanup();
  });
  const flush = () => s.gateway.audit!.flush();
  const byRequest = async (id: string) => (await trail(fx, `event::jsonb->>'request_id' = '${id}'`))[0];

  it('records every request, allowed or denied, once, with what each stage learned and no secret', async () => {
    const calls: Array<{ id: string; status: number; code: string | null; tenant: string; decision: string }> = [];
    const call = async (id: string, path: string, body: unknown, headers: Record<string, string>, expect: { status: number; code: string | null; tenant: string; decision: string }) => {
      const r = await s.post(path, body, { 'x-request-id': id, ...headers });
      calls.push({ id, ...expect });
      return r;
    };
    await call('rq-ok', '/v1/query', Q, { 'x-api-key': s.keys.acme }, { status: 200, code: null, tenant: 'acme_corp', decision: 'allow' });
    await call('rq-sql', '/v1/queries', { sql: "SELECT region FROM orders WHERE email = 'ceo@acme.example'" }, { 'x-api-key': s.keys.acme }, { status: 200, code: null, tenant: 'acme_corp', decision: 'allow' });
    await call('rq-mismatch', '/v1/query', Q, { 'x-api-key': s.keys.acme, 'x-tenant-id': 'globex_inc' }, { status: 403, code: 'TENANT_MISMATCH', tenant: 'acme_corp', decision: 'deny' });
    await call('rq-forbidden', '/v1/queries', { sql: 'SELECT * FROM pg_authid' }, { 'x-api-key': s.keys.globex }, { status: 400, code: 'SQL_FORBIDDEN', tenant: 'globex_inc', decision: 'deny' });
    await call('rq-nokey', '/v1/query', Q, {}, { status: 401, code: 'AUTH_MISSING', tenant: '*', decision: 'deny' });
    await call('rq-badkey', '/v1/query', Q, { 'x-api-key': `tg_abcdefghijkl_${'x'.repeat(43)}` }, { status: 401, code: 'AUTH_INVALID', tenant: '*', decision: 'deny' });
    await call('rq-invalid', '/v1/query', { dataset: 'nope' }, { 'x-api-key': s.keys.acme }, { status: 400, code: 'QUERY_INVALID', tenant: 'acme_corp', decision: 'error' });
    await call('rq-404', '/v1/nowhere', {}, { 'x-api-key': s.keys.acme }, { status: 404, code: 'NOT_FOUND', tenant: '*', decision: 'error' });
    await call('rq-badjson', '/v1/query', '{not json', { 'x-api-key': s.keys.acme }, { status: 400, code: 'QUERY_INVALID', tenant: '*', decision: 'error' });
    await call('rq-all', '/v1/query', Q, { 'x-api-key': s.keys.ops, 'x-tenant-id': 'all' }, { status: 200, code: null, tenant: '*', decision: 'allow' });
    await call('rq-write-denied', '/v1/queries', { sql: "UPDATE orders SET status = 'x'" }, { 'x-api-key': s.keys.acme }, { status: 403, code: 'POLICY_DENIED', tenant: 'acme_corp', decision: 'deny' });
    await flush();
    for (const c of calls) {
      const rows = await trail(fx, `event::jsonb->>'request_id' = '${c.id}'`);
      expect(rows, c.id).toHaveLength(1);
      expect(rows[0], c.id).toMatchObject({ status: c.status, code: c.code, tenant: c.tenant, decision: c.decision });
    }
    const ok = (await byRequest('rq-ok'))!;
    expect(ok).toMatchObject({ endpoint: 'POST /v1/query', principal: expect.stringMatching(/^key:[a-z0-9]{12}$/), role: 'analyst', access: 'read', tenant_from: 'credential', datasets: ['orders'], tables: ['public.orders'], rows: 2, tenant_predicate: true, rls: true, client: '127.0.0.1' });
    expect(Object.keys(ok.stages)).toEqual(expect.arrayContaining(['identify', 'resolve', 'authorize', 'plan', 'execute']));
    expect(ok.duration_ms).toBeGreaterThan(0);
    expect(ok.fingerprint).toMatch(/^[0-9a-f]{16}$/);
    // SQL is kept without its literal values.
    const sql = (await byRequest('rq-sql'))!;
    expect(sql.sql).toBe('SELECT region FROM orders WHERE email = $1');
    expect(JSON.stringify(await trail(fx))).not.toContain('ceo@acme.example');
    // The refused tenant is echoed (it is what the caller sent), in the caller's own chain.
    expect(await byRequest('rq-mismatch')).toMatchObject({ named_tenant: 'globex_inc', principal: expect.stringMatching(/^key:/) });
    expect(await byRequest('rq-badkey')).toMatchObject({ principal: 'key:abcdefghijkl' });
    expect(await byRequest('rq-all')).toMatchObject({ tenant_predicate: false, rls: true });
    // Never a secret anywhere in the trail.
    const text = JSON.stringify(await trail(fx));
    for (const k of Object.values(s.keys)) expect(text).not.toContain(k.slice(16));
    expect(text).not.toContain('x'.repeat(43));
    // And the chains verify.
    expect(await verifyChains(fx.db)).toMatchObject({ ok: true, problems: [] });
  });

  it('Server-Timing and x-request-id are on every answer, errors included', async () => {
    for (const [path, body, headers] of [
      ['/v1/query', Q, { 'x-api-key': s.keys.acme }],
      ['/v1/query', Q, {}],
      ['/v1/nowhere', {}, {}],
      ['/v1/query', '{bad', { 'x-api-key': s.keys.acme }],
    ] as const) {
      const r = await s.post(path, body, headers);
      expect(r.headers.get('server-timing'), path).toMatch(/audit;dur=/);
      expect(r.headers.get('x-request-id')).toBeTruthy();
    }
  });

  it('nothing that reaches the gateway can change or delete the trail, and a tenant can only append to its own chain', async () => {
    const gate = kind === 'postgres' ? await createTenantGate({ config: fx.config, gatewayUrl: gatewayUrl(fx), secret: fx.secret, env: {}, poolSize: 1 }) : await fx.gate();
    try {
      for (const access of ['read', 'write', 'admin', 'platform'] as const) {
        for (const sql of [`UPDATE tenantgate.audit_log SET event = event`, `DELETE FROM tenantgate.audit_log`, `INSERT INTO tenantgate.audit_log SELECT * FROM tenantgate.audit_log LIMIT 1`, `UPDATE tenantgate.audit_heads SET seq = 0`, `TRUNCATE tenantgate.audit_log`]) {
          await expect(gate.withTenant({ tenant: 'acme_corp', access }, (db) => db.query(sql)), `${access}: ${sql}`).rejects.toMatchObject({ code: expect.stringMatching(/POLICY_DENIED|25006/) });
        }
      }
      // The durable path's function: inside acme's signed context it writes acme's chain only.
      const forged = { at: new Date().toISOString(), request_id: 'forged', tenant: 'globex_inc' } as unknown as AuditEvent;
      const append = appendStatement([forged]);
      await expect(gate.withTenant({ tenant: 'acme_corp', access: 'write' }, (db) => db.query(append.text, append.values))).rejects.toMatchObject({ code: 'POLICY_DENIED' });
      expect(await trail(fx, `event::jsonb->>'request_id' = 'forged'`)).toEqual([]);
      if (kind === 'postgres') {
        // The gateway login itself, outside any tenant transaction: no table privilege at all.
        const c = await gate.database.pool.connect();
        try {
          for (const sql of [`SELECT 1 FROM tenantgate.audit_log`, `DELETE FROM tenantgate.audit_log`, `UPDATE tenantgate.audit_heads SET seq = 0`]) await expect(c.query(sql), sql).rejects.toMatchObject({ code: '42501' });
        } finally {
          c.release();
        }
      }
    } finally {
      if (kind === 'postgres') await gate.close();
    }
  });

  it('audit verify names an edited, a removed, a reordered record, and a cut tail', async () => {
    for (let i = 0; i < 6; i++) await s.post('/v1/query', Q, { 'x-api-key': s.keys.globex, 'x-request-id': `chain-${i}` });
    await flush();
    const seqs = (await fx.db.query<{ seq: string; id: string }>(`SELECT seq, event::jsonb->>'request_id' AS id FROM tenantgate.audit_log WHERE tenant = 'globex_inc' AND event::jsonb->>'request_id' LIKE 'chain-%' ORDER BY seq`)).rows.map((r) => ({ seq: Number(r.seq), id: r.id }));
    expect(seqs).toHaveLength(6);
    const [a, b, c, d, , f] = seqs as Array<{ seq: number; id: string }>;
    const snapshot = await fx.db.query(`SELECT * FROM tenantgate.audit_log WHERE tenant = 'globex_inc'`);
    const restore = async () => {
      await fx.db.query(`DELETE FROM tenantgate.audit_log WHERE tenant = 'globex_inc'`);
      for (const r of snapshot.rows) await fx.db.query(`INSERT INTO tenantgate.audit_log (tenant, seq, at, event, prev, hash) VALUES ($1, $2, $3, $4, $5, $6)`, [r.tenant, r.seq, r.at, r.event, r.prev, r.hash]);
      expect((await verifyChains(fx.db, { tenant: 'globex_inc' })).ok).toBe(true);
    };
    const problems = async () => (await verifyChains(fx.db, { tenant: 'globex_inc' })).problems.map((p) => `${p.problem} ${p.seq}`);

    await fx.db.query(`UPDATE tenantgate.audit_log SET event = jsonb_set(event::jsonb, '{rows}', '0')::text WHERE tenant = 'globex_inc' AND seq = $1`, [a!.seq]);
    expect(await problems()).toEqual([`edited ${a!.seq}`]);
    // The CLI says the same, naming the record and its request, and exits 1 (it opens database.url itself: server only).
    if (kind === 'postgres') {
      const r = await runCli(fx, ['audit', 'verify', '--tenant', 'globex_inc']);
      expect(r.code, r.out).toBe(1);
      expect(r.out).toContain(`EDITED tenant globex_inc seq ${a!.seq} (request ${a!.id})`);
    }
    await restore();

    await fx.db.query(`DELETE FROM tenantgate.audit_log WHERE tenant = 'globex_inc' AND seq = $1`, [c!.seq]);
    expect(await problems()).toEqual([`removed ${c!.seq + 1}`]);
    await restore();

    // Two records swap places (every column but the position).
    await fx.db.query(
      `WITH x AS (SELECT seq, event, prev, hash FROM tenantgate.audit_log WHERE tenant = 'globex_inc' AND seq IN ($1, $2))
       UPDATE tenantgate.audit_log l SET event = x.event, prev = x.prev, hash = x.hash FROM x WHERE l.tenant = 'globex_inc' AND l.seq IN ($1, $2) AND x.seq <> l.seq`,
      [b!.seq, d!.seq],
    );
    expect(await problems()).toEqual(expect.arrayContaining([`reordered ${b!.seq}`, `reordered ${d!.seq}`]));
    await restore();

    await fx.db.query(`DELETE FROM tenantgate.audit_log WHERE tenant = 'globex_inc' AND seq >= $1`, [f!.seq]);
    expect(await problems()).toEqual([`truncated ${f!.seq}`]);
    await restore();
  });

  describe('reading the trail', () => {
    let globexRequest = '';
    beforeAll(async () => {
      globexRequest = `globex-${Date.now()}`;
      await s.post('/v1/query', Q, { 'x-api-key': s.keys.globex, 'x-request-id': globexRequest });
      await s.post('/v1/queries', { sql: 'SELECT * FROM pg_class' }, { 'x-api-key': s.keys.globex });
      await s.post('/v1/query', Q, { 'x-api-key': s.keys.acme });
      await flush();
    });
    const own = (r: { json: { events?: AuditEvent[] } }) => (r.json.events ?? []).map((e) => e.tenant);

    it("acme_corp's tenant admin never reads a globex_inc record, by any filter or path", async () => {
      const acme = { 'x-api-key': s.keys.acmeAdmin };
      const globexPrincipal = (await byRequest(globexRequest))!.principal!;
      const all = await s.get('/v1/audit?limit=1000', acme);
      expect(all.status).toBe(200);
      expect(all.json.events.length).toBeGreaterThan(0);
      expect(new Set(own(all))).toEqual(new Set(['acme_corp']));
      for (const q of [`request_id=${globexRequest}`, `principal=${encodeURIComponent(globexPrincipal)}`, 'code=SQL_FORBIDDEN', 'decision=deny', 'since=2000-01-01T00:00:00Z', `until=${encodeURIComponent(new Date(Date.now() + 86_400_000).toISOString())}`]) {
        const r = await s.get(`/v1/audit?${q}`, acme);
        expect(r.status, q).toBe(200);
        expect(own(r).filter((t) => t !== 'acme_corp'), q).toEqual([]);
      }
      // A cursor crafted to point into globex's chain pages through acme's only.
      const cursor = Buffer.from(JSON.stringify([new Date(Date.now() + 60_000).toISOString(), 'globex_inc', 999999])).toString('base64url');
      const paged = await s.get(`/v1/audit?before=${cursor}`, acme);
      expect(own(paged).filter((t) => t !== 'acme_corp')).toEqual([]);
      // A tenant parameter is not a filter here; other tenants by path or header are refused like any other.
      expect((await s.get('/v1/audit?tenant=globex_inc', acme)).json.error.code).toBe('QUERY_INVALID');
      expect((await s.get('/v1/tenants/globex_inc/audit', acme)).json.error.code).toBe('TENANT_MISMATCH');
      expect((await s.get('/v1/audit', { ...acme, 'x-tenant-id': 'globex_inc' })).json.error.code).toBe('TENANT_MISMATCH');
      expect((await s.get('/v1/admin/audit?tenant=globex_inc', acme)).json.error.code).toBe('POLICY_DENIED');
      // Readers are not auditors.
      expect((await s.get('/v1/audit', { 'x-api-key': s.keys.acme })).json.error.code).toBe('POLICY_DENIED');
    });

    it("the database's wall holds too: acme's admin transaction sees only acme's chain, whatever it selects", async () => {
      const gate = await fx.gate();
      const seen = await gate.withTenant({ tenant: 'acme_corp', access: 'admin' }, async (db) => {
        const rows = (await db.query<{ tenant: string }>(`SELECT tenant FROM tenantgate.audit_log WHERE tenant = 'globex_inc' OR true`)).rows;
        await db.query(`SELECT set_config('tenantgate.tenant', 'globex_inc', true)`);
        const after = (await db.query<{ tenant: string }>(`SELECT tenant FROM tenantgate.audit_log`)).rows;
        return [...rows, ...after].map((r) => r.tenant);
      });
      expect(seen.length).toBeGreaterThan(0);
      expect(new Set(seen)).toEqual(new Set(['acme_corp']));
      // Read access has no SELECT on the trail at all.
      await expect(gate.withTenant({ tenant: 'acme_corp', access: 'read' }, (db) => db.query(`SELECT 1 FROM tenantgate.audit_log`))).rejects.toMatchObject({ code: 'POLICY_DENIED' });
    });

    it('platform admins read any tenant, all, or the no-tenant chain, with filters and pages', async () => {
      const ops = { 'x-api-key': s.keys.ops };
      const one = await s.get('/v1/admin/audit?tenant=globex_inc&code=SQL_FORBIDDEN', ops);
      expect(one.status).toBe(200);
      expect(one.json.events.length).toBeGreaterThan(0);
      expect(one.json.events.every((e: AuditEvent) => e.tenant === 'globex_inc' && e.code === 'SQL_FORBIDDEN')).toBe(true);
      // A fixed end, so the records these very reads leave do not shift the pages.
      const until = encodeURIComponent(new Date().toISOString());
      await s.gateway.audit!.flush();
      const every = await s.get(`/v1/admin/audit?tenant=all&limit=1000&until=${until}`, ops);
      expect(new Set(own(every))).toEqual(new Set(['acme_corp', 'globex_inc', '*']));
      const star = await s.get('/v1/admin/audit?tenant=*', ops);
      expect(new Set(own(star))).toEqual(new Set(['*']));
      // Pages: newest first, no overlap, no gap.
      const p1 = await s.get(`/v1/admin/audit?tenant=all&limit=3&until=${until}`, ops);
      const p2 = await s.get(`/v1/admin/audit?tenant=all&limit=3&until=${until}&before=${p1.json.next}`, ops);
      const ids = [...p1.json.events, ...p2.json.events].map((e: AuditEvent & { seq: number }) => `${e.tenant}/${e.seq}`);
      expect(new Set(ids).size).toBe(6);
      const firstSix = every.json.events.slice(0, 6).map((e: AuditEvent & { seq: number }) => `${e.tenant}/${e.seq}`);
      expect(ids).toEqual(firstSix);
      expect((await s.get('/v1/admin/audit?tenant=nobody', ops)).json.error.code).toBe('TENANT_UNKNOWN');
      expect((await s.get('/v1/admin/audit?tenant=all&before=junk', ops)).json.error.code).toBe('QUERY_INVALID');
      expect((await s.get('/v1/admin/audit?tenant=all&limit=0', ops)).json.error.code).toBe('QUERY_INVALID');
    });

    it.skipIf(kind === 'pglite')('tenantgate audit --json prints the events SPEC names (server: the CLI opens database.url itself)', async () => {
      const r = await runCli(fx, ['--json', 'audit', '--tenant', 'globex_inc', '--code', 'SQL_FORBIDDEN']);
      expect(r.code, r.out).toBe(0);
      const doc = JSON.parse(r.out) as { events: Array<Record<string, unknown>> };
      expect(doc.events.length).toBeGreaterThan(0);
      for (const e of doc.events) expect(Object.keys(e)).toEqual(expect.arrayContaining(['at', 'request_id', 'tenant', 'principal', 'endpoint', 'decision', 'code', 'rows']));
      expect(doc.events.every((e) => e['tenant'] === 'globex_inc' && e['code'] === 'SQL_FORBIDDEN')).toBe(true);
    });
  });

  it('retention drops the start of each chain and the chains still verify', async () => {
    const old = (i: number): AuditEvent =>
      ({ at: new Date(Date.now() - (30 - i) * 86_400_000).toISOString(), request_id: `old-${i}`, tenant: 'initech_test', endpoint: 'GET /v1/tenant', status: 200, decision: 'allow', code: null }) as unknown as AuditEvent;
    await appendEvents(fx.db, [old(0), old(1), old(2), old(28), old(29)]);
    await fx.db.query(`UPDATE tenantgate.meta SET value = '10' WHERE key = 'audit.retention_days'`);
    try {
      expect(await pruneAudit(fx.db)).toBe(3);
      expect((await trail(fx, `tenant = 'initech_test'`)).map((e) => e.request_id)).toEqual(['old-28', 'old-29']);
      expect(await verifyChains(fx.db)).toMatchObject({ ok: true, problems: [] });
      // New records continue the chain after the cut.
      await appendEvents(fx.db, [old(30)]);
      expect(await verifyChains(fx.db, { tenant: 'initech_test' })).toMatchObject({ ok: true, records: 3 });
      // A record removed right after the cut still shows.
      await fx.db.query(`DELETE FROM tenantgate.audit_log WHERE tenant = 'initech_test' AND event::jsonb->>'request_id' = 'old-28'`);
      expect((await verifyChains(fx.db, { tenant: 'initech_test' })).problems.map((p) => p.problem)).toEqual(['removed']);
    } finally {
      await fx.db.query(`UPDATE tenantgate.meta SET value = '400' WHERE key = 'audit.retention_days'; DELETE FROM tenantgate.audit_log WHERE tenant = 'initech_test'; DELETE FROM tenantgate.audit_heads WHERE tenant = 'initech_test'`);
    }
  });
});

describe.each(BACKENDS)('durable audit on %s', (kind) => {
  let fx: Fixture;
  let s: Served;
  beforeAll(async () => {
    fx = await createFixture(kind, { sql: fixture('seed003.sql'), yaml: fixture('seed003.yaml').replace('datasets:', 'audit: { mode: durable }\ndatasets:') });
    s = await serve(fx);
  });
  afterAll(async () => {
    await s?.close();
    await fx?.cleanup();
  });

  it('the record exists when the answer arrives (no buffer), for allowed and denied requests', async () => {
    expect(s.gateway.audit).toBeUndefined();
    const r = await s.post('/v1/query', Q, { 'x-api-key': s.keys.acme, 'x-request-id': 'durable-1' });
    expect(r.status).toBe(200);
    expect(await trail(fx, `event::jsonb->>'request_id' = 'durable-1'`)).toEqual([expect.objectContaining({ rows: 2, decision: 'allow', tenant: 'acme_corp' })]);
    const d = await s.post('/v1/query', Q, { 'x-api-key': s.keys.acme, 'x-tenant-id': 'globex_inc', 'x-request-id': 'durable-2' });
    expect(d.status).toBe(403);
    expect(await trail(fx, `event::jsonb->>'request_id' = 'durable-2'`)).toEqual([expect.objectContaining({ code: 'TENANT_MISMATCH' })]);
    expect(await verifyChains(fx.db)).toMatchObject({ ok: true });
  });

  it('a write and its record commit together: when the record cannot be written, neither can the row', async () => {
    const before = (await fx.db.query(`SELECT count(*)::int AS n FROM public.orders WHERE region = 'Durable'`)).rows[0]!.n;
    await fx.db.query(`REVOKE EXECUTE ON FUNCTION tenantgate.audit_append(text[], timestamptz[], text[], bytea[]) FROM ${fx.names.access.write}`);
    try {
      const r = await s.post('/v1/queries', { sql: "INSERT INTO orders (region, amount) VALUES ('Durable', 1)" }, { 'x-api-key': s.keys.acmeWriter });
      expect(r.status).toBeGreaterThanOrEqual(400);
      expect((await fx.db.query(`SELECT count(*)::int AS n FROM public.orders WHERE region = 'Durable'`)).rows[0]!.n).toBe(before);
    } finally {
      await fx.db.query(`GRANT EXECUTE ON FUNCTION tenantgate.audit_append(text[], timestamptz[], text[], bytea[]) TO ${fx.names.access.write}`);
    }
    const ok = await s.post('/v1/queries', { sql: "INSERT INTO orders (region, amount) VALUES ('Durable', 1)" }, { 'x-api-key': s.keys.acmeWriter, 'x-request-id': 'durable-w' });
    expect(ok.status).toBe(200);
    expect(await trail(fx, `event::jsonb->>'request_id' = 'durable-w'`)).toEqual([expect.objectContaining({ rows: 1, access: 'write' })]);
    await fx.db.query(`DELETE FROM public.orders WHERE region = 'Durable'`);
  });
});
