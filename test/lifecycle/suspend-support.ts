/** The suspension fixture: A and B pooled, a schema-tier and a database-tier tenant, every way of naming a tenant on. */
import { applyProvision } from '../../src/provision/apply.ts';
import { ownerDatabases } from '../../src/tiers/databases.ts';
import { createFixture, pgliteFactory, type BackendKind, type Fixture } from '../support/backends.ts';
import { TIER_SQL } from '../tiers/support.ts';

export const SUBDOMAIN_BASE = 'api.example.test';

export const SUSPEND_YAML = `version: 1
database:
  url: \${TG_TEST_DB}
  role_prefix: \${TG_TEST_PREFIX:-tenantgate}
identity:
  subdomain_base: ${SUBDOMAIN_BASE}
defaults:
  quotas: { requests_per_minute: 10000000, burst: 1000000, concurrent_queries: 64, queue_timeout_ms: 10000 }
datasets:
  - name: orders
    table: public.orders
    tenant_column: tenant_id
    rls:
      additional_filters:
        - { column: deleted_at, condition: IS NULL }
    dimensions: [region, status]
    metrics:
      revenue: sum(amount)
      orders: count(*)
    columns:
      internal_cost: { access: restricted }
      email: { mask: hash }
tenants:
  - { id: acme_corp, tier: pooled }
  - { id: globex_inc, tier: pooled }
  - { id: hooli, tier: schema }
  - { id: initech, tier: database }
`;

/** Two rows per tenant, written through the library (it finds each tenant's place). */
export async function suspendFixture(kind: BackendKind): Promise<Fixture> {
  const fx = await createFixture(kind, { sql: TIER_SQL, yaml: SUSPEND_YAML, apply: false });
  await applyProvision(fx.config, fx.db, fx.secret, { env: { TG_TEST_DB: fx.url, TG_TEST_PREFIX: fx.prefix }, databases: ownerDatabases(fx.config, fx.db, {}, pgliteFactory) });
  const gate = await fx.gate();
  for (const t of fx.config.tenants.keys()) {
    await gate.withTenant({ tenant: t, access: 'write' }, async (db) => {
      await db.query(`INSERT INTO orders (tenant_id, region, amount) VALUES ($1, 'North', 100), ($1, 'South', 200)`, [t]);
    });
  }
  return fx;
}

export const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
};
