import { NO_TENANT } from '../../audit/event.ts';
import { readPage, verifyChains, type AuditFilter, type AuditPage, type ChainReport, type StoredEvent } from '../../audit/store.ts';
import type { Config } from '../../config/types.ts';
import type { Database } from '../../db/database.ts';
import { TenantGateError } from '../../errors/index.ts';
import { ALL_TENANTS } from '../../tenancy/tenant-id.ts';
import { table, type CliIO } from '../io.ts';

export interface AuditSearch {
  tenant?: string;
  since?: string;
  until?: string;
  code?: string;
  principal?: string;
  decision?: string;
  requestId?: string;
  /** Continue after this cursor (the `next` of a previous page). */
  before?: string;
  /** Events per page (default 100); 0: every one (`all`). */
  limit?: number;
  /** Every matching event, streamed as NDJSON. */
  all?: boolean;
}

export const DEFAULT_LIMIT = 100;
const MAX_LIMIT = 100_000;
/** Records per query when streaming: memory stays at one page whatever the trail holds. */
export const STREAM_PAGE = 1_000;

function date(value: string | undefined, flag: string): Date | undefined {
  if (value === undefined) return undefined;
  // Relative forms for the terminal: 15m, 2h, 7d ago.
  const rel = /^(\d+)([smhd])$/.exec(value);
  if (rel) return new Date(Date.now() - Number(rel[1]) * { s: 1e3, m: 6e4, h: 36e5, d: 864e5 }[rel[2] as 's' | 'm' | 'h' | 'd']);
  const d = new Date(value);
  if (Number.isNaN(d.getTime())) throw new TenantGateError('USAGE', `${flag} takes an ISO time (2026-12-01T10:00:00Z) or an age (15m, 2h, 7d)`);
  return d;
}

/** Whether the search streams every event (`--all` or `--limit 0`) rather than printing one page; checks --limit. */
export function streams(s: AuditSearch): boolean {
  const limit = s.limit;
  if (limit !== undefined && (!Number.isInteger(limit) || limit < 0 || limit > MAX_LIMIT)) throw new TenantGateError('USAGE', `--limit takes 1 to ${MAX_LIMIT}, or 0 for every event`);
  if (s.all && limit !== undefined && limit !== 0) throw new TenantGateError('USAGE', '--all prints every event: leave out --limit');
  return Boolean(s.all) || limit === 0;
}

function filterOf(config: Config, s: AuditSearch, limit: number): AuditFilter {
  if (s.tenant !== undefined && s.tenant !== ALL_TENANTS && s.tenant !== NO_TENANT && !config.tenants.has(s.tenant)) {
    throw new TenantGateError('TENANT_UNKNOWN', `no tenant "${s.tenant}" in the configuration (use all, or * for requests that named no tenant)`);
  }
  return {
    tenant: s.tenant === ALL_TENANTS ? undefined : s.tenant,
    since: date(s.since, '--since'),
    until: date(s.until, '--until'),
    code: s.code,
    principal: s.principal,
    decision: s.decision,
    requestId: s.requestId,
    before: s.before,
    limit,
  };
}

async function page(db: Database, f: AuditFilter): Promise<AuditPage> {
  const p = await readPage((q) => db.query(q.text, q.values), f);
  if ('invalid' in p) throw new TenantGateError('USAGE', `--${p.invalid}`);
  return p;
}

/** `tenantgate audit`: one page of the trail as the owner (every chain), newest first, and whether more match. */
export async function searchAudit(db: Database, config: Config, s: AuditSearch): Promise<AuditPage> {
  if (streams(s)) throw new TenantGateError('USAGE', 'every event is streamed: use streamAudit');
  return page(db, filterOf(config, s, s.limit ?? DEFAULT_LIMIT));
}

/**
 * `tenantgate audit --all` (or `--limit 0`): every matching event, newest first, one JSON object per
 * line (NDJSON), read from the database in pages of `pageSize` along the same cursor a page hands
 * out, so memory holds one page at a time and records appended meanwhile neither shift nor repeat
 * what follows (they are newer than the first page: not part of this read). Returns the count.
 */
export async function streamAudit(db: Database, config: Config, s: AuditSearch, io: Pick<CliIO, 'stdout'> & { drain?: () => Promise<void> }, pageSize = STREAM_PAGE): Promise<number> {
  let f = filterOf(config, s, pageSize);
  let n = 0;
  for (;;) {
    const p = await page(db, f);
    if (p.events.length) io.stdout(p.events.map((e) => `${JSON.stringify(e)}\n`).join(''));
    n += p.events.length;
    await io.drain?.();
    if (!p.next) return n;
    f = { ...f, before: p.next };
  }
}

/** The table, and when the page was cut, how many it shows and how to get the rest. */
export function formatEvents(p: AuditPage): string {
  if (p.events.length === 0) return 'No audit events match.\n';
  const out = table([
    ['AT', 'TENANT', 'SEQ', 'PRINCIPAL', 'ENDPOINT', 'DECISION', 'CODE', 'ROWS', 'MS', 'REQUEST'],
    ...p.events.map((e) => [e.at, e.tenant, String(e.seq), e.principal ?? '-', e.endpoint, e.decision, e.code ?? '-', e.rows === null ? '-' : String(e.rows), String(e.duration_ms), e.request_id]),
  ]);
  if (!p.truncated) return out;
  return `${out}Showing ${p.events.length} events; more exist: use --limit N (up to ${MAX_LIMIT}), --all (every one, as NDJSON), or --before ${p.next} for the next ${p.events.length}.\n`;
}

/**
 * The JSON SPEC §5 names (more fields may be added): every event as stored, with its chain
 * position; `truncated` when more events match than the page holds, and `next`, the cursor to pass
 * as `--before` for them (null on the last page).
 */
export function eventsJson(p: AuditPage): { events: StoredEvent[]; truncated: boolean; next: string | null } {
  return { events: p.events, truncated: p.truncated, next: p.next };
}

export { verifyChains, type ChainReport };

export function formatChainReport(r: ChainReport): string {
  const lines = [`tenantgate audit verify: ${r.ok ? 'OK' : 'BROKEN'} — ${r.chains} chain(s), ${r.records} record(s)`];
  for (const p of r.problems) lines.push(`  ${p.problem.toUpperCase()} tenant ${p.tenant} seq ${p.seq}${p.request_id ? ` (request ${p.request_id})` : ''}: ${p.detail}`);
  return `${lines.join('\n')}\n`;
}
