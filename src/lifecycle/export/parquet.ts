import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { ident } from '../../db/sql.ts';
import { TenantGateError } from '../../errors/index.ts';
import type { TableColumn } from './formats.ts';

/**
 * Parquet, written with hyparquet-writer (pure JavaScript, no native build, one dependency, kept up
 * by the hyparam project; its `ParquetWriter` writes a row group at a time to a file writer, so a
 * file of any size is written with one row group in memory). Each PostgreSQL type gets the Parquet
 * type that keeps its value exactly:
 *
 *   bigint → INT64; integer, smallint → INT32; boolean → BOOLEAN; real → FLOAT; double → DOUBLE;
 *   numeric(p,s) → DECIMAL(p,s) (unscaled integer in a BYTE_ARRAY: any precision); numeric without
 *   a declared scale and money → UTF8 text (every digit; no fixed scale to declare);
 *   timestamptz → TIMESTAMP(MICROS, UTC); timestamp → TIMESTAMP(MICROS, local); date → DATE;
 *   bytea → BYTE_ARRAY (raw bytes); everything else (json and jsonb included) → UTF8 text, as
 *   PostgreSQL writes it.
 */
// Types the hyparquet package declares (SchemaElement); kept loose here: they meet only through the writer.
export type SchemaElement = Record<string, unknown> & { name: string };

export interface ParquetColumn {
  name: string;
  schema: SchemaElement;
  /** The SQL (over the dataset query's row `r`) that reads the value as text for `convert`. */
  sql: string;
  convert: (v: string | null) => unknown;
}

const TS = /^timestamp(\(\d+\))? with time zone$/;
const TS_LOCAL = /^timestamp(\(\d+\))?( without time zone)?$/;

export function parquetColumns(columns: TableColumn[]): ParquetColumn[] {
  return columns.map((c) => {
    const col = `r.${ident(c.name)}`;
    const opt = { repetition_type: 'OPTIONAL' };
    const text = (name: string): ParquetColumn => ({ name, schema: { name, type: 'BYTE_ARRAY', converted_type: 'UTF8', ...opt }, sql: `${col}::text`, convert: (v) => v });
    const t = c.type;
    if (t === 'bigint') return { name: c.name, schema: { name: c.name, type: 'INT64', ...opt }, sql: `${col}::text`, convert: (v) => (v === null ? null : BigInt(v)) };
    if (t === 'integer' || t === 'smallint') return { name: c.name, schema: { name: c.name, type: 'INT32', ...opt }, sql: `${col}::text`, convert: (v) => (v === null ? null : Number(v)) };
    if (t === 'boolean') return { name: c.name, schema: { name: c.name, type: 'BOOLEAN', ...opt }, sql: `${col}::text`, convert: (v) => (v === null ? null : v === 'true') };
    if (t === 'real' || t === 'double precision') return { name: c.name, schema: { name: c.name, type: t === 'real' ? 'FLOAT' : 'DOUBLE', ...opt }, sql: `${col}::text`, convert: (v) => (v === null ? null : Number(v)) };
    const dec = /^numeric\((\d+),(\d+)\)$/.exec(t);
    if (dec) {
      const precision = Number(dec[1]);
      const scale = Number(dec[2]);
      return {
        name: c.name,
        schema: { name: c.name, type: 'BYTE_ARRAY', converted_type: 'DECIMAL', precision, scale, logical_type: { type: 'DECIMAL', precision, scale }, ...opt },
        sql: `${col}::text`,
        convert: (v) => {
          if (v === null) return null;
          if (!/^-?\d+(\.\d+)?$/.test(v)) throw new TenantGateError('EXPORT_INVALID', `column ${c.name} holds ${v}, which a Parquet DECIMAL cannot: export it as ndjson or csv`);
          const [int, frac = ''] = v.split('.');
          return BigInt(`${int}${frac.padEnd(scale, '0')}`);
        },
      };
    }
    if (TS.test(t) || TS_LOCAL.test(t)) {
      return {
        name: c.name,
        schema: { name: c.name, type: 'INT64', logical_type: { type: 'TIMESTAMP', isAdjustedToUTC: TS.test(t), unit: 'MICROS' }, ...opt },
        sql: `((extract(epoch FROM ${col}) * 1000000)::numeric(30,0))::text`,
        convert: (v) => (v === null ? null : BigInt(v)),
      };
    }
    if (t === 'date') return { name: c.name, schema: { name: c.name, type: 'INT32', converted_type: 'DATE', ...opt }, sql: `(${col} - date '1970-01-01')::text`, convert: (v) => (v === null ? null : Number(v)) };
    if (t === 'bytea') return { name: c.name, schema: { name: c.name, type: 'BYTE_ARRAY', ...opt }, sql: `${col}`, convert: (v) => (v === null ? null : new Uint8Array(Buffer.from(v, 'base64'))) };
    return text(c.name);
  });
}

