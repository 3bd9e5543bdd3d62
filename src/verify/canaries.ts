import { randomBytes } from 'node:crypto';
import type { Dataset } from '../config/types.ts';
import type { Database } from '../db/database.ts';
import { ident, qualified } from '../db/sql.ts';

const TEXT_TYPES = new Set(['text', 'character varying', 'character']);
const NUMBER_TYPES = new Set(['smallint', 'integer', 'bigint', 'numeric', 'real', 'double precision']);
const TIME_TYPES = new Set(['timestamp with time zone', 'timestamp without time zone', 'date']);

/** One dataset as verify sees it: where the canary goes and how a row is made. */
export interface DatasetTarget {
  dataset: Dataset;
  /** Quoted schema.table. */
  table: string;
  /** Quoted tenant column. */
  tenantCol: string;
  /** Column carrying the canary marker (unquoted name, for the HTTP paths), quoted form in `markerSql`. */
  markerCol: string;
  markerSql: string;
  /** NOT NULL columns without a default, other than the tenant and marker columns: SQL value per column. */
  required: Array<{ column: string; value: string }>;
  /** Set when the dataset cannot carry a canary: every probe on it is skipped with this reason. */
  skipped?: string;
  /**
   * Tenant A's own copy of the table (quoted), where A's canary is. `table` is then tenant B's as A
   * can name it: B's own when both live in one database (a schema tier's copy, or the pooled table),
   * else A's (B's rows are in another database, out of reach by name).
   */
  own?: string;
}

/** Where a tenant's rows of a dataset are: the database (the owner's connection to it) and the quoted table. */
export type PlaceOf = (t: DatasetTarget, tenant: string) => Promise<{ db: Database; table: string }>;

interface ColumnInfo {
  column_name: string;
  data_type: string;
  is_nullable: string;
  column_default: string | null;
  is_identity: string;
  is_generated: string;
  character_maximum_length: number | null;
}

/** Read the table's columns and pick a marker column and values for required columns. */
export async function describeTarget(owner: Database, dataset: Dataset, markerLength: number): Promise<DatasetTarget> {
  const cols = (
    await owner.query<ColumnInfo>(
      `SELECT column_name::text, data_type::text, is_nullable::text, column_default::text, is_identity::text, is_generated::text, character_maximum_length::int
         FROM information_schema.columns WHERE table_schema = $1 AND table_name = $2 ORDER BY ordinal_position`,
      [dataset.schema, dataset.table],
    )
  ).rows;
  const base: DatasetTarget = {
    dataset,
    table: qualified(dataset.schema, dataset.table),
    tenantCol: ident(dataset.tenantColumn),
    markerCol: '',
    markerSql: '',
    required: [],
  };
  if (cols.length === 0) return { ...base, skipped: `table ${dataset.schema}.${dataset.table} not found` };
  const usable = (c: ColumnInfo) =>
    TEXT_TYPES.has(c.data_type) &&
    c.column_name !== dataset.tenantColumn &&
    c.is_generated !== 'ALWAYS' &&
    dataset.columns[c.column_name]?.access !== 'restricted' &&
    !dataset.columns[c.column_name]?.mask &&
    (c.character_maximum_length === null || c.character_maximum_length >= markerLength);
  const marker = cols.find((c) => usable(c) && dataset.dimensions.includes(c.column_name)) ?? cols.find(usable);
  if (!marker) return { ...base, skipped: 'no unmasked, unrestricted text column to carry a canary' };
  // Columns in a foreign key: a made-up value would have no parent row (order_items.order_id → orders).
  const fk = await owner.query<{ column: string; parent: string }>(
    `SELECT a.attname::text AS column, c.confrelid::regclass::text AS parent
       FROM pg_constraint c JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = ANY (c.conkey)
      WHERE c.contype = 'f' AND c.conrelid = to_regclass($1)`,
    [qualified(dataset.schema, dataset.table)],
  );
  const parents = new Map(fk.rows.map((r) => [r.column, r.parent]));
  const required: DatasetTarget['required'] = [];
  for (const c of cols) {
    if (c.column_name === dataset.tenantColumn || c.column_name === marker.column_name) continue;
    if (c.is_nullable === 'YES' || c.column_default !== null || c.is_identity === 'YES' || c.is_generated === 'ALWAYS') continue;
    const parent = parents.get(c.column_name);
    if (parent) return { ...base, skipped: `required column ${c.column_name} is a foreign key to ${parent}: verify cannot plant a canary row without a parent row (the tenant wall on this table is the same policy as on the others; probe them)` };
    let value: string;
    if (TEXT_TYPES.has(c.data_type)) value = `'tg'`;
    else if (NUMBER_TYPES.has(c.data_type)) value = '0';
    else if (c.data_type === 'boolean') value = 'false';
    else if (TIME_TYPES.has(c.data_type)) value = 'now()';
    else return { ...base, skipped: `required column ${c.column_name} has type ${c.data_type}, which verify cannot fill (supported: text, varchar, numeric, int, timestamptz, bool)` };
    required.push({ column: c.column_name, value });
  }
  return { ...base, markerCol: marker.column_name, markerSql: ident(marker.column_name), required };
}

