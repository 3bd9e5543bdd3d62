import type { Database } from '../../db/database.ts';
import type { Tier } from '../../config/schema.ts';
import type { TenantLocation } from '../location.ts';

/**
 * A move's record in the main database (tenantgate.moves): where it goes and the phase it reached,
 * so a rerun after a crash picks up there. Phases, in order:
 *   prepare → copy → catchup → verify → cutover → cleanup → done   (or aborted)
 * Before `cleanup` the tenant lives at its old place; from `cleanup` on at its new one.
 */
export const PHASES = ['prepare', 'copy', 'catchup', 'verify', 'cutover', 'cleanup', 'done', 'aborted'] as const;
export type Phase = (typeof PHASES)[number];

export interface MoveRecord {
  tenant: string;
  from: TenantLocation;
  to: TenantLocation;
  phase: Phase;
  progress: Record<string, unknown>;
  started_at: string;
  updated_at: string;
  finished_at: string | null;
  error: string | null;
}

export const unfinished = (m: MoveRecord | undefined): m is MoveRecord => !!m && m.phase !== 'done' && m.phase !== 'aborted';

export async function readMove(db: Pick<Database, 'query'>, tenant: string): Promise<MoveRecord | undefined> {
  const r = await db.query<Record<string, unknown>>(
    `SELECT tenant, from_tier, from_placement, to_tier, to_placement, phase, progress, started_at::text, updated_at::text, finished_at::text, error FROM tenantgate.moves WHERE tenant = $1`,
    [tenant],
  );
  const row = r.rows[0];
  if (!row) return undefined;
  return {
    tenant,
    from: { tier: row['from_tier'] as Tier, placement: row['from_placement'] as string },
    to: { tier: row['to_tier'] as Tier, placement: row['to_placement'] as string },
    phase: row['phase'] as Phase,
    progress: row['progress'] as Record<string, unknown>,
    started_at: row['started_at'] as string,
    updated_at: row['updated_at'] as string,
    finished_at: row['finished_at'] as string | null,
    error: row['error'] as string | null,
  };
}

/** A new move (replacing the record of a finished or abandoned one). */
export async function beginMove(db: Database, tenant: string, from: TenantLocation, to: TenantLocation): Promise<MoveRecord> {
  await db.query(
    `INSERT INTO tenantgate.moves (tenant, from_tier, from_placement, to_tier, to_placement, phase) VALUES ($1, $2, $3, $4, $5, 'prepare')
     ON CONFLICT (tenant) DO UPDATE SET from_tier = EXCLUDED.from_tier, from_placement = EXCLUDED.from_placement, to_tier = EXCLUDED.to_tier,
       to_placement = EXCLUDED.to_placement, phase = 'prepare', progress = '{}', started_at = clock_timestamp(), updated_at = clock_timestamp(), finished_at = NULL, error = NULL`,
    [tenant, from.tier, from.placement, to.tier, to.placement],
  );
  return (await readMove(db, tenant))!;
}

/** Record the phase reached (and progress merged in); `error` notes why a run stopped. */
export async function setPhase(db: Pick<Database, 'query'>, m: MoveRecord, phase: Phase, progress: Record<string, unknown> = {}, error: string | null = null): Promise<void> {
  await db.query(
    `UPDATE tenantgate.moves SET phase = $2, progress = progress || $3::jsonb, updated_at = clock_timestamp(), error = $4,
            finished_at = CASE WHEN $2 IN ('done', 'aborted') THEN clock_timestamp() END WHERE tenant = $1`,
    [m.tenant, phase, JSON.stringify(progress), error],
  );
  m.phase = phase;
  m.progress = { ...m.progress, ...progress };
  m.error = error;
}

export async function noteError(db: Pick<Database, 'query'>, tenant: string, error: string): Promise<void> {
  await db.query(`UPDATE tenantgate.moves SET error = $2, updated_at = clock_timestamp() WHERE tenant = $1`, [tenant, error]);
}
