import { type Check, listRoles, prefixRolePattern, tableNames } from '../finding.ts';

/**
 * Extended statistics objects (CREATE STATISTICS) on dataset tables: their most-common-value lists
 * and expression statistics (pg_stats_ext, pg_stats_ext_exprs) are gathered across all tenants and
 * feed the planner's row estimates. Flagged when a tenantgate role can select every column the object
 * covers (what pg_stats_ext requires to show it; it also hides it while RLS is active for the reader,
 * but the planner still uses the values in EXPLAIN estimates). Plain pg_stats rows are hidden the same
 * way (their use in estimates remains, as on every RLS table, and is not flagged), so the view leaks
 * them only from tables with a tenant column and RLS off: TG020 (plain-statistics.ts).
 */
export const extendedStatistics: Check = {
  id: 'TG017',
  title: 'extended planner statistics on dataset tables readable by tenantgate roles',
  async run({ db, config, names }) {
    const tables = tableNames(config);
    const like = prefixRolePattern(names);
    const r = await db.query<{ stat: string; tbl: string; roles: string[] }>(
      `SELECT quote_ident(n.nspname) || '.' || quote_ident(s.stxname) AS stat, s.stxrelid::regclass::text AS tbl,
              ARRAY(SELECT r.rolname::text FROM pg_roles r
                     WHERE (r.rolname LIKE $2 OR r.rolname = $3)
                       AND has_any_column_privilege(r.oid, s.stxrelid, 'SELECT')
                       AND NOT EXISTS (SELECT 1 FROM unnest(s.stxkeys) k(k)
                                        WHERE NOT has_column_privilege(r.oid, s.stxrelid, k, 'SELECT'))
                     ORDER BY 1) AS roles
         FROM pg_statistic_ext s
         JOIN pg_namespace n ON n.oid = s.stxnamespace
        WHERE s.stxrelid IN (SELECT to_regclass(t) FROM unnest($1::text[]) AS t WHERE to_regclass(t) IS NOT NULL)
        ORDER BY 1`,
      [tables, like, names.gateway],
    );
    return r.rows
      .filter((row) => row.roles.length > 0)
      .map((row) => ({
        id: this.id,
        severity: 'medium' as const,
        object: `statistics ${row.stat}`,
        message: `${row.stat} keeps extended statistics on ${row.tbl} (most-common value combinations across all tenants), and ${listRoles(row.roles)} can select every column it covers: pg_stats_ext and planner estimates can reveal other tenants' values`,
        fix: `DROP STATISTICS ${row.stat}; -- or keep it only on columns no tenantgate role can read`,
      }));
  },
};
