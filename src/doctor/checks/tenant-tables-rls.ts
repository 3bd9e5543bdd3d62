import type { Check, Finding } from '../finding.ts';

/**
 * Every table that has a tenant column (a dataset or not) must have RLS enabled and forced, and
 * a table with RLS and no policy denies everything (usually a half-finished setup).
 */
export const tenantTablesRls: Check = {
  id: 'TG003',
  title: 'tables with a tenant column without row level security enabled and forced',
  async run({ db, config }) {
    const columns = [...new Set([config.effective.defaults.tenant_column, ...config.datasets.map((d) => d.tenantColumn)])];
    const r = await db.query<{ tbl: string; rls: boolean; force: boolean; policies: number }>(
      `SELECT c.oid::regclass::text AS tbl, c.relrowsecurity AS rls, c.relforcerowsecurity AS force,
              (SELECT count(*) FROM pg_policy p WHERE p.polrelid = c.oid)::int AS policies
         FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'tenantgate') AND n.nspname NOT LIKE 'pg_toast%'
          AND EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attname = ANY($1) AND NOT a.attisdropped)
        ORDER BY 1`,
      [columns],
    );
    const out: Finding[] = [];
    for (const row of r.rows) {
      if (!row.rls) out.push({ id: this.id, severity: 'critical', object: `table ${row.tbl}`, message: `${row.tbl} has a tenant column but row level security is disabled: every role with a grant reads every tenant`, fix: `ALTER TABLE ${row.tbl} ENABLE ROW LEVEL SECURITY; ALTER TABLE ${row.tbl} FORCE ROW LEVEL SECURITY; -- and add it to datasets: in tenantgate.yaml` });
      else if (!row.force) out.push({ id: this.id, severity: 'high', object: `table ${row.tbl}`, message: `${row.tbl} has row level security but not FORCE: its owner bypasses it`, fix: `ALTER TABLE ${row.tbl} FORCE ROW LEVEL SECURITY;` });
      if (row.rls && row.policies === 0) out.push({ id: 'TG004', severity: 'low', object: `table ${row.tbl}`, message: `${row.tbl} has row level security and no policy: it denies every row to everyone but its owner`, fix: 'tenantgate apply (if it is a dataset), or add a policy' });
    }
    return out;
  },
};
