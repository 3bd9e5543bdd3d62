import { type Check, type Finding, tableNames } from '../finding.ts';

/** Unique constraints and foreign keys without the tenant column are existence oracles across tenants (and FKs can point into another tenant). */
export const crossTenantKeys: Check = {
  id: 'TG009',
  title: 'unique constraints and foreign keys that leave out the tenant column',
  async run({ db, config }) {
    const r = await db.query<{ tbl: string; conname: string; contype: string; col: string; has: boolean; def: string }>(
      `SELECT c.conrelid::regclass::text AS tbl, c.conname, c.contype, t.col, pg_get_constraintdef(c.oid) AS def,
              EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.conrelid AND a.attnum = ANY(c.conkey) AND a.attname = t.col) AS has
         FROM unnest($1::text[], $2::text[]) AS t(tbl, col)
         JOIN pg_constraint c ON c.conrelid = to_regclass(t.tbl)
        WHERE c.contype IN ('u', 'p', 'f') AND to_regclass(t.tbl) IS NOT NULL
        ORDER BY 1, 2`,
      [tableNames(config), config.datasets.map((d) => d.tenantColumn)],
    );
    const out: Finding[] = [];
    for (const row of r.rows) {
      if (row.has) continue;
      // A primary key on a generated surrogate id is common; it is an oracle only where callers choose the value.
      const severity = row.contype === 'f' ? 'medium' : row.contype === 'p' ? 'low' : 'medium';
      out.push({
        id: this.id,
        severity,
        object: `constraint ${row.conname} on ${row.tbl}`,
        message:
          row.contype === 'f'
            ? `foreign key ${row.conname} (${row.def}) leaves out ${row.col}: a row can reference another tenant's row`
            : `${row.contype === 'p' ? 'primary key' : 'unique constraint'} ${row.conname} (${row.def}) leaves out ${row.col}: a conflict tells one tenant that another holds the value`,
        fix: `-- include ${row.col} in ${row.conname}, e.g. UNIQUE (${row.col}, …) / FOREIGN KEY (${row.col}, …) REFERENCES …(${row.col}, …)`,
      });
    }
    return out;
  },
};
