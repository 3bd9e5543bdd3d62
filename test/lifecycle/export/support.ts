/** The export fixture: orders (restricted, masked, soft-deleted rows) and a table of awkward values; a tenant in each tier, canaries everywhere. */
import { generateKeyPairSync } from 'node:crypto';
import { applyProvision } from '../../../src/provision/apply.ts';
import { ownerDatabases } from '../../../src/tiers/databases.ts';
import { tenantDatabase, tenantSchema } from '../../../src/tiers/location.ts';
import { createFixture, pgliteFactory, type BackendKind, type Fixture } from '../../support/backends.ts';
import { TIER_SQL } from '../../tiers/support.ts';

export const EXPORT_SQL = `${TIER_SQL}
CREATE TABLE public.vals (
  id serial PRIMARY KEY,
  tenant_id text NOT NULL,
  n numeric,
  b bigint,
  ts timestamptz,
  raw bytea,
  note text,
  uni text,
  secret text,
  price numeric(40,10)
);
CREATE INDEX vals_tenant_idx ON public.vals (tenant_id, id);`;

export const EXPORT_YAML = `version: 1
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
    columns:
      internal_cost: { access: restricted }
      email: { mask: hash }
  - name: vals
    table: public.vals
    tenant_column: tenant_id
    dimensions: [note]
    columns:
      secret: { access: restricted }
tenants:
  - { id: acme_corp, tier: pooled, access_overrides: { vals: { uni: restricted } } }
  - { id: globex_inc, tier: pooled }
  - { id: hooli, tier: schema }
  - { id: initech, tier: database }
`;

export const BIG_NUMERIC = '123456789012345678901234567890.123456789';
export const BIG_INT = '9223372036854775807';
export const UNICODE = 'Zoë — 日本 🎉 "quoted", comma\nnew line \\ back';

/** A value of `tenant` no other tenant has: it must never appear in another tenant's export. */
export const canary = (tenant: string) => `canary-${tenant}-7f3a`;

export const signingKeyPem = () => generateKeyPairSync('ed25519').privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();

/** `configFile`: where the config pretends to live (HTTP exports are written beside it, under .tenantgate/exports). */
export async function exportFixture(kind: BackendKind, configFile?: string): Promise<Fixture> {
  const fx = await createFixture(kind, { sql: EXPORT_SQL, yaml: EXPORT_YAML, apply: false, ...(configFile ? { configFile } : {}) });
  await applyProvision(fx.config, fx.db, fx.secret, { env: { TG_TEST_DB: fx.url, TG_TEST_PREFIX: fx.prefix }, databases: ownerDatabases(fx.config, fx.db, {}, pgliteFactory) });
  // As the owner, at each tenant's place (restricted columns and soft deletes included).
  const dbs = ownerDatabases(fx.config, fx.db, {}, pgliteFactory);
  try {
    for (const t of fx.config.tenants.values()) {
      const db = t.tier === 'database' ? await dbs.get(t.placement, tenantDatabase(fx.names.prefix, t.id)) : fx.db;
      const schema = t.tier === 'schema' ? tenantSchema(t.id) : 'public';
      const c = canary(t.id);
      await db.query(
        `INSERT INTO "${schema}".orders (tenant_id, region, amount, internal_cost, email, deleted_at) VALUES
           ($1, 'North', 100, 7, $2, NULL), ($1, 'South', 200.5, 8, NULL, NULL), ($1, $3, 999, 9, 'gone@x', now())`,
        [t.id, `${c}@mail`, `${c}-deleted`],
      );
      await db.query(
        `INSERT INTO "${schema}".vals (tenant_id, n, b, ts, raw, note, uni, secret, price) VALUES
           ($1, $2::numeric, $3::bigint, '2024-03-01 12:34:56.789+05:30', '\\x00ff10'::bytea, '', $4, $5, $2::numeric),
           ($1, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
           ($1, -0.5, -1, '1999-12-31 23:59:59+00', ''::bytea, $6, 'plain', 's', -0.5)`,
        [t.id, BIG_NUMERIC, BIG_INT, UNICODE, `${c}-secret`, c],
      );
    }
  } finally {
    await dbs.close();
  }
  return fx;
}

/** A CSV parser that keeps NULL (unquoted empty) apart from '' (quoted empty). */
export function parseCsv(text: string): Array<Array<string | null>> {
  const rows: Array<Array<string | null>> = [];
  let row: Array<string | null> = [];
  let field = '';
  let quoted = false;
  let wasQuoted = false;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i];
    if (quoted) {
      if (ch === '"') {
        if (text[i + 1] === '"') {
          field += '"';
          i++;
        } else quoted = false;
      } else field += ch;
    } else if (ch === '"') {
      quoted = true;
      wasQuoted = true;
    } else if (ch === ',' || ch === '\n') {
      row.push(field === '' && !wasQuoted ? null : field);
      field = '';
      wasQuoted = false;
      if (ch === '\n') {
        rows.push(row);
        row = [];
      }
    } else field += ch;
  }
  return rows;
}
