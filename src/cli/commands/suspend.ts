import { appendEvents } from '../../audit/store.ts';
import type { Config } from '../../config/types.ts';
import type { Database } from '../../db/database.ts';
import { TenantGateError } from '../../errors/index.ts';
import { changeSuspension, lifecycleEvent, readTenantStatus, type SuspensionResult, type TenantStatus } from '../../lifecycle/suspend.ts';
import { resolveNames } from '../../provision/apply.ts';
import { ownerDatabases } from '../../tiers/databases.ts';
import { tenantDatabase } from '../../tiers/location.ts';
import type { CliIO } from '../io.ts';

export interface SuspendFlags {
  reason?: string;
  dryRun?: boolean;
}

/** What `--dry-run` reports: the status now, and what the command would change. */
export interface SuspendPreview extends TenantStatus {
  dry_run: true;
  would_change: boolean;
  /** The direct logins that would be made NOLOGIN (suspend) or given LOGIN back (resume). */
  logins: string[];
}

/**
 * `tenant suspend ID [--reason TEXT] [--dry-run]` and `tenant resume ID`, as the owner
 * (database.url): the catalog change (src/lifecycle/suspend.ts), the tenant's own database when it
 * has one, and an audit record in the tenant's chain with the reason (principal `cli:<user>`).
 */
export async function runSuspendCommand(
  io: CliIO,
  config: Config,
  db: Database,
  id: string,
  action: 'suspend' | 'resume',
  flags: SuspendFlags,
): Promise<SuspensionResult | SuspendPreview> {
  if (!config.tenants.has(id)) throw new TenantGateError('TENANT_UNKNOWN', `no tenant "${id}" in the configuration`);
  const reason = flags.reason?.trim() || null;
  if (reason && reason.length > 500) throw new TenantGateError('USAGE', '--reason takes at most 500 characters');
  const before = await readTenantStatus(db, id);
  if (flags.dryRun) {
    const logins = await db.query<{ role_name: string }>(`SELECT role_name FROM tenantgate.db_roles WHERE tenant_id = $1 AND kind = 'login' ORDER BY 1`, [id]);
    return { ...before, dry_run: true, would_change: action === 'suspend' ? before.suspension === null : before.suspension !== null, logins: logins.rows.map((r) => r.role_name) };
  }
  const started = Date.now();
  const by = `cli:${io.env['USER'] ?? io.env['LOGNAME'] ?? 'owner'}`;
  const place = (await db.query<{ tier: string; placement: string }>(`SELECT tier, placement FROM tenantgate.tenants WHERE id = $1`, [id])).rows[0];
  const dbs = place?.tier === 'database' ? ownerDatabases(config, db, io.env) : undefined;
  try {
    const own = dbs && place ? () => dbs.get(place.placement, tenantDatabase(resolveNames(config, io.env).prefix, id)) : undefined;
    const result = await changeSuspension(db, own, id, action === 'suspend', reason, by);
    await appendEvents(db, [lifecycleEvent(id, by, { action, reason, changed: result.changed }, started)]);
    return result;
  } finally {
    await dbs?.close();
  }
}

/** The line a person reads (with --json the document is printed instead). */
export function formatSuspension(r: SuspensionResult | SuspendPreview, action: 'suspend' | 'resume'): string {
  if ('dry_run' in r) {
    const logins = r.logins.length ? ` and ${action === 'suspend' ? 'disable' : 'restore'} ${r.logins.length} direct login(s) (${r.logins.join(', ')})` : '';
    return r.would_change ? `Would ${action} ${r.tenant}${logins}.\n` : `Would change nothing: ${r.tenant} is ${r.suspension ? 'already suspended' : 'not suspended at runtime'}.\n`;
  }
  const l = r.logins;
  const lines: string[] = [];
  if (action === 'suspend') {
    if (r.changed) {
      lines.push(`Suspended ${r.tenant}${r.suspension?.reason ? ` (reason: ${r.suspension.reason})` : ''}: every gateway refuses its requests within a second (TENANT_SUSPENDED).`);
      lines.push(`Direct logins: ${l.changed} disabled, ${l.sessions_ended} open session(s) ended.`);
    } else {
      const s = r.suspension;
      lines.push(`${r.tenant} was already suspended${s ? ` since ${s.since} by ${s.by}${s.reason ? ` (reason: ${s.reason})` : ''}` : ''}: nothing changed.`);
    }
  } else {
    lines.push(r.changed ? `Resumed ${r.tenant}; ${l.changed} direct login(s) can log in again.` : `${r.tenant} was not suspended at runtime: nothing changed.`);
    if (r.status === 'suspended') lines.push(`It stays suspended: its configuration says status: suspended (change the file and run apply).`);
  }
  if (l.failed.length) lines.push(`warning: could not change ${l.failed.join(', ')}: the owner needs CREATEROLE (and pg_signal_backend to end sessions); rerun the command once it has them.`);
  if (r.own_database && !r.own_database.ok) lines.push(`warning: the tenant's own database was not updated (${r.own_database.error}); rerun the command.`);
  return `${lines.join('\n')}\n`;
}
