/**
 * The acceptance tour of issue 7 at size: a tenant with 1,000,000 rows moved pooled → database →
 * schema → pooled on a PostgreSQL server while it keeps writing. At each step the mover's checksums
 * matched (it refuses to cut over otherwise), the rows at the new place are exactly the start plus
 * every acknowledged write, and the other tenants' answers are unchanged. Server only (the embedded
 * database is an in-process development database; test/tiers/move.test.ts runs the tour there).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TenantGate } from '../../src/gate.ts';
import { applyProvision } from '../../src/provision/apply.ts';
import { moveTenant } from '../../src/tiers/move/move.ts';
import { tableChecksum } from '../../src/tiers/move/checksum.ts';
import { moveTables } from '../../src/tiers/move/tables.ts';
import { ownerDatabases, type DatabaseSet } from '../../src/tiers/databases.ts';
import { tenantDatabase } from '../../src/tiers/location.ts';
import { createFixture, SERVER_URL, type Fixture } from '../support/backends.ts';
import { answers, expectSameRows, MOVE_SQL, MOVE_YAML, rowsOf, seedPooled, startWriter } from './move-support.ts';

const MILLION = 1_000_000;

describe.skipIf(!SERVER_URL)('a 1,000,000-row tenant moved pooled → database → schema → pooled', () => {
  let fx: Fixture;
  let gate: TenantGate;
  let dbs: DatabaseSet;
  const env = () => ({ TG_TEST_DB: fx.url, TG_TEST_PREFIX: fx.prefix });

  beforeAll(async () => {
    fx = await createFixture('postgres', { sql: MOVE_SQL, yaml: MOVE_YAML, apply: false });
    dbs = ownerDatabases(fx.config, fx.db, {});
    await applyProvision(fx.config, fx.db, fx.secret, { env: env(), databases: dbs });
    await seedPooled(fx, 'acme_corp', 1_000);
    await seedPooled(fx, 'globex_inc', MILLION);
    await fx.db.query('ANALYZE public.orders');
    gate = await fx.gate();
    for (const t of ['hooli', 'initech']) {
      await gate.withTenant({ tenant: t, access: 'write' }, (db) => db.query(`INSERT INTO orders (tenant_id, region, amount) SELECT $1, 'North', g FROM generate_series(1, 100) g`, [t]));
    }
  }, 180_000);
  afterAll(async () => {
    await dbs?.close();
    await fx?.cleanup();
  });

  it('checksums equal at each step, every write made meanwhile there once, the others unchanged', { timeout: 600_000 }, async () => {
    const others = ['acme_corp', 'hooli', 'initech'];
    const before = await answers(gate, others);
    let model = await rowsOf(gate, 'globex_inc');
    expect(model.size).toBe(MILLION);
    for (const tier of ['database', 'schema', 'pooled'] as const) {
      const writer = startWriter(gate, 'globex_inc', model);
      const report = await moveTenant({ config: fx.config, main: fx.db, secret: fx.secret, env: env(), databases: dbs, tenant: 'globex_inc', to: { tier, placement: 'default' }, graceMs: 500 });
      await gate.routes.refresh();
      await new Promise((r) => setTimeout(r, 200));
      await writer.stop();
      expect(report.phase).toBe('done');
      expect(report.rows).toBeGreaterThanOrEqual(MILLION - 1_000);
      // The mover's verification: the counts and sums it compared (equal, or it would not have cut over).
      expect(Number(report.tables[0]!.checksum!.rows)).toBeGreaterThanOrEqual(MILLION - 1_000);
      model = writer.model;
      expectSameRows(await rowsOf(gate, 'globex_inc'), model);
      expect(await answers(gate, others)).toEqual(before);
      // And a checksum taken now at the new place equals one of the rows the model says (no writes in flight).
      const place = tier === 'database' ? await dbs.get('default', tenantDatabase(fx.prefix, 'globex_inc')) : fx.db;
      const [t] = await moveTables(fx.config, place, 'globex_inc', tier, tier);
      const sum = await tableChecksum(place, t!, 'from', 'globex_inc');
      expect(Number(sum.rows)).toBe(model.size);
      console.log(`move to ${tier}: ${report.rows.toLocaleString('en-US')} rows at ${report.rowsPerSecond.toLocaleString('en-US')} rows/s, ${report.replayed} replayed, writes paused ${report.pauseMs} ms, writer ${JSON.stringify(writer.stats)}`);
    }
  });
});
