import { createHash, hash } from 'node:crypto';
import type { Database } from '../db/database.ts';
import { NO_TENANT, type AuditEvent } from './event.ts';

type Queryable = Pick<Database, 'query'>;

const sha256 = (...parts: Array<Buffer | string>) => {
  const h = createHash('sha256');
  for (const p of parts) h.update(p);
  return h.digest();
};

/**
 * The arguments of tenantgate.audit_append for a batch: each event as the exact JSON text kept
 * (and hashed), its tenant, time and sha256. Each list travels as one text with one item per line
 * (JSON.stringify never emits a raw newline; tenant ids and ISO times hold none): the server splits
 * them with string_to_array instead of parsing array literals full of escaped quotes, and it never
 * parses the JSON.
 */
function appendArgs(events: AuditEvent[]): unknown[] {
  const texts = events.map((e) => JSON.stringify(e));
  return [events.map((e) => e.tenant).join('\n'), events.map((e) => e.at).join('\n'), texts.join('\n'), texts.map((t) => hash('sha256', t, 'hex')).join('\n')];
}

const APPEND = `SELECT tenantgate.audit_append(string_to_array($1, E'\\n'), string_to_array($2, E'\\n')::timestamptz[], string_to_array($3, E'\\n'), ARRAY(SELECT decode(d, 'hex') FROM unnest(string_to_array($4, E'\\n')) d)) AS n`;

/** Append events to their tenants' chains (one statement; the function assigns seq and links hashes). */
export async function appendEvents(db: Queryable, events: AuditEvent[]): Promise<number> {
  if (events.length === 0) return 0;
  const r = await db.query<{ n: number }>(APPEND, appendArgs(events));
  return r.rows[0]?.n ?? 0;
}

/** The SQL that appends events inside another transaction (durable mode). */
export function appendStatement(events: AuditEvent[]): { text: string; values: unknown[] } {
  return { text: APPEND, values: appendArgs(events) };
}

/** The chain hash of one record: sha256(prev || tenant ':' seq ':' || sha256(event text)). */
export function chainHash(prev: Buffer, tenant: string, seq: number, eventText: string): Buffer {
  return chainHashOf(prev, tenant, seq, sha256(eventText));
}

/** The same, from the event's digest (a pseudonymised record: the digest of its text as it was chained). */
export function chainHashOf(prev: Buffer, tenant: string, seq: number, eventDigest: Buffer): Buffer {
  return sha256(prev, `${tenant}:${seq}:`, eventDigest);
}

export interface AuditFilter {
  /** One tenant's chain, or all (platform). */
  tenant?: string | undefined;
  since?: Date | undefined;
  until?: Date | undefined;
  code?: string | undefined;
  principal?: string | undefined;
  decision?: string | undefined;
  requestId?: string | undefined;
  /** Newest first; continue after this cursor (from a previous page). */
  before?: string | undefined;
  limit: number;
}

export interface StoredEvent extends AuditEvent {
  seq: number;
}

/**
 * Cursor of a page: the position of its last record, (at, tenant, seq) as stored in the row (not as
 * the event's text says), opaque to callers. (tenant, seq) is the primary key, so the position is
 * unique, and a page after it is a keyset read: records appended meanwhile (all newer) neither shift
 * nor repeat what follows. It is only a position, never a permission: every read is still filtered
 * to the caller's tenant and held to it by the table's policy, whatever the cursor says.
 */
export function cursorOf(e: { at: string; tenant: string; seq: number }): string {
  return Buffer.from(JSON.stringify([e.at, e.tenant, e.seq])).toString('base64url');
}

function parseCursor(c: string): [string, string, number] | undefined {
  try {
    const v = JSON.parse(Buffer.from(c, 'base64url').toString('utf8')) as unknown;
    if (Array.isArray(v) && v.length === 3 && typeof v[0] === 'string' && !Number.isNaN(Date.parse(v[0])) && typeof v[1] === 'string' && Number.isSafeInteger(v[2]) && (v[2] as number) >= 0) return v as [string, string, number];
  } catch {
    // fall through
  }
  return undefined;
}

/**
 * The read query, newest first: one page of `limit` records plus one more, so the page can tell
 * whether it was cut (`pageOf`). `tenant` undefined reads every chain the session may see; RLS
 * decides that for gateway roles (own tenant, or all for platform-all), the filter narrows it.
 * A cursor is a position in the order this query reads: one chain's (by seq) is refused for another
 * chain, so a cursor never moves a read into someone else's trail (the filter would hold anyway).
 */
