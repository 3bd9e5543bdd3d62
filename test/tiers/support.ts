/** The tier fixture: one table, a tenant in each tier, the same rows for each (written through the library). */
import { applyProvision } from '../../src/provision/apply.ts';
import { ownerDatabases } from '../../src/tiers/databases.ts';
import { createFixture, pgliteFactory, type Fixture } from '../support/backends.ts';

export const TIER_SQL = `CREATE TABLE public.orders (
  id serial PRIMARY KEY,
  tenant_id varchar(50) NOT NULL,
  region text NOT NULL,
  status text NOT NULL DEFAULT 'open',
  amount numeric NOT NULL,
  internal_cost numeric,
  email text,
  deleted_at timestamptz,
  created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX orders_tenant_idx ON public.orders (tenant_id, id);`;

export const TIER_YAML = `version: 1
database:
  url: \${TG_TEST_DB}
  role_prefix: \${TG_TEST_PREFIX:-tenantgate}
defaults:
  quotas: { requests_per_minute: 10000000, burst: 1000000, concurrent_queries: 64 }
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
  - { id: globex_inc, tier: schema }
  - { id: hooli, tier: schema }
  - { id: initech, tier: database }
  - { id: umbrella, tier: database }
`;

/** The same rows for every tenant (their own tenant id), written through the library: it finds each tenant's place. */
export const ROWS: Array<[string, string, number, string | null, boolean]> = [
  ['North', 'open', 100, 'a@x.example', false],
  ['South', 'paid', 200, 'b@x.example', false],
  ['North', 'paid', 50, null, false],
  ['East', 'open', 999, 'gone@x.example', true],
];

export async function tierFixture(kind: 'pglite' | 'postgres'): Promise<Fixture> {
  const fx = await createFixture(kind, { sql: TIER_SQL, yaml: TIER_YAML, apply: false });
  await applyProvision(fx.config, fx.db, fx.secret, { env: { TG_TEST_DB: fx.url, TG_TEST_PREFIX: fx.prefix }, databases: ownerDatabases(fx.config, fx.db, {}, pgliteFactory) });
  const gate = await fx.gate();
  for (const t of fx.config.tenants.keys()) {
    await gate.withTenant({ tenant: t, access: 'write' }, async (db) => {
      for (const [region, status, amount, email, deleted] of ROWS) {
        await db.query(`INSERT INTO orders (tenant_id, region, status, amount, email, deleted_at) VALUES ($1, $2, $3, $4, $5, ${deleted ? 'now()' : 'NULL'})`, [t, region, status, amount, email]);
      }
    });
  }
  return fx;
}
