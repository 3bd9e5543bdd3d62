/**
 * Hostile and broken input over HTTP: every bad body, content type, path, size, nesting and
 * slow client gets a clear 4xx (or is cut off), never a 5xx and never a hang; the server keeps
 * serving. Ends with 5,000 random bodies per backend sent to /v1/query and /v1/queries.
 */
import { connect, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { FILTER_OPS, MAX_IN_LIST } from '../../src/plan/semantic/request.ts';
import { BACKENDS, createFixture, fixture, type Fixture } from '../support/backends.ts';
import { serve, type Served } from './support.ts';

const Q = { dataset: 'orders', dimensions: ['region'], metrics: ['revenue'] };
const ACME_ROWS = [['North', 100], ['South', 200]];
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

interface Answer {
  status: number;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  json: any;
  ms: number;
}

/** One request with a raw body (string or bytes) and exactly the headers given. */
async function raw(base: string, method: string, path: string, body: BodyInit | undefined, headers: Record<string, string> = {}): Promise<Answer> {
  const t0 = performance.now();
  const res = await fetch(base + path, { method, headers, ...(body === undefined ? {} : { body }) });
  const text = await res.text();
  let json: unknown = text;
  try {
    json = JSON.parse(text);
  } catch {
    // not JSON: kept as text
  }
  return { status: res.status, json, ms: performance.now() - t0 };
}

/** `depth` nested arrays (`[[[…]]]`) or objects (`{"a":{"a":…}}`), as JSON text: JSON.stringify cannot build them. */
const nestedArrays = (depth: number) => `${'['.repeat(depth)}${']'.repeat(depth)}`;
const nestedObjects = (depth: number) => `${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}`;

/** Open a raw socket, send `head`, then drip `drip` one byte every `everyMs`; resolves when the server closes it (or at `giveUpMs`). */
function dripClient(port: number, head: string, drip: string, everyMs: number, giveUpMs: number): { done: Promise<{ closedAfterMs: number; received: string }>; socket: Socket } {
  const socket = connect(port, '127.0.0.1');
  const t0 = performance.now();
  let received = '';
  const done = new Promise<{ closedAfterMs: number; received: string }>((resolve) => {
    let i = 0;
    let timer: NodeJS.Timeout | undefined;
    const giveUp = setTimeout(() => {
      clearInterval(timer);
      socket.destroy();
      resolve({ closedAfterMs: Infinity, received });
    }, giveUpMs);
    socket.on('connect', () => {
      socket.write(head);
      timer = setInterval(() => {
        if (!socket.writable) return;
        socket.write(drip[i % drip.length] as string);
        i++;
      }, everyMs);
    });
    socket.on('data', (d) => {
      received += d.toString('latin1');
    });
    socket.on('error', () => {});
    socket.on('close', () => {
      clearInterval(timer);
      clearTimeout(giveUp);
      resolve({ closedAfterMs: performance.now() - t0, received });
    });
  });
  return { done, socket };
}

describe.each(BACKENDS)('bad input over HTTP on %s', (kind) => {
  let fx: Fixture;
  let s: Served;
  /** Small body limit and a 1.5 s request deadline. */
  let small: Served;
  let json: Record<string, string>;

  beforeAll(async () => {
    fx = await createFixture(kind, { sql: fixture('seed003.sql') });
    s = await serve(fx);
    small = await serve(fx, { bodyLimit: 2048, requestTimeoutMs: 1500 });
    json = { 'x-api-key': s.keys.acme, 'content-type': 'application/json' };
  });
  afterAll(async () => {
    await s?.close();
    await small?.close();
    await fx?.cleanup();
  });

  const post = (path: string, body: BodyInit | undefined, headers: Record<string, string> = json) => raw(s.url, 'POST', path, body, headers);
  const code = (r: Answer) => `${r.status} ${r.json?.error?.code}`;
  /** The server still answers, correctly, after whatever came before. */
  const stillServing = async (on: Served = s) => {
    expect((await raw(on.url, 'GET', '/healthz', undefined)).status).toBe(200);
    const r = await raw(on.url, 'POST', '/v1/query', JSON.stringify(Q), { 'x-api-key': on.keys.acme, 'content-type': 'application/json' });
    expect(r.status).toBe(200);
    expect(r.json.rows).toEqual(ACME_ROWS);
  };
  const semantic = (filter: unknown) => JSON.stringify({ ...Q, filters: [filter] });

  it('malformed JSON is 400 QUERY_INVALID on both endpoints', async () => {
    const bodies = ['{', '}', '{"dataset":}', "{'dataset':'orders'}", '{"dataset":"orders",}', '{"dataset":"orders"} x', '{"dataset":"orders"}{}', 'undefined', 'NaN', '{"a":1e999999999999}', '\u0000', '{"dataset":"orders\u0001"', '\ufeff{"dataset":"orders"}', '[1,2', '"\\ud800', '{"dataset":"\\x41"}'];
    const seen: string[] = [];
    for (const path of ['/v1/query', '/v1/queries']) {
      for (const b of bodies) seen.push(`${path} ${JSON.stringify(b)}: ${code(await post(path, b))}`);
      seen.push(`${path} invalid UTF-8: ${code(await post(path, new Uint8Array([0x7b, 0x22, 0xff, 0xfe, 0x22, 0x3a, 0x31, 0x7d])))}`);
    }
    expect(seen).toEqual(seen.map((l) => l.replace(/: [^:]*$/, ': 400 QUERY_INVALID')));
    await stillServing();
  });

  it('a content type other than JSON is 415 UNSUPPORTED_MEDIA_TYPE', async () => {
    const seen: string[] = [];
    for (const path of ['/v1/query', '/v1/queries']) {
      for (const ct of ['text/plain', 'text/plain; charset=utf-8', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x', 'application/xml', 'application/octet-stream', 'application/jsonx', 'application/json-patch+json', 'text/json', ';;;', '']) {
        seen.push(`${path} ${ct}: ${code(await post(path, JSON.stringify(path === '/v1/query' ? Q : { sql: 'SELECT 1' }), { 'x-api-key': s.keys.acme, 'content-type': ct }))}`);
      }
    }
    expect(seen).toEqual(seen.map((l) => l.replace(/: [^:]*$/, ': 415 UNSUPPORTED_MEDIA_TYPE')));
    // JSON with parameters or in another case is JSON.
    for (const ct of ['application/json; charset=utf-8', 'Application/JSON']) {
      const r = await post('/v1/query', JSON.stringify(Q), { 'x-api-key': s.keys.acme, 'content-type': ct });
      expect(r.status).toBe(200);
    }
  });

  it('a body without a content type is a clear 4xx', async () => {
    // Bytes, so fetch adds no content type of its own.
    const r = await post('/v1/query', new TextEncoder().encode(JSON.stringify(Q)), { 'x-api-key': s.keys.acme });
    expect([400, 415]).toContain(r.status);
    expect(['QUERY_INVALID', 'UNSUPPORTED_MEDIA_TYPE']).toContain(r.json.error.code);
  });

  it('a body over the limit is 413 PAYLOAD_TOO_LARGE (declared, chunked, and on the default 1 MiB limit)', async () => {
    const big = JSON.stringify({ ...Q, filters: [{ field: 'region', op: '=', value: 'x'.repeat(4000) }] });
    const headers = { 'x-api-key': small.keys.acme, 'content-type': 'application/json' };
    for (const path of ['/v1/query', '/v1/queries']) {
      const r = await raw(small.url, 'POST', path, big, headers);
      expect(code(r)).toBe('413 PAYLOAD_TOO_LARGE');
    }
    // Chunked: no content-length, so the limit is met while reading.
    const stream = new ReadableStream<Uint8Array>({
      start(controller) {
        const chunk = new TextEncoder().encode(' '.repeat(512));
        for (let i = 0; i < 16; i++) controller.enqueue(chunk);
        controller.enqueue(new TextEncoder().encode(JSON.stringify(Q)));
        controller.close();
      },
    });
    const res = await fetch(`${small.url}/v1/query`, { method: 'POST', headers, body: stream, duplex: 'half' } as RequestInit);
    expect(res.status).toBe(413);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe('PAYLOAD_TOO_LARGE');
    // Just under the limit is read.
    const under = JSON.stringify({ ...Q, filters: [{ field: 'region', op: '=', value: 'x'.repeat(1500) }] });
    expect((await raw(small.url, 'POST', '/v1/query', under, headers)).status).toBe(200);
    const huge = await post('/v1/query', JSON.stringify({ ...Q, filters: [{ field: 'region', op: '=', value: 'x'.repeat(1_048_577) }] }));
    expect(code(huge)).toBe('413 PAYLOAD_TOO_LARGE');
    await stillServing(small);
  });

  it(`an in list of ${MAX_IN_LIST} values answers quickly; ${MAX_IN_LIST + 1} is 400 QUERY_INVALID`, async () => {
    const values = (n: number) => Array.from({ length: n }, (_, i) => (i === n - 1 ? 'North' : `region-${i}`));
    for (const op of ['in', 'not_in']) {
      const ok = await post('/v1/query', semantic({ field: 'region', op, value: values(MAX_IN_LIST) }));
      expect(ok.status, JSON.stringify(ok.json).slice(0, 300)).toBe(200);
      expect(ok.json.rows).toEqual(op === 'in' ? [['North', 100]] : [['South', 200]]);
      expect(ok.ms).toBeLessThan(5_000);
      const over = await post('/v1/query', semantic({ field: 'region', op, value: values(MAX_IN_LIST + 1) }));
      expect(code(over)).toBe('400 QUERY_INVALID');
    }
    const numbers = await post('/v1/query', semantic({ field: 'created_at', op: 'in', value: Array.from({ length: MAX_IN_LIST }, (_, i) => i) }));
    expect(numbers.status).toBeLessThan(500);
    expect(numbers.ms).toBeLessThan(5_000);
    const params = await post('/v1/queries', JSON.stringify({ sql: 'SELECT region FROM orders WHERE region = $1', params: Array.from({ length: 1001 }, () => 'x') }));
    expect(code(params)).toBe('400 QUERY_INVALID');
  });

  it('deep nesting (100,000 arrays, 100,000 objects) is 400, and the server lives on', async () => {
    const seen: string[] = [];
    for (const [name, deep] of [['arrays', nestedArrays(100_000)], ['objects', nestedObjects(100_000)]] as const) {
      const bodies: Record<string, [string, string]> = {
        'filter value': ['/v1/query', semantic({ field: 'region', op: 'in', value: 'DEEP' }).replace('"DEEP"', deep)],
        'filter': ['/v1/query', JSON.stringify({ ...Q, filters: ['DEEP'] }).replace('"DEEP"', deep)],
        'dataset': ['/v1/query', JSON.stringify({ ...Q, dataset: 'DEEP' }).replace('"DEEP"', deep)],
        'whole body': ['/v1/query', deep],
        'sql params': ['/v1/queries', JSON.stringify({ sql: 'SELECT $1::text', params: ['DEEP'] }).replace('"DEEP"', deep)],
        'sql': ['/v1/queries', JSON.stringify({ sql: 'DEEP' }).replace('"DEEP"', deep)],
      };
      for (const [where, [path, body]] of Object.entries(bodies)) {
        const r = await post(path, body);
        seen.push(`${name} as ${where}: ${code(r)}${r.ms > 5_000 ? ' slow' : ''}`);
      }
    }
    expect(seen).toEqual(seen.map((l) => l.replace(/: .*$/, ': 400 QUERY_INVALID')));
    await stillServing();
  });

  it('deeply nested SQL is a 4xx, and the parser still works afterwards', async () => {
    const seen: string[] = [];
    const sqls: Record<string, string> = {
      'parens 1,000': `SELECT ${'('.repeat(1000)}1${')'.repeat(1000)}`,
      'parens 40,000': `SELECT ${'('.repeat(40_000)}1${')'.repeat(40_000)}`,
      'NOT x 20,000': `SELECT ${'NOT '.repeat(20_000)}true`,
      'unary minus x 50,000': `SELECT ${'-'.repeat(50_000)}1`,
      'UNION x 6,000': `SELECT 1${' UNION SELECT 1'.repeat(6_000)}`,
      'subqueries x 5,000': `SELECT ${'(SELECT '.repeat(5_000)}1${')'.repeat(5_000)}`,
      'ARRAY x 10,000': `SELECT ${'ARRAY['.repeat(10_000)}1${']'.repeat(10_000)}`,
      'CASE x 5,000': `SELECT ${'CASE WHEN true THEN '.repeat(4_000)}1${' END'.repeat(4_000)}`,
      'a + 1 x 30,000': `SELECT region FROM orders WHERE amount > 0${' + 1'.repeat(30_000)}`,
      'IN list x 20,000': `SELECT region FROM orders WHERE region IN (${Array.from({ length: 20_000 }, (_, i) => `'r${i}'`).join(',').slice(0, 90_000).replace(/,[^,]*$/, '')})`,
    };
    for (const [name, sql] of Object.entries(sqls)) {
      const r = await post('/v1/queries', JSON.stringify({ sql }));
      seen.push(`${name}: ${r.status}${r.ms > 10_000 ? ' slow' : ''}`);
      expect(r.status, `${name} ${JSON.stringify(r.json).slice(0, 200)}`).toBeLessThan(500);
    }
    expect(seen.filter((l) => l.endsWith('slow'))).toEqual([]);
    const after = await post('/v1/queries', JSON.stringify({ sql: 'SELECT region, amount FROM orders ORDER BY amount' }));
    expect(after.status).toBe(200);
    expect(after.json.rows).toEqual(ACME_ROWS);
    await stillServing();
  });

  it('unknown fields are 400 QUERY_INVALID, at any level', async () => {
    const bodies: Array<[string, unknown]> = [
      ['/v1/query', { ...Q, tenant: 'globex_inc' }],
      ['/v1/query', { ...Q, where: 'true' }],
      ['/v1/query', { ...Q, filters: [{ field: 'region', op: '=', value: 'North', tenant: 'globex_inc' }] }],
      ['/v1/query', { ...Q, order: [{ field: 'region', dir: 'asc', nulls: 'first' }] }],
      ['/v1/query', { ...Q, sql: 'SELECT 1' }],
      ['/v1/queries', { sql: 'SELECT 1', tenant: 'globex_inc' }],
      ['/v1/queries', { sql: 'SELECT 1', dataset: 'orders' }],
      ['/v1/queries', { sql: 'SELECT 1', role: 'ops' }],
      ['/v1/queries', { query: 'SELECT 1' }],
    ];
    const seen: string[] = [];
    for (const [path, b] of bodies) seen.push(`${path} ${JSON.stringify(b)}: ${code(await post(path, JSON.stringify(b)))}`);
    // Prototype-poisoning keys are refused by the JSON parser itself.
    for (const path of ['/v1/query', '/v1/queries']) {
      seen.push(`${path} __proto__: ${code(await post(path, '{"dataset":"orders","sql":"SELECT 1","__proto__":{"x":1}}'))}`);
      seen.push(`${path} constructor.prototype: ${code(await post(path, '{"dataset":"orders","sql":"SELECT 1","constructor":{"prototype":{"x":1}}}'))}`);
      seen.push(`${path} nested __proto__: ${code(await post(path, `{"dataset":"orders","sql":"SELECT 1","filters":[{"field":"region","op":"=","value":"x","__proto__":{"admin":true}}]}`))}`);
    }
    expect(seen).toEqual(seen.map((l) => l.replace(/: [^:]*$/, ': 400 QUERY_INVALID')));
  });

  it('a wrong type in every field is 400 QUERY_INVALID', async () => {
    const f = { field: 'region', op: '=', value: 'North' };
    const semanticBodies: Array<Record<string, unknown>> = [
      ...[1, null, true, [], {}, '', 'x'.repeat(64), ['orders']].map((dataset) => ({ ...Q, dataset })),
      ...['region', 1, null, {}, [1], [null], [['region']], Array(65).fill('region'), ['x'.repeat(64)]].map((dimensions) => ({ ...Q, dimensions })),
      ...['revenue', 1, null, {}, [1], [{}], Array(65).fill('revenue')].map((metrics) => ({ ...Q, metrics })),
      ...[{}, 'x', 1, null, [1], ['region'], [null], [[f]], Array(101).fill(f)].map((filters) => ({ ...Q, filters })),
      ...[1, null, [], {}, 'x'.repeat(64)].map((field) => ({ ...Q, filters: [{ ...f, field }] })),
      ...['~', 'IN', 'eq', '', 1, null, [], 'like '].map((op) => ({ ...Q, filters: [{ ...f, op }] })),
      ...[{}, [{}], [[1]], [null], 'x'.repeat(10_001), [1, 'x'.repeat(10_001)]].map((value) => ({ ...Q, filters: [{ ...f, value }] })),
      ...['region', 1, null, {}, [1], ['region'], [{ field: 1 }], [{ field: 'region', dir: 'up' }], [{ field: 'region', dir: 1 }], [{ dir: 'asc' }], Array(17).fill({ field: 'region' })].map((order) => ({ ...Q, order })),
      ...[-1, 1.5, '10', null, true, [], {}, 2 ** 53 + 2].map((limit) => ({ ...Q, limit })),
      ...[-1, 1.5, '0', null, 1_000_001, {}].map((offset) => ({ ...Q, offset })),
      { ...Q, dataset: undefined },
    ];
    const sqlBodies: Array<Record<string, unknown>> = [
      ...[1, null, true, [], {}, '', ['SELECT 1'], 'x'.repeat(100_001)].map((sql) => ({ sql })),
      ...['x', 1, null, {}, [{}], [[1]], [{ value: 1 }], Array(1001).fill(1)].map((params) => ({ sql: 'SELECT 1', params })),
      ...[true, 'yes', 1, null, 'false', {}].map((a) => ({ sql: 'SELECT 1', async: a })),
      {},
      { params: [] },
    ];
    const seen: string[] = [];
    for (const b of semanticBodies) seen.push(`/v1/query ${JSON.stringify(b).slice(0, 120)}: ${code(await post('/v1/query', JSON.stringify(b)))}`);
    for (const b of sqlBodies) seen.push(`/v1/queries ${JSON.stringify(b).slice(0, 120)}: ${code(await post('/v1/queries', JSON.stringify(b)))}`);
    // 1e999 parses to Infinity: not a finite number.
    seen.push(`/v1/query value 1e999: ${code(await post('/v1/query', semantic({ ...f, value: 'INF' }).replace('"INF"', '1e999')))}`);
    seen.push(`/v1/query limit 1e999: ${code(await post('/v1/query', JSON.stringify({ ...Q, limit: 'INF' }).replace('"INF"', '1e999')))}`);
    expect(seen).toEqual(seen.map((l) => l.replace(/: [^:]*$/, ': 400 QUERY_INVALID')));
  });

  it('values the database cannot take (NUL characters, wrong types for the column) are a 4xx, never 5xx', async () => {
    const f = { field: 'region', op: '=', value: 'North' };
    const seen: string[] = [];
    const cases: Array<[string, string, string]> = [
      ['NUL in a filter value', '/v1/query', semantic({ ...f, value: 'No\u0000rth' })],
      ['NUL in an in list', '/v1/query', semantic({ ...f, op: 'in', value: ['\u0000'] })],
      ['NUL in a like pattern', '/v1/query', semantic({ ...f, op: 'like', value: '\u0000%' })],
      ['NUL in a dimension name', '/v1/query', JSON.stringify({ ...Q, dimensions: ['reg\u0000ion'] })],
      ['NUL in a dataset name', '/v1/query', JSON.stringify({ ...Q, dataset: 'orders\u0000' })],
      ['text for a timestamp', '/v1/query', semantic({ field: 'created_at', op: '>', value: 'not a date' })],
      ['1e300 for a timestamp', '/v1/query', semantic({ field: 'created_at', op: '>', value: 1e300 })],
      ['boolean for a timestamp', '/v1/query', semantic({ field: 'created_at', op: 'between', value: [true, false] })],
      ['NUL in a parameter', '/v1/queries', JSON.stringify({ sql: 'SELECT region FROM orders WHERE region = $1', params: ['No\u0000rth'] })],
      ['NUL inside a SQL string literal', '/v1/queries', JSON.stringify({ sql: "SELECT region FROM orders WHERE region = 'a\u0000'" })],
      ['NUL after the SQL statement', '/v1/queries', JSON.stringify({ sql: 'SELECT 1\u0000' })],
      ['NUL then more SQL', '/v1/queries', JSON.stringify({ sql: 'SELECT region FROM orders\u0000; SELECT * FROM tenantgate.api_keys' })],
      ['NUL in a dataset query', '/v1/queries', JSON.stringify({ sql: 'SELECT region FROM orders WHERE true\u0000' })],
      ['text for a number parameter', '/v1/queries', JSON.stringify({ sql: 'SELECT region FROM orders WHERE amount > $1', params: ['abc'] })],
      ['1e308 for a number parameter', '/v1/queries', JSON.stringify({ sql: 'SELECT region FROM orders WHERE amount > $1::int', params: [1e308] })],
      ['division by zero', '/v1/queries', JSON.stringify({ sql: 'SELECT amount / 0 FROM orders' })],
    ];
    for (const [name, path, body] of cases) {
      const r = await post(path, body);
      seen.push(`${name}: ${r.status >= 400 && r.status < 500 ? '4xx' : r.status} ${r.json?.error?.code}`);
    }
    expect(seen.filter((l) => !/: 4xx /.test(l))).toEqual([]);
    // A lone surrogate is sent as U+FFFD: a value like any other.
    expect((await post('/v1/query', semantic({ ...f, value: '\ud800' }))).status).toBe(200);
    await stillServing();
  });

  it('a statement the database rejects, sent again (same pooled connection), gets the same 4xx every time', async () => {
    // Sequential requests reuse the most recently released connection: the repeat meets the
    // connection the first attempt used.
    const cases: Array<[string, Record<string, string>, string]> = [
      ['unknown column', json, 'SELECT no_such_column FROM orders'],
      ['unknown function', json, 'SELECT region FROM orders WHERE length(region, region, region) > 0'],
      ['a column restricted for this tenant', { ...json, 'x-api-key': s.keys.globex }, 'SELECT status FROM orders'],
      ['an untyped parameter', json, 'SELECT $1 FROM orders'],
    ];
    const seen: string[] = [];
    for (const [name, headers, sql] of cases) {
      for (let i = 1; i <= 3; i++) {
        const r = await post('/v1/queries', JSON.stringify({ sql, ...(sql.includes('$1') ? { params: ['x'] } : {}) }), headers);
        seen.push(`${name} #${i}: ${r.status >= 500 ? `${r.status} ${r.json?.error?.code}` : r.status === 200 ? '200' : '4xx'}`);
      }
    }
    const first = (name: string) => seen.find((l) => l.startsWith(`${name} #1`))!.replace(/^.* #1: /, '');
    expect(seen).toEqual(seen.map((l) => l.replace(/ #(\d): .*$/, (_, n) => ` #${n}: ${first(l.replace(/ #\d: .*$/, ''))}`)));
    expect(seen.filter((l) => / 5\d\d /.test(l))).toEqual([]);
    await stillServing();
  });

  it('empty, null and scalar bodies are 400 QUERY_INVALID', async () => {
    const seen: string[] = [];
    for (const path of ['/v1/query', '/v1/queries']) {
      seen.push(`${path} empty: ${code(await post(path, ''))}`);
      seen.push(`${path} whitespace: ${code(await post(path, '   \n'))}`);
      seen.push(`${path} none: ${code(await post(path, undefined, { 'x-api-key': s.keys.acme }))}`);
      for (const b of ['null', '1', '"orders"', 'true', '[]', '[{}]', '{}']) seen.push(`${path} ${b}: ${code(await post(path, b))}`);
    }
    expect(seen).toEqual(seen.map((l) => l.replace(/: [^:]*$/, ': 400 QUERY_INVALID')));
  });

  it('huge strings are 4xx (or served, when within limits), never 5xx', async () => {
    const seen: string[] = [];
    const bodies: Array<[string, string, number[]]> = [
      ['/v1/query', JSON.stringify({ ...Q, dataset: 'o'.repeat(900_000) }), [400]],
      ['/v1/query', JSON.stringify({ ...Q, dimensions: ['r'.repeat(900_000)] }), [400]],
      ['/v1/query', semantic({ field: 'r'.repeat(900_000), op: '=', value: 'x' }), [400]],
      ['/v1/query', semantic({ field: 'region', op: '=', value: 'x'.repeat(10_000) }), [200]],
      ['/v1/query', semantic({ field: 'region', op: 'like', value: '%'.repeat(10_000) }), [200]],
      ['/v1/query', semantic({ field: 'region', op: 'like', value: '%_'.repeat(5_000) }), [200]],
      ['/v1/query', semantic({ field: 'region', op: 'in', value: Array.from({ length: 90 }, () => 'x'.repeat(10_000)) }), [200]],
      ['/v1/query', JSON.stringify({ ...Q, [`k${'x'.repeat(500_000)}`]: 1 }), [400]],
      ['/v1/queries', JSON.stringify({ sql: `SELECT 1 -- ${'x'.repeat(99_000)}` }), [200, 400]],
      ['/v1/queries', JSON.stringify({ sql: `SELECT '${'x'.repeat(99_000)}'` }), [200, 400]],
      ['/v1/queries', JSON.stringify({ sql: `SELECT ${'x'.repeat(99_000)}` }), [400]],
      ['/v1/queries', JSON.stringify({ sql: 'SELECT $1::text', params: Array.from({ length: 1 }, () => 'y'.repeat(900_000)) }), [200, 400]],
      ['/v1/queries', JSON.stringify({ sql: 'x'.repeat(900_000) }), [400]],
    ];
    for (const [path, body, ok] of bodies) {
      const r = await post(path, body);
      if (!ok.includes(r.status)) seen.push(`${path} ${body.slice(0, 60)}…: ${r.status} ${r.json?.error?.code}`);
      if (r.ms > 10_000) seen.push(`${path} ${body.slice(0, 60)}…: slow (${Math.round(r.ms)} ms)`);
    }
    // Headers: Node's own 16 KiB header limit answers 431; under it, a long tenant header is a mismatch.
    const longTenant = await post('/v1/query', JSON.stringify(Q), { ...json, 'x-tenant-id': 't'.repeat(8_000) });
    if (longTenant.status !== 403 || longTenant.json.error.code !== 'TENANT_MISMATCH') seen.push(`8 KB X-Tenant-ID: ${code(longTenant)}`);
    const tooLong = await post('/v1/query', JSON.stringify(Q), { ...json, 'x-filler': 'f'.repeat(20_000) });
    if (tooLong.status >= 500 || tooLong.status < 400) seen.push(`20 KB header: ${tooLong.status}`);
    expect(seen).toEqual([]);
    await stillServing();
  });

  it('a client dripping headers one byte per 500 ms is cut off by the request timeout; others are served meanwhile', async () => {
    const port = Number(new URL(small.url).port);
    const slow = dripClient(port, `POST /v1/query HTTP/1.1\r\nHost: 127.0.0.1\r\nX-API-Key: ${small.keys.acme}\r\nX-Slow: `, 'abcdefghij', 500, 8_000);
    await sleep(700);
    const during = [await raw(small.url, 'GET', '/healthz', undefined), await raw(small.url, 'POST', '/v1/query', JSON.stringify(Q), { 'x-api-key': small.keys.acme, 'content-type': 'application/json' })];
    expect(during.map((r) => r.status)).toEqual([200, 200]);
    const { closedAfterMs, received } = await slow.done;
    expect(received.startsWith('HTTP/1.1 2'), received).toBe(false);
    // 1.5 s deadline, plus a little slack for the server's connection check.
    expect(closedAfterMs).toBeLessThan(5_000);
    await stillServing(small);
  });

  it('a client dripping its body is cut off by the request timeout too', async () => {
    const port = Number(new URL(small.url).port);
    const body = JSON.stringify(Q);
    const slow = dripClient(port, `POST /v1/query HTTP/1.1\r\nHost: 127.0.0.1\r\nX-API-Key: ${small.keys.acme}\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n`, body, 500, 8_000);
    const { closedAfterMs, received } = await slow.done;
    expect(received.startsWith('HTTP/1.1 2'), received).toBe(false);
    expect(closedAfterMs).toBeLessThan(5_000);
    await stillServing(small);
  });

  it('a client that connects and says nothing is closed too', async () => {
    const port = Number(new URL(small.url).port);
    const idle = dripClient(port, '', ' ', 3_600_000, 8_000);
    const { closedAfterMs } = await idle.done;
    expect(closedAfterMs).toBeLessThan(5_000);
  });

  it('an unknown path is 404 NOT_FOUND; a method a route does not take is 404 NOT_FOUND', async () => {
    const seen: string[] = [];
    const k = { 'x-api-key': s.keys.acme };
    const calls: Array<[string, string]> = [
      ['GET', '/'],
      ['GET', '/nope'],
      ['POST', '/v1/nope'],
      ['GET', '/v1'],
      ['GET', '/v2/query'],
      ['POST', '/v1/query/extra'],
      ['POST', '/v1/tenants/acme_corp/nope'],
      ['POST', '/v1/tenants/acme_corp/query/x'],
      ['GET', '/v1/../etc/passwd'],
      ['GET', '/%2e%2e/%2e%2e/etc/passwd'],
      ['GET', `/${'x'.repeat(5000)}`],
      ['GET', '/v1/query'],
      ['GET', '/v1/queries'],
      ['PUT', '/v1/query'],
      ['DELETE', '/v1/queries'],
      ['PATCH', '/v1/query'],
      ['POST', '/v1/datasets'],
      ['POST', '/healthz'],
      ['GET', '/v1/tenants/acme_corp/query'],
    ];
    for (const [method, path] of calls) {
      const r = await raw(s.url, method, path, undefined, k);
      seen.push(`${method} ${path.slice(0, 40)}: ${code(r)}`);
    }
    expect(seen).toEqual(seen.map((l) => l.replace(/: [^:]*$/, ': 404 NOT_FOUND')));
  });

  it('odd tenant paths and headers are 4xx, never 5xx', async () => {
    const seen: string[] = [];
    for (const t of ['..%2f..%2fglobex_inc', '%00', 'ACME_CORP', 'acme_corp%20', 'all', 'globex_inc', `${'a'.repeat(101)}`, '%E2%80%AE', 'acme_corp;globex_inc']) {
      const r = await post(`/v1/tenants/${t}/query`, JSON.stringify(Q));
      if (r.status < 400 || r.status >= 500) seen.push(`path ${t}: ${code(r)}`);
    }
    for (const t of ['all', 'ACME_CORP', '../globex_inc', 'acme_corp, globex_inc', '\u00e9', '%00']) {
      const r = await post('/v1/query', JSON.stringify(Q), { ...json, 'x-tenant-id': t });
      if (r.status < 400 || r.status >= 500) seen.push(`header ${JSON.stringify(t)}: ${code(r)}`);
    }
    expect(seen).toEqual([]);
  });

  describe('5,000 random bodies', () => {
    const SEED = Number(process.env['TG_FUZZ_SEED'] ?? 20_240_917);
    const COLUMNS = ['region', 'status', 'created_at', 'amount', 'tenant_id', 'internal_cost', 'email', 'id', 'deleted_at', 'revenue', 'orders', ''];
    const field = fc.oneof(fc.constantFrom(...COLUMNS), fc.string({ maxLength: 70 }), fc.anything());
    const scalar = fc.oneof(fc.string(), fc.integer(), fc.double(), fc.boolean(), fc.constant(null), fc.constantFrom('North', 'acme_corp', 'globex_inc', '%', '\u0000', '2024-01-01'));
    const value = fc.oneof(scalar, fc.array(scalar, { maxLength: 8 }), fc.jsonValue({ maxDepth: 3 }), fc.anything({ maxDepth: 2 }));
    const filter = fc.oneof(
      fc.record({ field, op: fc.oneof(fc.constantFrom(...FILTER_OPS), fc.string({ maxLength: 12 })), value }, { requiredKeys: [] }),
      fc.record({ field, op: fc.constantFrom(...FILTER_OPS), value, extra: fc.anything() }, { requiredKeys: ['field', 'op'] }),
      fc.anything({ maxDepth: 2 }),
    );
    const DIMS = ['region', 'status', 'created_at'];
    const listOrScalar = fc.oneof(scalar, fc.array(scalar, { minLength: 1, maxLength: 5 }));
    /** Bodies that are valid, or one step from valid: they reach the compiler and the database. */
    const nearSemantic = fc.record(
      {
        dataset: fc.constantFrom('orders', 'orders', 'orders', 'Orders', 'nope'),
        dimensions: fc.oneof(fc.subarray(DIMS), fc.subarray([...DIMS, 'tenant_id', 'internal_cost', 'email', 'amount'])),
        metrics: fc.oneof(fc.subarray(['revenue', 'orders']), fc.subarray(['revenue', 'orders', 'amount'])),
        filters: fc.array(fc.oneof(fc.record({ field: fc.constantFrom('region', 'status', 'tenant_id'), op: fc.constantFrom('=', '!=', 'like', '>'), value: fc.string({ maxLength: 12 }) }), fc.record({ field: fc.constantFrom(...DIMS, 'tenant_id', 'email', 'internal_cost', 'deleted_at', 'id', 'amount'), op: fc.constantFrom(...FILTER_OPS), value: listOrScalar }, { requiredKeys: ['field', 'op'] })), { maxLength: 3 }),
        order: fc.array(fc.record({ field: fc.constantFrom(...DIMS, 'revenue', 'orders', 'amount', 'tenant_id'), dir: fc.constantFrom('asc', 'desc') }, { requiredKeys: ['field'] }), { maxLength: 2 }),
        limit: fc.nat(20_000),
        offset: fc.nat(100),
      },
      { requiredKeys: ['dataset'] },
    );
    const semanticBody = fc.record(
      {
        dataset: fc.oneof(fc.constant('orders'), fc.constant('orders'), fc.string({ maxLength: 70 }), fc.anything({ maxDepth: 1 })),
        dimensions: fc.oneof(fc.array(field, { maxLength: 5 }), fc.anything({ maxDepth: 1 })),
        metrics: fc.oneof(fc.array(fc.oneof(fc.constantFrom('revenue', 'orders', 'amount', 'count(*)'), fc.string()), { maxLength: 4 }), fc.anything({ maxDepth: 1 })),
        filters: fc.oneof(fc.array(filter, { maxLength: 4 }), fc.anything({ maxDepth: 2 })),
        order: fc.oneof(fc.array(fc.record({ field, dir: fc.oneof(fc.constantFrom('asc', 'desc'), fc.anything()) }, { requiredKeys: [] }), { maxLength: 3 }), fc.anything({ maxDepth: 1 })),
        limit: fc.oneof(fc.nat(20_000), fc.integer(), fc.double(), fc.anything({ maxDepth: 0 })),
        offset: fc.oneof(fc.nat(2_000_000), fc.integer(), fc.double(), fc.anything({ maxDepth: 0 })),
      },
      { requiredKeys: [] },
    );
    const TOKENS = ['SELECT', 'FROM', 'WHERE', 'orders', 'public.orders', 'tenantgate.api_keys', 'pg_catalog.pg_roles', 'region', 'amount', 'tenant_id', 'internal_cost', 'email', 'status', 'created_at', '*', 'count(*)', 'sum(amount)', ',', '(', ')', '=', '<>', '>', 'AND', 'OR', 'NOT', '$1', '$2', '$0', '$65536', "'x'", "'acme_corp'", '1', '-1', '1e400', 'NULL', 'true', '::int', '::text', 'GROUP BY', 'ORDER BY', 'LIMIT', 'OFFSET', 'UNION', 'WITH', 'AS', 't', 'JOIN', 'ON', 'IN', 'LIKE', 'BETWEEN', 'IS NULL', 'current_setting', "('tenantgate.tenant')", 'set_config', 'INSERT INTO', 'VALUES', 'UPDATE', 'SET', 'DELETE', 'RETURNING', ';', 'BEGIN', 'COMMIT', 'RESET ALL', 'SET ROLE', 'COPY', 'TO', 'STDOUT', '--', '/*', '*/', '"', "E'\\\\x00'", '\u0000', 'LATERAL', 'generate_series(1, 3)'];
    const sqlText = fc.oneof(
      fc.string({ maxLength: 200 }),
      fc.string({ unit: 'binary', maxLength: 200 }),
      fc.array(fc.constantFrom(...TOKENS), { minLength: 1, maxLength: 14 }).map((t) => t.join(' ')),
      fc
        .tuple(
          fc.constantFrom('region', 'amount', '*', 'count(*)', 'tenant_id', 'internal_cost', 'email', 'status'),
          fc.constantFrom('orders', 'public.orders', 'orders o', 'tenantgate.api_keys', 'pg_class', 'nope'),
          fc.constantFrom('region', 'amount', 'tenant_id', 'created_at', 'status'),
          fc.constantFrom('=', '<>', '>', 'LIKE', 'IN', 'IS'),
          fc.oneof(fc.constantFrom('$1', '$2', 'NULL', "'North'", '(SELECT 1)', '($1, $2)'), fc.string({ maxLength: 20 }).map((x) => `'${x.replaceAll("'", "''")}'`), fc.integer().map(String)),
        )
        .map(([c, t, w, op, v]) => `SELECT ${c} FROM ${t} WHERE ${w} ${op} ${v}`),
      fc.anything({ maxDepth: 1 }),
    );
    const column = fc.constantFrom('region', 'amount', 'status', 'created_at', 'tenant_id', 'internal_cost', 'email', 'id', 'deleted_at', 'o.region', 'count(*)', 'sum(amount)', '*');
    const nearSql = fc.oneof(
      fc
        .tuple(fc.array(column, { minLength: 1, maxLength: 3 }), fc.constantFrom('orders', 'orders o', 'public.orders', 'orders AS x'), fc.constantFrom('region', 'amount', 'tenant_id', 'created_at', 'status', 'email'), fc.constantFrom('=', '<>', '>', '<=', 'LIKE', 'IS DISTINCT FROM'), scalar)
        .map(([cols, table, w, op, v]) => ({ sql: `SELECT ${cols.join(', ')} FROM ${table} WHERE ${w} ${op} $1`, params: [v] })),
      fc
        .tuple(fc.constantFrom('region', 'status', 'tenant_id', 'email'), fc.constantFrom('count(*)', 'sum(amount)', 'max(created_at)', 'string_agg(region, $1)'), scalar)
        .map(([d, m, v]) => ({ sql: `SELECT ${d}, ${m} FROM orders GROUP BY ${d} ORDER BY 2 DESC`, params: m.includes('$1') ? [v] : [] })),
      fc.tuple(fc.constantFrom('status', 'region', 'tenant_id', 'email', 'internal_cost'), scalar).map(([c, v]) => ({ sql: `UPDATE orders SET ${c} = $1 WHERE id < 0`, params: [v] })),
      fc.tuple(scalar, scalar).map(([a, b]) => ({ sql: 'INSERT INTO orders (region, amount) VALUES ($1, $2) RETURNING id', params: [a, b] })),
      fc.tuple(scalar).map(([a]) => ({ sql: 'DELETE FROM orders WHERE region = $1 AND amount < 0', params: [a] })),
      fc.tuple(fc.string({ maxLength: 30 }), fc.array(scalar, { maxLength: 2 })).map(([x, params]) => ({ sql: `SELECT region FROM orders WHERE region = '${x.replaceAll("'", "''")}'`, params })),
    );
    const sqlBody = fc.record(
      { sql: sqlText, params: fc.oneof(fc.array(fc.oneof(scalar, fc.jsonValue({ maxDepth: 1 })), { maxLength: 3 }), fc.anything({ maxDepth: 1 })), async: fc.oneof(fc.constant(false), fc.anything({ maxDepth: 0 })) },
      { requiredKeys: [] },
    );
    /** A body as sent: JSON text of a value, or raw text. */
    const bodyFor = (near: fc.Arbitrary<unknown>, structured: fc.Arbitrary<unknown>) =>
      fc.oneof(
        { weight: 4, arbitrary: near.map((v) => ({ text: JSON.stringify(v) as string | undefined })) },
        { weight: 3, arbitrary: structured.map((v) => ({ text: JSON.stringify(v) as string | undefined })) },
        { weight: 2, arbitrary: fc.anything().map((v) => ({ text: JSON.stringify(v) as string | undefined })) },
        { weight: 2, arbitrary: fc.json().map((text) => ({ text: text as string | undefined })) },
        { weight: 1, arbitrary: fc.string({ maxLength: 300 }).map((text) => ({ text: text as string | undefined })) },
        { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 300 }).map((text) => ({ text: text as string | undefined })) },
      );

    it('no random body to /v1/query or /v1/queries gets a status of 500 or more', { timeout: 180_000 }, async () => {
      const per = 2_500;
      const cases = [
        ...fc.sample(bodyFor(nearSemantic, semanticBody), { numRuns: per, seed: SEED }).map((b) => ({ path: '/v1/query', ...b })),
        ...fc.sample(bodyFor(nearSql, sqlBody), { numRuns: per, seed: SEED + 1 }).map((b) => ({ path: '/v1/queries', ...b })),
      ];
      // Callers: a reader, a writer, and a platform admin acting for all tenants.
      const callers: Array<Record<string, string>> = [{ 'x-api-key': s.keys.acme }, { 'x-api-key': s.keys.acmeWriter }, { 'x-api-key': s.keys.ops, 'x-tenant-id': 'all' }, { 'x-api-key': s.keys.globex }];
      const failures: string[] = [];
      const statuses = new Map<number, number>();
      let next = 0;
      let slowest = 0;
      const t0 = performance.now();
      const worker = async () => {
        while (next < cases.length) {
          const i = next++;
          const c = cases[i]!;
          const headers = { ...callers[i % callers.length]!, 'content-type': 'application/json' };
          let r: Answer;
          try {
            r = await raw(s.url, 'POST', c.path, c.text, headers);
          } catch (err) {
            failures.push(`#${i} ${c.path} ${JSON.stringify(c.text)?.slice(0, 300)}: request failed: ${String(err)}`);
            continue;
          }
          statuses.set(r.status, (statuses.get(r.status) ?? 0) + 1);
          slowest = Math.max(slowest, r.ms);
          if (r.status >= 500) failures.push(`#${i} ${c.path} ${JSON.stringify(c.text)?.slice(0, 300)}: ${r.status} ${JSON.stringify(r.json).slice(0, 200)}`);
        }
      };
      await Promise.all(Array.from({ length: 8 }, worker));
      const elapsed = performance.now() - t0;
      console.log(`${kind}: ${cases.length} random bodies in ${Math.round(elapsed)} ms (slowest ${Math.round(slowest)} ms, seed ${SEED}); statuses ${JSON.stringify(Object.fromEntries(statuses))}`);
      expect(failures.slice(0, 20), `${failures.length} of ${cases.length} answered 5xx (seed ${SEED})`).toEqual([]);
      expect(statuses.get(200) ?? 0).toBeGreaterThan(cases.length / 50);
      // Still serving (the writer may have changed acme_corp's rows, so only the shape is checked).
      const after = await post('/v1/query', JSON.stringify(Q));
      expect(after.status).toBe(200);
      expect(Array.isArray(after.json.rows)).toBe(true);
    });
  });
});
