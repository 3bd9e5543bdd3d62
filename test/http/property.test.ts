/**
 * Property tests for the two query endpoints (SPEC §4), as acme_corp's reader, against a database
 * seeded with globex_inc canary rows (see canary.ts):
 *
 *  (a) random semantic queries over `orders` (valid and invalid dimensions, metrics, filters with
 *      every op and hostile values, order, limit, offset) to `POST /v1/query`;
 *  (b) random SQL from a small grammar (columns, aggregates, literals; aliases, joins, subqueries,
 *      CTEs, UNION/EXCEPT/INTERSECT; predicates such as `tenant_id = 'globex_inc'`, `OR true`,
 *      EXISTS/IN over the dataset; GROUP BY/HAVING/ORDER/LIMIT/OFFSET) to `POST /v1/queries`.
 *
 * Invariants: an answer is never a 5xx (bad input is the caller's error, 4xx), and an answer with
 * rows never carries a globex_inc canary (or a raw masked value). The leak check fails the property
 * at once (and fast-check shrinks the request); 5xx answers are collected during the same runs and
 * asserted by a test of their own, so one invariant's failure does not hide the other's result.
 */
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FILTER_OPS } from '../../src/plan/semantic/request.ts';
import { BACKENDS, createFixture, fixture, type Fixture } from '../support/backends.ts';
import { leakInRows, seedCanaries } from './canary.ts';
import { serve, type Served } from './support.ts';

const RUNS = 300;

/* ------------------------------------------------------------------------------------------
 * (a) semantic queries
 * ---------------------------------------------------------------------------------------- */

const DIMENSIONS = ['region', 'status', 'created_at'];
/** Valid fields first; then columns that are not dimensions, restricted/masked ones, junk. */
const FIELDS = [...DIMENSIONS, 'tenant_id', 'amount', 'email', 'internal_cost', 'id', 'deleted_at', 'nope', "re'gion", 'Region', '"region"', '', 'region; DROP TABLE orders'];
const METRICS = ['revenue', 'orders', 'amount', 'sum(amount)', 'nope', 'REVENUE'];