/** Row groups between two full collections (see `collect`). */
const COLLECT_EVERY = 4;
let gcFn: (() => void) | undefined;
/**
 * A full garbage collection. hyparquet-writer's encoders grow their buffers by doubling from 1 KB,
 * so each row group leaves megabytes of dead ArrayBuffers that V8 frees only when its external
 * memory limit is reached, long after: a 1M-row export peaked at 244 MB of RSS without this, and at
 * about 160 MB with a collection every 4 groups of 10,000 rows, in the same time (docs/benchmarks.md §12).
 */
function collect(): void {
  if (!gcFn) {
    setFlagsFromString('--expose-gc');
    gcFn = runInNewContext('gc') as () => void;
  }
  gcFn();
}

/** One dataset's rows into a Parquet file: a cursor in the snapshot's transaction, a row group per FETCH. Returns the rows written. */
export async function writeParquet(
  c: { query: (q: string | { text: string; rowMode: 'array' }) => Promise<{ rows: unknown[] }> },
  columns: TableColumn[],
  select: string,
  path: string,
  createdBy: string,
  groupRows: number,
  signal?: AbortSignal,
): Promise<number> {
  const { ParquetWriter, fileWriter } = await import('hyparquet-writer');
  const cols = parquetColumns(columns);
  const sql = `SELECT ${cols.map((p, i) => `${p.sql} AS c${i}`).join(', ')} FROM (${select}) r`;
  const pw = new ParquetWriter({ writer: fileWriter(path), schema: [{ name: 'root', num_children: cols.length }, ...cols.map((p) => p.schema)] as never, statistics: false, createdBy });
  await c.query(`DECLARE tenantgate_export NO SCROLL CURSOR FOR ${sql}`);
  let rows = 0;
  let groups = 0;
  for (;;) {
    signal?.throwIfAborted();
    // Rows as arrays: no object per row (less garbage for the collector to keep up with).
    const r = (await c.query({ text: `FETCH ${groupRows} FROM tenantgate_export`, rowMode: 'array' })) as { rows: Array<Array<string | null>> };
    if (r.rows.length === 0) break;
    const columnData = cols.map((p, i) => ({ name: p.name, data: r.rows.map((row) => p.convert(row[i] ?? null)) }));
    await pw.write({ columnData: columnData as never, rowGroupSize: r.rows.length });
    if (++groups % COLLECT_EVERY === 0) collect();
    rows += r.rows.length;
  }
  await c.query('CLOSE tenantgate_export');
  await pw.finish();
  return rows;
}

/** The row count a Parquet file's footer declares (export verify). */
export async function parquetRows(path: string): Promise<number> {
  const { asyncBufferFromFile, parquetMetadataAsync } = await import('hyparquet');
  const meta = await parquetMetadataAsync(await asyncBufferFromFile(path));
  return Number(meta.num_rows);
}
