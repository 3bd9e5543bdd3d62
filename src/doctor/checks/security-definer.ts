import { ident } from '../../db/sql.ts';
import { type Check, type Finding, listRoles } from '../finding.ts';

/**
 * SECURITY DEFINER functions run as their owner: one a tenant-facing role (or PUBLIC) can execute
 * is a way around row level security, and one without a pinned search_path can be hijacked by
 * objects a caller creates earlier on the path. tenantgate's own helpers in schema tenantgate are
 * definer functions by design (granted to its roles, search_path pinned); only their search_path is checked.
 */
export const securityDefiner: Check = {
  id: 'TG011',
  title: 'SECURITY DEFINER functions executable by tenant roles or without a pinned search_path',
  async run({ db, names }) {
    const esc = (s: string) => s.replace(/[\\%_]/g, '\\$&');
    const tenantFacing = [...Object.values(names.access), names.platformAll, names.direct, names.directDefault];
    const r = await db.query<{ fn: string; schema: string; public_exec: boolean; pinned: boolean; roles: string[] }>(
      `SELECT p.oid::regprocedure::text AS fn, n.nspname AS schema,
              EXISTS (SELECT 1 FROM aclexplode(coalesce(p.proacl, acldefault('f', p.proowner))) a
                       WHERE a.grantee = 0 AND a.privilege_type = 'EXECUTE') AS public_exec,
              EXISTS (SELECT 1 FROM unnest(p.proconfig) cfg WHERE cfg LIKE 'search\\_path=%') AS pinned,
              CASE WHEN n.nspname = 'tenantgate' THEN ARRAY[]::text[]
                   ELSE ARRAY(SELECT r.rolname::text FROM pg_roles r
                               WHERE (r.rolname = ANY($1) OR r.rolname LIKE $2 OR r.rolname LIKE $3)
                                 AND has_function_privilege(r.oid, p.oid, 'EXECUTE')
                               ORDER BY 1) END AS roles
         FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
        WHERE p.prosecdef AND n.nspname NOT IN ('pg_catalog', 'information_schema')
        ORDER BY 1`,
      [tenantFacing, `${esc(names.prefix)}\\_t\\_%`, `${esc(names.prefix)}\\_l\\_%`],
    );
    const out: Finding[] = [];
    for (const row of r.rows) {
      const object = `function ${row.fn}`;
      if (row.schema !== 'tenantgate' && row.public_exec) {
        out.push({ id: this.id, severity: 'high', object, message: `${row.fn} is SECURITY DEFINER and PUBLIC can execute it: every role, tenant roles included, runs it with its owner's privileges, around row level security`, fix: `REVOKE EXECUTE ON FUNCTION ${row.fn} FROM PUBLIC;` });
      } else if (row.roles.length > 0) {
        const shown = listRoles(row.roles);
        out.push({ id: this.id, severity: 'high', object, message: `${row.fn} is SECURITY DEFINER and tenant-facing roles can execute it (${shown}): they run it with its owner's privileges, around row level security`, fix: `REVOKE EXECUTE ON FUNCTION ${row.fn} FROM ${row.roles.slice(0, 20).map(ident).join(', ')};` });
      }
      if (!row.pinned) {
        out.push({ id: this.id, severity: 'medium', object, message: `${row.fn} is SECURITY DEFINER without a pinned search_path: a caller who can create objects on its path can make it run their code as its owner`, fix: `ALTER FUNCTION ${row.fn} SET search_path = pg_catalog, pg_temp;` });
      }
    }
    return out;
  },
};
