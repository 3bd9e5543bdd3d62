/**
 * NDJSON on a server is COPY text turned into JSON in the gateway's process (src/lifecycle/export/ndjson.ts).
 * It must write byte for byte what `row_to_json` writes: checked here against PostgreSQL itself over
 * every kind of column and awkward value, and fed in chunks cut at every byte (rows, fields and
 * UTF-8 sequences split across chunks).
 */
import { Readable } from 'node:stream';
import pg from 'pg';
import { to as copyTo } from 'pg-copy-streams';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CopyTextToNdjson, ndjsonCopySelect, ndjsonKind } from '../../../src/lifecycle/export/ndjson.ts';
import { createServerDatabase, SERVER_URL, type ServerDatabase } from '../../support/backends.ts';

async function convert(columns: Array<{ name: string; type: string }>, chunks: Buffer[]): Promise<{ text: string; rows: number }> {
  const t = new CopyTextToNdjson(columns);
  const out: Buffer[] = [];
  t.on('data', (b: Buffer) => out.push(b));
  await new Promise<void>((resolve, reject) => {
    t.on('end', resolve).on('error', reject);
    Readable.from(chunks).pipe(t);
  });
  return { text: Buffer.concat(out).toString('utf8'), rows: t.rows };
}

describe('COPY text to NDJSON', () => {
  const columns = [
    { name: 'id', type: 'integer' },
    { name: 'name', type: 'text' },
    { name: 'ok', type: 'boolean' },
    { name: 'at', type: 'timestamp with time zone' },
    { name: 'x', type: 'double precision' },
  ];
  // What COPY text sends: tabs between fields, \N for NULL, backslash escapes; `at` already to_json text.
  const copy = Buffer.from('1\tÅsa "q" \\\\ \\t é😀\tt\t"2024-01-01T00:00:00+00:00"\tNaN\n2\t\\N\tf\t\\N\t-Infinity\n3\t\tt\t"x"\t1.5\n', 'utf8');
  const expected =
    '{"id":1,"name":"Åsa \\"q\\" \\\\ \\t é😀","ok":true,"at":"2024-01-01T00:00:00+00:00","x":"NaN"}\n' +
    '{"id":2,"name":null,"ok":false,"at":null,"x":"-Infinity"}\n' +
    '{"id":3,"name":"","ok":true,"at":"x","x":1.5}\n';

  it('writes each kind of column as row_to_json does, whole or cut into chunks at any byte', async () => {
    expect(await convert(columns, [copy])).toEqual({ text: expected, rows: 3 });
    for (let cut = 1; cut < copy.length; cut++) {
      const got = await convert(columns, [copy.subarray(0, cut), copy.subarray(cut)]);
      expect(got.text, `cut at byte ${cut}`).toBe(expected);
    }
    const bytes = [...copy].map((b) => Buffer.from([b]));
    expect((await convert(columns, bytes)).text).toBe(expected);
  });

  it('refuses a row with too few fields and a stream that ends inside a row', async () => {
    await expect(convert(columns, [Buffer.from('1\tx\n')])).rejects.toThrow(/fewer than 5 fields/);
    await expect(convert(columns, [Buffer.from('1\tx\tt\t"a"\t1')])).rejects.toThrow(/ended inside a row/);
  });

  it('sends only types it writes itself to the server as they are; the rest through to_json', () => {
    expect(['integer', 'smallint', 'real', 'double precision'].map(ndjsonKind)).toEqual(Array(4).fill('number'));
    expect(ndjsonKind('oid')).toBe('raw'); // to_json writes an oid as a string
    expect(['text', 'character varying(20)', 'character(3)', 'uuid', 'bigint', 'numeric(30,2)', 'bytea'].map(ndjsonKind)).toEqual(Array(7).fill('string'));
    expect(['timestamp with time zone', 'date', 'json', 'jsonb', 'integer[]', 'interval', 'my_domain'].map(ndjsonKind)).toEqual(Array(7).fill('raw'));
    expect(ndjsonCopySelect([{ name: 'a', type: 'text' }, { name: 'b', type: 'jsonb' }], 'SELECT 1')).toBe('SELECT r."a", to_json(r."b")::text FROM (SELECT 1) r');
  });
});

