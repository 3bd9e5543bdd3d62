import { type Check, OVER_DATASETS_CTE, listRoles, prefixRolePattern, tableNames } from '../finding.ts';

/**
 * A view runs with its owner's privileges (unless `security_invoker`, PG15+), so row level security
 * on the tables under it is checked against the owner, who usually bypasses it: any tenantgate role
 * that can select from such a view reads every tenant's rows.
 */
export const viewsSecurityInvoker: Check = {
  id: 'TG010',
  title: 'views over dataset tables without security_invoker that tenantgate roles can read',
  async run({ db, config, names }) {
    const tables = tableNames(config);
    const like = prefixRolePattern(names);
    // Views that depend on a dataset table, directly or through other views.
    const r = await db.query<{ view: string; base: string; roles: string[] }>(
      `${OVER_DATASETS_CTE}
       SELECT c.oid::regclass::text AS view, min(o.base) AS base,
              ARRAY(SELECT r.rolname::text FROM pg_roles r
                     WHERE (r.rolname LIKE $2 OR r.rolname = $3) AND has_any_column_privilege(r.oid, c.oid, 'SELECT')
                     ORDER BY 1) AS roles
         FROM over o JOIN pg_class c ON c.oid = o.oid
        WHERE c.relkind = 'v'
          AND NOT EXISTS (SELECT 1 FROM unnest(c.reloptions) opt WHERE lower(opt) ~ '^security_invoker=(true|on|yes|1|t|y)$')
        GROUP BY c.oid
        ORDER BY 1`,
      [tables, like, names.gateway],
    );
    return r.rows
      .filter((row) => row.roles.length > 0)
      .map((row) => ({
        id: this.id,
        severity: 'high' as const,
        object: `view ${row.view}`,
        message: `${row.view} reads ${row.base} with its owner's privileges (no security_invoker), and ${listRoles(row.roles)} can select from it: row level security is checked against the owner, so it can return every tenant's rows`,
        fix: `ALTER VIEW ${row.view} SET (security_invoker = true);`,
      }));
  },
};
