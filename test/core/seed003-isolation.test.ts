import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BACKENDS, createFixture, fixture, type Fixture } from '../support/backends.ts';
import { createApiKey } from '../../src/identify/api-keys.ts';

const ROWS_SQL = 'SELECT tenant_id, region, amount::int AS amount FROM public.orders ORDER BY id';

describe.each(BACKENDS)('seed-003 fixture on %s', (kind) => {
  let fx: Fixture;
  beforeAll(async () => {
    fx = await createFixture(kind, { sql: fixture('seed003.sql') });
  });
  afterAll(async () => fx?.cleanup());

  it('withTenant: each tenant sees exactly its 2 live rows', async () => {
    const gate = await fx.gate();
    const acme = await gate.withTenant({ tenant: 'acme_corp', access: 'read' }, (db) => db.query(ROWS_SQL));
    const globex = await gate.withTenant({ tenant: 'globex_inc', access: 'read' }, (db) => db.query(ROWS_SQL));
    expect(acme.rows).toEqual([
      { tenant_id: 'acme_corp', region: 'North', amount: 100 },
      { tenant_id: 'acme_corp', region: 'South', amount: 200 },
    ]);
    expect(globex.rows).toEqual([
      { tenant_id: 'globex_inc', region: 'North', amount: 300 },
      { tenant_id: 'globex_inc', region: 'East', amount: 400 },
    ]);
  });

  it('direct login: each tenant sees exactly its 2 live rows', async () => {
    for (const [tenant, regions] of [['acme_corp', ['North', 'South']], ['globex_inc', ['North', 'East']]] as const) {
      const key = await createApiKey(fx.db, fx.config, fx.names, fx.secret, { tenant, role: 'analyst', dbLogin: true });
      const login = await fx.connectAs(key.db_login!.user, key.db_login!.password);
      const rows = (await login.query<{ tenant_id: string; region: string }>(ROWS_SQL)).rows;
      expect(rows.map((r) => r.tenant_id)).toEqual([tenant, tenant]);
      expect(rows.map((r) => r.region)).toEqual(regions);
    }
  });

  it('a platform admin naming all sees the four live rows', async () => {
    const gate = await fx.gate();
    const all = await gate.withTenant({ tenant: 'all', access: 'platform' }, (db) => db.query(ROWS_SQL));
    expect(all.rows).toHaveLength(4);
  });
});
