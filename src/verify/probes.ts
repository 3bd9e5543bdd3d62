/**
 * The probe catalogue of `tenantgate verify`: each probe acts as tenant A and looks for (or
 * writes into) tenant B's rows by one path. Listed in docs/security.md ("tenantgate verify").
 */
import type { AccessLevel } from '../config/types.ts';
import type { Database } from '../db/database.ts';
import { ident } from '../db/sql.ts';
import type { TenantGate } from '../gate.ts';
import type { TenantClient } from '../execute/tenant-transaction.ts';
import type { Names } from '../provision/names.ts';
import { insertSql, type Canaries, type DatasetTarget } from './canaries.ts';

export type ProbePath = 'library' | 'statement' | 'direct' | 'http';
export type Outcome = { status: 'pass' } | { status: 'LEAK'; detail: string } | { status: 'skipped'; reason: string };

export const PGLITE_GAP = 'PGlite has one superuser session (role and session-user changes escape there; use PostgreSQL)';

export interface HttpContext {
  url: string;
  header: string;
  /** A read key of tenant A; a write key when one of A's roles has write access. */
  readKey: string;
  writeKey?: string;
}

export interface ProbeContext {
  a: string;
  b: string;
  /** A tenant id no configuration knows (for the no-oracle probes). */
  unknown: string;
  t: DatasetTarget;
  canaries: Canaries;
  gate: TenantGate;
  names: Names;
  kind: 'pglite' | 'postgres';
  direct?: Database | { skipped: string };
  http?: HttpContext;
}

export interface Probe {
  id: string;
  path: ProbePath;
  tries: string;
  run(ctx: ProbeContext): Promise<Outcome>;
}

const pass: Outcome = { status: 'pass' };
const leak = (detail: string): Outcome => ({ status: 'LEAK', detail });
const skip = (reason: string): Outcome => ({ status: 'skipped', reason });

class Rollback extends Error {}

interface Queryable {
  query(text: string, values?: unknown[]): Promise<{ rows: Record<string, unknown>[]; rowCount: number | null }>;
}

/** Run one statement under a savepoint: a failure does not abort the transaction. */
async function attempt(c: Queryable, text: string, values: unknown[] = []): Promise<{ ok: true; rowCount: number; rows: Record<string, unknown>[] } | { ok: false; error: unknown }> {
  await c.query('SAVEPOINT tg_verify');
  try {
    const r = await c.query(text, values);
    await c.query('RELEASE SAVEPOINT tg_verify');
    return { ok: true, rowCount: r.rowCount ?? 0, rows: r.rows };
  } catch (error) {
    await c.query('ROLLBACK TO SAVEPOINT tg_verify');
    return { ok: false, error };
  }
}

/** Rows of B this client can see: by B's canary marker and by B's tenant id. */
async function look(c: Queryable, x: ProbeContext, by: 'marker' | 'tenant' = 'marker'): Promise<number> {
  const where = by === 'marker' ? `${x.t.markerSql}::text = $1` : `${x.t.tenantCol}::text = $1`;
  const r = await attempt(c, `SELECT ${x.t.tenantCol}::text AS t FROM ${x.t.table} WHERE ${where}`, [by === 'marker' ? x.canaries.marker(x.b) : x.b]);
  return r.ok ? r.rows.filter((row) => row['t'] === x.b).length : 0;
}

/** Run `fn` in A's withTenant transaction at `access`, always rolled back. */
async function asA(x: ProbeContext, access: AccessLevel, fn: (c: TenantClient) => Promise<Outcome>): Promise<Outcome> {
  let out: Outcome = pass;
  try {
    await x.gate.withTenant({ tenant: x.a, access }, async (c) => {
      out = await fn(c);
      throw new Rollback();
    });
  } catch (err) {
    if (!(err instanceof Rollback)) throw err;
  }
  return out;
}

const seen = (n: number, what: string): Outcome => (n > 0 ? leak(`${n} row(s) of tenant B visible ${what}`) : pass);