/** `INSERT` of one row for `$1` tenant with `$2` marker. */
export function insertSql(t: DatasetTarget): string {
  const cols = [t.tenantCol, t.markerSql, ...t.required.map((r) => ident(r.column))];
  const vals = ['$1', '$2', ...t.required.map((r) => r.value)];
  return `INSERT INTO ${t.table} (${cols.join(', ')}) VALUES (${vals.join(', ')})`;
}

export class Canaries {
  /** Every marker of this run starts with this prefix; cleanup removes all of them. */
  readonly prefix = `tg-canary-${randomBytes(4).toString('hex')}-`;
  private readonly markers = new Map<string, string>();
  private readonly planted: Array<{ t: DatasetTarget; db: Database; table: string }> = [];
  count = 0;

  /** `placeOf`: where each tenant's rows are (default: the dataset's table, through the owner). */
  constructor(
    private readonly owner: Database,
    private readonly placeOf: PlaceOf = async (t) => ({ db: owner, table: t.table }),
  ) {}

  /** Longest marker this run makes (for choosing a column). */
  markerLength(tenants: number): number {
    return this.prefix.length + String(tenants).length + 6;
  }

  marker(tenant: string): string {
    let m = this.markers.get(tenant);
    if (!m) this.markers.set(tenant, (m = `${this.prefix}${this.markers.size}`));
    return m;
  }

  /** As the owner: one canary row per tenant in the dataset, each at its tenant's place. */
  async plant(t: DatasetTarget, tenants: string[]): Promise<void> {
    if (t.skipped) return;
    // One statement per place (the pooled table, a tenant's schema, a tenant's database), however many tenants.
    const places = new Map<string, { db: Database; table: string; tenants: string[] }>();
    for (const tenant of tenants) {
      const at = await this.placeOf(t, tenant);
      const key = `${at.db === this.owner ? '' : tenant}\u0000${at.table}`;
      const place = places.get(key) ?? { ...at, tenants: [] };
      place.tenants.push(tenant);
      places.set(key, place);
    }
    const cols = [t.tenantCol, t.markerSql, ...t.required.map((r) => ident(r.column))];
    for (const place of places.values()) {
      this.planted.push({ t, db: place.db, table: place.table });
      const r = await place.db.query(
        `INSERT INTO ${place.table} (${cols.join(', ')}) SELECT c.t, c.m${t.required.map((x) => `, ${x.value}`).join('')} FROM unnest($1::text[], $2::text[]) AS c(t, m)`,
        [place.tenants, place.tenants.map((x) => this.marker(x))],
      );
      this.count += r.rowCount ?? 0;
    }
  }

  /** The rows of this run still at the tenant's place, as the owner (probes use it to check writes). */
  async present(t: DatasetTarget, tenant: string): Promise<number> {
    const at = await this.placeOf(t, tenant);
    const r = await at.db.query<{ n: number }>(`SELECT count(*)::int AS n FROM ${at.table} WHERE ${t.markerSql} = $1 AND ${t.tenantCol}::text = $2`, [this.marker(tenant), tenant]);
    return r.rows[0]?.n ?? 0;
  }

  /** Remove every row carrying this run's prefix (canaries, and anything a leaking probe wrote), at every place planted. */
  async removeAll(): Promise<number> {
    let removed = 0;
    for (const { t, db, table } of this.planted) {
      const r = await db.query(`DELETE FROM ${table} WHERE left(${t.markerSql}, $2) = $1`, [this.prefix, this.prefix.length]);
      removed += r.rowCount ?? 0;
    }
    // The pooled table also holds what a leaking probe may have written under the dataset's name.
    for (const t of new Set(this.planted.map((p) => p.t))) {
      if (this.planted.some((p) => p.t === t && p.db === this.owner && p.table === t.table)) continue;
      const r = await this.owner.query(`DELETE FROM ${t.table} WHERE left(${t.markerSql}, $2) = $1`, [this.prefix, this.prefix.length]).catch(() => ({ rowCount: 0 }));
      removed += r.rowCount ?? 0;
    }
    return removed;
  }
}