export function readQuery(f: AuditFilter): { text: string; values: unknown[] } | { invalid: string } {
  const where: string[] = [];
  const values: unknown[] = [];
  const p = (v: unknown) => {
    values.push(v);
    return `$${values.length}`;
  };
  if (f.tenant !== undefined) where.push(`tenant = ${p(f.tenant)}`);
  if (f.since) where.push(`at >= ${p(f.since.toISOString())}::timestamptz`);
  if (f.until) where.push(`at < ${p(f.until.toISOString())}::timestamptz`);
  if (f.code) where.push(`event::jsonb ->> 'code' = ${p(f.code)}`);
  if (f.principal) where.push(`event::jsonb ->> 'principal' = ${p(f.principal)}`);
  if (f.decision) where.push(`event::jsonb ->> 'decision' = ${p(f.decision)}`);
  if (f.requestId) where.push(`event::jsonb ->> 'request_id' = ${p(f.requestId)}`);
  // One chain is read backwards along its primary key (seq follows arrival); all chains by time.
  const one = f.tenant !== undefined;
  if (f.before !== undefined) {
    const c = parseCursor(f.before);
    if (!c || (one && c[1] !== f.tenant)) return { invalid: 'before is not a cursor of this query (pass the `next` of the previous page)' };
    where.push(one ? `seq < ${p(c[2])}` : `(at, tenant, seq) < (${p(c[0])}::timestamptz, ${p(c[1])}, ${p(c[2])})`);
  }
  return {
    text: `SELECT seq, event, tenant AS pos_tenant, to_json(at) #>> '{}' AS pos_at FROM tenantgate.audit_log${where.length ? ` WHERE ${where.join(' AND ')}` : ''} ORDER BY ${one ? 'seq DESC' : 'at DESC, tenant DESC, seq DESC'} LIMIT ${p(f.limit + 1)}`,
    values,
  };
}

export function rowsToEvents(rows: Array<Record<string, unknown>>): StoredEvent[] {
  return rows.map((r) => ({ ...(JSON.parse(r['event'] as string) as AuditEvent), seq: Number(r['seq']) }));
}

/** One page of the trail: `truncated` when more records match, and `next` to pass as `before` for them. */
export interface AuditPage {
  events: StoredEvent[];
  truncated: boolean;
  next: string | null;
}

/** The page of `readQuery`'s rows (it reads one more than `limit` to know whether more exist). */
export function pageOf(rows: Array<Record<string, unknown>>, limit: number): AuditPage {
  const truncated = rows.length > limit;
  const kept = truncated ? rows.slice(0, limit) : rows;
  const last = kept[kept.length - 1];
  return {
    events: rowsToEvents(kept),
    truncated,
    next: truncated && last ? cursorOf({ at: String(last['pos_at']), tenant: String(last['pos_tenant']), seq: Number(last['seq']) }) : null,
  };
}

/** Read one page: `run` executes the query (the owner's connection, or a tenant statement). */
export async function readPage(run: (q: { text: string; values: unknown[] }) => Promise<{ rows: unknown[] }>, f: AuditFilter): Promise<AuditPage | { invalid: string }> {
  const q = readQuery(f);
  if ('invalid' in q) return q;
  return pageOf((await run(q)).rows as Array<Record<string, unknown>>, f.limit);
}

/** One broken link of a chain, named so it can be found. */
export interface ChainProblem {
  tenant: string;
  seq: number;
  request_id?: string;
  problem: 'edited' | 'removed' | 'reordered' | 'truncated' | 'head missing';
  detail: string;
}

export interface ChainReport {
  ok: boolean;
  chains: number;
  records: number;
  problems: ChainProblem[];
}

/**
 * Recompute every chain (or one tenant's): each record's hash must be chainHash(prev, tenant, seq,
 * event), prev the hash before it, seq consecutive from where retention cut, the event's tenant
 * that of its row, and the last record the chain's head. Reads in pages (any size of trail).
 */
