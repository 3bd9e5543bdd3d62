import { NO_TENANT } from '../../audit/event.ts';
import { readQuery, rowsToEvents, verifyChains, type ChainReport, type StoredEvent } from '../../audit/store.ts';
import type { Config } from '../../config/types.ts';
import type { Database } from '../../db/database.ts';
import { TenantGateError } from '../../errors/index.ts';
import { ALL_TENANTS } from '../../tenancy/tenant-id.ts';
import { table } from '../io.ts';

export interface AuditSearch {
  tenant?: string;
  since?: string;
  until?: string;
  code?: string;
  principal?: string;
  decision?: string;
  requestId?: string;
  limit: number;
}

function date(value: string | undefined, flag: string): Date | undefined {
  if (value === undefined) return undefined;
  // Relative forms for the terminal: 15m, 2h, 7d ago.
  const rel = /^(\d+)([smhd])$/.exec(value);
  if (rel) return new Date(Date.now() - Number(rel[1]) * { s: 1e3, m: 6e4, h: 36e5, d: 864e5 }[rel[2] as 's' | 'm' | 'h' | 'd']);
  const d = new Date(value);
  if (Number.isNaN(d.getTime())) throw new TenantGateError('USAGE', `${flag} takes an ISO time (2026-12-01T10:00:00Z) or an age (15m, 2h, 7d)`);
  return d;
}

/** `tenantgate audit`: search the trail as the owner (every chain), newest first. */
export async function searchAudit(db: Database, config: Config, s: AuditSearch): Promise<StoredEvent[]> {
  if (s.tenant !== undefined && s.tenant !== ALL_TENANTS && s.tenant !== NO_TENANT && !config.tenants.has(s.tenant)) {
    throw new TenantGateError('TENANT_UNKNOWN', `no tenant "${s.tenant}" in the configuration (use all, or * for requests that named no tenant)`);
  }
  if (!Number.isInteger(s.limit) || s.limit < 1 || s.limit > 100_000) throw new TenantGateError('USAGE', '--limit takes 1 to 100000');
  const q = readQuery({ ...s, tenant: s.tenant === ALL_TENANTS ? undefined : s.tenant, since: date(s.since, '--since'), until: date(s.until, '--until') });
  if ('invalid' in q) throw new TenantGateError('USAGE', q.invalid);
  return rowsToEvents((await db.query(q.text, q.values)).rows as Array<Record<string, unknown>>);
}

export function formatEvents(events: StoredEvent[]): string {
  if (events.length === 0) return 'No audit events match.\n';
  return table([
    ['AT', 'TENANT', 'SEQ', 'PRINCIPAL', 'ENDPOINT', 'DECISION', 'CODE', 'ROWS', 'MS', 'REQUEST'],
    ...events.map((e) => [e.at, e.tenant, String(e.seq), e.principal ?? '-', e.endpoint, e.decision, e.code ?? '-', e.rows === null ? '-' : String(e.rows), String(e.duration_ms), e.request_id]),
  ]);
}

/** The JSON SPEC §5 names (more fields may be added): every event as stored, with its chain position. */
export function eventsJson(events: StoredEvent[]): { events: StoredEvent[] } {
  return { events };
}

export { verifyChains, type ChainReport };

export function formatChainReport(r: ChainReport): string {
  const lines = [`tenantgate audit verify: ${r.ok ? 'OK' : 'BROKEN'} — ${r.chains} chain(s), ${r.records} record(s)`];
  for (const p of r.problems) lines.push(`  ${p.problem.toUpperCase()} tenant ${p.tenant} seq ${p.seq}${p.request_id ? ` (request ${p.request_id})` : ''}: ${p.detail}`);
  return `${lines.join('\n')}\n`;
}