function libraryProbes(access: AccessLevel): Probe[] {
  const id = (s: string) => `L-${access}-${s}`;
  const p = (s: string, tries: string, run: (x: ProbeContext, c: TenantClient) => Promise<Outcome>): Probe => ({
    id: id(s),
    path: 'library',
    tries: `withTenant(A, ${access}): ${tries}`,
    run: (x) => asA(x, access, (c) => run(x, c)),
  });
  return [
    p('plain', "select B's canary row (control: A's own canary must be visible)", async (x, c) => {
      const own = await attempt(c, `SELECT 1 FROM ${x.t.table} WHERE ${x.t.markerSql} = $1`, [x.canaries.marker(x.a)]);
      if (!own.ok || own.rows.length === 0) return skip("control failed: A cannot see its own canary (filters or expression hide it), so this path proves nothing");
      return seen(await look(c, x), 'by a plain select');
    }),
    p('where-tenant', 'select with WHERE tenant column = B', async (x, c) => seen(await look(c, x, 'tenant'), 'with WHERE tenant = B')),
    p('count-oracle', "count(*) of rows equal to B's canary value (existence oracle)", async (x, c) => {
      const r = await attempt(c, `SELECT count(*)::int AS n FROM ${x.t.table} WHERE ${x.t.markerSql} = $1`, [x.canaries.marker(x.b)]);
      return r.ok ? seen(Number(r.rows[0]?.['n'] ?? 0), 'through count(*)') : pass;
    }),
    p('set-config-local', "set_config('tenantgate.tenant', B, true), then select", async (x, c) => {
      await attempt(c, `SELECT set_config('tenantgate.tenant', $1, true)`, [x.b]);
      return seen(await look(c, x, 'tenant'), 'after set_config(tenant, B, local)');
    }),
    p('set-config-session', "set_config('tenantgate.tenant', B, false) (session level), then select", async (x, c) => {
      await attempt(c, `SELECT set_config('tenantgate.tenant', $1, false)`, [x.b]);
      return seen(await look(c, x, 'tenant'), 'after set_config(tenant, B, session)');
    }),
    p('set-config-mac-cleared', 'set the tenant to B and clear the signature setting, then select', async (x, c) => {
      await attempt(c, `SELECT set_config('tenantgate.tenant', $1, true), set_config('tenantgate.mac', '', true)`, [x.b]);
      return seen(await look(c, x, 'tenant'), 'after clearing the MAC');
    }),
    p('set-role-access', 'SET ROLE to every other access-level role (with and without the tenant set to B), then select', async (x, c) => {
      for (const [level, role] of Object.entries(x.names.access)) {
        if (level === access) continue;
        if (!(await attempt(c, `SET ROLE ${ident(role)}`)).ok) continue;
        const n1 = await look(c, x, 'tenant');
        await attempt(c, `SELECT set_config('tenantgate.tenant', $1, true)`, [x.b]);
        const n2 = await look(c, x, 'tenant');
        if (n1 + n2 > 0) return leak(`${n1 + n2} row(s) of B visible after SET ROLE ${role}`);
      }
      return pass;
    }),
    p('set-role-platform-all', 'SET ROLE to the all-tenants platform role, then select', async (x, c) => {
      if (!(await attempt(c, `SET ROLE ${ident(x.names.platformAll)}`)).ok) return pass;
      return seen(await look(c, x, 'tenant'), `after SET ROLE ${x.names.platformAll}`);
    }),
    p('reset-role', 'RESET ROLE (back to the gateway login), then select', async (x, c) => {
      if (x.kind === 'pglite') return skip(PGLITE_GAP);
      if (!(await attempt(c, 'RESET ROLE')).ok) return pass;
      return seen(await look(c, x, 'tenant'), 'after RESET ROLE');
    }),
    p('insert-b', 'insert a row with tenant column = B (must fail)', async (x, c) => {
      const r = await attempt(c, insertSql(x.t), [x.b, `${x.canaries.prefix}ins`]);
      return r.ok ? leak('an INSERT with tenant B succeeded') : pass;
    }),
    p('update-to-b', "update A's own canary, setting the tenant column to B (must fail)", async (x, c) => {
      const r = await attempt(c, `UPDATE ${x.t.table} SET ${x.t.tenantCol} = $1 WHERE ${x.t.markerSql} = $2`, [x.b, x.canaries.marker(x.a)]);
      return r.ok && r.rowCount > 0 ? leak(`an UPDATE moved ${r.rowCount} row(s) to tenant B`) : pass;
    }),
    p('update-b', "update B's rows (must touch none)", async (x, c) => {
      const r = await attempt(c, `UPDATE ${x.t.table} SET ${x.t.markerSql} = ${x.t.markerSql} WHERE ${x.t.tenantCol}::text = $1`, [x.b]);
      return r.ok && r.rowCount > 0 ? leak(`an UPDATE reached ${r.rowCount} row(s) of B`) : pass;
    }),
    p('delete-b', "delete B's rows (must touch none; rolled back)", async (x, c) => {
      const r = await attempt(c, `DELETE FROM ${x.t.table} WHERE ${x.t.tenantCol}::text = $1`, [x.b]);
      return r.ok && r.rowCount > 0 ? leak(`a DELETE reached ${r.rowCount} row(s) of B`) : pass;
    }),
    p('current-role-bypass', 'the role the transaction runs as is superuser or has BYPASSRLS', async (_x, c) => {
      const r = await attempt(c, `SELECT rolname::text AS r FROM pg_roles WHERE rolname = current_user AND (rolsuper OR rolbypassrls)`);
      return r.ok && r.rows.length ? leak(`current role ${String(r.rows[0]?.['r'])} bypasses RLS`) : pass;
    }),
  ];
}

