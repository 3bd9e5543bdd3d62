/**
 * The point-query data set: 1,000 tenants × 1,000 rows in `public.orders`, provisioned with
 * `applyProvision` from a config built in memory. Tenant `t0042` owns ids 42,001…43,000.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseConfig } from '../src/config/load.ts';
import type { Config } from '../src/config/types.ts';
import { openDatabase, type Database } from '../src/db/database.ts';
import { applyProvision, resolveNames } from '../src/provision/apply.ts';
import type { Names } from '../src/provision/names.ts';
import { log, timed, urlFor, type Scratch } from './support.ts';

export const TENANTS = 1000;
export const ROWS_PER_TENANT = 1000;

export const tenantId = (i: number) => `t${String(i).padStart(4, '0')}`;
/** The i-th tenant's k-th row (both from 0). */
export const rowId = (i: number, k: number) => i * ROWS_PER_TENANT + k + 1;

export const ORDERS_DDL = `
CREATE TABLE public.orders (
  id bigserial,
  tenant_id text NOT NULL,
  region text,
  status text NOT NULL DEFAULT 'open',
  amount numeric,
  created_at timestamptz NOT NULL DEFAULT now()
)`;

/**
 * tenantgate.yaml for the benchmarks (tenants listed inline, or none when they live in tenants/);
 * a tenant may be [id, tier]. `unlimited`: quotas no benchmark reaches (a 429 is no measurement);
 * `database`: more lines under `database:`.
 */
export function configYaml(opts: { url: string; prefix: string; tenants: Array<string | [string, string]>; unlimited?: boolean; database?: string[] }): string {
  const lines = [
    'version: 1',
    'database:',
    `  url: ${opts.url}`,
    `  role_prefix: ${opts.prefix}`,
    ...(opts.database ?? []).map((l) => `  ${l}`),
    ...(opts.unlimited ? ['defaults:', '  quotas: { requests_per_minute: 100000000, burst: 10000000, concurrent_queries: 64 }'] : []),
    'datasets:',
    '  - name: orders',
    '    table: public.orders',
    '    tenant_column: tenant_id',
    '    dimensions: [id, region, status, created_at]',
    '    metrics:',
    '      revenue: sum(amount)',
    '      orders: count(*)',
  ];
  if (opts.tenants.length > 0) {
    lines.push('tenants:');
    for (const t of opts.tenants) {
      const [id, tier] = typeof t === 'string' ? [t, undefined] : t;
      lines.push(`  - id: ${id}`);
      if (tier) lines.push(`    tier: ${tier}`);
    }
  }
  return `${lines.join('\n')}\n`;
}

export interface Dataset {
  dbName: string;
  ownerUrl: string;
  gatewayUrl: string;
  gatewayPassword: string;
  prefix: string;
  config: Config;
  names: Names;
  secret: Buffer;
  tenants: string[];
  /** Setup timings in ms. */
  timings: { load: number; apply: number; changes: number };
  owner: Database;
}

export async function createDataset(scratch: Scratch, secret: Buffer): Promise<Dataset> {
  const dbName = await scratch.database();
  const prefix = scratch.prefix('q');
  const ownerUrl = urlFor(dbName);
  const owner = await openDatabase(ownerUrl, { max: 2 });
  log(`loading ${TENANTS} tenants × ${ROWS_PER_TENANT} rows into ${dbName}`);
  const load = await timed(async () => {
    const c = await owner.pool.connect();
    try {
      await c.query(`SET synchronous_commit = off`);
      await c.query(ORDERS_DDL);
      await c.query(
        `INSERT INTO public.orders (id, tenant_id, region, status, amount, created_at)
         SELECT g, 't' || lpad(((g - 1) / ${ROWS_PER_TENANT})::text, 4, '0'),
                (ARRAY['North', 'South', 'East', 'West'])[1 + g % 4],
                CASE WHEN g % 10 = 0 THEN 'closed' ELSE 'open' END,
                (g % 997) * 1.25,
                timestamptz '2024-01-01' + g * interval '1 minute'
           FROM generate_series(1, ${TENANTS * ROWS_PER_TENANT}) g`,
      );
      await c.query(`SELECT setval(pg_get_serial_sequence('public.orders', 'id'), ${TENANTS * ROWS_PER_TENANT})`);
      await c.query(`ALTER TABLE public.orders ADD PRIMARY KEY (id)`);
      await c.query(`CREATE INDEX orders_tenant_id_idx ON public.orders (tenant_id, id)`);
      await c.query(`VACUUM (ANALYZE) public.orders`);
    } finally {
      c.release();
    }
  });
  const tenants = Array.from({ length: TENANTS }, (_, i) => tenantId(i));
  const dir = mkdtempSync(join(tmpdir(), 'tg-bench-'));
  try {
    const config = await parseConfig(configYaml({ url: ownerUrl, prefix, tenants }), join(dir, 'tenantgate.yaml'), { env: {} });
    const names = resolveNames(config, {});
    log(`apply: ${config.tenants.size} tenants`);
    const applied = await timed(() => applyProvision(config, owner, secret, { env: {} }));
    const password = applied.value.gatewayPassword;
    if (!password) throw new Error('apply did not create the gateway login');
    return {
      dbName,
      ownerUrl,
      gatewayUrl: urlFor(dbName, names.gateway, password),
      gatewayPassword: password,
      prefix,
      config,
      names,
      secret,
      tenants,
      timings: { load: load.ms, apply: applied.ms, changes: applied.value.changes.length },
      owner,
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