const hostileString = fc.oneof(
  fc.constantFrom(
    'globex_inc', 'acme_corp', 'North', 'South', 'East', 'open', 'GLOBEX-CANARY-R1', 'GLOBEX-CANARY-S', "O'Brien", "'; DROP TABLE orders; --",
    "' OR '1'='1", '%', '_', '%globex%', '', ' ', 'ünïcødé ✓ 🚀', 'Ω', '\u0000', 'a\u0000b', '\ud800', '1987-06-05', '2020-01-01T00:00:00Z',
    'infinity', 'null', 'NaN', '$1', '\\', '"', 'x'.repeat(5000),
  ),
  fc.string({ maxLength: 20 }),
  fc.string({ unit: 'binary', maxLength: 12 }),
);
const scalar = fc.oneof(
  { arbitrary: hostileString, weight: 4 },
  { arbitrary: fc.integer(), weight: 1 },
  { arbitrary: fc.constantFrom(0, -1, 100, 150, 987654, 2 ** 31, Number.MAX_SAFE_INTEGER, -0, 0.5, 1e308, 5e-324), weight: 1 },
  { arbitrary: fc.double({ noNaN: true, noDefaultInfinity: true }), weight: 1 },
  { arbitrary: fc.boolean(), weight: 1 },
);
const filterValue = fc.oneof(
  { arbitrary: scalar, weight: 5 },
  { arbitrary: fc.array(scalar, { maxLength: 4 }), weight: 2 },
  { arbitrary: fc.constant(null), weight: 1 },
  { arbitrary: fc.array(fc.oneof(scalar, fc.constant(null), fc.array(scalar, { maxLength: 2 })), { maxLength: 3 }), weight: 1 },
);
const fieldName = fc.oneof({ arbitrary: fc.constantFrom(...DIMENSIONS, 'tenant_id'), weight: 4 }, { arbitrary: fc.constantFrom(...FIELDS), weight: 1 });
/** A filter whose value has the shape its op takes (so most of them reach the database). */
const textField = fc.constantFrom('region', 'status', 'tenant_id');
const wellFormedFilter = fc.oneof(
  fc.record({ field: textField, op: fc.constantFrom('=', '!=', '>', '>=', '<', '<=', 'like'), value: hostileString }),
  fc.record({ field: textField, op: fc.constantFrom('in', 'not_in'), value: fc.array(hostileString, { minLength: 1, maxLength: 4 }) }),
  fc.record({ field: textField, op: fc.constant('between'), value: fc.tuple(hostileString, hostileString) }),
  fc.record({ field: fc.constantFrom(...DIMENSIONS, 'tenant_id'), op: fc.constantFrom('is_null', 'is_not_null') }),
  fc.record({ field: fc.constant('created_at'), op: fc.constantFrom('=', '>', '<='), value: fc.constantFrom('1987-06-05', '2000-01-01T00:00:00Z', 'now', 'infinity', '-infinity') }),
);
const anyFilter = fc.record(
  {
    field: fieldName,
    op: fc.oneof({ arbitrary: fc.constantFrom(...FILTER_OPS), weight: 9 }, { arbitrary: fc.constantFrom('==', 'or', 'IN', 'like; --'), weight: 1 }),
    value: filterValue,
  },
  { requiredKeys: ['field', 'op'] },
);
const filter = fc.oneof({ arbitrary: wellFormedFilter, weight: 4 }, { arbitrary: anyFilter, weight: 1 });
/** Anything the schema might or might not accept: junk fields, ops, directions, limits. */
const wildQuery = fc.record(
  {
    dataset: fc.oneof({ arbitrary: fc.constant('orders'), weight: 9 }, { arbitrary: fc.constantFrom('ORDERS', 'public.orders', 'nope', ''), weight: 1 }),
    dimensions: fc.oneof(
      { arbitrary: fc.subarray(DIMENSIONS), weight: 5 },
      { arbitrary: fc.array(fc.constantFrom(...FIELDS), { maxLength: 4 }), weight: 1 },
    ),
    metrics: fc.oneof(
      { arbitrary: fc.subarray(['revenue', 'orders']), weight: 5 },
      { arbitrary: fc.array(fc.constantFrom(...METRICS), { maxLength: 3 }), weight: 1 },
    ),
    filters: fc.array(filter, { maxLength: 3 }),
    order: fc.array(
      fc.record({ field: fc.constantFrom(...DIMENSIONS, 'revenue', 'orders', 'tenant_id', 'nope'), dir: fc.constantFrom('asc', 'desc', 'sideways') }, { requiredKeys: ['field'] }),
      { maxLength: 3 },
    ),
    limit: fc.oneof(fc.nat(20), fc.constantFrom(-1, 0, 1e12, 2 ** 53, 1.5)),
    offset: fc.oneof(fc.nat(5), fc.constantFrom(-1, 1_000_000, 1_000_001)),
  },
  { requiredKeys: ['dataset'] },
);
/** Well-formed queries (hostile values only): these reach the database. */
const wellFormedQuery = fc
  .record({
    dimensions: fc.subarray(DIMENSIONS),
    metrics: fc.subarray(['revenue', 'orders']),
    filters: fc.array(wellFormedFilter, { maxLength: 3 }),
    order: fc.array(fc.tuple(fc.nat(4), fc.constantFrom('asc', 'desc')), { maxLength: 2 }),
    limit: fc.option(fc.oneof(fc.nat(20), fc.constant(1e12)), { nil: undefined }),
    offset: fc.oneof({ arbitrary: fc.constant(0), weight: 3 }, { arbitrary: fc.nat(3), weight: 1 }),
  })
  .map(({ dimensions, metrics, filters, order, limit, offset }) => {
    const named = [...dimensions, ...metrics];
    const q: Record<string, unknown> = {
      dataset: 'orders',
      dimensions,
      metrics: named.length ? metrics : ['orders'],
      filters,
      order: named.length ? [...new Map(order.map(([i, dir]) => [named[i % named.length], dir])).entries()].map(([field, dir]) => ({ field, dir })) : [],
      offset,
    };
    if (limit !== undefined) q['limit'] = limit;
    return q;
  });
const semanticQuery = fc.oneof({ arbitrary: wellFormedQuery, weight: 3 }, { arbitrary: wildQuery, weight: 1 });

