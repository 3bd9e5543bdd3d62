import { type Check, type Finding, tableNames } from '../finding.ts';

/** Policies on tenant tables that widen access: always true, write checks that do not hold the tenant, direct-login policies keyed on a setting. */
export const policies: Check = {
  id: 'TG005',
  title: 'permissive, always-true or unchecked policies on dataset tables',
  async run({ db, config, names }) {
    const tables = tableNames(config);
    const r = await db.query<{ tbl: string; polname: string; cmd: string; permissive: boolean; roles: string[]; qual: string | null; chk: string | null }>(
      `SELECT c.oid::regclass::text AS tbl, p.polname, p.polcmd AS cmd, p.polpermissive AS permissive,
              ARRAY(SELECT CASE WHEN o = 0 THEN 'public' ELSE pg_get_userbyid(o)::text END FROM unnest(p.polroles) o)::text[] AS roles,
              pg_get_expr(p.polqual, p.polrelid) AS qual, pg_get_expr(p.polwithcheck, p.polrelid) AS chk
         FROM pg_policy p JOIN pg_class c ON c.oid = p.polrelid
        WHERE c.oid = ANY(ARRAY(SELECT to_regclass(t) FROM unnest($1::text[]) t WHERE to_regclass(t) IS NOT NULL))
        ORDER BY 1, 2`,
      [tables],
    );
    const out: Finding[] = [];
    // The tenant column of each dataset table, as regclass prints the table.
    const tenantColumn = new Map(config.datasets.map((d) => [d.schema === 'public' ? d.table : `${d.schema}.${d.table}`, d.tenantColumn]));
    const col = (tbl: string) => tenantColumn.get(tbl) ?? tenantColumn.get(tbl.replace(/^public\./, '')) ?? config.effective.defaults.tenant_column;
    const mentions = (expr: string, column: string) => new RegExp(`(^|[^a-z0-9_$"])"?${column}"?($|[^a-z0-9_$"])`).test(expr);
    const trivially = (e: string | null) => e !== null && /^\(*\s*true\s*\)*$/i.test(e.trim());
    for (const p of r.rows) {
      const obj = `policy ${p.polname} on ${p.tbl}`;
      if (p.permissive && (trivially(p.qual) || trivially(p.chk))) {
        out.push({ id: this.id, severity: 'critical', object: obj, message: `${p.polname} is permissive and always true: it admits every tenant's rows to ${p.roles.join(', ')}`, fix: `DROP POLICY ${p.polname} ON ${p.tbl};` });
      }
      // The check on new rows: WITH CHECK, or for UPDATE/ALL without one, USING. An INSERT policy with
      // neither admits no row at all (PostgreSQL fails closed); a check that does not name the tenant
      // column lets a write put a row into another tenant (a WHERE-less UPDATE is not even held by the
      // SELECT policy). Restrictive policies only narrow, so only permissive ones are judged.
      const check = p.chk ?? (p.cmd === 'w' || p.cmd === '*' ? p.qual : null);
      const writes = p.cmd === 'a' || p.cmd === 'w' || p.cmd === '*';
      if (writes && p.permissive && check === null) {
        out.push({ id: 'TG006', severity: 'low', object: obj, message: `${p.polname} is an INSERT policy without WITH CHECK: PostgreSQL admits no row through it (fail closed), which is probably not what was meant`, fix: `ALTER POLICY ${p.polname} ON ${p.tbl} WITH CHECK (${col(p.tbl)} = <tenant>);` });
      } else if (writes && p.permissive && check !== null && !mentions(check, col(p.tbl))) {
        out.push({ id: 'TG006', severity: 'high', object: obj, message: `${p.polname} lets ${p.roles.join(', ')} write rows whose ${col(p.tbl)} it never checks${p.chk === null ? ' (no WITH CHECK, and USING does not name it)' : ''}: a write can put rows into another tenant`, fix: `ALTER POLICY ${p.polname} ON ${p.tbl} WITH CHECK (${col(p.tbl)} = <tenant>);` });
      }
      if (p.roles.includes(names.direct) && p.qual && /current_setting/i.test(p.qual)) {
        out.push({ id: 'TG007', severity: 'critical', object: obj, message: `${p.polname} keys direct logins on a setting, which a session can change`, fix: 'tenantgate apply (direct-login policies are keyed on the login role)' });
      }
    }
    return out;
  },
};
