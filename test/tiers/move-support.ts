/**
 * What the move tests share: a tenant with many rows, a writer that keeps writing to it through
 * the library while it moves (and remembers every write that was acknowledged), and fingerprints
 * of the other tenants' answers.
 */
import { expect } from 'vitest';
import type { TenantGate } from '../../src/gate.ts';
import { isTenantGateError } from '../../src/errors/index.ts';
import type { Fixture } from '../support/backends.ts';
import { TIER_SQL } from './support.ts';

export const MOVE_SQL = TIER_SQL;

export const MOVE_YAML = `version: 1
database:
  url: \${TG_TEST_DB}
  role_prefix: \${TG_TEST_PREFIX:-tenantgate}
defaults:
  quotas: { requests_per_minute: 10000000, burst: 1000000, concurrent_queries: 64 }
datasets:
  - name: orders
    table: public.orders
    tenant_column: tenant_id
    dimensions: [region, status]
    metrics:
      revenue: sum(amount)
      orders: count(*)
tenants:
  - { id: acme_corp, tier: pooled }
  - { id: globex_inc, tier: pooled }
  - { id: hooli, tier: schema }
  - { id: initech, tier: database }
`;

/** `rows` rows for a pooled tenant, written as the owner in one statement. */
export async function seedPooled(fx: Fixture, tenant: string, rows: number): Promise<void> {
  await fx.db.query(
    `INSERT INTO public.orders (tenant_id, region, status, amount, email)
     SELECT $1, (ARRAY['North','South','East','West'])[1 + g % 4], (ARRAY['open','paid'])[1 + g % 2], g % 1000, 'u' || g || '@x.example'
       FROM generate_series(1, $2::int) g`,
    [tenant, rows],
  );
}

/** The tenant's rows as the library reads them (wherever it lives): id → amount. */
export async function rowsOf(gate: TenantGate, tenant: string): Promise<Map<number, number>> {
  const r = await gate.withTenant({ tenant, access: 'read' }, (db) => db.query<{ id: number; amount: string }>(`SELECT id, amount FROM orders`));
  return new Map(r.rows.map((x) => [Number(x.id), Number(x.amount)]));
}

/** Each tenant's answer to a summary query: unchanged by another tenant's move. */
export async function answers(gate: TenantGate, tenants: string[]): Promise<Record<string, unknown>> {
  const out: Record<string, unknown> = {};
  for (const t of tenants) {
    out[t] = (await gate.withTenant({ tenant: t, access: 'read' }, (db) => db.query(`SELECT tenant_id, region, count(*)::int AS n, sum(amount)::text AS s FROM orders GROUP BY 1, 2 ORDER BY 1, 2`))).rows;
  }
  return out;
}

export interface Writer {
  /** Stop and wait for the last write. */
  stop(): Promise<void>;
  /** What the tenant's rows must be: the start plus every acknowledged write. */
  model: Map<number, number>;
  stats: { inserts: number; updates: number; deletes: number; moving: number };
}

/**
 * Keep writing to `tenant` through the library (inserts, updates, deletes), like an application:
 * a write refused with TENANT_MOVING is retried once the tenant's place is known again. Every
 * acknowledged write goes into the model; any other error fails the test.
 */
export function startWriter(gate: TenantGate, tenant: string, start: Map<number, number>): Writer {
  const model = new Map(start);
  const stats = { inserts: 0, updates: 0, deletes: 0, moving: 0 };
  let running = true;
  let n = 0;
  const errors: unknown[] = [];
  const ids = () => [...model.keys()];
  const once = async (): Promise<void> => {
    const op = n++ % 3;
    const all = ids();
    const pick = all[(n * 7919) % all.length]!;
    for (;;) {
      try {
        if (op === 0 || all.length === 0) {
          const r = await gate.withTenant({ tenant, access: 'write' }, (db) => db.query<{ id: number }>(`INSERT INTO orders (tenant_id, region, amount) VALUES ($1, 'Moving', 1) RETURNING id`, [tenant]));
          model.set(Number(r.rows[0]!.id), 1);
          stats.inserts++;
        } else if (op === 1) {
          const r = await gate.withTenant({ tenant, access: 'write' }, (db) => db.query(`UPDATE orders SET amount = amount + 1 WHERE id = $1`, [pick]));
          if (r.rowCount === 1) model.set(pick, model.get(pick)! + 1);
          stats.updates++;
        } else {
          const r = await gate.withTenant({ tenant, access: 'write' }, (db) => db.query(`DELETE FROM orders WHERE id = $1`, [pick]));
          if (r.rowCount === 1) model.delete(pick);
          stats.deletes++;
        }
        return;
      } catch (err) {
        if (!(isTenantGateError(err) && err.code === 'TENANT_MOVING')) throw err;
        stats.moving++;
        // Stopped while refused: the write never happened (and is not in the model).
        if (!running) return;
        await gate.routes.moved(tenant);
        await new Promise((r) => setTimeout(r, 20));
      }
    }
  };
  const loop = (async () => {
    while (running) {
      try {
        await once();
      } catch (err) {
        errors.push(err);
        return;
      }
      await new Promise((r) => setTimeout(r, 2));
    }
  })();
  return {
    model,
    stats,
    async stop() {
      running = false;
      await loop;
      expect(errors, String(errors[0])).toEqual([]);
    },
  };
}

/** The model and the rows agree exactly: no write lost, none doubled, none resurrected. */
export function expectSameRows(actual: Map<number, number>, model: Map<number, number>): void {
  const missing = [...model.keys()].filter((k) => !actual.has(k));
  const extra = [...actual.keys()].filter((k) => !model.has(k));
  const differ = [...model.keys()].filter((k) => actual.has(k) && actual.get(k) !== model.get(k));
  expect({ missing: missing.slice(0, 5), extra: extra.slice(0, 5), differ: differ.slice(0, 5).map((k) => [k, actual.get(k), model.get(k)]) }).toEqual({ missing: [], extra: [], differ: [] });
  expect(actual.size).toBe(model.size);
}
