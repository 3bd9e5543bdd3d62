import { ident } from '../../db/sql.ts';
import { type Check, type Finding, OVER_DATASETS_CTE, listRoles, prefixRolePattern, tableNames } from '../finding.ts';

/**
 * Relations next to a dataset table that a tenantgate role can read around its row level security:
 * a materialized view over it (a matview has no RLS: it holds every tenant's rows as its owner saw them),
 * a child table (partition or inheritance child, from pg_inherits) without RLS of its own, queried
 * directly; and a sequence the table owns that a read-only role can read (its value leaks row counts).
 */
export const reachableRelations: Check = {
  id: 'TG015',
  title: 'materialized views, child tables and owned sequences of dataset tables readable by tenantgate roles',
  async run({ db, config, names }) {
    const tables = tableNames(config);
    const like = prefixRolePattern(names);
    const list = listRoles;
    const out: Finding[] = [];

    // Materialized views over a dataset table, directly or through views, and child tables without RLS.
    const rel = await db.query<{ rel: string; kind: string; base: string; roles: string[] }>(
      `${OVER_DATASETS_CTE}, kids(oid, base) AS (
         SELECT oid, base FROM base
         UNION
         SELECT i.inhrelid, k.base FROM kids k JOIN pg_inherits i ON i.inhparent = k.oid
       ), cand AS (
         SELECT o.oid, min(o.base) AS base, 'matview' AS kind FROM over o JOIN pg_class c ON c.oid = o.oid WHERE c.relkind = 'm' GROUP BY o.oid
         UNION ALL
         SELECT k.oid, min(k.base), 'child table' FROM kids k JOIN pg_class c ON c.oid = k.oid
          WHERE c.relkind IN ('r', 'p', 'f') AND NOT c.relrowsecurity AND k.oid NOT IN (SELECT oid FROM base) GROUP BY k.oid
       )
       SELECT x.oid::regclass::text AS rel, x.kind, x.base,
              ARRAY(SELECT r.rolname::text FROM pg_roles r
                     WHERE (r.rolname LIKE $2 OR r.rolname = $3) AND has_any_column_privilege(r.oid, x.oid, 'SELECT')
                     ORDER BY 1) AS roles
         FROM cand x
        ORDER BY 1`,
      [tables, like, names.gateway],
    );
    for (const row of rel.rows) {
      if (row.roles.length === 0) continue;
      const matview = row.kind === 'matview';
      out.push({
        id: this.id,
        severity: 'high',
        object: `${matview ? 'materialized view' : 'table'} ${row.rel}`,
        message: matview
          ? `${row.rel} is a materialized view over ${row.base}; materialized views have no row level security, and ${list(row.roles)} can select from it: it returns every tenant's rows`
          : `${row.rel} inherits from (or is a partition of) ${row.base} but has no row level security of its own, and ${list(row.roles)} can select from it directly: the parent's policies do not apply there`,
        fix: matview
          ? `REVOKE ALL ON ${row.rel} FROM ${row.roles.slice(0, 20).map(ident).join(', ')};`
          : `ALTER TABLE ${row.rel} ENABLE ROW LEVEL SECURITY; ALTER TABLE ${row.rel} FORCE ROW LEVEL SECURITY; REVOKE ALL ON ${row.rel} FROM ${row.roles.slice(0, 20).map(ident).join(', ')};`,
      });
    }

    // Sequences owned by dataset tables (serial and identity columns) readable by read-only roles.
    const readOnly = [names.access.read, names.access.platform, names.platformAll, names.direct, names.directDefault, ...[...config.tenants.keys()].map((id) => names.tenant(id))];
    const seq = await db.query<{ seq: string; tbl: string; roles: string[] }>(
      `SELECT s.oid::regclass::text AS seq, d.refobjid::regclass::text AS tbl,
              ARRAY(SELECT r.rolname::text FROM pg_roles r
                     WHERE r.rolname = ANY ($2::text[])
                       AND (has_sequence_privilege(r.oid, s.oid, 'SELECT') OR has_sequence_privilege(r.oid, s.oid, 'USAGE'))
                     ORDER BY 1) AS roles
         FROM unnest($1::text[]) AS t
         JOIN pg_depend d ON d.classid = 'pg_class'::regclass AND d.refclassid = 'pg_class'::regclass
                         AND d.refobjid = to_regclass(t) AND d.deptype IN ('a', 'i')
         JOIN pg_class s ON s.oid = d.objid AND s.relkind = 'S'
        WHERE to_regclass(t) IS NOT NULL
        ORDER BY 1`,
      [tables, readOnly],
    );
    for (const row of seq.rows) {
      if (row.roles.length === 0) continue;
      out.push({
        id: this.id,
        severity: 'low',
        object: `sequence ${row.seq}`,
        message: `${row.seq} belongs to ${row.tbl}, and read-only roles ${list(row.roles)} can read it (SELECT or USAGE): its value counts every tenant's inserts`,
        fix: `REVOKE ALL ON SEQUENCE ${row.seq} FROM ${row.roles.slice(0, 20).map(ident).join(', ')};`,
      });
    }
    return out;
  },
};