export async function verifyChains(db: Queryable, options: { tenant?: string; pageSize?: number; onProgress?: (records: number) => void } = {}): Promise<ChainReport> {
  const pageSize = options.pageSize ?? 5_000;
  const heads = new Map<string, { seq: number; hash: Buffer; pruned_seq: number; pruned_hash: Buffer }>();
  const h = await db.query<{ tenant: string; seq: string; hash: Buffer; pruned_seq: string; pruned_hash: Buffer }>(
    `SELECT tenant, seq, hash, pruned_seq, pruned_hash FROM tenantgate.audit_heads${options.tenant !== undefined ? ' WHERE tenant = $1' : ''}`,
    options.tenant !== undefined ? [options.tenant] : [],
  );
  for (const r of h.rows) heads.set(r.tenant, { seq: Number(r.seq), hash: Buffer.from(r.hash), pruned_seq: Number(r.pruned_seq), pruned_hash: Buffer.from(r.pruned_hash) });
  const problems: ChainProblem[] = [];
  let records = 0;
  let current: { tenant: string; seq: number; hash: Buffer } | undefined;
  const seen = new Set<string>();
  const closeChain = () => {
    if (!current) return;
    const head = heads.get(current.tenant);
    if (head && (head.seq !== current.seq || !head.hash.equals(current.hash))) {
      problems.push({ tenant: current.tenant, seq: current.seq + 1, problem: 'truncated', detail: `the chain ends at seq ${current.seq} but its head is at seq ${head.seq}: the records after ${current.seq} were removed` });
    }
  };
  let after: [string, number] = [options.tenant !== undefined ? options.tenant : '', -1];
  // A catalog from before erasures has no pseudonymised records.
  const pseudonymised = (await db.query<{ e: boolean }>(`SELECT to_regclass('tenantgate.audit_pseudonymised') IS NOT NULL AS e`)).rows[0]?.e === true;
  for (;;) {
    // Records pseudonymised by an erasure (audit.on_erase) are chained over the digest of their text as it was.
    const page = await db.query<{ tenant: string; seq: string; event_text: string; prev: Buffer; hash: Buffer; digest: Buffer | null; pseudo: Buffer | null }>(
      `SELECT l.tenant, l.seq, l.event AS event_text, l.prev, l.hash${pseudonymised ? ', p.digest, p.pseudonymised_digest AS pseudo' : ', NULL::bytea AS digest, NULL::bytea AS pseudo'}
         FROM tenantgate.audit_log l${pseudonymised ? ' LEFT JOIN tenantgate.audit_pseudonymised p ON p.tenant = l.tenant AND p.seq = l.seq' : ''}
        WHERE (l.tenant, l.seq) > ($1, $2)${options.tenant !== undefined ? ' AND l.tenant = $1' : ''}
        ORDER BY l.tenant, l.seq LIMIT $3`,
      [after[0], after[1], pageSize],
    );
    for (const row of page.rows) {
      const seq = Number(row.seq);
      const prev = Buffer.from(row.prev);
      const hash = Buffer.from(row.hash);
      let event: { tenant?: unknown; request_id?: string; pseudonymised?: unknown } = {};
      try {
        event = JSON.parse(row.event_text) as typeof event;
      } catch {
        // an unparsable event is an edited one: caught by the hash below
      }
      const name = { tenant: row.tenant, seq, ...(typeof event.request_id === 'string' ? { request_id: event.request_id } : {}) };
      if (!current || current.tenant !== row.tenant) {
        closeChain();
        seen.add(row.tenant);
        const head = heads.get(row.tenant);
        const startSeq = (head?.pruned_seq ?? 0) + 1;
        const startHash = head?.pruned_hash ?? Buffer.alloc(0);
        if (!head) problems.push({ ...name, problem: 'head missing', detail: 'the chain has no head row (tenantgate.audit_heads)' });
        else if (seq !== startSeq) problems.push({ ...name, problem: 'removed', detail: `the chain starts at seq ${seq}, not ${startSeq}: records ${startSeq}..${seq - 1} were removed` });
        else if (!prev.equals(startHash)) problems.push({ ...name, problem: 'edited', detail: 'the first record does not continue from where retention cut the chain' });
      } else if (seq !== current.seq + 1) {
        problems.push({ ...name, problem: 'removed', detail: `seq ${current.seq + 1}${seq - 1 > current.seq + 1 ? `..${seq - 1}` : ''} missing before seq ${seq}` });
      } else if (!prev.equals(current.hash)) {
        problems.push({ ...name, problem: 'reordered', detail: `its prev does not match the hash of seq ${current.seq}: records were moved` });
      }
      const moved = problems.length > 0 && problems[problems.length - 1]!.tenant === row.tenant && problems[problems.length - 1]!.seq === seq;
      if (event.tenant !== row.tenant) {
        problems.push({ ...name, problem: 'reordered', detail: `the row of ${row.tenant} holds an event of ${String(event.tenant)}` });
      } else if (!moved && row.digest) {
        // Pseudonymised: the chain holds over the kept digest; the text must be the marked pseudonymised one.
        if (!chainHashOf(prev, row.tenant, seq, Buffer.from(row.digest)).equals(hash)) problems.push({ ...name, problem: 'edited', detail: 'its hash does not match the digest kept when it was pseudonymised' });
        else if (!event.pseudonymised || (row.pseudo && !sha256(row.event_text).equals(Buffer.from(row.pseudo)))) problems.push({ ...name, problem: 'edited', detail: 'its pseudonymised text was changed after the erasure' });
      } else if (!moved && !chainHash(prev, row.tenant, seq, row.event_text).equals(hash)) {
        problems.push({ ...name, problem: 'edited', detail: 'its hash does not match its content' });
      }
      current = { tenant: row.tenant, seq, hash };
      records++;
    }
    options.onProgress?.(records);
    if (page.rows.length < pageSize) break;
    const last = page.rows[page.rows.length - 1]!;
    after = [last.tenant, Number(last.seq)];
  }
  closeChain();
  // Chains whose every record is gone (or whose head has records that never arrived).
  for (const [tenant, head] of heads) {
    if (!seen.has(tenant) && head.seq > head.pruned_seq) {
      problems.push({ tenant, seq: head.pruned_seq + 1, problem: 'truncated', detail: `the head is at seq ${head.seq} but no record of the chain remains` });
    }
  }
  return { ok: problems.length === 0, chains: heads.size, records, problems };
}

/** Drop what is older than audit.retention_days (as apply recorded it), keeping the chains verifiable. */
export async function pruneAudit(db: Queryable): Promise<number> {
  const r = await db.query<{ n: string }>(`SELECT tenantgate.audit_prune() AS n`);
  return Number(r.rows[0]?.n ?? 0);
}

export { NO_TENANT };
