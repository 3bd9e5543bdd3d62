import { type Check, tableNames } from '../finding.ts';

/** Every dataset table needs an index whose first column is the tenant column, or each tenant query scans every tenant. */
export const tenantIndex: Check = {
  id: 'TG008',
  title: 'dataset tables without an index leading with the tenant column',
  async run({ db, config }) {
    const r = await db.query<{ tbl: string; col: string; ok: boolean; c_collation: boolean }>(
      `SELECT t.tbl, t.col,
              EXISTS (SELECT 1 FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]
                       WHERE i.indrelid = to_regclass(t.tbl) AND a.attname = t.col) AS ok,
              EXISTS (SELECT 1 FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]
                       WHERE i.indrelid = to_regclass(t.tbl) AND a.attname = t.col AND i.indcollation[0] = 'pg_catalog."C"'::regcollation
                         AND a.attcollation <> 'pg_catalog."C"'::regcollation) AS c_collation
         FROM unnest($1::text[], $2::text[]) AS t(tbl, col) WHERE to_regclass(t.tbl) IS NOT NULL`,
      [tableNames(config), config.datasets.map((d) => d.tenantColumn)],
    );
    return r.rows.flatMap((row) =>
      row.ok && !row.c_collation
        ? []
        : [
            {
              id: this.id,
              severity: 'medium' as const,
              object: `table ${row.tbl}`,
              message: row.ok
                ? `the index leading with ${row.col} uses the "C" collation while the policies compare in the default one: the planner cannot use it (DESIGN.md collation trap)`
                : `no index on ${row.tbl} leads with ${row.col}: every tenant query reads every tenant's rows`,
              fix: `CREATE INDEX CONCURRENTLY ON ${row.tbl} (${row.col});`,
            },
          ],
    );
  },
};