/** `arb` one time in `1 + absent`, undefined otherwise. */
const sometimes = <T>(arb: fc.Arbitrary<T>, absent = 3): fc.Arbitrary<T | undefined> =>
  fc.oneof({ arbitrary: fc.constant(undefined), weight: absent }, { arbitrary: arb, weight: 1 });

/* ------------------------------------------------------------------------------------------
 * (b) SQL from a small grammar
 * ---------------------------------------------------------------------------------------- */

const COLUMNS = ['id', 'tenant_id', 'region', 'status', 'amount', 'email', 'created_at', 'deleted_at', 'internal_cost'];
/** Literals a predicate may compare with: other tenants' ids and canaries included. */
const predLiteral = fc.constantFrom(
  "'globex_inc'", "'acme_corp'", "'North'", "'East'", "'GLOBEX-CANARY-R1'", "'O''Brien'", "'Ωmega ✓'", "''", '$$globex_inc$$', "U&'\\0067lobex_inc'",
  '0', '1', '100', '150', '987654', '-1', '1.5', 'NULL', 'true',
);
const column = fc.oneof({ arbitrary: fc.constantFrom(...COLUMNS.filter((c) => c !== 'internal_cost')), weight: 8 }, { arbitrary: fc.constant('internal_cost'), weight: 1 });

/** Predicates, up to a small depth; `$1` (bound to a hostile value) included. */
const predicate: fc.Arbitrary<string> = fc.letrec<{ pred: string }>((tie) => ({
  pred: fc.oneof(
    { maxDepth: 3, depthSize: 'small', withCrossShrink: true },
    fc.constantFrom(
      "tenant_id = 'globex_inc'", "tenant_id <> 'acme_corp'", 'tenant_id = $1', "tenant_id IN ('globex_inc', 'acme_corp')", "tenant_id LIKE 'glo%'",
      'true', 'false', '1 = 1', 'NULL', "region LIKE '%'", 'amount BETWEEN 0 AND 987654', 'email IS NOT NULL', 'deleted_at IS NOT NULL',
      "EXISTS (SELECT 1 FROM orders WHERE tenant_id = 'globex_inc')", "id IN (SELECT id FROM orders WHERE tenant_id <> 'acme_corp')",
      'region = (SELECT max(region) FROM orders)', 'amount > (SELECT avg(amount) FROM orders)', 'region = (SELECT region FROM orders)', "region IN (SELECT region FROM orders x WHERE x.tenant_id = 'globex_inc')",
    ),
    fc.tuple(column, fc.constantFrom('=', '<>', '<', '>=', 'LIKE', 'IS DISTINCT FROM'), predLiteral).map(([c, op, v]) => `${c} ${op} ${v}`),
    fc.tuple(column, fc.constantFrom('IS NULL', 'IS NOT NULL')).map(([c, t]) => `${c} ${t}`),
    fc.tuple(tie('pred'), tie('pred')).map(([a, b]) => `(${a} OR ${b})`),
    fc.tuple(tie('pred'), tie('pred')).map(([a, b]) => `(${a} AND ${b})`),
    tie('pred').map((p) => `NOT (${p})`),
    tie('pred').map((p) => `${p} OR true`),
  ),
})).pred;