describe.skipIf(!SERVER_URL)('COPY text to NDJSON against row_to_json on PostgreSQL', () => {
  let db: ServerDatabase;
  let c: pg.Client;
  beforeAll(async () => {
    db = await createServerDatabase(`
      CREATE DOMAIN small_int AS integer CHECK (VALUE < 1000);
      CREATE TYPE mood AS ENUM ('happy', 'sad');
      CREATE TABLE v (
        i integer, s smallint, big bigint, r real, d double precision, n numeric(40,10), nn numeric, m money,
        b boolean, t text, vc varchar(10), ch char(4), u uuid, by bytea,
        tz timestamptz, ts timestamp, dt date, tm time, iv interval,
        j json, jb jsonb, ai integer[], at text[], dom small_int, e mood, o oid
      );
      INSERT INTO v VALUES
        (1, 2, 9223372036854775807, 1.5, 1e-300, 123456789012345678901234567890.0123456789, 1e40, 12.34,
         true, E'quote " back \\\\ tab \\t nl \\n cr \\r bell \\x07 del \\x7f é 😀', 'abc', 'ab', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '\\x00ff10',
         '2024-03-01 12:34:56.789+05:30', '2024-03-01 12:34:56', '2024-03-01', '12:34:56', '1 day 2 hours',
         E'{ "a" :\\n [1, 2],\\t"b": "x\\\\"y" }', '{"z": 1, "a": [true, null], "s": "é"}', '{1,NULL,3}', '{"a b","c\\"d",NULL}', 7, 'sad', 42),
        (-2147483648, -32768, -9223372036854775808, 'NaN', 'Infinity', -0.5, 'NaN', -1,
         false, '', '', '', NULL, '',
         'infinity', '-infinity', '4713-01-01 BC', '00:00:00', '-1 year',
         '[]', '{}', '{}', '{}', -1, 'happy', 0),
        (NULL, NULL, NULL, '-Infinity', '-0', NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
         NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)`);
    c = new pg.Client({ connectionString: db.url });
    await c.connect();
    // The export's own session settings.
    await c.query(`SET TimeZone = 'UTC'; SET DateStyle = 'ISO, YMD'; SET IntervalStyle = 'iso_8601'; SET extra_float_digits = 1`);
  }, 60_000);
  afterAll(async () => {
    await c?.end();
    await db?.drop();
  });

  it('writes exactly the bytes row_to_json writes, for every column type', async () => {
    const columns = (
      await c.query<{ name: string; type: string }>(
        `SELECT attname::text AS name, format_type(atttypid, atttypmod) AS type FROM pg_attribute WHERE attrelid = 'v'::regclass AND attnum > 0 ORDER BY attnum`,
      )
    ).rows;
    // As the export's query casts them for NDJSON (formats.ts valueSql): big numbers to text, bytea to base64.
    const list = columns.map((col) =>
      col.type === 'bytea' ? `translate(encode(${col.name}, 'base64'), E'\\n', '') AS ${col.name}` : /^(bigint|numeric|money)/.test(col.type) ? `${col.name}::text AS ${col.name}` : col.name,
    );
    const select = `SELECT ${list.join(', ')} FROM v`;
    const want = (await c.query<{ line: string }>(`SELECT row_to_json(r.*)::text AS line FROM (${select}) r`)).rows.map((r) => r.line);
    const chunks: Buffer[] = [];
    const src = c.query(copyTo(`COPY (${ndjsonCopySelect(columns, select)}) TO STDOUT`));
    for await (const chunk of src) chunks.push(chunk as Buffer);
    const got = await convert(columns, chunks);
    expect(got.rows).toBe(3);
    const lines = got.text.split('\n').filter(Boolean);
    // json keeps its own whitespace; a newline in it becomes a space so each row stays one line.
    expect(lines).toEqual(want.map((l) => l.replace(/\n/g, ' ')));
    for (const l of lines) expect(() => JSON.parse(l)).not.toThrow();
    expect(JSON.parse(lines[0]!).t).toBe('quote " back \\ tab \t nl \n cr \r bell \x07 del \x7f é 😀');
  });
});
