/** Request → SQL text + parameters, golden (Kysely-style): any change to compiled SQL shows in review. */
import { beforeAll, describe, expect, it } from 'vitest';
import type { Config } from '../../src/config/types.ts';
import type { QueryCatalog } from '../../src/plan/catalog.ts';
import { compileSemantic } from '../../src/plan/semantic/compile.ts';
import { semanticQuerySchema } from '../../src/plan/semantic/request.ts';
import { fixtureCatalog } from './support.ts';

const CASES: Array<[string, unknown, string | null]> = [
  ['seed-003 walkthrough', { dataset: 'orders', dimensions: ['region'], metrics: ['revenue'] }, 'acme_corp'],
  ['client filter on the tenant column is ANDed', { dataset: 'orders', metrics: ['revenue'], filters: [{ field: 'tenant_id', op: '=', value: 'globex_inc' }] }, 'acme_corp'],
  ['platform admin naming all', { dataset: 'orders', dimensions: ['region'], metrics: ['revenue'] }, null],
  [
    'every operator',
    {
      dataset: 'orders',
      dimensions: ['region', 'status'],
      metrics: ['orders'],
      filters: [
        { field: 'region', op: '=', value: 'North' },
        { field: 'region', op: '!=', value: 'South' },
        { field: 'status', op: 'in', value: ['open', 'paid'] },
        { field: 'status', op: 'not_in', value: ['void'] },
        { field: 'region', op: 'like', value: 'No%' },
        { field: 'status', op: 'is_not_null' },
        { field: 'created_at', op: 'between', value: ['2026-01-01', '2026-12-31'] },
        { field: 'created_at', op: '>=', value: '2026-01-01' },
      ],
      order: [{ field: 'orders', dir: 'desc' }, { field: 'region' }],
      limit: 10,
      offset: 20,
    },
    'acme_corp',
  ],
  ['dimensions only is DISTINCT', { dataset: 'orders', dimensions: ['status'] }, 'acme_corp'],
  ['a limit above max_rows is capped (fetch one more to know it was truncated)', { dataset: 'orders', dimensions: ['region'], limit: 100000 }, 'acme_corp'],
];

describe('semantic compiler (golden)', () => {
  let config: Config;
  let catalog: QueryCatalog;
  beforeAll(async () => ({ config, catalog } = await fixtureCatalog()));

  it('compiles each case to the golden SQL and parameters', async () => {
    const out = CASES.map(([name, body, tenantId]) => {
      const tenant = tenantId ? config.tenants.get(tenantId)! : null;
      const plan = compileSemantic(semanticQuerySchema.parse(body), catalog.views(tenant).get('orders')!, tenant, 10000);
      return `-- ${name}\n${plan.sql};\n-- params: ${JSON.stringify(plan.params)}\n`;
    });
    await expect(out.join('\n')).toMatchFileSnapshot('../fixtures/golden/semantic.sql');
  });

  it('masks are applied to dimensions; restricted and overridden columns do not exist', () => {
    const acme = config.tenants.get('acme_corp')!;
    const globex = config.tenants.get('globex_inc')!;
    const views = catalog.views(acme).get('orders')!;
    expect(views.columns.has('internal_cost')).toBe(false);
    expect(views.columns.get('email')).toMatch(/sha256/);
    expect(catalog.views(acme).get('orders')!.dimensions).toContain('status');
    expect(catalog.views(globex).get('orders')!.dimensions).not.toContain('status');
    const bad = (body: unknown, tenant = acme) => {
      try {
        compileSemantic(semanticQuerySchema.parse(body), catalog.views(tenant).get('orders')!, tenant, 10000);
        return 'compiled';
      } catch (e) {
        return (e as { code?: string }).code;
      }
    };
    expect(bad({ dataset: 'orders', dimensions: ['internal_cost'] })).toBe('QUERY_INVALID');
    expect(bad({ dataset: 'orders', dimensions: ['status'] }, globex)).toBe('QUERY_INVALID');
    expect(bad({ dataset: 'orders', dimensions: ['region'], filters: [{ field: 'internal_cost', op: '>', value: 1 }] })).toBe('QUERY_INVALID');
    expect(bad({ dataset: 'orders', metrics: ['revenue'], order: [{ field: 'amount' }] })).toBe('QUERY_INVALID');
    expect(bad({ dataset: 'orders', metrics: ['revenue'], filters: [{ field: 'region', op: '=', value: null }] })).toBe('QUERY_INVALID');
    expect(bad({ dataset: 'orders', metrics: ['revenue'], filters: [{ field: 'region', op: 'in', value: [] }] })).toBe('QUERY_INVALID');
    expect(bad({ dataset: 'orders' })).toBe('QUERY_INVALID');
  });

  it('values are parameters, never spliced', () => {
    const acme = config.tenants.get('acme_corp')!;
    const evil = "North'; DROP TABLE orders; --";
    const plan = compileSemantic(
      semanticQuerySchema.parse({ dataset: 'orders', metrics: ['revenue'], filters: [{ field: 'region', op: '=', value: evil }] }),
      catalog.views(acme).get('orders')!,
      acme,
      10000,
    );
    expect(plan.sql).not.toContain('DROP');
    expect(plan.params).toContain(evil);
  });
});
