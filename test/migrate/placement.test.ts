/**
 * Migrations reach a database-tier tenant on a second placement (its own server URL), and a move
 * refuses a tenant whose place is at another migration version than the main database
 * (MIGRATION_PENDING) until `migrate up` has brought it along. Server only: a placement is a URL.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Config } from '../../src/config/types.ts';
import type { Database } from '../../src/db/database.ts';
import { migrateUp } from '../../src/migrate/run.ts';
import { migrationStatus } from '../../src/migrate/status.ts';
import type { DatabaseSet } from '../../src/tiers/databases.ts';
import { tenantDatabase } from '../../src/tiers/location.ts';
import { moveTenant } from '../../src/tiers/move/move.ts';
import { SERVER_URL, TEST_SECRET } from '../support/backends.ts';
import { twoPlacements, type TwoPlacements } from '../support/placement.ts';

describe.skipIf(!SERVER_URL)('migrate with a database-tier tenant on a second placement (PostgreSQL)', () => {
  let p: TwoPlacements;
  let db: Database;
  let config: Config;
  let dbs: DatabaseSet;
  let env: Record<string, string>;
  let migrations: string;
  let main: { prefix: string };

  beforeAll(async () => {
    p = await twoPlacements(`  - { id: acme_corp }
  - { id: hooli, tier: schema }
  - { id: initech, tier: database, placement: second }
`);
    ({ db, config, dbs, env, main } = p);
    migrations = join(p.dir, 'migrations');
    mkdirSync(migrations);
  }, 120_000);
  afterAll(async () => p?.cleanup());

  it('applies to the tenant database on the placement and records it there', async () => {
    writeFileSync(join(migrations, '0001_note.sql'), 'ALTER TABLE public.orders ADD COLUMN note text;\n');
    const r = await migrateUp({ config, main: db, env, dir: migrations, databases: dbs });
    expect(r).toMatchObject({ applied: 3, failures: [] });
    const own = await dbs.get('second', tenantDatabase(main.prefix, 'initech'));
    const cols = await own.query<{ c: string }>(`SELECT column_name::text AS c FROM information_schema.columns WHERE table_name = 'orders' AND column_name = 'note'`);
    expect(cols.rows).toEqual([{ c: 'note' }]);
    const ledger = await own.query(`SELECT target, version FROM tenantgate.migrations`);
    expect(ledger.rows).toEqual([{ target: 'database:initech', version: '0001' }]);
    const status = await migrationStatus({ config, main: db, env, dir: migrations, databases: dbs });
    expect(status.targets.find((t) => t.target === 'database:initech')).toMatchObject({ placement: 'second', applied: ['0001'], pending: [] });
  });

  it('a move refuses a place behind the main database (MIGRATION_PENDING), and goes once migrate up has run', { timeout: 120_000 }, async () => {
    writeFileSync(join(migrations, '0002_more.sql'), 'ALTER TABLE public.orders ADD COLUMN more int;\n');
    expect(await migrateUp({ config, main: db, env, dir: migrations, databases: dbs })).toMatchObject({ applied: 3, failures: [] });
    // hooli's schema put back behind (as if 0002 had failed there).
    await db.query(`DELETE FROM tenantgate.migrations WHERE target = 'schema:hooli' AND version = '0002'`);
    await db.query(`ALTER TABLE t_hooli.orders DROP COLUMN more`);
    const options = { config, main: db, secret: TEST_SECRET, env, databases: dbs, tenant: 'hooli', to: { tier: 'pooled' as const, placement: 'default' }, graceMs: 0 };
    await expect(moveTenant(options)).rejects.toMatchObject({ code: 'MIGRATION_PENDING' });
    const r = await migrateUp({ config, main: db, env, dir: migrations, databases: dbs });
    expect(r).toMatchObject({ applied: 1, failures: [] });
    await moveTenant(options);
    const where = await db.query(`SELECT tier FROM tenantgate.tenants WHERE id = 'hooli'`);
    expect(where.rows[0]).toEqual({ tier: 'pooled' });
  });
});
