import type { MoveTable } from './tables.ts';
import { tableSql } from './tables.ts';

type Queryable = { query(text: string, params?: unknown[]): Promise<{ rows: Array<Record<string, unknown>> }> };

/** A table's rows of one tenant in two numbers: how many, and the sum of a 64-bit hash of each row's text (order does not matter). */
export interface TableChecksum {
  rows: string;
  sum: string;
}

/**
 * Settings under which a row prints the same text on any server (time zone, date and float
 * formats): set in the transaction that computes checksums or row hashes.
 */
export const STABLE_TEXT = `SET LOCAL timezone = 'UTC'; SET LOCAL datestyle = 'ISO, MDY'; SET LOCAL intervalstyle = 'postgres'; SET LOCAL extra_float_digits = 1; SET LOCAL bytea_output = 'hex'`;

export async function tableChecksum(c: Queryable, t: MoveTable, side: 'from' | 'to', tenant: string): Promise<TableChecksum> {
  const s = tableSql(t, side, tenant);
  const r = await c.query(`SELECT count(*)::text AS rows, coalesce(sum(${s.rowHash}), 0)::text AS sum FROM ${s.rel} WHERE ${s.mine}`);
  return { rows: r.rows[0]!['rows'] as string, sum: r.rows[0]!['sum'] as string };
}

/** The row hashes of these keys' rows (sorted): the rows changed since the checksums were taken, compared one by one. */
export async function rowHashes(c: Queryable, t: MoveTable, side: 'from' | 'to', tenant: string, keys: Array<Record<string, unknown>>): Promise<string[]> {
  if (keys.length === 0) return [];
  const s = tableSql(t, side, tenant);
  const r = await c.query(`SELECT ${s.rowHash}::text AS h FROM ${s.rel} WHERE ${s.mine} AND ${s.keyRow} IN (${s.keysFrom(1)}) ORDER BY 1`, [JSON.stringify(keys)]);
  return r.rows.map((x) => x['h'] as string);
}
