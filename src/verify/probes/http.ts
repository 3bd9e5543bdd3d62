import { randomBytes } from 'node:crypto';
import { leak, lit, pass, showsMarker, skip, type HttpContext, type Outcome, type Probe, type ProbeContext } from './probe.ts';

interface HttpAnswer {
  status: number;
  text: string;
  json: { error?: { code?: string; message?: string }; rows?: unknown[][] } | undefined;
}

type Auth = { key: string } | { bearer: string };

async function call(h: HttpContext, method: 'GET' | 'POST' | 'PATCH', path: string, body: unknown, auth: Auth, headers: Record<string, string> = {}): Promise<HttpAnswer> {
  const res = await fetch(h.url.replace(/\/$/, '') + path, {
    method,
    headers: {
      ...('key' in auth ? { 'x-api-key': auth.key } : { authorization: `Bearer ${auth.bearer}` }),
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      ...headers,
    },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await res.text();
  let json: HttpAnswer['json'];
  try {
    json = JSON.parse(text) as HttpAnswer['json'];
  } catch {
    json = undefined;
  }
  return { status: res.status, text, json };
}

const semantic = (x: ProbeContext, filters: unknown[] = []) => ({ dataset: x.t.dataset.name, dimensions: [x.t.markerCol], filters });
const selectMarker = (x: ProbeContext) => `SELECT ${x.t.markerSql} FROM ${x.t.dataset.name}`;
const showsB = (x: ProbeContext, a: HttpAnswer, what: string): Outcome => (showsMarker(x, a.text) ? leak(`B's canary in the answer ${what} (HTTP ${a.status})`) : pass);
/** A refused credential: 401, and nothing of B in the body. */
const mustReject = (x: ProbeContext, a: HttpAnswer, what: string): Outcome => (a.status !== 401 ? leak(`${what} answered HTTP ${a.status}, not 401`) : showsB(x, a, what));
const mustRefuse = (a: HttpAnswer, x: ProbeContext, what: string): Outcome => (a.status !== 403 ? leak(`${what} answered HTTP ${a.status}, not 403`) : showsB(x, a, what));
const countLeak = (a: HttpAnswer, what: string): Outcome => {
  const n = Number(a.json?.rows?.[0]?.[0] ?? 0);
  return a.status === 200 && n > 0 ? leak(`count ${n} of B's rows ${what}`) : pass;
};
const sameAnswer = (u: HttpAnswer, b: HttpAnswer, what: string): Outcome =>
  u.status !== b.status || u.json?.error?.code !== b.json?.error?.code || u.json?.error?.message !== b.json?.error?.message
    ? leak(`${what}: an unknown tenant answers ${u.status} ${u.json?.error?.code}, tenant B answers ${b.status} ${b.json?.error?.code} (existence oracle)`)
    : pass;
/** A's own canary must be in the answer, or the probe proves nothing. */
const control = (x: ProbeContext, a: HttpAnswer): Outcome | undefined =>
  showsMarker(x, a.text, x.a) ? undefined : skip(`control failed: A's own canary is not in the answer (HTTP ${a.status}), so this path proves nothing`);

/** The HTTP API of a running gateway (`--url`), with keys and tokens verify makes for the run. */
export function httpProbes(): Probe[] {
  type Keys = { read: string; write?: string };
  const p = (s: string, tries: string, run: (x: ProbeContext, h: HttpContext, k: Keys) => Promise<Outcome>): Probe => ({
    id: `H-${s}`,
    path: 'http',
    tries: `HTTP API with A's key: ${tries}`,
    run: async (x) => {
      if (!x.http) return skip('no gateway URL (pass --url)');
      const read = await x.http.key(x.a, 'read');
      if (!read) return skip('A has no role with read access');
      const write = await x.http.key(x.a, 'write');
      return run(x, x.http, { read, ...(write ? { write } : {}) });
    },
  });
  const jwt = (s: string, tries: string, run: (x: ProbeContext, h: HttpContext, m: NonNullable<HttpContext['jwt']>, role: string) => Promise<Outcome>): Probe => ({
    id: `H-jwt-${s}`,
    path: 'http',
    tries: `HTTP API with a JWT: ${tries}`,
    run: async (x) => {
      if (!x.http) return skip('no gateway URL (pass --url)');
      const m = x.http.jwt;
      if (!m) return skip('identity.jwt is not configured with secret_env (verify can only sign HS tokens)');
      if (!m.readRole) return skip('no configured role with read access for a token');
      return run(x, x.http, m, m.readRole);
    },
  });
  const sql = (h: HttpContext, text: string, key: string) => call(h, 'POST', '/v1/queries', { sql: text }, { key });
  return [
    p('semantic-plain', "semantic query of the canary dimension, no filter (control: A's own canary must be in the answer)", async (x, h, k) => {
      const a = await call(h, 'POST', '/v1/query', semantic(x), { key: k.read });
      return control(x, a) ?? showsB(x, a, 'of a plain semantic query');
    }),
    p('semantic-filter-tenant', 'semantic query with filter tenant column = B', async (x, h, k) =>
      showsB(x, await call(h, 'POST', '/v1/query', semantic(x, [{ field: x.t.dataset.tenantColumn, op: '=', value: x.b }]), { key: k.read }), 'with filter tenant = B'),
    ),
    p('semantic-filter-marker', "semantic query with filter = B's canary value", async (x, h, k) =>
      showsB(x, await call(h, 'POST', '/v1/query', semantic(x, [{ field: x.t.markerCol, op: '=', value: x.canaries.marker(x.b) }]), { key: k.read }), "with filter on B's canary"),
    ),
    p('semantic-filter-or', "semantic query with an IN list holding B's canary and A's", async (x, h, k) =>
      showsB(x, await call(h, 'POST', '/v1/query', semantic(x, [{ field: x.t.markerCol, op: 'in', value: [x.canaries.marker(x.a), x.canaries.marker(x.b)] }]), { key: k.read }), 'with an IN filter'),
    ),
    p('sql-select', "SQL endpoint: select the canary column (control: A's own canary must be in the answer)", async (x, h, k) => {
      const a = await sql(h, selectMarker(x), k.read);
      return control(x, a) ?? showsB(x, a, 'of a plain SQL select');
    }),
    p('sql-where-tenant', 'SQL endpoint: WHERE tenant column = B', async (x, h, k) =>
      showsB(x, await sql(h, `${selectMarker(x)} WHERE ${x.t.tenantCol} = ${lit(x.b)}`, k.read), 'with WHERE tenant = B'),
    ),
    p('sql-or-true', 'SQL endpoint: WHERE … OR true', async (x, h, k) => showsB(x, await sql(h, `${selectMarker(x)} WHERE ${x.t.markerSql} = 'x' OR true`, k.read), 'with OR true')),
    p('sql-union', 'SQL endpoint: UNION with the real table', async (x, h, k) =>
      showsB(x, await sql(h, `${selectMarker(x)} UNION ALL SELECT ${x.t.markerSql} FROM ${x.t.table}`, k.read), 'of a UNION with the table'),
    ),
    p('sql-real-table', 'SQL endpoint: select from schema.table directly', async (x, h, k) => showsB(x, await sql(h, `SELECT ${x.t.markerSql} FROM ${x.t.table}`, k.read), 'from the real table')),
    p('sql-subquery-count', "SQL endpoint: scalar subquery counting B's canary", async (x, h, k) =>
      countLeak(await sql(h, `SELECT (SELECT count(*) FROM ${x.t.dataset.name} WHERE ${x.t.markerSql} = ${lit(x.canaries.marker(x.b))})`, k.read), 'through a subquery'),
    ),
    p('sql-cte', 'SQL endpoint: CTE over the dataset, then select', async (x, h, k) =>
      showsB(x, await sql(h, `WITH d AS (SELECT * FROM ${x.t.dataset.name}) SELECT ${x.t.markerSql} FROM d`, k.read), 'through a CTE'),
    ),
    p('sql-set-config', "SQL endpoint: set_config('tenantgate.tenant', B) in the select list", async (x, h, k) =>
      showsB(x, await sql(h, `SELECT set_config('tenantgate.tenant', ${lit(x.b)}, true), ${x.t.markerSql} FROM ${x.t.dataset.name}`, k.read), 'after set_config'),
    ),
    p('sql-update-b', "SQL endpoint (write key): update B's canary; the owner then checks it", async (x, h, k) => {
      if (!k.write) return skip('A has no role with write access');
      await sql(h, `UPDATE ${x.t.dataset.name} SET ${x.t.markerSql} = ${lit(`${x.canaries.prefix}upd`)} WHERE ${x.t.markerSql} = ${lit(x.canaries.marker(x.b))}`, k.write);
      return (await x.canaries.present(x.t, x.b)) === 0 ? leak("B's canary was changed through the SQL endpoint") : pass;
    }),
    p('sql-delete-b', "SQL endpoint (write key): delete B's canary; the owner then checks it", async (x, h, k) => {
      if (!k.write) return skip('A has no role with write access');
      await sql(h, `DELETE FROM ${x.t.dataset.name} WHERE ${x.t.markerSql} = ${lit(x.canaries.marker(x.b))}`, k.write);
      return (await x.canaries.present(x.t, x.b)) === 0 ? leak("B's canary was deleted through the SQL endpoint") : pass;
    }),
    p('cache-sql', "SQL endpoint: B runs a statement first (filling the plan cache), then A sends the same text (control: A's own canary)", async (x, h, k) => {
      const bKey = await h.key(x.b, 'read');
      if (!bKey) return skip('B has no role with read access');
      const text = `${selectMarker(x)} WHERE ${x.t.markerSql} LIKE ${lit(`${x.canaries.prefix}%`)}`;
      await sql(h, text, bKey);
      const a = await sql(h, text, k.read);
      return control(x, a) ?? showsB(x, a, 'after B ran the same statement');
    }),
    p('cache-semantic', "semantic query: B asks first, then A asks the same (control: A's own canary)", async (x, h, k) => {
      const bKey = await h.key(x.b, 'read');
      if (!bKey) return skip('B has no role with read access');
      await call(h, 'POST', '/v1/query', semantic(x), { key: bKey });
      const a = await call(h, 'POST', '/v1/query', semantic(x), { key: k.read });
      return control(x, a) ?? showsB(x, a, 'after B asked the same');
    }),
    p('key-spliced', "A's key secret under the key id of B's key (must be 401)", async (x, h, k) => {
      const bKey = await h.key(x.b, 'read');
      if (!bKey) return skip('B has no role with read access');
      // Keys are tg_<12-character id>_<secret>: B's id, A's secret.
      const spliced = `${bKey.slice(0, 16)}${k.read.slice(16)}`;
      return mustReject(x, await call(h, 'POST', '/v1/query', semantic(x), { key: spliced }), "a key spliced from B's id");
    }),
    p('header-b', `tenant header naming B (must be 403)`, async (x, h, k) => mustRefuse(await call(h, 'POST', '/v1/query', semantic(x), { key: k.read }, { [h.header]: x.b }), x, 'tenant header B')),
    p('path-b', 'path /v1/tenants/B/query (must be 403)', async (x, h, k) => mustRefuse(await call(h, 'POST', `/v1/tenants/${encodeURIComponent(x.b)}/query`, semantic(x), { key: k.read }), x, 'path B')),
    p('path-b-sql', 'path /v1/tenants/B/queries (must be 403)', async (x, h, k) =>
      mustRefuse(await call(h, 'POST', `/v1/tenants/${encodeURIComponent(x.b)}/queries`, { sql: selectMarker(x) }, { key: k.read }), x, 'SQL path B'),
    ),
    p('path-b-describe', 'GET /v1/tenants/B/tenant (must be 403)', async (x, h, k) => mustRefuse(await call(h, 'GET', `/v1/tenants/${encodeURIComponent(x.b)}/tenant`, undefined, { key: k.read }), x, 'describe B')),
    p('unknown-path-oracle', 'path naming an unknown tenant answers exactly like path B (no existence oracle)', async (x, h, k) =>
      sameAnswer(
        await call(h, 'POST', `/v1/tenants/${x.unknown}/query`, semantic(x), { key: k.read }),
        await call(h, 'POST', `/v1/tenants/${encodeURIComponent(x.b)}/query`, semantic(x), { key: k.read }),
        'path',
      ),
    ),
    p('unknown-header-oracle', 'tenant header naming an unknown tenant answers exactly like header B', async (x, h, k) =>
      sameAnswer(await call(h, 'POST', '/v1/query', semantic(x), { key: k.read }, { [h.header]: x.unknown }), await call(h, 'POST', '/v1/query', semantic(x), { key: k.read }, { [h.header]: x.b }), 'header'),
    ),
    p('audit-list', "GET /v1/audit with A's tenant admin key, after B made a request: no record of B (control: A's own request is there)", async (x, h) => {
      const admin = await h.key(x.a, 'admin');
      const bKey = await h.key(x.b, 'read');
      if (!admin || !bKey) return skip('A has no tenant admin role, or B no read role');
      const tag = `tgverify-${randomBytes(6).toString('hex')}`;
      await call(h, 'POST', '/v1/query', semantic(x), { key: bKey }, { 'x-request-id': `${tag}-b` });
      await call(h, 'POST', '/v1/query', semantic(x), { key: admin }, { 'x-request-id': `${tag}-a` });
      // The batched trail is written within its flush interval: ask until A's own record shows (or give up).
      let a: HttpAnswer | undefined;
      for (let i = 0; i < 20; i++) {
        a = await call(h, 'GET', `/v1/audit?limit=1000&request_id=${tag}-a`, undefined, { key: admin });
        if (a.text.includes(`${tag}-a`)) break;
        await new Promise((r) => setTimeout(r, 100));
      }
      if (!a?.text.includes(`${tag}-a`)) return skip(`control failed: A's own request is not in its trail (HTTP ${a?.status})`);
      const all = await call(h, 'GET', '/v1/audit?limit=1000', undefined, { key: admin });
      const foreign = (all.json as { events?: Array<{ tenant?: string }> } | undefined)?.events?.filter((e) => e.tenant !== x.a).length ?? 0;
      return foreign > 0 || all.text.includes(`${tag}-b`) ? leak(`${foreign} audit record(s) of another tenant in A's trail`) : pass;
    }),
    p('audit-filter-b', "GET /v1/audit with A's tenant admin key, filtered on B's request id and principal", async (x, h) => {
      const admin = await h.key(x.a, 'admin');
      const bKey = await h.key(x.b, 'read');
      if (!admin || !bKey) return skip('A has no tenant admin role, or B no read role');
      const id = `tgverify-${randomBytes(6).toString('hex')}-fb`;
      await call(h, 'POST', '/v1/query', semantic(x), { key: bKey }, { 'x-request-id': id });
      // Control: B's record must be in the trail (the owner looks) before A's filter can prove anything.
      let stored = false;
      for (let i = 0; i < 20 && !stored; i++) {
        stored = ((await x.owner.query(`SELECT 1 FROM tenantgate.audit_log WHERE event::jsonb ->> 'request_id' = $1`, [id])).rowCount ?? 0) > 0;
        if (!stored) await new Promise((r) => setTimeout(r, 100));
      }
      if (!stored) return skip("control failed: B's request never reached the audit trail");
      const byId = await call(h, 'GET', `/v1/audit?request_id=${id}`, undefined, { key: admin });
      const byPrincipal = await call(h, 'GET', `/v1/audit?principal=key:${bKey.slice(3, 15)}`, undefined, { key: admin });
      return byId.text.includes(id) || (byPrincipal.json as { events?: unknown[] } | undefined)?.events?.length ? leak("B's audit record answered A's filter") : pass;
    }),
    p('audit-path-b', "GET /v1/tenants/B/audit with A's tenant admin key (must be 403)", async (x, h) => {
      const admin = await h.key(x.a, 'admin');
      if (!admin) return skip('A has no tenant admin role');
      return mustRefuse(await call(h, 'GET', `/v1/tenants/${encodeURIComponent(x.b)}/audit`, undefined, { key: admin }), x, 'audit path B');
    }),
    p('quota-admin-b', "A's tenant admin key reads and changes B's quotas through the admin API (must be 403, B unchanged)", async (x, h) => {
      const admin = await h.key(x.a, 'admin');
      if (!admin) return skip('A has no tenant admin role');
      const path = `/v1/admin/tenants/${encodeURIComponent(x.b)}/quotas`;
      const read = await call(h, 'GET', path, undefined, { key: admin });
      const change = await call(h, 'PATCH', path, { requests_per_minute: 1 }, { key: admin });
      if (read.status !== 403 || change.status !== 403) return leak(`the admin API answered A's key with HTTP ${read.status} / ${change.status}, not 403`);
      const b = await x.owner.query(`SELECT 1 FROM tenantgate.tenant_quotas WHERE tenant = $1 AND quotas ? 'requests_per_minute' AND (quotas ->> 'requests_per_minute')::int = 1`, [x.b]).catch(() => ({ rowCount: 0 }));
      return (b.rowCount ?? 0) > 0 ? leak("B's quotas were changed with A's key") : pass;
    }),
    jwt('header-b', "a valid token for A, with the tenant header naming B (must be 403)", async (x, h, m, role) => {
      const token = await m.sign({ [m.claims.role]: role, [m.claims.tenant]: x.a, sub: 'tg-verify' });
      return mustRefuse(await call(h, 'POST', '/v1/query', semantic(x), { bearer: token }, { [h.header]: x.b }), x, 'a token for A naming B');
    }),
    jwt('forged-b', 'a token for B signed with a key the gateway does not know (must be 401)', async (x, h, m, role) => {
      const token = await m.sign({ [m.claims.role]: role, [m.claims.tenant]: x.b, sub: 'tg-verify' }, { key: randomBytes(48) });
      return mustReject(x, await call(h, 'POST', '/v1/query', semantic(x), { bearer: token }), 'a forged token for B');
    }),
    jwt('alg-none-b', "an unsigned token (alg 'none') for B (must be 401)", async (x, h, m, role) => {
      const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');
      const claims = JSON.parse(Buffer.from((await m.sign({ [m.claims.role]: role, [m.claims.tenant]: x.b, sub: 'tg-verify' })).split('.')[1]!, 'base64url').toString()) as unknown;
      return mustReject(x, await call(h, 'POST', '/v1/query', semantic(x), { bearer: `${b64({ alg: 'none', typ: 'JWT' })}.${b64(claims)}.` }), "an alg 'none' token for B");
    }),
    jwt('expired-b', 'a correctly signed token for B that expired an hour ago (must be 401)', async (x, h, m, role) => {
      const token = await m.sign({ [m.claims.role]: role, [m.claims.tenant]: x.b, sub: 'tg-verify' }, { expiresIn: -3600 });
      return mustReject(x, await call(h, 'POST', '/v1/query', semantic(x), { bearer: token }), 'an expired token for B');
    }),
    jwt('tenant-claim-list', "a token for A whose single-tenant claim is a list [A, B] (must be 401, never both)", async (x, h, m, role) => {
      const token = await m.sign({ [m.claims.role]: role, [m.claims.tenant]: [x.a, x.b], sub: 'tg-verify' });
      const a = await call(h, 'POST', '/v1/query', semantic(x), { bearer: token });
      return a.status === 200 ? showsB(x, a, 'for a token listing A and B in the single-tenant claim') : pass;
    }),
  ];
}
