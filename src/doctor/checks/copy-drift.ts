import { resolveNames } from '../../provision/apply.ts';
import { readTableShape, type TableShape } from '../../provision/table-ddl.ts';
import { ownerDatabases } from '../../tiers/databases.ts';
import { tenantDatabase, tenantSchema } from '../../tiers/location.ts';
import type { Check, Finding } from '../finding.ts';

type Queryable = Parameters<typeof readTableShape>[0];

/** A shape with the copy's own schema taken out of every name, so a copy and the pooled table compare equal when they match. */
function normal(shape: TableShape, schema: string): { columns: Map<string, string>; constraints: Map<string, string>; indexes: Map<string, string> } {
  const q = schema.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const strip = (s: string) => s.replace(new RegExp(`"?${q}"?\\.`, 'g'), '').replace(/\bpublic\./g, '').replace(/"/g, '');
  return {
    columns: new Map(
      shape.columns.map((c) => [
        c.name,
        [c.type, c.notnull ? 'not null' : 'null', c.def === null ? 'no default' : `default ${strip(c.def)}`, c.identity ? `identity ${c.identity}` : '', c.generated ? `generated ${c.generated}` : '', c.collation ?? '']
          .filter(Boolean)
          .join(', '),
      ]),
    ),
    // Foreign keys are not carried to copies (their targets may live elsewhere: tableDdl says why).
    constraints: new Map(shape.constraints.filter((c) => c.type !== 'f').map((c) => [c.name, strip(c.def)])),
    indexes: new Map(
      shape.indexes.map((def) => {
        const m = /^CREATE (?:UNIQUE )?INDEX (\S+) ON (?:ONLY )?\S+ (USING .*)$/s.exec(def);
        return [m?.[1] ?? def, strip(m ? `${def.startsWith('CREATE UNIQUE') ? 'unique ' : ''}${m[2]}` : def)];
      }),
    ),
  };
}

/** What differs between the pooled table and a copy, in words ("column note missing", "index x differs: …"). */
export function shapeDifferences(pooled: TableShape, pooledSchema: string, copy: TableShape, copySchema: string): string[] {
  const a = normal(pooled, pooledSchema);
  const b = normal(copy, copySchema);
  const out: string[] = [];
  const compare = (what: string, x: Map<string, string>, y: Map<string, string>) => {
    for (const [k, v] of x) {
      const w = y.get(k);
      if (w === undefined) out.push(`${what} ${k} missing`);
      else if (w !== v) out.push(`${what} ${k} is ${w}, the pooled table's is ${v}`);
    }
    for (const k of y.keys()) if (!x.has(k)) out.push(`${what} ${k} is extra`);
  };
  compare('column', a.columns, b.columns);
  compare('constraint', a.constraints, b.constraints);
  compare('index', a.indexes, b.indexes);
  return out;
}

/**
 * Every schema- and database-tier tenant's copy of each dataset table has the pooled table's
 * columns (names, types, NOT NULL, defaults), constraints and indexes. A copy that drifted (a
 * migration that missed it, a change by hand) breaks the tenant's queries or a later migration, and
 * a move into or out of that place.
 */
export const copyDrift: Check = {
  id: 'TG023',
  server: true,
  title: "a tenant's copy of a dataset table differs from the pooled table",
  async run({ db, config, main, env }) {
    const catalog = await db.query<{ e: boolean }>(`SELECT to_regclass('tenantgate.tenants') IS NOT NULL AS e`);
    if (!catalog.rows[0]?.e) return [];
    const places = (await db.query<{ id: string; tier: string; placement: string }>(`SELECT id, tier, placement FROM tenantgate.tenants WHERE tier <> 'pooled' ORDER BY id`)).rows.filter((t) => config.tenants.has(t.id));
    if (places.length === 0) return [];
    // The pooled tables (runDoctor adds the schema copies to config.datasets: keep the originals once).
    const originals = new Map<string, { schema: string; table: string }>();
    for (const d of config.datasets) if (!d.schema.startsWith('t_') || !places.some((p) => tenantSchema(p.id) === d.schema)) originals.set(`${d.schema}.${d.table}`, d);
    const pooled = new Map<string, TableShape | undefined>();
    for (const [k, d] of originals) pooled.set(k, await readTableShape(db, d.schema, d.table));
    const out: Finding[] = [];
    const prefix = resolveNames(config, env ?? process.env).prefix;
    const dbs = main ? ownerDatabases(config, main, env ?? process.env) : undefined;
    try {
      for (const p of places) {
        let there: Queryable = db;
        let schemaOf = (s: string) => s;
        let label = (rel: string) => `table ${rel}`;
        if (p.tier === 'schema') schemaOf = () => tenantSchema(p.id);
        else {
          if (!dbs) continue;
          const name = tenantDatabase(prefix, p.id);
          try {
            there = await dbs.get(p.placement, name);
          } catch {
            continue; // TG021 reports a tenant database that cannot be reached
          }
          label = (rel) => `database ${name}: table ${rel}`;
        }
        for (const [k, d] of originals) {
          const shape = pooled.get(k);
          if (!shape) continue;
          const schema = schemaOf(d.schema);
          const copy = await readTableShape(there, schema, d.table);
          const rel = `${schema}.${d.table}`;
          const diff = copy ? shapeDifferences(shape, d.schema, copy, schema) : ['the table is missing'];
          if (diff.length === 0) continue;
          out.push({
            id: this.id,
            severity: 'medium',
            object: label(rel),
            message: `tenant ${p.id}'s copy of ${k} differs from the pooled table: ${diff.slice(0, 6).join('; ')}${diff.length > 6 ? `; and ${diff.length - 6} more` : ''}`,
            fix: `-- tenantgate migrate status shows what ${p.tier}:${p.id} has applied; tenantgate migrate up applies what is missing. A change made by hand: make the copy match the pooled table (or make the change a migration).`,
          });
        }
      }
    } finally {
      await dbs?.close();
    }
    return out;
  },
};
