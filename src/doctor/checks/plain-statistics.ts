import { ident } from '../../db/sql.ts';
import { type Check, listRoles, prefixRolePattern } from '../finding.ts';

/**
 * pg_stats shows a column's most common values and histogram, gathered across all rows, to every role
 * that may select the column; it hides them only while row security is active for the reader. So a
 * table with a tenant column (a dataset or not, as TG003) and row level security off, or a materialized
 * view with one (never any RLS), shows other tenants' values to any tenantgate role with a column grant.
 */
export const plainStatistics: Check = {
  id: 'TG020',
  title: 'planner statistics (pg_stats) of tenant tables without row level security readable by tenantgate roles',
  async run({ db, config, names }) {
    const columns = [...new Set([config.effective.defaults.tenant_column, ...config.datasets.map((d) => d.tenantColumn)])];
    const r = await db.query<{ tbl: string; kind: string; roles: string[] }>(
      `SELECT c.oid::regclass::text AS tbl, c.relkind::text AS kind,
              ARRAY(SELECT r.rolname::text FROM pg_roles r
                     WHERE (r.rolname LIKE $2 OR r.rolname = $3) AND has_any_column_privilege(r.oid, c.oid, 'SELECT')
                     ORDER BY 1) AS roles
         FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE c.relkind IN ('r', 'p', 'm') AND NOT c.relrowsecurity
          AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'tenantgate') AND n.nspname NOT LIKE 'pg_toast%'
          AND EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attname = ANY($1) AND NOT a.attisdropped)
        ORDER BY 1`,
      [columns, prefixRolePattern(names), names.gateway],
    );
    return r.rows
      .filter((row) => row.roles.length > 0)
      .map((row) => {
        const matview = row.kind === 'm';
        const revoke = `REVOKE ALL ON ${row.tbl} FROM ${row.roles.slice(0, 20).map(ident).join(', ')};`;
        return {
          id: this.id,
          severity: 'medium' as const,
          object: `${matview ? 'materialized view' : 'table'} ${row.tbl}`,
          message: `${row.tbl} has a tenant column and no row level security, and ${listRoles(row.roles)} can select from it: pg_stats shows them its most common values and histograms, gathered across every tenant's rows`,
          fix: matview ? revoke : `ALTER TABLE ${row.tbl} ENABLE ROW LEVEL SECURITY; ALTER TABLE ${row.tbl} FORCE ROW LEVEL SECURITY; -- pg_stats then hides it from them; or ${revoke}`,
        };
      });
  },
};