/** Select lists of three shapes. Literals here stay small and never name another tenant (they reach the answer). */
const plainItem = fc.oneof(
  { arbitrary: fc.constantFrom('id', 'tenant_id', 'region', 'status', 'amount', 'email', 'created_at', 'deleted_at'), weight: 6 },
  {
    arbitrary: fc.constantFrom(
      '*', '1', "'x'", 'NULL', 'true', 'amount + 1', 'lower(region)', "coalesce(region, 'x')", 'upper(tenant_id)', 'length(email)', 'to_json(region)',
      "CASE WHEN tenant_id = 'globex_inc' THEN 'x' ELSE 'y' END", "date_trunc('day', created_at)", 'amount::int', 'id::text', 'count(*) OVER ()',
      'row_number() OVER (ORDER BY id)', 'sum(amount) OVER (PARTITION BY tenant_id)',
    ),
    weight: 4,
  },
  {
    arbitrary: fc.constantFrom('(SELECT max(amount) FROM orders)', "(SELECT count(*) FROM orders WHERE tenant_id = 'globex_inc')", '(SELECT region FROM orders)', '(SELECT amount FROM orders o2 WHERE o2.id <> 0)'),
    weight: 1,
  },
  { arbitrary: fc.constant('internal_cost'), weight: 1 },
);
const aggregate = fc.constantFrom(
  'count(*)', 'sum(amount)', 'max(region)', 'min(amount)', 'avg(amount)', "string_agg(region, ',')", 'count(DISTINCT tenant_id)', 'array_agg(tenant_id)',
  'json_agg(region)', 'max(created_at)', "bool_or(tenant_id = 'globex_inc')", "sum(amount) FILTER (WHERE tenant_id = 'globex_inc')",
);
const GROUP_KEYS = ['region', 'tenant_id', 'status'];
/** [select list, GROUP BY clause] */
const selectShape: fc.Arbitrary<[string, string]> = fc.oneof(
  fc.array(plainItem, { minLength: 1, maxLength: 4 }).map((items): [string, string] => [items.join(', '), '']),
  fc.array(aggregate, { minLength: 1, maxLength: 3 }).map((items): [string, string] => [items.join(', '), '']),
  fc
    .tuple(fc.constantFrom(...GROUP_KEYS), fc.array(aggregate, { maxLength: 2 }), fc.constantFrom('', ' HAVING count(*) > 0', ' HAVING true', " HAVING max(tenant_id) <> 'acme_corp'"))
    .map(([key, aggs, having]): [string, string] => [[key, ...aggs].join(', '), `GROUP BY ${key}${having}`]),
);
const fromItem: fc.Arbitrary<string> = fc.oneof(
  { arbitrary: fc.constantFrom('orders', 'orders o', 'orders AS x', '"orders"', 'ORDERS'), weight: 5 },
  { arbitrary: predicate.map((p) => `(SELECT * FROM orders WHERE ${p}) s`), weight: 2 },
  {
    arbitrary: fc.constantFrom(
      'orders a JOIN orders b ON a.id = b.id', 'orders a CROSS JOIN orders b', 'orders a, orders b', "orders a LEFT JOIN orders b ON a.region = b.region AND b.tenant_id = 'globex_inc'",
      'orders a FULL JOIN orders b USING (id)', '(SELECT * FROM orders UNION ALL SELECT * FROM orders) u', "(VALUES (1, 'x')) v(id, region)",
      'orders o JOIN LATERAL (SELECT count(*) AS n FROM orders i WHERE i.region = o.region) l ON true',
    ),
    weight: 2,
  },
);

const simpleSelect = fc
  .record({
    distinct: fc.boolean(),
    shape: selectShape,
    from: fc.option(fromItem, { nil: undefined, freq: 8 }),
    where: fc.option(predicate, { nil: undefined }),
  })
  .map(({ distinct, shape: [items, group], from, where }) =>
    [`SELECT${distinct ? ' DISTINCT' : ''} ${items}`, from ? `FROM ${from}` : '', from && where ? `WHERE ${where}` : '', from ? group : ''].filter(Boolean).join(' '),
  );

const withCte = fc
  .tuple(fc.constantFrom('c', 'big', 'recent', 'pg_roles', 'orders'), fc.option(predicate, { nil: undefined }), selectShape, fc.option(predicate, { nil: undefined }))
  .map(([name, inner, [items, group], outer]) =>
    [`WITH ${name} AS (SELECT * FROM orders${inner ? ` WHERE ${inner}` : ''}) SELECT ${items} FROM ${name}`, outer ? `WHERE ${outer}` : '', group].filter(Boolean).join(' '),
  );

