import type pg from 'pg';
import type { Config } from '../config/types.ts';
import { TenantGateError } from '../errors/index.ts';

type Queryable = { query<R extends pg.QueryResultRow = Record<string, unknown>>(text: string, params?: unknown[]): Promise<pg.QueryResult<R>> };

/**
 * Erased tenants' tombstones (tenantgate.erased_tenants, written by `tenantgate erase`): a config
 * that still lists an erased id is refused, so a stale file or a copied entry never onboards it
 * again by accident. `tenant add ID --reuse-erased-id` marks the tombstone reused first.
 */
export async function assertNotErased(db: Pick<pg.PoolClient, 'query'>, config: Config, provisioned: { has(id: string): boolean }): Promise<void> {
  const ids = [...config.tenants.keys()].filter((id) => !provisioned.has(id));
  if (ids.length === 0) return;
  // Checked first (not caught): apply runs this inside its transaction, which an error would abort.
  const there = await db.query<{ e: boolean }>(`SELECT to_regclass('tenantgate.erased_tenants') IS NOT NULL AS e`);
  if (!there.rows[0]?.e) return;
  const r = await db.query<{ tenant: string; erased_at: Date }>(`SELECT tenant, erased_at FROM tenantgate.erased_tenants WHERE tenant = ANY($1) AND reused_at IS NULL ORDER BY tenant`, [ids]);
  const first = r.rows[0];
  if (!first) return;
  const t = config.tenants.get(first.tenant)!;
  throw new TenantGateError('TENANT_ERASED', `tenant "${first.tenant}" was erased on ${new Date(first.erased_at).toISOString()}${r.rows.length > 1 ? ` (and ${r.rows.length - 1} more: ${r.rows.slice(1).map((x) => x.tenant).join(', ')})` : ''}: the configuration still lists it`, { location: t.source });
}

/** `tenant add ID --reuse-erased-id`: mark the tombstone reused; false when the id has none (never erased, or reused already). */
export async function reuseErasedId(db: Queryable, id: string): Promise<boolean> {
  const there = await db.query<{ e: boolean }>(`SELECT to_regclass('tenantgate.erased_tenants') IS NOT NULL AS e`);
  if (!there.rows[0]?.e) return false;
  const r = await db.query(`UPDATE tenantgate.erased_tenants SET reused_at = clock_timestamp() WHERE tenant = $1 AND reused_at IS NULL`, [id]);
  return (r.rowCount ?? 0) > 0;
}
