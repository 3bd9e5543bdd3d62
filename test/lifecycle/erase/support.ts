/** Erasure fixtures: tenants in every tier, two dataset tables joined by a foreign key, and checksums of a tenant's rows. */
import { generateKeyPairSync } from 'node:crypto';
import type { Database } from '../../../src/db/database.ts';
import { applyProvision } from '../../../src/provision/apply.ts';
import { ownerDatabases } from '../../../src/tiers/databases.ts';
import { tenantDatabase } from '../../../src/tiers/location.ts';
import { createFixture, pgliteFactory, type BackendKind, type Fixture } from '../../support/backends.ts';
import { TIER_SQL } from '../../tiers/support.ts';

export const ERASE_SQL = `${TIER_SQL}
CREATE TABLE public.order_items (
  id serial PRIMARY KEY,
  tenant_id varchar(50) NOT NULL,
  order_id int NOT NULL REFERENCES public.orders(id),
  sku text NOT NULL
);
CREATE INDEX order_items_tenant_idx ON public.order_items (tenant_id, id);`;

export const ERASE_YAML = `version: 1
database:
  url: \${TG_TEST_DB}
  role_prefix: \${TG_TEST_PREFIX:-tenantgate}
defaults:
  quotas: { requests_per_minute: 10000000, burst: 1000000, concurrent_queries: 64 }
datasets:
  - name: items
    table: public.order_items
    tenant_column: tenant_id
    dimensions: [sku]
    metrics: { items: count(*) }
  - name: orders
    table: public.orders
    tenant_column: tenant_id
    dimensions: [region, status]
    metrics:
      revenue: sum(amount)
tenants:
  - { id: acme_corp, tier: pooled }
  - { id: globex_inc, tier: pooled }
  - { id: hooli, tier: schema }
  - { id: initech, tier: database }
`;

/** The same two datasets for CLI runs: tenants come from tenants/<id>.yaml files (and `extra`, inline). */
export const cliYaml = (extra = '') => `version: 1
database:
  url: \${TG_TEST_DB}
  role_prefix: \${TG_TEST_PREFIX:-tenantgate}
datasets:
  - name: items
    table: public.order_items
    tenant_column: tenant_id
    dimensions: [sku]
  - name: orders
    table: public.orders
    tenant_column: tenant_id
    dimensions: [region]
${extra}`;

export const SIGNING_PEM = generateKeyPairSync('ed25519').privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();

/** `rows` orders per tenant with an item each, written through the library (it finds each tenant's place); `yaml`: ERASE_YAML with more settings. */
export async function eraseFixture(kind: BackendKind, rows = 3, yaml = ERASE_YAML): Promise<Fixture> {
  const fx = await createFixture(kind, { sql: ERASE_SQL, yaml, apply: false });
  await applyProvision(fx.config, fx.db, fx.secret, { env: { TG_TEST_DB: fx.url, TG_TEST_PREFIX: fx.prefix }, databases: ownerDatabases(fx.config, fx.db, {}, pgliteFactory) });
  const gate = await fx.gate();
  for (const t of fx.config.tenants.keys()) {
    await gate.withTenant({ tenant: t, access: 'write' }, async (db) => {
      for (let i = 0; i < rows; i++) {
        const o = await db.query<{ id: number }>(`INSERT INTO orders (tenant_id, region, amount) VALUES ($1, $2, $3) RETURNING id`, [t, i % 2 ? 'North' : 'South', 100 + i]);
        await db.query(`INSERT INTO order_items (tenant_id, order_id, sku) VALUES ($1, $2, $3)`, [t, o.rows[0]!.id, `sku-${i}`]);
      }
    });
  }
  return fx;
}

/** Where a tenant's rows are, as the owner: the shared tables, its schema, or its own database. */
export async function placeOf(fx: Fixture, tenant: string): Promise<{ db: Pick<Database, 'query'>; schema: string }> {
  const tier = fx.config.tenants.get(tenant)!.tier;
  if (tier === 'schema') return { db: fx.db, schema: `t_${tenant}` };
  if (tier === 'database') return { db: await ownerDatabases(fx.config, fx.db, {}, pgliteFactory).get('default', tenantDatabase(fx.prefix, tenant)), schema: 'public' };
  return { db: fx.db, schema: 'public' };
}

/** Count and a hash of every row (its whole text) of the tenant in each dataset table: equal before and after means byte-identical. */
export async function checksums(fx: Fixture, tenant: string): Promise<Record<string, string>> {
  const { db, schema } = await placeOf(fx, tenant);
  const out: Record<string, string> = {};
  for (const table of ['orders', 'order_items']) {
    const r = await db.query(`SELECT count(*)::text || ':' || coalesce(string_agg(md5(t::text), ',' ORDER BY t.id), '') AS c FROM "${schema}"."${table}" t WHERE tenant_id = $1`, [tenant]);
    out[table] = String(r.rows[0]!['c']);
  }
  return out;
}
