import type { Check } from '../finding.ts';

/**
 * A view runs with its owner's privileges (unless `security_invoker`, PG15+), so row level security
 * on the tables under it is checked against the owner, who usually bypasses it: any tenantgate role
 * that can select from such a view reads every tenant's rows.
 */
export const viewsSecurityInvoker: Check = {
  id: 'TG010',
  title: 'views over dataset tables without security_invoker that tenantgate roles can read',
  async run({ db, config, names }) {
    const tables = config.datasets.map((d) => `${d.schema}.${d.table}`);
    const like = `${names.prefix.replace(/[\\%_]/g, '\\$&')}\\_%`;
    // Views that depend on a dataset table, directly or through other views.
    const r = await db.query<{ view: string; base: string; roles: string[] }>(
      `WITH RECURSIVE base AS (
         SELECT to_regclass(t)::oid AS oid, t AS base FROM unnest($1::text[]) AS t WHERE to_regclass(t) IS NOT NULL
       ), over(oid, base) AS (
         SELECT oid, base FROM base
         UNION
         SELECT rw.ev_class, o.base
           FROM over o
           JOIN pg_depend d ON d.refclassid = 'pg_class'::regclass AND d.refobjid = o.oid AND d.classid = 'pg_rewrite'::regclass
           JOIN pg_rewrite rw ON rw.oid = d.objid AND rw.ev_class <> o.oid
       )
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
        message: `${row.view} reads ${row.base} with its owner's privileges (no security_invoker), and ${row.roles.slice(0, 5).join(', ')}${row.roles.length > 5 ? ` and ${row.roles.length - 5} more` : ''} can select from it: row level security is checked against the owner, so it can return every tenant's rows`,
        fix: `ALTER VIEW ${row.view} SET (security_invoker = true);`,
      }));
  },
};
