/**
 * Canary rows for cross-tenant leak detection over HTTP. globex_inc gets rows whose values
 * appear nowhere else (region/status/email strings, an amount of 987654, a 1987 timestamp),
 * so a globex_inc row (or an aggregate over one) that reaches acme_corp is recognisable in any
 * cell. acme_corp's own raw emails are masked (hash) on every read path: seeing one raw is a
 * leak too.
 */
import type { Fixture } from '../support/backends.ts';

export const CANARY_AMOUNT = 987654;
export const CANARY_COST = 987653;

export const CANARY_SQL = `INSERT INTO public.orders (tenant_id, region, status, amount, internal_cost, email, created_at) VALUES
  ('globex_inc', 'GLOBEX-CANARY-R1', 'GLOBEX-CANARY-S', ${CANARY_AMOUNT}, ${CANARY_COST}, 'canary1@globex-canary.example', '1987-06-05T04:03:02Z'),
  ('globex_inc', 'GLOBEX-CANARY-R2', 'open', ${CANARY_AMOUNT}, ${CANARY_COST}, 'canary2@globex-canary.example', '1987-06-05T04:03:02Z'),
  ('globex_inc', 'North', 'GLOBEX-CANARY-S', ${CANARY_AMOUNT}, NULL, NULL, '1987-06-05T04:03:02Z')`;

/** Seed the canaries through the owner connection (after createFixture, before any request). */
export async function seedCanaries(fx: Fixture): Promise<void> {
  await fx.db.query(CANARY_SQL);
}

/**
 * No legitimate acme_corp answer in these suites reaches this size: its visible amounts are
 * 100 and 200, and the queries sent only count, add and join a few rows of them.
 */
const HUGE = 900_000;
const NUMERIC = /^-?\d+(\.\d+)?(e[+-]?\d+)?$/i;
/** Strings that only a globex_inc row (or an unmasked acme_corp email) can put in a cell. */
const MARKERS = [/globex/i, /canary/i, /1987-06-05/, /@acme\.example/i];

/** Why `cell` betrays another tenant's row (or a masked value), or undefined when it does not. */
export function leakIn(cell: unknown): string | undefined {
  if (cell === null || cell === undefined) return undefined;
  if (typeof cell === 'number' || typeof cell === 'bigint') return Math.abs(Number(cell)) >= HUGE ? `number ${cell}` : undefined;
  if (typeof cell === 'string') {
    const marker = MARKERS.find((m) => m.test(cell));
    if (marker) return `string ${JSON.stringify(cell.slice(0, 200))} matches ${marker}`;
    if (NUMERIC.test(cell.trim()) && Math.abs(Number(cell)) >= HUGE) return `numeric string ${cell}`;
    return undefined;
  }
  if (typeof cell === 'object') {
    for (const v of Array.isArray(cell) ? cell : Object.values(cell as Record<string, unknown>)) {
      const why = leakIn(v);
      if (why) return why;
    }
  }
  return undefined;
}

/** The first leaking cell of an answer's rows, described, or undefined. */
export function leakInRows(rows: unknown): string | undefined {
  if (!Array.isArray(rows)) return undefined;
  for (const [i, row] of rows.entries()) {
    const why = leakIn(row);
    if (why) return `row ${i}: ${why}`;
  }
  return undefined;
}

/** What the owner sees (the reference for "nothing changed"), and how many relations public holds. */
export async function ownerSnapshot(fx: Fixture): Promise<unknown> {
  const rows = await fx.db.query(
    `SELECT id, tenant_id, region, status, amount::text AS amount, internal_cost::text AS internal_cost, email, deleted_at IS NOT NULL AS deleted, created_at::text AS created_at
       FROM public.orders ORDER BY id`,
  );
  const rels = await fx.db.query(`SELECT count(*)::int AS n FROM pg_class WHERE relnamespace = 'public'::regnamespace`);
  return { rows: rows.rows, relations: rels.rows };
}
