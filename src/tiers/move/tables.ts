import type { Config } from '../../config/types.ts';
import type { Tier } from '../../config/schema.ts';
import { ident, literal, qualified } from '../../db/sql.ts';
import { TenantGateError } from '../../errors/index.ts';
import { physicalTable } from '../location.ts';

type Queryable = { query(text: string, params?: unknown[]): Promise<{ rows: Array<Record<string, unknown>> }> };

/** One dataset table of a moving tenant: where its rows are, where they go, and how to name them. */
export interface MoveTable {
  /** `schema.table` of the original (the dataset's table): names the table in the move's log and progress. */
  name: string;
  from: { schema: string; table: string };
  to: { schema: string; table: string };
  tenantColumn: string;
  /** Every column, in table order (checksums). */
  columns: string[];
  /** The columns a copy writes: all but generated ones. */
  insertable: string[];
  /** Primary key columns, in key order: chunks, resume points and replayed rows go by them. */
  key: string[];
  /** An identity column GENERATED ALWAYS: inserts need OVERRIDING SYSTEM VALUE. */
  overriding: boolean;
  /** Columns whose values come from a sequence (serial or identity): the new place's sequence is moved past the old one's. */
  sequenced: string[];
  /** Every column's type has a value hash (HASHABLE). */
  hashable: boolean;
  /**
   * Hash rows by their values (hash_record_extended) rather than their text: twice as fast, but only
   * where both places run the same server version and every column type can be hashed.
   */
  hashValues?: boolean;
}

/** Types whose value hash is built in (and stable for one server version): the rest are hashed by their text. */
const HASHABLE = new Set(['smallint', 'integer', 'bigint', 'numeric', 'real', 'double precision', 'text', 'character varying', 'character', 'boolean', 'date', 'timestamp with time zone', 'timestamp without time zone', 'time without time zone', 'interval', 'uuid', 'bytea', 'jsonb', 'inet', 'cidr', 'macaddr', 'oid', 'name']);

/** The dataset tables (each once) of a tenant moving `from` → `to`, read from the old place's catalogs. */
export async function moveTables(config: Config, source: Queryable, tenant: string, from: Tier, to: Tier): Promise<MoveTable[]> {
  const out: MoveTable[] = [];
  const seen = new Set<string>();
  for (const d of config.datasets) {
    const name = `${d.schema}.${d.table}`;
    if (seen.has(name)) continue;
    seen.add(name);
    const at = physicalTable(d, tenant, from);
    const rel = qualified(at.schema, at.table);
    const cols = (
      await source.query(
        `SELECT a.attname::text AS name, a.attgenerated::text AS generated, a.attidentity::text AS identity, format_type(a.atttypid, NULL) AS type,
                pg_get_serial_sequence($1, a.attname) IS NOT NULL AS sequenced,
                array_position(i.indkey::int2[], a.attnum) AS key_pos
           FROM pg_attribute a
           LEFT JOIN pg_index i ON i.indrelid = a.attrelid AND i.indisprimary
          WHERE a.attrelid = to_regclass($1) AND a.attnum > 0 AND NOT a.attisdropped
          ORDER BY a.attnum`,
        [rel],
      )
    ).rows as Array<{ name: string; generated: string; identity: string; type: string; sequenced: boolean; key_pos: number | null }>;
    if (cols.length === 0) throw new TenantGateError('MOVE_UNSUPPORTED', `${rel} does not exist at the tenant's place (run tenantgate apply)`);
    const key = cols.filter((c) => c.key_pos !== null).sort((a, b) => a.key_pos! - b.key_pos!).map((c) => c.name);
    if (key.length === 0) throw new TenantGateError('MOVE_UNSUPPORTED', `${rel} has no primary key: a move copies, resumes and verifies rows by it`);
    out.push({
      name,
      from: at,
      to: physicalTable(d, tenant, to),
      tenantColumn: d.tenantColumn,
      columns: cols.map((c) => c.name),
      insertable: cols.filter((c) => c.generated === '').map((c) => c.name),
      key,
      overriding: cols.some((c) => c.identity === 'a'),
      sequenced: cols.filter((c) => c.sequenced).map((c) => c.name),
      hashable: cols.every((c) => HASHABLE.has(c.type.replace(/\[\]$/, ''))),
    });
  }
  return out;
}

/** SQL fragments for one table at one place. */
export function tableSql(t: MoveTable, side: 'from' | 'to', tenant: string) {
  const at = t[side];
  const rel = qualified(at.schema, at.table);
  const keyList = t.key.map(ident).join(', ');
  const keyRow = t.key.length === 1 ? ident(t.key[0]!) : `(${keyList})`;
  return {
    rel,
    /** The tenant's rows only (pooled tables hold every pooled tenant's). */
    mine: `${ident(t.tenantColumn)} = ${literal(tenant)}`,
    keyList,
    keyRow,
    insertCols: t.insertable.map(ident).join(', '),
    /** The rows' keys given as a JSON array of objects ($n), as a relation k. */
    keysFrom: (n: number) => `SELECT ${t.key.map((c) => `k.${ident(c)}`).join(', ')} FROM jsonb_populate_recordset(NULL::${rel}, $${n}::jsonb) k`,
    /** A 64-bit hash of the row, the same wherever the row is (checksums compare it): of its values, or of its text. */
    rowHash: t.hashValues ? `hash_record_extended(ROW(${t.columns.map(ident).join(', ')}), 0)` : `hashtextextended(ROW(${t.columns.map(ident).join(', ')})::text, 0)`,
  };
}
