import type { Config } from '../../config/types.ts';
import type { Database } from '../../db/database.ts';
import { recordTenantPlace } from '../../lifecycle/tenants.ts';
import type { Tier } from '../../config/schema.ts';
import { abortMove, moveTenant, type MoveProgress, type MoveReport } from '../../tiers/move/move.ts';
import { readMove, type MoveRecord } from '../../tiers/move/state.ts';
import { TenantGateError } from '../../errors/index.ts';
import type { CliIO } from '../io.ts';
import { killHook } from '../kill-hook.ts';

export interface MoveFlags {
  tier?: string;
  placement?: string;
  dryRun?: boolean;
  abort?: boolean;
  status?: boolean;
  grace?: string;
  chunkRows?: string;
}

/** Progress on stderr: one line per step, and the copy as a redrawn line on a terminal (every 10 % otherwise). */
export function moveProgress(io: CliIO): (p: MoveProgress) => void {
  let lastPct = -10;
  let lastTable = '';
  return (p) => {
    if (p.done === undefined || p.total === undefined) {
      io.stderr(`move: ${p.message}\n`);
      return;
    }
    const pct = p.total === 0 ? 100 : Math.floor((p.done / p.total) * 100);
    if (p.table !== lastTable) lastPct = -10;
    lastTable = p.table ?? '';
    const line = `move: ${p.message} ${p.done.toLocaleString('en-US')}/${p.total.toLocaleString('en-US')} (${pct}%)`;
    if (io.isTTY) io.stderr(`\r${line}${p.done >= p.total ? '\n' : ''}`);
    else if (pct >= lastPct + 10 || p.done >= p.total) {
      lastPct = pct;
      io.stderr(`${line}\n`);
    }
  };
}

export async function runMoveCommand(io: CliIO, config: Config, db: Database, secret: Buffer, id: string, flags: MoveFlags): Promise<{ report?: MoveReport; record?: MoveRecord; file?: string }> {
  if (flags.status) return { record: (await readMove(db, id)) ?? undefined };
  const common = { config, main: db, secret, env: io.env, tenant: id, onProgress: moveProgress(io) };
  if (flags.abort) return { record: await abortMove(common) };
  const grace = flags.grace === undefined ? undefined : Number(flags.grace) * 1000;
  if (grace !== undefined && !(grace >= 0)) throw new TenantGateError('USAGE', '--grace takes seconds (0 or more)');
  const chunkRows = flags.chunkRows === undefined ? undefined : Number(flags.chunkRows);
  if (chunkRows !== undefined && !(Number.isInteger(chunkRows) && chunkRows > 0)) throw new TenantGateError('USAGE', '--chunk-rows takes a positive whole number');
  // Kill points (tests): prepared, copy-chunk, caught-up, verified, sealed, switched, cleaned.
  const hook = killHook(io.env, 'TENANTGATE_MOVE_KILL_AT');
  const report = await moveTenant({
    ...common,
    to: { tier: flags.tier as Tier, placement: flags.placement ?? 'default' },
    ...(flags.dryRun ? { dryRun: true } : {}),
    ...(grace !== undefined ? { graceMs: grace } : {}),
    ...(chunkRows !== undefined ? { chunkRows } : {}),
    ...(hook ? { checkpoint: hook } : {}),
  });
  const t = config.tenants.get(id);
  const file = !report.dryRun && report.phase === 'done' && t ? recordTenantPlace(t, report.to) : undefined;
  return { report, ...(file ? { file } : {}) };
}

export function formatMove(r: { report?: MoveReport; record?: MoveRecord; file?: string }, id: string): string {
  if (r.record && !r.report) {
    const m = r.record;
    return `${m.tenant}: move ${m.from.tier}${m.from.placement === 'default' ? '' : `@${m.from.placement}`} → ${m.to.tier}${m.to.placement === 'default' ? '' : `@${m.to.placement}`}, phase ${m.phase}${m.error ? ` (stopped: ${m.error})` : ''}\n`;
  }
  if (!r.report) return `${id}: no move recorded\n`;
  const x = r.report;
  const lines = [
    `${x.dryRun ? 'Would move' : 'Moved'} ${x.tenant} from ${x.from.tier}${x.from.placement === 'default' ? '' : ` on ${x.from.placement}`} to ${x.to.tier}${x.to.placement === 'default' ? '' : ` on ${x.to.placement}`}.`,
    ...x.steps.map((s) => `  ${s}`),
  ];
  if (!x.dryRun) {
    lines.push(`  ${x.rows.toLocaleString('en-US')} row(s) copied at ${x.rowsPerSecond.toLocaleString('en-US')} rows/s; ${x.replayed.toLocaleString('en-US')} replayed; writes paused ${x.pauseMs ?? 0} ms`);
    lines.push(r.file ? `  Updated ${r.file} (tier: ${x.to.tier}).` : `  Set tier: ${x.to.tier} for ${x.tenant} in your config, so plan agrees.`);
  }
  return `${lines.join('\n')}\n`;
}