const query = fc
  .tuple(
    fc.oneof({ arbitrary: simpleSelect, weight: 6 }, { arbitrary: withCte, weight: 2 }),
    sometimes(fc.tuple(fc.constantFrom('UNION', 'UNION ALL', 'EXCEPT', 'INTERSECT'), simpleSelect)),
    sometimes(fc.constantFrom('ORDER BY 1', 'ORDER BY 1 DESC', 'ORDER BY 1 NULLS FIRST'), 1),
    sometimes(fc.constantFrom('LIMIT 1', 'LIMIT 0', 'LIMIT 100', 'LIMIT ALL', 'OFFSET 1', 'LIMIT 2 OFFSET 1', 'LIMIT -1'), 2),
  )
  .map(([first, setop, order, limit]) => [setop ? `(${first}) ${setop[0]} (${setop[1]})` : first, order ?? '', limit ?? ''].filter(Boolean).join(' '));

const sqlRequest = fc
  .tuple(query, fc.constantFrom<unknown>('globex_inc', 'acme_corp', "' OR '1'='1", 987654, null, true))
  .map(([sql, p]) => (/\$1\b/.test(sql) ? { sql, params: [p] } : { sql }));

/* ------------------------------------------------------------------------------------------ */

interface Seen {
  ok: number;
  refused: Map<string, number>;
  serverErrors: Array<{ status: number; code: unknown; request: unknown }>;
}
const newSeen = (): Seen => ({ ok: 0, refused: new Map(), serverErrors: [] });

describe.each(BACKENDS)('query endpoints under random input on %s', (kind) => {
  let fx: Fixture;
  let s: Served;
  const semantic = newSeen();
  const sql = newSeen();
  beforeAll(async () => {
    fx = await createFixture(kind, { sql: fixture('seed003.sql') });
    await seedCanaries(fx);
    s = await serve(fx);
  });
  afterAll(async () => {
    await s?.close();
    await fx?.cleanup();
  });

  /** One request: record the outcome; throw at once on a leak. */
  const probe = async (seen: Seen, path: string, body: unknown) => {
    const r = await s.post(path, body, { 'x-api-key': s.keys.acme });
    if (r.status >= 500) seen.serverErrors.push({ status: r.status, code: r.json?.error?.code, request: body });
    if (r.status === 200) {
      seen.ok++;
      const why = leakInRows(r.json?.rows);
      if (why) throw new Error(`cross-tenant leak (${why}) answering ${JSON.stringify(body)}`);
      return;
    }
    const code = String(r.json?.error?.code);
    seen.refused.set(code, (seen.refused.get(code) ?? 0) + 1);
    if (r.status < 500 && !(r.status >= 400 && typeof r.json?.error?.code === 'string')) throw new Error(`unexpected answer ${r.status} ${JSON.stringify(r.json)}`);
  };

  it('the canaries are there, and visible to globex_inc only', async () => {
    const globex = await s.post('/v1/query', { dataset: 'orders', dimensions: ['region'], metrics: ['revenue'] }, { 'x-api-key': s.keys.globex });
    expect(globex.json.rows).toContainEqual(['GLOBEX-CANARY-R1', 987654]);
    expect(leakInRows(globex.json.rows)).toBeDefined(); // the detector sees them
    const acme = await s.post('/v1/query', { dataset: 'orders', dimensions: ['region'], metrics: ['revenue'] }, { 'x-api-key': s.keys.acme });
    expect(acme.json.rows).toEqual([['North', 100], ['South', 200]]);
  });

  it(`semantic queries (${RUNS} runs): never another tenant's row`, async () => {
    await fc.assert(
      fc.asyncProperty(semanticQuery, (q) => probe(semantic, '/v1/query', q)),
      { numRuns: RUNS },
    );
    // The generator must reach the database often, or the property says little.
    expect(semantic.ok).toBeGreaterThan(RUNS / 5);
  });

  it('semantic queries: never a 5xx', () => {
    expect({ count: semantic.serverErrors.length, first: semantic.serverErrors.slice(0, 5) }).toEqual({ count: 0, first: [] });
  });

  it(`SQL from the grammar (${RUNS} runs): never another tenant's row`, async () => {
    await fc.assert(
      fc.asyncProperty(sqlRequest, (body) => probe(sql, '/v1/queries', body)),
      { numRuns: RUNS },
    );
    expect(sql.ok).toBeGreaterThan(RUNS / 5);
  });

  it('SQL from the grammar: never a 5xx', () => {
    expect({ count: sql.serverErrors.length, first: sql.serverErrors.slice(0, 5) }).toEqual({ count: 0, first: [] });
  });
});
