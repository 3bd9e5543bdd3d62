import { pipeline } from 'node:stream/promises';
import type pg from 'pg';
import { from as copyFrom, to as copyTo } from 'pg-copy-streams';
import { inTransaction, type Database } from '../../db/database.ts';
import { ident, literal } from '../../db/sql.ts';
import { TenantGateError } from '../../errors/index.ts';
import { tableSql, type MoveTable } from './tables.ts';

/**
 * Moving rows: the bulk copy (in key order, resumable from the new place's last key) and the
 * replay of rows written since the move began. On a server, binary COPY streamed from one session
 * to another (between databases or within one); within the embedded database, INSERT … SELECT;
 * between an embedded database and anything else (one session, no COPY streams), JSON chunks.
 */

type Side = 'from' | 'to';

const conflict = (t: MoveTable, err: unknown) =>
  (err as { code?: string }).code === '23505'
    ? new TenantGateError('MOVE_CONFLICT', `rows of the tenant in ${t.name} have keys that rows already at the new place use (${(err as { detail?: string }).detail ?? 'duplicate key'}): nothing was overwritten`, { cause: err })
    : err;

/** The tenant's last key at the new place (as text), or undefined when it has no rows there. */
async function lastKey(to: Database, t: MoveTable, tenant: string): Promise<string[] | undefined> {
  const s = tableSql(t, 'to', tenant);
  const r = await to.query(`SELECT ${t.key.map((k, i) => `${ident(k)}::text AS k${i}`).join(', ')} FROM ${s.rel} WHERE ${s.mine} ORDER BY ${s.keyList} DESC LIMIT 1`);
  const row = r.rows[0];
  return row ? t.key.map((_, i) => row[`k${i}`] as string) : undefined;
}

/** The source rows after `after`, in key order, at most `limit`: a SELECT over the old place. */
function chunkSelect(t: MoveTable, tenant: string, after: string[] | undefined, limit: number, columns = t.insertable): string {
  const s = tableSql(t, 'from', tenant);
  const past = after ? ` AND ${s.keyRow} > (${after.map(literal).join(', ')})` : '';
  return `SELECT ${columns.map(ident).join(', ')} FROM ${s.rel} WHERE ${s.mine}${past} ORDER BY ${s.keyList} LIMIT ${limit}`;
}

function insertInto(t: MoveTable, tenant: string): string {
  const s = tableSql(t, 'to', tenant);
  return `INSERT INTO ${s.rel} (${s.insertCols})${t.overriding ? ' OVERRIDING SYSTEM VALUE' : ''}`;
}

export interface CopyOptions {
  chunkRows: number;
  /** After each chunk: rows copied by it. */
  onChunk: (rows: number) => void | Promise<void>;
}

/**
 * Copy the tenant's rows of one table to the new place, chunk by chunk in key order, starting past
 * the last key already there: a rerun after a crash goes on where the last committed chunk ended
 * (rows changed meanwhile are in the log and replayed after). Returns the rows copied now.
 */
export async function copyTable(from: Database, to: Database, t: MoveTable, tenant: string, o: CopyOptions): Promise<number> {
  let after = await lastKey(to, t, tenant);
  let total = 0;
  for (;;) {
    let n: number;
    try {
      if (from.kind === 'postgres' && to.kind === 'postgres') {
        // Even within one database: COPY FROM loads in bulk, about twice as fast as INSERT … SELECT.
        n = await streamChunk(from, to, t, tenant, after, o.chunkRows);
      } else if (from === to) {
        // The embedded database (one session): the rows never leave it.
        const r = await to.query(`${insertInto(t, tenant)} ${chunkSelect(t, tenant, after, o.chunkRows)}`);
        n = r.rowCount ?? 0;
      } else {
        const rows = await from.query<{ r: string | null }>(`SELECT json_agg(c)::text AS r FROM (${chunkSelect(t, tenant, after, o.chunkRows)}) c`);
        const json = rows.rows[0]?.r;
        n = json ? ((await to.query(`${insertInto(t, tenant)} SELECT ${tableSql(t, 'to', tenant).insertCols} FROM json_populate_recordset(NULL::${tableSql(t, 'to', tenant).rel}, $1::json)`, [json])).rowCount ?? 0) : 0;
      }
    } catch (err) {
      throw conflict(t, err);
    }
    if (n === 0) return total;
    total += n;
    await o.onChunk(n);
    after = await lastKey(to, t, tenant);
  }
}