const sessionProbe: Probe = {
  id: 'L-session-bypass',
  path: 'library',
  tries: 'withTenant(A, read): any role the session user (the gateway login) is or can SET ROLE to is superuser or has BYPASSRLS',
  run: (x) =>
    x.kind === 'pglite'
      ? Promise.resolve(skip(PGLITE_GAP))
      : asA(x, 'read', async (c) => {
          const r = await attempt(
            c,
            `SELECT rolname::text AS r FROM pg_roles WHERE (rolsuper OR rolbypassrls) AND (rolname = session_user OR pg_has_role(session_user, oid, 'MEMBER'))`,
          );
          return r.ok && r.rows.length ? leak(`session can become ${r.rows.map((row) => String(row['r'])).join(', ')}, which bypass RLS`) : pass;
        }),
};

async function stmt(x: ProbeContext, access: AccessLevel, text: string, values: unknown[]): Promise<{ ok: true; rowCount: number; rows: Record<string, unknown>[] } | { ok: false }> {
  try {
    const r = await x.gate.statement({ tenant: x.a, access }, { text, values });
    return { ok: true, rowCount: r.rowCount ?? 0, rows: r.rows as Record<string, unknown>[] };
  } catch {
    return { ok: false };
  }
}

function statementProbes(access: AccessLevel): Probe[] {
  const p = (s: string, tries: string, run: (x: ProbeContext) => Promise<Outcome>): Probe => ({ id: `S-${access}-${s}`, path: 'statement', tries: `gate.statement(A, ${access}): ${tries}`, run });
  const count = (r: Awaited<ReturnType<typeof stmt>>) => (r.ok ? Number(r.rows[0]?.['n'] ?? 0) : 0);
  const probes = [
    p('where-tenant', 'select with WHERE tenant column = B', async (x) => seen(count(await stmt(x, access, `SELECT count(*)::int AS n FROM ${x.t.table} WHERE ${x.t.tenantCol}::text = $1`, [x.b])), 'with WHERE tenant = B')),
    p('marker', "select B's canary value", async (x) => seen(count(await stmt(x, access, `SELECT count(*)::int AS n FROM ${x.t.table} WHERE ${x.t.markerSql} = $1`, [x.canaries.marker(x.b)])), "by B's canary value")),
    p('set-config-cte', "set_config('tenantgate.tenant', B) in a CTE of the same statement", async (x) =>
      seen(
        count(
          await stmt(x, access, `WITH s AS MATERIALIZED (SELECT set_config('tenantgate.tenant', $1, true) AS v) SELECT (SELECT count(*)::int FROM ${x.t.table} WHERE ${x.t.tenantCol}::text = $1) AS n FROM s`, [x.b]),
        ),
        'after set_config in the statement',
      ),
    ),
    p('set-role-inline', "set_config('role', <all-tenants platform role>) inside the statement", async (x) =>
      seen(
        count(
          await stmt(x, access, `WITH s AS MATERIALIZED (SELECT set_config('role', $2, true) AS v) SELECT (SELECT count(*)::int FROM ${x.t.table} WHERE ${x.t.tenantCol}::text = $1) AS n FROM s`, [
            x.b,
            x.names.platformAll,
          ]),
        ),
        'after set_config(role) in the statement',
      ),
    ),
  ];
  if (access === 'write') {
    probes.push(
      p('insert-b', 'insert a row with tenant column = B (must fail)', async (x) => {
        const r = await stmt(x, access, insertSql(x.t), [x.b, `${x.canaries.prefix}ins`]);
        return r.ok ? leak('an INSERT with tenant B succeeded (committed; verify removes it)') : pass;
      }),
      p('update-b', "update B's canary (must touch none)", async (x) => {
        const r = await stmt(x, access, `UPDATE ${x.t.table} SET ${x.t.markerSql} = ${x.t.markerSql} WHERE ${x.t.markerSql} = $1`, [x.canaries.marker(x.b)]);
        return r.ok && r.rowCount > 0 ? leak(`an UPDATE reached ${r.rowCount} row(s) of B`) : pass;
      }),
      p('delete-b', "delete B's canary (must touch none)", async (x) => {
        const r = await stmt(x, access, `DELETE FROM ${x.t.table} WHERE ${x.t.markerSql} = $1`, [x.canaries.marker(x.b)]);
        return r.ok && r.rowCount > 0 ? leak(`a DELETE removed ${r.rowCount} canary row(s) of B`) : pass;
      }),
    );
  }
  return probes;
}

