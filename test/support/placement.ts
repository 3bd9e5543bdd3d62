/**
 * A main database and a second placement on the DATABASE_URL server (a placement is a URL: the
 * second one is another database of the same server), TIER_SQL's orders table, `tenants` (YAML
 * lines under `tenants:`) applied. Server only.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseConfig } from '../../src/config/load.ts';
import type { Config } from '../../src/config/types.ts';
import { openDatabase, type Database } from '../../src/db/database.ts';
import { applyProvision } from '../../src/provision/apply.ts';
import { ownerDatabases, type DatabaseSet } from '../../src/tiers/databases.ts';
import { TIER_SQL } from '../tiers/support.ts';
import { createServerDatabase, TEST_SECRET, type ServerDatabase } from './backends.ts';

export interface TwoPlacements {
  main: ServerDatabase;
  second: ServerDatabase;
  /** The owner's connection to the main database. */
  db: Database;
  dbs: DatabaseSet;
  config: Config;
  env: Record<string, string>;
  /** The config file's folder. */
  dir: string;
  /** The owner's URL of a database on the second placement's server. */
  onSecond(database: string): string;
  cleanup(): Promise<void>;
}

export async function twoPlacements(tenants: string, extraEnv: Record<string, string> = {}): Promise<TwoPlacements> {
  const main = await createServerDatabase(TIER_SQL);
  const second = await createServerDatabase();
  const dir = mkdtempSync(join(tmpdir(), 'tg-placements-'));
  const env = { TG_TEST_DB: main.url, TG_TEST_PREFIX: main.prefix, TG_SECOND_URL: second.url, ...extraEnv };
  const yaml = `version: 1
database:
  url: \${TG_TEST_DB}
  role_prefix: \${TG_TEST_PREFIX}
  placements:
    second: { url_env: TG_SECOND_URL }
datasets:
  - name: orders
    table: public.orders
    tenant_column: tenant_id
    dimensions: [region]
tenants:
${tenants}`;
  writeFileSync(join(dir, 'tenantgate.yaml'), yaml);
  const config = await parseConfig(yaml, join(dir, 'tenantgate.yaml'), { env });
  const db = await openDatabase(main.url, { max: 4 });
  const dbs = ownerDatabases(config, db, env);
  await applyProvision(config, db, TEST_SECRET, { env, databases: dbs });
  return {
    main,
    second,
    db,
    dbs,
    config,
    env,
    dir,
    onSecond: (database) => second.url.replace(/\/[^/?]+(\?|$)/, `/${database}$1`),
    async cleanup() {
      await dbs.close();
      await db.close();
      // Tenant databases on the second placement are named with the main prefix: main.drop() removes them.
      await second.drop();
      await main.drop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
