import type { AccessLevel } from '../../config/types.ts';
import { ident } from '../../db/sql.ts';
import type { TenantClient } from '../../execute/tenant-transaction.ts';
import { insertSql } from '../canaries.ts';
import { attempt, CONTROL_FAILED, leak, look, pass, PGLITE_GAP, rolledBack, seen, skip, type Outcome, type Probe, type ProbeContext } from './probe.ts';

/** withTenant as the library gives it to a service: SQL inside the tenant transaction tries to reach B. */
export function libraryProbes(access: AccessLevel): Probe[] {
  const id = (s: string) => `L-${access}-${s}`;
  const p = (s: string, tries: string, run: (x: ProbeContext, c: TenantClient) => Promise<Outcome>): Probe => ({
    id: id(s),
    path: 'library',
    tries: `withTenant(A, ${access}): ${tries}`,
    run: (x) => rolledBack(x, x.a, access, (c) => run(x, c)),
  });
  return [
    p('plain', "select B's canary row (control: A's own canary must be visible)", async (x, c) => {
      const own = await attempt(c, `SELECT 1 FROM ${x.t.own ?? x.t.table} WHERE ${x.t.markerSql} = $1`, [x.canaries.marker(x.a)]);
      if (!own.ok || own.rows.length === 0) return skip(CONTROL_FAILED);
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
      const r = await attempt(c, `UPDATE ${x.t.own ?? x.t.table} SET ${x.t.tenantCol} = $1 WHERE ${x.t.markerSql} = $2`, [x.b, x.canaries.marker(x.a)]);
      return r.ok && r.rowCount > 0 ? leak(`an UPDATE moved ${r.rowCount} row(s) to tenant B`) : pass;
    }),
    p('update-all-to-b', "update every row of A to tenant B with no WHERE (a WHERE brings in the SELECT policy as a check; without one only the UPDATE policy's WITH CHECK guards the new rows; 2 s cap, rolled back)", async (x, c) => {
      await attempt(c, `SELECT set_config('statement_timeout', '2000', true)`);
      const r = await attempt(c, `UPDATE ${x.t.table} SET ${x.t.tenantCol} = $1`, [x.b]);
      if (!r.ok && (r.error as { code?: string })?.code === '57014') return skip('A has too many rows for a whole-tenant UPDATE within 2 s');
      return r.ok && r.rowCount > 0 ? leak(`a whole-tenant UPDATE moved ${r.rowCount} row(s) of A to tenant B`) : pass;
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

/** The audit trail through the library: a tenant admin transaction sees its own chain only. */
export const auditProbe: Probe = {
  id: 'L-audit-read',
  path: 'library',
  tries: "withTenant(A, admin): select B's audit records (by tenant, and after set_config of the tenant to B)",
  run: (x) =>
    rolledBack(x, x.a, 'admin', async (c) => {
      const n1 = await attempt(c, `SELECT count(*)::int AS n FROM tenantgate.audit_log WHERE tenant = $1`, [x.b]);
      await attempt(c, `SELECT set_config('tenantgate.tenant', $1, true)`, [x.b]);
      const n2 = await attempt(c, `SELECT count(*)::int AS n FROM tenantgate.audit_log WHERE tenant <> $1`, [x.a]);
      const n = (n1.ok ? Number(n1.rows[0]?.['n'] ?? 0) : 0) + (n2.ok ? Number(n2.rows[0]?.['n'] ?? 0) : 0);
      return n > 0 ? leak(`${n} audit record(s) of other tenants visible`) : pass;
    }),
};

export const sessionProbe: Probe = {
  id: 'L-session-bypass',
  path: 'library',
  tries: 'withTenant(A, read): any role the session user (the gateway login) is or can SET ROLE to is superuser or has BYPASSRLS',
  run: (x) =>
    x.kind === 'pglite'
      ? Promise.resolve(skip(PGLITE_GAP))
      : rolledBack(x, x.a, 'read', async (c) => {
          const r = await attempt(
            c,
            `SELECT rolname::text AS r FROM pg_roles WHERE (rolsuper OR rolbypassrls) AND (rolname = session_user OR pg_has_role(session_user, oid, 'MEMBER'))`,
          );
          return r.ok && r.rows.length ? leak(`session can become ${r.rows.map((row) => String(row['r'])).join(', ')}, which bypass RLS`) : pass;
        }),
};