/** One chunk as binary COPY, streamed from the old server to the new one without buffering it. */
async function streamChunk(from: Database, to: Database, t: MoveTable, tenant: string, after: string[] | undefined, limit: number): Promise<number> {
  const src = await from.pool.connect();
  const dst = await to.pool.connect();
  try {
    const out = src.query(copyTo(`COPY (${chunkSelect(t, tenant, after, limit)}) TO STDOUT (FORMAT binary)`));
    const s = tableSql(t, 'to', tenant);
    const into = dst.query(copyFrom(`COPY ${s.rel} (${s.insertCols}) FROM STDIN (FORMAT binary)`));
    await pipeline(out, into);
    return into.rowCount ?? 0;
  } finally {
    src.release();
    dst.release();
  }
}

/**
 * Make the new place hold exactly what the old place holds now for these keys of one table: the
 * rows still there are written again, the rows gone are removed. Idempotent, so a rerun may replay
 * a key twice. Keys are JSON objects of the primary key columns (as the capture trigger logs them).
 */
export async function replayKeys(from: Database, to: Database, t: MoveTable, tenant: string, keys: Array<Record<string, unknown>>): Promise<void> {
  if (keys.length === 0) return;
  const src = tableSql(t, 'from', tenant);
  const dst = tableSql(t, 'to', tenant);
  const given = JSON.stringify(keys);
  const now = await from.query<{ r: string | null }>(`SELECT json_agg(c)::text AS r FROM (SELECT * FROM ${src.rel} WHERE ${src.mine} AND ${src.keyRow} IN (${src.keysFrom(1)})) c`, [given]);
  const rows = now.rows[0]?.r ?? null;
  try {
    await inTransaction(to, async (c: pg.PoolClient) => {
      await c.query(`DELETE FROM ${dst.rel} WHERE ${dst.mine} AND ${dst.keyRow} IN (${dst.keysFrom(1)})`, [given]);
      if (rows) await c.query(`${insertInto(t, tenant)} SELECT ${dst.insertCols} FROM json_populate_recordset(NULL::${dst.rel}, $1::json)`, [rows]);
    });
  } catch (err) {
    throw conflict(t, err);
  }
}

/** Remove the tenant's rows of one table at one place, in chunks (other tenants' writes never wait long behind it). */
export async function deleteRows(db: Database, t: MoveTable, side: Side, tenant: string, chunk = 50_000): Promise<number> {
  const s = tableSql(t, side, tenant);
  let total = 0;
  for (;;) {
    const r = await inTransaction(db, async (c) => {
      // The owner removing a moved tenant's old rows passes its (sealed) capture trigger.
      await c.query(`SELECT set_config('tenantgate.move_cleanup', $1, true)`, [tenant]);
      return c.query(`DELETE FROM ${s.rel} WHERE ctid IN (SELECT ctid FROM ${s.rel} WHERE ${s.mine} LIMIT ${chunk})`);
    });
    total += r.rowCount ?? 0;
    if ((r.rowCount ?? 0) < chunk) return total;
  }
}

/**
 * Move each sequence of the new place past the old place's (serial and identity columns): rows
 * written after the cut-over get keys above every key the tenant had.
 */
export async function advanceSequences(from: Database, to: Database, t: MoveTable, tenant: string): Promise<void> {
  for (const col of t.sequenced) {
    const src = tableSql(t, 'from', tenant).rel;
    const dst = tableSql(t, 'to', tenant).rel;
    const seqOf = async (db: Database, rel: string) => (await db.query<{ s: string | null }>(`SELECT pg_get_serial_sequence($1, $2) AS s`, [rel, col])).rows[0]?.s ?? null;
    const [a, b] = [await seqOf(from, src), await seqOf(to, dst)];
    if (!a || !b) continue;
    const last = (await from.query<{ v: string }>(`SELECT last_value::text AS v FROM ${a}`)).rows[0]?.v ?? '1';
    const maxKey = (await to.query<{ v: string | null }>(`SELECT max(${ident(col)})::text AS v FROM ${dst} WHERE ${tableSql(t, 'to', tenant).mine}`)).rows[0]?.v;
    await to.query(`SELECT setval($1, greatest($2::bigint, coalesce($3::bigint, 1), (SELECT last_value FROM ${b})))`, [b, last, maxKey ?? null]);
  }
}
