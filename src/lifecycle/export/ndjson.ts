import { Transform } from 'node:stream';
import { ident } from '../../db/sql.ts';
import type { TableColumn } from './formats.ts';

/**
 * NDJSON on a server: PostgreSQL sends the rows as COPY text (its cheapest output) and this process
 * writes each row as the JSON object `row_to_json` would, on its own core. Measured on 1M rows
 * (docs/benchmarks.md §12): `row_to_json` in the server ran at a third of a plain COPY, because one
 * backend did both the reading and the JSON; split this way the two run side by side.
 *
 * How each column becomes JSON (the same text `row_to_json` writes, checked against it in
 * test/lifecycle/export/ndjson.test.ts):
 *   string  text-like columns, and bigint/numeric/money/bytea already cast to text by the query: a JSON string
 *   number  integer, smallint, real, double precision: the text as is (NaN and ±Infinity quoted, as to_json does)
 *   bool    boolean: true/false
 *   raw     everything else (timestamps, dates, json, jsonb, arrays, domains, composites): the server
 *           writes `to_json(value)::text` and it is copied in as it is
 */
type Kind = 'string' | 'number' | 'bool' | 'raw';

const NUMBER = new Set(['integer', 'smallint', 'real', 'double precision']);
const STRING = /^(text|character varying(\(\d+\))?|character(\(\d+\))?|"char"|name|uuid|citext|bigint|numeric(\(\d+(,\d+)?\))?|money|bytea)$/;

export function ndjsonKind(type: string): Kind {
  if (NUMBER.has(type)) return 'number';
  if (type === 'boolean') return 'bool';
  if (STRING.test(type)) return 'string';
  return 'raw';
}

/** The COPY text SELECT over the dataset query `select` (whose NDJSON values are already as `valueSql` makes them). */
export function ndjsonCopySelect(columns: TableColumn[], select: string): string {
  const list = columns.map((c) => (ndjsonKind(c.type) === 'raw' ? `to_json(r.${ident(c.name)})::text` : `r.${ident(c.name)}`));
  return `SELECT ${list.join(', ')} FROM (${select}) r`;
}

const ESCAPES: Record<string, string> = { '\\': '\\', b: '\b', f: '\f', n: '\n', r: '\r', t: '\t', v: '\v' };
/** A COPY text field's value: its backslash escapes undone (COPY TO writes only these). */
const unescape = (v: string) => (v.indexOf('\\') === -1 ? v : v.replace(/\\([\\bfnrtv])/g, (_, c: string) => ESCAPES[c]!));

/** COPY text rows in, one JSON object per line out; counts the rows. Works on bytes: most values are copied as they came. */
export class CopyTextToNdjson extends Transform {
  rows = 0;
  private rest: Buffer | undefined;
  private readonly keys: Buffer[];
  private readonly kinds: Kind[];
  private out = Buffer.allocUnsafe(0);
  private o = 0;

  constructor(columns: TableColumn[]) {
    super();
    this.keys = columns.map((c, i) => Buffer.from(`${i === 0 ? '{' : ','}${JSON.stringify(c.name)}:`, 'utf8'));
    this.kinds = columns.map((c) => ndjsonKind(c.type));
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: (err?: Error | null, data?: Buffer) => void): void {
    // A newline byte never falls inside a UTF-8 sequence: cut at the last one, keep the rest for the next chunk.
    const end = chunk.lastIndexOf(10);
    if (end === -1) {
      this.rest = this.rest ? Buffer.concat([this.rest, chunk]) : chunk;
      return done();
    }
    const whole = this.rest ? Buffer.concat([this.rest, chunk.subarray(0, end)]) : chunk.subarray(0, end);
    this.rest = end + 1 < chunk.length ? chunk.subarray(end + 1) : undefined;
    try {
      done(null, this.convert(whole));
    } catch (err) {
      done(err as Error);
    }
  }

  override _flush(done: (err?: Error | null, data?: Buffer) => void): void {
    if (this.rest && this.rest.length > 0) return done(new Error('COPY ended inside a row'));
    done();
  }

  /** Room for `need` more bytes in the output. */
  private room(need: number): void {
    if (this.o + need <= this.out.length) return;
    const bigger = Buffer.allocUnsafe(Math.max(this.out.length * 2, this.o + need));
    this.out.copy(bigger, 0, 0, this.o);
    this.out = bigger;
  }

  private text(s: string): void {
    this.room(Buffer.byteLength(s, 'utf8'));
    this.o += this.out.write(s, this.o, 'utf8');
  }

  /** Whole COPY rows (without the last newline) to NDJSON lines. */
  private convert(buf: Buffer): Buffer {
    const { keys, kinds } = this;
    const n = kinds.length;
    this.out = Buffer.allocUnsafe(buf.length * 2 + 1024);
    this.o = 0;
    let at = 0;
    for (;;) {
      const nl = buf.indexOf(10, at);
      const lineEnd = nl === -1 ? buf.length : nl;
      let f = at;
      for (let i = 0; i < n; i++) {
        let tab = lineEnd;
        if (i < n - 1) {
          tab = buf.indexOf(9, f);
          if (tab === -1 || tab > lineEnd) throw new Error(`a COPY row has fewer than ${n} fields`);
        }
        const key = keys[i]!;
        this.room(key.length + (tab - f) + 8);
        const out = this.out;
        let o = this.o + key.copy(out, this.o);
        if (tab - f === 2 && buf[f] === 0x5c && buf[f + 1] === 0x4e) {
          // \N: NULL
          o += out.write('null', o, 'latin1');
        } else {
          const kind = kinds[i];
          if (kind === 'bool') o += out.write(buf[f] === 0x74 ? 'true' : 'false', o, 'latin1');
          else if (kind === 'number') {
            const c = buf[f];
            const quote = c === 0x4e || c === 0x49 || (c === 0x2d && buf[f + 1] === 0x49); // NaN, Infinity, -Infinity
            if (quote) out[o++] = 0x22;
            for (let k = f; k < tab; k++) out[o++] = buf[k]!;
            if (quote) out[o++] = 0x22;
          } else {
            // Copy the bytes while nothing needs escaping (string: a quote, a backslash or a control
            // byte; raw: a backslash); else the slow path through a string.
            const start = o;
            if (kind === 'string') out[o++] = 0x22;
            let k = f;
            for (; k < tab; k++) {
              const b = buf[k]!;
              if (b === 0x5c || (kind === 'string' && (b === 0x22 || b < 0x20))) break;
              out[o++] = b;
            }
            if (k < tab) {
              this.o = start;
              const v = unescape(buf.toString('utf8', f, tab));
              this.text(kind === 'string' ? JSON.stringify(v) : v.indexOf('\n') === -1 && v.indexOf('\r') === -1 ? v : v.replace(/[\r\n]/g, ' '));
              o = this.o;
            } else if (kind === 'string') this.out[o++] = 0x22;
          }
        }
        this.o = o;
        f = tab + 1;
      }
      this.room(2);
      this.out[this.o++] = 0x7d; // }
      this.out[this.o++] = 0x0a;
      this.rows++;
      if (nl === -1) break;
      at = nl + 1;
    }
    return this.out.subarray(0, this.o);
  }
}