function directProbes(): Probe[] {
  const p = (s: string, tries: string, run: (x: ProbeContext, db: Database) => Promise<Outcome>): Probe => ({
    id: `D-${s}`,
    path: 'direct',
    tries: `direct login of A: ${tries}`,
    run: async (x) => {
      if (x.kind === 'pglite') return skip(PGLITE_GAP);
      if (!x.direct) return skip('no direct login');
      if ('skipped' in x.direct) return skip(x.direct.skipped);
      const client = await x.direct.pool.connect();
      try {
        await client.query('BEGIN');
        return await run(x, { ...x.direct, query: (text: string, values?: unknown[]) => client.query(text, values) } as Database);
      } finally {
        await client.query('ROLLBACK').catch(() => {});
        client.release();
      }
    },
  });
  return [
    p('plain', "select B's canary row", async (x, db) => seen(await look(db, x), 'by a plain select')),
    p('where-tenant', 'select with WHERE tenant column = B', async (x, db) => seen(await look(db, x, 'tenant'), 'with WHERE tenant = B')),
    p('set-config', "set_config('tenantgate.tenant', B), then select", async (x, db) => {
      await attempt(db, `SELECT set_config('tenantgate.tenant', $1, false)`, [x.b]);
      return seen(await look(db, x, 'tenant'), 'after set_config');
    }),
    p('set-role-b-group', "SET ROLE to B's tenant group (must fail)", async (x, db) => {
      const r = await attempt(db, `SET ROLE ${ident(x.names.tenant(x.b))}`);
      if (r.ok) return leak(`SET ROLE ${x.names.tenant(x.b)} succeeded; sees ${await look(db, x, 'tenant')} row(s) of B`);
      return pass;
    }),
    p('set-role-access', 'SET ROLE to each gateway access role (must fail), then select', async (x, db) => {
      for (const role of [...Object.values(x.names.access), x.names.platformAll, x.names.gateway]) {
        if ((await attempt(db, `SET ROLE ${ident(role)}`)).ok) return leak(`SET ROLE ${role} succeeded; sees ${await look(db, x, 'tenant')} row(s) of B`);
      }
      return pass;
    }),
    p('set-session-authorization', "SET SESSION AUTHORIZATION to B's group (must fail)", async (x, db) => {
      const r = await attempt(db, `SET SESSION AUTHORIZATION ${ident(x.names.tenant(x.b))}`);
      return r.ok ? leak('SET SESSION AUTHORIZATION succeeded') : pass;
    }),
    p('insert-b', 'insert a row with tenant column = B (must fail)', async (x, db) => {
      const r = await attempt(db, insertSql(x.t), [x.b, `${x.canaries.prefix}ins`]);
      return r.ok ? leak('an INSERT with tenant B succeeded') : pass;
    }),
    p('login-bypass', 'the login or a role it can become is superuser or has BYPASSRLS', async (_x, db) => {
      const r = await attempt(db, `SELECT rolname::text AS r FROM pg_roles WHERE (rolsuper OR rolbypassrls) AND (rolname = session_user OR pg_has_role(session_user, oid, 'MEMBER'))`);
      return r.ok && r.rows.length ? leak(`login can become ${r.rows.map((row) => String(row['r'])).join(', ')}`) : pass;
    }),
  ];
}

