import { beforeAll, describe, expect, it } from 'vitest';
import type { Config, Tenant } from '../../src/config/types.ts';
import type { QueryCatalog } from '../../src/plan/catalog.ts';
import { SqlPlanner, type SqlScope } from '../../src/plan/sql/plan-sql.ts';
import { fixtureCatalog } from './support.ts';

describe('SQL planner: rewrite (golden) and cache', () => {
  let config: Config;
  let catalog: QueryCatalog;
  let acme: Tenant;
  const scope = (tenant: Tenant | null, write = false): SqlScope => ({
    views: catalog.views(tenant),
    tenant,
    write,
    maxRows: 10000,
    cacheKey: catalog.sqlCacheKey(tenant, write ? 'write' : tenant ? 'read' : 'platform'),
  });
  beforeAll(async () => {
    ({ config, catalog } = await fixtureCatalog());
    acme = config.tenants.get('acme_corp')!;
  });

  it('wraps every dataset reference and writes the tenant predicate in as parameters (golden)', async () => {
    const planner = new SqlPlanner();
    const cases: Array<[string, string, unknown[], Tenant | null, boolean]> = [
      ['seed-000 flow', 'SELECT region, sum(amount) AS revenue FROM orders GROUP BY region ORDER BY region', [], acme, false],
      ['alias, join, subquery, parameter', `SELECT o.id, x.n FROM orders o JOIN (SELECT region, count(*) AS n FROM "orders" GROUP BY region) x ON x.region = o.region WHERE o.amount > $1`, [10], acme, false],
      ['CTE', 'WITH big AS (SELECT * FROM orders WHERE amount > 150) SELECT count(*) FROM big', [], acme, false],
      ['platform all', 'SELECT count(*) FROM orders', [], null, false],
      ['unicode before a dataset name', "SELECT 'é' AS x, id FROM orders", [], acme, false],
      ['insert', "INSERT INTO orders (region, amount) VALUES ('West', 5), ($1, 6) RETURNING id", ['East'], acme, true],
      ['update', 'UPDATE orders SET status = $1 WHERE amount > 100', ['paid'], acme, true],
      ['delete without where', 'DELETE FROM orders o', [], acme, true],
    ];
    const out = cases.map(([name, sql, params, tenant, write]) => {
      const plan = planner.plan({ sql, params }, scope(tenant, write));
      return `-- ${name}\n-- in:  ${sql}\n${plan.sql};\n-- params: ${JSON.stringify(plan.params)}\n`;
    });
    await expect(out.join('\n')).toMatchFileSnapshot('../fixtures/golden/sql-rewrite.sql');
  });

  it('caches by scope and text; the tenant is only a parameter', () => {
    const planner = new SqlPlanner();
    const globex = config.tenants.get('globex_inc')!;
    const initech = { ...acme, id: 'initech' };
    const sql = 'SELECT count(*) FROM orders';
    const a = planner.plan({ sql }, scope(acme));
    const b = planner.plan({ sql }, scope(initech));
    expect(planner.size).toBe(1);
    expect(a.sql).toBe(b.sql);
    expect(a.params[0]).toBe('acme_corp');
    expect(b.params[0]).toBe('initech');
    // globex_inc has a column override: its own scope, its own text.
    planner.plan({ sql: 'SELECT region FROM orders', params: [] }, scope(globex));
    expect(() => planner.plan({ sql: 'SELECT status FROM orders' }, scope(globex))).not.toThrow(); // fails in the database (no such column), not here
    expect(planner.plan({ sql: 'SELECT * FROM orders' }, scope(globex)).sql).not.toMatch(/"status"/);
  });

  it('checks parameter counts and types', () => {
    const planner = new SqlPlanner();
    const code = (f: () => unknown) => {
      try {
        f();
        return 'ok';
      } catch (e) {
        return (e as { code?: string }).code;
      }
    };
    expect(code(() => planner.plan({ sql: 'SELECT id FROM orders WHERE id = $1' }, scope(acme)))).toBe('QUERY_INVALID');
    expect(code(() => planner.plan({ sql: 'SELECT id FROM orders WHERE id = $1', params: [{ a: 1 }] }, scope(acme)))).toBe('QUERY_INVALID');
    expect(code(() => planner.plan({ sql: 'SELECT id FROM orders WHERE id = $1', params: [1] }, scope(acme)))).toBe('ok');
    expect(code(() => planner.plan({ sql: 'SELEC 1' }, scope(acme)))).toBe('SQL_SYNTAX');
    expect(code(() => planner.plan({ sql: '' }, scope(acme)))).toBe('QUERY_INVALID');
    expect(code(() => planner.plan({ sql: 'INSERT INTO orders (region, amount) VALUES ($1, 1)', params: ['x'] }, scope(acme, false)))).toBe('POLICY_DENIED');
  });
});
