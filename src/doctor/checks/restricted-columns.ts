import { ident } from '../../db/sql.ts';
import { type Check, listRoles, prefixRolePattern } from '../finding.ts';

/** Columns the config marks `access: restricted` must not be readable by any tenantgate role, by a table-wide or a column grant. */
export const restrictedColumns: Check = {
  id: 'TG013',
  title: 'restricted columns readable by tenantgate roles',
  async run({ db, config, names }) {
    const pairs = config.datasets.flatMap((d) =>
      Object.entries(d.columns)
        .filter(([, rule]) => rule.access === 'restricted')
        .map(([col]) => ({ tbl: `${d.schema}.${d.table}`, col })),
    );
    if (pairs.length === 0) return [];
    const like = prefixRolePattern(names);
    const r = await db.query<{ tbl: string; col: string; roles: string[] }>(
      `SELECT a.attrelid::regclass::text AS tbl, a.attname::text AS col,
              ARRAY(SELECT r.rolname::text FROM pg_roles r
                     WHERE (r.rolname LIKE $3 OR r.rolname = $4) AND has_column_privilege(r.oid, a.attrelid, a.attnum, 'SELECT')
                     ORDER BY 1) AS roles
         FROM unnest($1::text[], $2::text[]) AS x(tbl, col)
         JOIN pg_attribute a ON a.attrelid = to_regclass(x.tbl) AND a.attname = x.col AND a.attnum > 0 AND NOT a.attisdropped
        ORDER BY 1, 2`,
      [pairs.map((p) => p.tbl), pairs.map((p) => p.col), like, names.gateway],
    );
    return r.rows
      .filter((row) => row.roles.length > 0)
      .map((row) => ({
        id: this.id,
        severity: 'critical' as const,
        object: `column ${row.tbl}.${row.col}`,
        message: `${row.tbl}.${row.col} is restricted in the config, but ${listRoles(row.roles)} can select it (a table-wide or column grant, or through PUBLIC or a membership)`,
        fix: `REVOKE SELECT ON TABLE ${row.tbl} FROM ${row.roles.slice(0, 20).map(ident).join(', ')}; -- then tenantgate apply restores the column grants`,
      }));
  },
};