interface HttpAnswer {
  status: number;
  text: string;
  json: { error?: { code?: string; message?: string }; rows?: unknown[][] } | undefined;
}

async function call(h: HttpContext, method: 'GET' | 'POST', path: string, body: unknown, key: string, headers: Record<string, string> = {}): Promise<HttpAnswer> {
  const res = await fetch(h.url.replace(/\/$/, '') + path, {
    method,
    headers: { 'x-api-key': key, ...(body === undefined ? {} : { 'content-type': 'application/json' }), ...headers },
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

function httpProbes(): Probe[] {
  const p = (s: string, tries: string, run: (x: ProbeContext, h: HttpContext) => Promise<Outcome>): Probe => ({
    id: `H-${s}`,
    path: 'http',
    tries: `HTTP API with A's key: ${tries}`,
    run: (x) => (x.http ? run(x, x.http) : Promise.resolve(skip('no gateway URL (pass --url)'))),
  });
  const showsB = (x: ProbeContext, a: HttpAnswer, what: string): Outcome => (a.text.includes(x.canaries.marker(x.b)) ? leak(`B's canary in the answer ${what} (HTTP ${a.status})`) : pass);
  const sql = (x: ProbeContext, h: HttpContext, text: string, key = h.readKey) => call(h, 'POST', '/v1/queries', { sql: text }, key);
  const lit = (s: string) => `'${s.replace(/'/g, "''")}'`;
  const countLeak = (a: HttpAnswer, what: string): Outcome => {
    const n = Number(a.json?.rows?.[0]?.[0] ?? 0);
    return a.status === 200 && n > 0 ? leak(`count ${n} of B's rows ${what}`) : pass;
  };
  const mustRefuse = (a: HttpAnswer, x: ProbeContext, what: string): Outcome =>
    a.status !== 403 ? leak(`${what} answered HTTP ${a.status}, not 403`) : showsB(x, a, what);
  const sameAnswer = (u: HttpAnswer, b: HttpAnswer, what: string): Outcome =>
    u.status !== b.status || u.json?.error?.code !== b.json?.error?.code || u.json?.error?.message !== b.json?.error?.message
      ? leak(`${what}: an unknown tenant answers ${u.status} ${u.json?.error?.code}, tenant B answers ${b.status} ${b.json?.error?.code} (existence oracle)`)
      : pass;
  const semantic = (x: ProbeContext, filters: unknown[] = []) => ({ dataset: x.t.dataset.name, dimensions: [x.t.markerCol], filters });
  return [
    p('semantic-plain', "semantic query of the canary dimension, no filter (control: A's own canary must be in the answer)", async (x, h) => {
      const a = await call(h, 'POST', '/v1/query', semantic(x), h.readKey);
      if (!a.text.includes(x.canaries.marker(x.a))) return skip(`control failed: A's own canary is not in the answer (HTTP ${a.status}), so this path proves nothing`);
      return showsB(x, a, 'of a plain semantic query');
    }),
    p('semantic-filter-tenant', 'semantic query with filter tenant column = B', async (x, h) =>
      showsB(x, await call(h, 'POST', '/v1/query', semantic(x, [{ field: x.t.dataset.tenantColumn, op: '=', value: x.b }]), h.readKey), 'with filter tenant = B'),
    ),
    p('semantic-filter-marker', "semantic query with filter = B's canary value", async (x, h) =>
      showsB(x, await call(h, 'POST', '/v1/query', semantic(x, [{ field: x.t.markerCol, op: '=', value: x.canaries.marker(x.b) }]), h.readKey), "with filter on B's canary"),
    ),
    p('semantic-filter-or', "semantic query with an IN list holding B's canary and A's", async (x, h) =>
      showsB(x, await call(h, 'POST', '/v1/query', semantic(x, [{ field: x.t.markerCol, op: 'in', value: [x.canaries.marker(x.a), x.canaries.marker(x.b)] }]), h.readKey), 'with an IN filter'),
    ),
    p('sql-select', "SQL endpoint: select the canary column (control: A's own canary must be in the answer)", async (x, h) => {
      const a = await sql(x, h, `SELECT ${x.t.markerSql} FROM ${x.t.dataset.name}`);
      if (!a.text.includes(x.canaries.marker(x.a))) return skip(`control failed: A's own canary is not in the answer (HTTP ${a.status}), so this path proves nothing`);
      return showsB(x, a, 'of a plain SQL select');
    }),
    p('sql-where-tenant', 'SQL endpoint: WHERE tenant column = B', async (x, h) =>
      showsB(x, await sql(x, h, `SELECT ${x.t.markerSql} FROM ${x.t.dataset.name} WHERE ${x.t.tenantCol} = ${lit(x.b)}`), 'with WHERE tenant = B'),
    ),
    p('sql-or-true', 'SQL endpoint: WHERE … OR true', async (x, h) =>
      showsB(x, await sql(x, h, `SELECT ${x.t.markerSql} FROM ${x.t.dataset.name} WHERE ${x.t.markerSql} = 'x' OR true`), 'with OR true'),
    ),
    p('sql-union', 'SQL endpoint: UNION with the real table', async (x, h) =>
      showsB(x, await sql(x, h, `SELECT ${x.t.markerSql} FROM ${x.t.dataset.name} UNION ALL SELECT ${x.t.markerSql} FROM ${x.t.table}`), 'of a UNION with the table'),
    ),
    p('sql-real-table', 'SQL endpoint: select from schema.table directly', async (x, h) => showsB(x, await sql(x, h, `SELECT ${x.t.markerSql} FROM ${x.t.table}`), 'from the real table')),
    p('sql-subquery-count', "SQL endpoint: scalar subquery counting B's canary", async (x, h) =>
      countLeak(await sql(x, h, `SELECT (SELECT count(*) FROM ${x.t.dataset.name} WHERE ${x.t.markerSql} = ${lit(x.canaries.marker(x.b))})`), 'through a subquery'),
    ),
    p('sql-cte', 'SQL endpoint: CTE over the dataset, then select', async (x, h) =>
      showsB(x, await sql(x, h, `WITH d AS (SELECT * FROM ${x.t.dataset.name}) SELECT ${x.t.markerSql} FROM d`), 'through a CTE'),
    ),
    p('sql-set-config', "SQL endpoint: set_config('tenantgate.tenant', B) in the select list", async (x, h) =>
      showsB(x, await sql(x, h, `SELECT set_config('tenantgate.tenant', ${lit(x.b)}, true), ${x.t.markerSql} FROM ${x.t.dataset.name}`), 'after set_config'),
    ),
    p('sql-update-b', "SQL endpoint (write key): update B's canary; the owner then checks it", async (x, h) => {
      if (!h.writeKey) return skip('A has no role with write access');
      await sql(x, h, `UPDATE ${x.t.dataset.name} SET ${x.t.markerSql} = ${lit(`${x.canaries.prefix}upd`)} WHERE ${x.t.markerSql} = ${lit(x.canaries.marker(x.b))}`, h.writeKey);
      return (await x.canaries.present(x.t, x.b)) === 0 ? leak("B's canary was changed through the SQL endpoint") : pass;
    }),
    p('sql-delete-b', "SQL endpoint (write key): delete B's canary; the owner then checks it", async (x, h) => {
      if (!h.writeKey) return skip('A has no role with write access');
      await sql(x, h, `DELETE FROM ${x.t.dataset.name} WHERE ${x.t.markerSql} = ${lit(x.canaries.marker(x.b))}`, h.writeKey);
      return (await x.canaries.present(x.t, x.b)) === 0 ? leak("B's canary was deleted through the SQL endpoint") : pass;
    }),
    p('header-b', `tenant header naming B (must be 403)`, async (x, h) => mustRefuse(await call(h, 'POST', '/v1/query', semantic(x), h.readKey, { [h.header]: x.b }), x, 'tenant header B')),
    p('path-b', 'path /v1/tenants/B/query (must be 403)', async (x, h) => mustRefuse(await call(h, 'POST', `/v1/tenants/${encodeURIComponent(x.b)}/query`, semantic(x), h.readKey), x, 'path B')),
    p('path-b-sql', 'path /v1/tenants/B/queries (must be 403)', async (x, h) =>
      mustRefuse(await call(h, 'POST', `/v1/tenants/${encodeURIComponent(x.b)}/queries`, { sql: `SELECT ${x.t.markerSql} FROM ${x.t.dataset.name}` }, h.readKey), x, 'SQL path B'),
    ),
    p('path-b-describe', 'GET /v1/tenants/B/tenant (must be 403)', async (x, h) => mustRefuse(await call(h, 'GET', `/v1/tenants/${encodeURIComponent(x.b)}/tenant`, undefined, h.readKey), x, 'describe B')),
    p('unknown-path-oracle', 'path naming an unknown tenant answers exactly like path B (no existence oracle)', async (x, h) =>
      sameAnswer(
        await call(h, 'POST', `/v1/tenants/${x.unknown}/query`, semantic(x), h.readKey),
        await call(h, 'POST', `/v1/tenants/${encodeURIComponent(x.b)}/query`, semantic(x), h.readKey),
        'path',
      ),
    ),
    p('unknown-header-oracle', 'tenant header naming an unknown tenant answers exactly like header B', async (x, h) =>
      sameAnswer(
        await call(h, 'POST', '/v1/query', semantic(x), h.readKey, { [h.header]: x.unknown }),
        await call(h, 'POST', '/v1/query', semantic(x), h.readKey, { [h.header]: x.b }),
        'header',
      ),
    ),
  ];
}

export const PROBES: Probe[] = [
  ...libraryProbes('read'),
  ...libraryProbes('write'),
  ...libraryProbes('admin'),
  sessionProbe,
  ...statementProbes('read'),
  ...statementProbes('write'),
  ...directProbes(),
  ...httpProbes(),
];

/** The catalogue without the code: what docs/security.md lists. */
export function catalogue(): Array<{ id: string; path: ProbePath; tries: string }> {
  return PROBES.map(({ id, path, tries }) => ({ id, path, tries }));
}
