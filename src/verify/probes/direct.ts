import type { Database } from '../../db/database.ts';
import { ident } from '../../db/sql.ts';
import { insertSql } from '../canaries.ts';
import { attempt, leak, look, pass, PGLITE_GAP, seen, skip, type Outcome, type Probe, type ProbeContext } from './probe.ts';

/** A per-tenant database login (`key create --db-login`): isolated by the database alone. */
export function directProbes(): Probe[] {
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
    p('other-schema', "read B's own schema (B in tier schema): must be refused", async (x, db) => {
      if (x.tiers?.b.tier !== 'schema' || x.tiers.a.tier === 'database') return skip('B is not in tier schema beside A');
      const r = await attempt(db, `SELECT ${x.t.tenantCol}::text AS t FROM ${x.t.table} LIMIT 1`);
      return r.ok ? leak(`A's login may read ${x.t.table} (${r.rows.length} row(s))`) : pass;
    }),
    p('other-database', "connect to B's own database (B in tier database): must be refused", async (x) => {
      if (x.tiers?.b.tier !== 'database') return skip('B is not in tier database');
      const other = await x.connectOther?.();
      if (!other) return skip("no URL to B's database for A's login");
      try {
        const r = await other.query(`SELECT count(*)::int AS n FROM ${x.t.table} WHERE ${x.t.tenantCol}::text = $1`, [x.b]).catch((err: { code?: string }) => err);
        if ('rows' in r) return leak(`A's login connected to B's database and counted ${String(r.rows[0]?.['n'])} row(s) of B`);
        // 42501: no CONNECT; 28000/28P01: refused by pg_hba; 3D000: no such database. All keep A out.
        return ['42501', '28000', '28P01', '3D000'].includes(String(r.code)) ? pass : { status: 'error', reason: `connecting failed in an unexpected way (${String(r.code)})` };
      } finally {
        await other.close().catch(() => {});
      }
    }),
    p('login-bypass', 'the login or a role it can become is superuser or has BYPASSRLS', async (_x, db) => {
      const r = await attempt(db, `SELECT rolname::text AS r FROM pg_roles WHERE (rolsuper OR rolbypassrls) AND (rolname = session_user OR pg_has_role(session_user, oid, 'MEMBER'))`);
      return r.ok && r.rows.length ? leak(`login can become ${r.rows.map((row) => String(row['r'])).join(', ')}`) : pass;
    }),
  ];
}

