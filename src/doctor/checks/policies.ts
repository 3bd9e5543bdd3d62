import { type Check, type Finding, tableNames } from '../finding.ts';

/** Policies on tenant tables that widen access: always true, write policies without WITH CHECK, direct-login policies keyed on a setting. */
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
    const trivially = (e: string | null) => e !== null && /^\(*\s*true\s*\)*$/i.test(e.trim());
    for (const p of r.rows) {
      const obj = `policy ${p.polname} on ${p.tbl}`;
      if (p.permissive && (trivially(p.qual) || trivially(p.chk))) {
        out.push({ id: this.id, severity: 'critical', object: obj, message: `${p.polname} is permissive and always true: it admits every tenant's rows to ${p.roles.join(', ')}`, fix: `DROP POLICY ${p.polname} ON ${p.tbl};` });
      }
      // INSERT without WITH CHECK admits any new row; UPDATE/ALL fall back to USING, so they are only noted.
      if (p.cmd === 'a' && p.chk === null) {
        out.push({ id: 'TG006', severity: 'high', object: obj, message: `${p.polname} lets ${p.roles.join(', ')} write without WITH CHECK: rows can be written into another tenant`, fix: `ALTER POLICY ${p.polname} ON ${p.tbl} WITH CHECK (<tenant predicate>);` });
      }
      if (p.roles.includes(names.direct) && p.qual && /current_setting/i.test(p.qual)) {
        out.push({ id: 'TG007', severity: 'critical', object: obj, message: `${p.polname} keys direct logins on a setting, which a session can change`, fix: 'tenantgate apply (direct-login policies are keyed on the login role)' });
      }
    }
    return out;
  },
};
