import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseConfig } from '../../src/config/load.ts';
import type { Config } from '../../src/config/types.ts';
import { QueryCatalog } from '../../src/plan/catalog.ts';

/** The seed-003 catalog with the fixture table's columns, no database needed (planning is pure). */
export const ORDERS_COLUMNS = ['id', 'tenant_id', 'region', 'status', 'amount', 'internal_cost', 'email', 'deleted_at', 'created_at'];

export async function fixtureCatalog(yamlOverride?: string): Promise<{ config: Config; catalog: QueryCatalog }> {
  const file = join(import.meta.dirname, '..', 'fixtures', 'virtual', 'tenantgate.yaml');
  const yaml = yamlOverride ?? readFileSync(join(import.meta.dirname, '..', 'fixtures', 'seed003.yaml'), 'utf8');
  const config = await parseConfig(yaml, file, { env: { TG_TEST_DB: 'pglite://memory', TG_TEST_PREFIX: 'tg' } });
  return { config, catalog: QueryCatalog.fromColumns(config, { orders: ORDERS_COLUMNS }) };
}
