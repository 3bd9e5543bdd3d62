import type pg from 'pg';
import type { Config } from '../../config/types.ts';
import { ident, literal, qualified } from '../../db/sql.ts';

type Queryable = { query(text: string, params?: unknown[]): Promise<{ rows: Array<Record<string, unknown>>; rowCount?: number | null }> };

/** One dataset table as an erasure sees it: where it is (schema.table in its database) and its tenant column. */
export interface EraseTable {
  /** `schema.table` of the dataset's table (names it in the certificate). */
  name: string;
  schema: string;
  table: string;
  tenantColumn: string;
}

/** The dataset tables (each once), at their shared (pooled) place. */
export function datasetTables(config: Config): EraseTable[] {
  const out = new Map<string, EraseTable>();
  for (const d of config.datasets) {
    const name = `${d.schema}.${d.table}`;
    if (!out.has(name)) out.set(name, { name, schema: d.schema, table: d.table, tenantColumn: d.tenantColumn });
  }
  return [...out.values()];
}

/**
 * The tables in an order their foreign keys allow deleting in: a table that references another
 * dataset table comes before it (children first), read from pg_constraint. Tables in a cycle keep
 * their config order (a cycle of tenant rows needs deferrable keys; the delete then says so).
 */
export async function foreignKeyOrder(db: Queryable, tables: EraseTable[]): Promise<EraseTable[]> {
  if (tables.length < 2) return tables;
  const r = await db.query(
    `SELECT c.conrelid::regclass::text AS child, c.confrelid::regclass::text AS parent
       FROM pg_constraint c
      WHERE c.contype = 'f' AND c.conrelid = ANY($1::regclass[]) AND c.confrelid = ANY($1::regclass[]) AND c.conrelid <> c.confrelid`,
    [tables.map((t) => qualified(t.schema, t.table))],
  );
  const byRel = new Map<string, EraseTable>();
  for (const t of tables) byRel.set(normal(qualified(t.schema, t.table)), t);
  // parent -> children that must go first
  const children = new Map<EraseTable, Set<EraseTable>>();
  for (const row of r.rows) {
    const child = byRel.get(normal(String(row['child'])));
    const parent = byRel.get(normal(String(row['parent'])));
    if (!child || !parent) continue;
    const set = children.get(parent) ?? new Set<EraseTable>();
    set.add(child);
    children.set(parent, set);
  }
  const out: EraseTable[] = [];
  const state = new Map<EraseTable, 'visiting' | 'done'>();
  const visit = (t: EraseTable) => {
    if (state.get(t)) return;
    state.set(t, 'visiting');
    for (const c of children.get(t) ?? []) visit(c);
    state.set(t, 'done');
    out.push(t);
  };
  for (const t of tables) visit(t);
  return out;
}

/** regclass prints names relative to the search_path: compare without the public schema and quotes. */
function normal(rel: string): string {
  return rel.replace(/"/g, '').replace(/^public\./, '');
}

/** The tenant's rows of one table, counted. */
export async function countRows(db: Queryable, t: EraseTable, tenant: string, schema = t.schema): Promise<number> {
  const r = await db.query(`SELECT count(*)::bigint AS n FROM ${qualified(schema, t.table)} WHERE ${ident(t.tenantColumn)} = $1`, [tenant]);
  return Number(r.rows[0]?.['n'] ?? 0);
}

/**
 * Delete one batch of the tenant's rows from a shared table, in the caller's transaction: a short
 * one (locks only these rows, for as long as one batch takes), so neighbours are not blocked. The
 * move's capture trigger (a tenant moving out) is told this is the owner's cleanup.
 */
export async function deleteBatch(tx: Pick<pg.PoolClient, 'query'>, t: EraseTable, tenant: string, batch: number): Promise<number> {
  const rel = qualified(t.schema, t.table);
  await tx.query(`SELECT set_config('tenantgate.move_cleanup', $1, true)`, [tenant]);
  const r = await tx.query(`DELETE FROM ${rel} WHERE ctid = ANY (ARRAY(SELECT ctid FROM ${rel} WHERE ${ident(t.tenantColumn)} = ${literal(tenant)} LIMIT ${Math.max(1, Math.floor(batch))}))`);
  return r.rowCount ?? 0;
}
