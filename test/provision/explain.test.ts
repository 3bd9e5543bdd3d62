/**
 * Under every policy the tenant predicate must be an Index Cond when an index leads with the
 * tenant column (SPEC §3; DESIGN.md collation trap). A sequential scan here would mean every
 * tenant query reads every tenant's rows.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApiKey } from '../../src/identify/api-keys.ts';
import { BACKENDS, createFixture, fixture, type Fixture } from '../support/backends.ts';

const MANY_ROWS = `
INSERT INTO public.orders (tenant_id, region, amount)
SELECT CASE WHEN i % 2 = 0 THEN 'acme_corp' ELSE 'globex_inc' END || CASE WHEN i % 50 < 2 THEN '' ELSE '_x' || (i % 50) END,
       'North', i FROM generate_series(1, 40000) i;
ANALYZE public.orders;`;

function indexConds(plan: unknown): string[] {
  const out: string[] = [];
  const walk = (node: unknown) => {
    if (Array.isArray(node)) return node.forEach(walk);
    if (!node || typeof node !== 'object') return;
    for (const [k, v] of Object.entries(node)) {
      if (k === 'Index Cond' && typeof v === 'string') out.push(v);
      walk(v);
    }
  };
  walk(plan);
  return out;
}

describe.each(BACKENDS)('tenant predicate is an Index Cond on %s', (kind) => {
  let fx: Fixture;
  beforeAll(async () => {
    fx = await createFixture(kind, { sql: fixture('seed003.sql') + MANY_ROWS });
  });
  afterAll(async () => fx?.cleanup());
  const explain = async (run: (sql: string) => Promise<{ rows: Array<Record<string, unknown>> }>, sql: string) => {
    const r = await run(`EXPLAIN (FORMAT JSON) ${sql}`);
    return indexConds(r.rows[0]?.['QUERY PLAN']);
  };

  for (const access of ['read', 'write', 'platform'] as const) {
    it(`gateway path, ${access} access`, async () => {
      const gate = await fx.gate();
      const conds = await gate.withTenant({ tenant: 'acme_corp', access }, (db) => explain((s) => db.query(s), `SELECT id, region FROM public.orders WHERE region = 'North'`));
      expect(conds.join(' | ')).toMatch(/tenant_id/);
    });
  }

  it('gateway path, update by a writer', async () => {
    const gate = await fx.gate();
    const conds = await gate.withTenant({ tenant: 'acme_corp', access: 'write' }, (db) => explain((s) => db.query(s), `UPDATE public.orders SET status = 'x' WHERE region = 'North'`));
    expect(conds.join(' | ')).toMatch(/tenant_id/);
  });

  it('direct login', async () => {
    const key = await createApiKey(fx.db, fx.config, fx.names, fx.secret, { tenant: 'acme_corp', role: 'analyst', dbLogin: true });
    const login = await fx.connectAs(key.db_login!.user, key.db_login!.password);
    const conds = await explain((s) => login.query(s), `SELECT id, region FROM public.orders WHERE region = 'North'`);
    expect(conds.join(' | ')).toMatch(/tenant_id/);
  });
});
