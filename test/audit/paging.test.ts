/**
 * Reading the audit trail in pages (issue 13, defect 6): no reader stops at a limit without saying
 * so. `tenantgate audit --json` says `truncated` and hands out a `next` cursor that `--before` takes;
 * the table says how many it shows and how to get the rest; `--limit 0` / `--all` stream every event
 * as NDJSON, read in pages; `GET /v1/audit` and `GET /v1/admin/audit` answer the same
 * `{events, truncated, next}`. Cursors are keyset positions (stable while records are appended) and
 * never move a read into another tenant's trail, forged or not.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AuditEvent } from '../../src/audit/event.ts';
import { appendEvents, type StoredEvent } from '../../src/audit/store.ts';
import { streamAudit } from '../../src/cli/commands/audit.ts';
import type { Database } from '../../src/db/database.ts';
import { BACKENDS, createFixture, fixture, type BackendKind, type Fixture } from '../support/backends.ts';
import { cliDatabase, runSeedCli, type CliDatabase } from '../support/cli.ts';
import { serve, type Served } from '../http/support.ts';

/** Planted records live in 2024, so the records the test's own requests leave (now) stay out of `until=`. */
const T0 = Date.parse('2024-03-01T00:00:00Z');
const UNTIL = '2025-01-01T00:00:00.000Z';
const ACME = 150;
const GLOBEX = 30;

function event(tenant: string, id: string, at: number): AuditEvent {
  return {
    at: new Date(at).toISOString(),
    request_id: id,
    tenant,
    principal: `key:${tenant}`,
    role: 'owner',
    access: 'admin',
    endpoint: 'POST /v1/query',
    tenant_from: 'credential',
    named_tenant: null,
    datasets: ['orders'],
    tables: ['public.orders'],
    sql: null,
    fingerprint: null,
    rows: 1,
    status: 200,
    decision: 'allow',
    code: null,
    duration_ms: 1,
    stages: {},
    tenant_predicate: true,
    rls: true,
    client: null,
  };
}

/** 150 records of acme_corp (acme-0 oldest … acme-149 newest, one a second) and 30 of globex_inc in between. */
async function plant(db: Pick<Database, 'query'>): Promise<void> {
  const events = [
    ...Array.from({ length: ACME }, (_, i) => event('acme_corp', `acme-${i}`, T0 + i * 1000)),
    ...Array.from({ length: GLOBEX }, (_, i) => event('globex_inc', `globex-${i}`, T0 + i * 5000 + 500)),
  ].sort((a, b) => a.at.localeCompare(b.at));
  await appendEvents(db, events);
}

const acmeIds = (from: number, to: number) => Array.from({ length: from - to + 1 }, (_, k) => `acme-${from - k}`);

const cliDatabaseWithEvents = (kind: BackendKind): Promise<CliDatabase> => cliDatabase(kind, { prepare: plant });
const runCli = runSeedCli;

interface Page {
  events: StoredEvent[];
  truncated: boolean;
  next: string | null;
}

const ids = (events: Array<{ request_id: string }>) => events.map((e) => e.request_id);
const forged = (at: string, tenant: string, seq: number) => Buffer.from(JSON.stringify([at, tenant, seq])).toString('base64url');

describe.each(BACKENDS)('tenantgate audit in pages on %s', (kind) => {
  let d: CliDatabase;
  beforeAll(async () => {
    d = await cliDatabaseWithEvents(kind);
  });
  afterAll(async () => d?.cleanup());

  const json = async (...args: string[]): Promise<Page> => {
    const r = await runCli(d, ['--json', 'audit', ...args]);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    return JSON.parse(r.stdout) as Page;
  };

  it('--json says the page was cut and hands out a cursor that --before takes for the rest', async () => {
    const first = await json('--tenant', 'acme_corp');
    expect(first.events).toHaveLength(100);
    expect(first.truncated).toBe(true);
    expect(first.next).toEqual(expect.any(String));
    expect(ids(first.events)).toEqual(acmeIds(149, 50));
    for (const e of first.events) expect(Object.keys(e)).toEqual(expect.arrayContaining(['at', 'request_id', 'tenant', 'principal', 'endpoint', 'decision', 'code', 'rows']));
    const rest = await json('--tenant', 'acme_corp', '--before', first.next!);
    expect(rest).toMatchObject({ truncated: false, next: null });
    expect(ids(rest.events)).toEqual(acmeIds(49, 0));
    // Exactly as many as match: not cut, no cursor to an empty page.
    expect(await json('--tenant', 'acme_corp', '--limit', String(ACME))).toMatchObject({ truncated: false, next: null });
    expect((await json('--tenant', 'globex_inc', '--limit', '1000')).events).toHaveLength(GLOBEX);
  });

  it('--limit 0 and --all stream every event as NDJSON, newest first', async () => {
    for (const args of [['--limit', '0'], ['--all'], ['--json', '--all']]) {
      const withJson = args[0] === '--json';
      const r = await runCli(d, [...(withJson ? ['--json'] : []), 'audit', '--tenant', 'acme_corp', ...args.slice(withJson ? 1 : 0)]);
      expect(r.code, r.stderr).toBe(0);
      const lines = r.stdout.split('\n').filter(Boolean);
      expect(lines).toHaveLength(ACME);
      expect(ids(lines.map((l) => JSON.parse(l) as StoredEvent))).toEqual(acmeIds(149, 0));
    }
    const every = (await runCli(d, ['audit', '--all'])).stdout.split('\n').filter(Boolean).map((l) => JSON.parse(l) as StoredEvent);
    expect(every).toHaveLength(ACME + GLOBEX);
    expect(every.map((e) => e.at)).toEqual([...every.map((e) => e.at)].sort().reverse());
    // --all is every event: a --limit beside it is a usage error, as is a limit out of range.
    expect((await runCli(d, ['audit', '--all', '--limit', '5'])).code).toBe(2);
    expect((await runCli(d, ['audit', '--limit', '-1'])).code).toBe(2);
    expect((await runCli(d, ['audit', '--limit', 'lots'])).code).toBe(2);
  });

  it('the table says how many it shows, that more exist, and how to get them', async () => {
    const cut = await runCli(d, ['audit', '--tenant', 'acme_corp']);
    expect(cut.code).toBe(0);
    const { next } = await json('--tenant', 'acme_corp');
    expect(cut.stdout).toContain(`Showing 100 events; more exist: use --limit N (up to 100000), --all (every one, as NDJSON), or --before ${next} for the next 100.`);
    expect(cut.stdout.split('\n').filter((l) => l.includes('acme-'))).toHaveLength(100);
    const whole = await runCli(d, ['audit', '--tenant', 'acme_corp', '--limit', '200']);
    expect(whole.stdout).not.toContain('more exist');
    expect(whole.stdout.split('\n').filter((l) => l.includes('acme-'))).toHaveLength(ACME);
  });

  it("--tenant A never returns B's events, by any page or cursor", async () => {
    // Every page of acme's trail, small pages.
    const seen: string[] = [];
    let before: string | null = null;
    for (;;) {
      const p: Page = await json('--tenant', 'acme_corp', '--limit', '50', ...(before ? ['--before', before] : []));
      seen.push(...p.events.map((e) => e.tenant));
      if (!p.next) break;
      before = p.next;
    }
    expect(seen).toHaveLength(ACME);
    expect(new Set(seen)).toEqual(new Set(['acme_corp']));
    // A cursor of acme's trail with --tenant globex_inc (and the other way round) is refused, not reinterpreted.
    const acmeCursor = (await json('--tenant', 'acme_corp', '--limit', '10')).next!;
    const globexCursor = (await json('--tenant', 'globex_inc', '--limit', '10')).next!;
    for (const [tenant, cursor] of [['globex_inc', acmeCursor], ['acme_corp', globexCursor], ['globex_inc', forged('2030-01-01T00:00:00Z', 'acme_corp', 999999)]] as const) {
      const r = await runCli(d, ['--json', 'audit', '--tenant', tenant, '--before', cursor]);
      expect(r.code, r.stdout).toBe(2);
      expect(JSON.parse(r.stdout).error.code).toBe('USAGE');
      expect(r.stdout).not.toMatch(tenant === 'globex_inc' ? /acme-\d/ : /globex-\d/);
    }
    for (const bad of ['junk', forged('not a time', 'acme_corp', 1), forged('2030-01-01T00:00:00Z', 'acme_corp', -1)]) {
      expect((await runCli(d, ['audit', '--tenant', 'acme_corp', '--before', bad])).code).toBe(2);
    }
    // A forged cursor naming the right tenant is only a position in its own trail.
    const own = await json('--tenant', 'globex_inc', '--before', forged('2030-01-01T00:00:00Z', 'globex_inc', 999999), '--limit', '1000');
    expect(new Set(own.events.map((e) => e.tenant))).toEqual(new Set(['globex_inc']));
    // --tenant with --all streams that tenant only.
    const streamed = (await runCli(d, ['audit', '--tenant', 'globex_inc', '--all'])).stdout.split('\n').filter(Boolean).map((l) => JSON.parse(l) as StoredEvent);
    expect(streamed).toHaveLength(GLOBEX);
    expect(new Set(streamed.map((e) => e.tenant))).toEqual(new Set(['globex_inc']));
  });

  it('pages across every tenant hold each event once, and stay put while records are appended', async () => {
    const seen: string[] = [];
    let before: string | null = null;
    let round = 0;
    for (;;) {
      const p: Page = await json('--limit', '60', ...(before ? ['--before', before] : []));
      seen.push(...ids(p.events));
      // Newer records arrive between pages: the next page starts where this one stopped all the same.
      await d.owner((db) => appendEvents(db, [event('acme_corp', `late-${round}`, Date.now()), event('globex_inc', `late-g-${round}`, Date.now())]));
      round++;
      if (!p.next) break;
      before = p.next;
    }
    const planted = seen.filter((id) => !id.startsWith('late-'));
    expect(planted).toHaveLength(ACME + GLOBEX);
    expect(new Set(planted).size).toBe(ACME + GLOBEX);
    // Only the records that existed before the first page may show up (at its top), none after.
    expect(seen.slice(0, seen.length - planted.length).every((id) => id.startsWith('late-'))).toBe(true);
  });

  it('a stream reads in pages of the database, and records appended meanwhile neither repeat nor shift it', async () => {
    const lines: string[] = [];
    let pages = 0;
    const n = await d.owner(async (db) => {
      const before = (await db.query<{ n: number }>(`SELECT count(*)::int AS n FROM tenantgate.audit_log WHERE tenant = 'acme_corp'`)).rows[0]!.n;
      const io = {
        stdout: (t: string) => void lines.push(...t.split('\n').filter(Boolean)),
        // Between pages (where the CLI waits for stdout), new records arrive.
        drain: async () => {
          pages++;
          await appendEvents(db, [event('acme_corp', `mid-${pages}`, Date.now())]);
        },
      };
      const count = await streamAudit(db, d.config, { tenant: 'acme_corp', all: true }, io, 7);
      expect(count).toBe(before);
      return count;
    });
    expect(lines).toHaveLength(n);
    expect(pages).toBe(Math.ceil(n / 7));
    const seqs = lines.map((l) => (JSON.parse(l) as StoredEvent).seq);
    expect(new Set(seqs).size).toBe(seqs.length);
    expect(seqs).toEqual([...seqs].sort((a, b) => b - a));
    expect(lines.some((l) => l.includes('"mid-'))).toBe(false);
  });
});

describe.each(BACKENDS)('GET /v1/audit and /v1/admin/audit in pages on %s', (kind) => {
  let fx: Fixture;
  let s: Served;
  beforeAll(async () => {
    fx = await createFixture(kind, { sql: fixture('seed003.sql') });
    s = await serve(fx);
    await plant(fx.db);
  });
  afterAll(async () => {
    await s?.close();
    await fx?.cleanup();
  });
  const get = async (path: string, key: string) => {
    const r = await s.get(path, { 'x-api-key': key });
    return r as { status: number; json: Page & { error?: { code: string } } };
  };

  it("a tenant admin's page says it was cut, and its cursor reads the rest", async () => {
    const first = await get(`/v1/audit?until=${UNTIL}`, s.keys.acmeAdmin);
    expect(first.status).toBe(200);
    expect(first.json.events).toHaveLength(100);
    expect(first.json).toMatchObject({ truncated: true, next: expect.any(String) });
    expect(ids(first.json.events)).toEqual(acmeIds(149, 50));
    const rest = await get(`/v1/audit?until=${UNTIL}&before=${first.json.next}`, s.keys.acmeAdmin);
    expect(rest.json).toMatchObject({ truncated: false, next: null });
    expect(ids(rest.json.events)).toEqual(acmeIds(49, 0));
    // Exactly a page's worth: not cut, and no cursor to an empty page.
    expect((await get(`/v1/audit?until=${UNTIL}&limit=${ACME}`, s.keys.acmeAdmin)).json).toMatchObject({ truncated: false, next: null });
    // The same through the path form.
    const path = await get(`/v1/tenants/acme_corp/audit?until=${UNTIL}&limit=10&before=${first.json.next}`, s.keys.acmeAdmin);
    expect(ids(path.json.events)).toEqual(acmeIds(49, 40));
  });

  it("no cursor, real or forged, brings another tenant's record to a tenant admin", async () => {
    const globexCursor = (await get(`/v1/admin/audit?tenant=globex_inc&until=${UNTIL}&limit=5`, s.keys.ops)).json.next!;
    const allCursor = (await get(`/v1/admin/audit?tenant=all&until=${UNTIL}&limit=5`, s.keys.ops)).json.next!;
    const future = new Date(Date.now() + 86_400_000).toISOString();
    for (const cursor of [globexCursor, allCursor, forged(future, 'globex_inc', 999999), forged(future, 'globex_inc', 3), forged(future, '*', 999999), forged(UNTIL, 'acme_corp', 999999)]) {
      for (const path of ['/v1/audit', '/v1/tenants/acme_corp/audit']) {
        const r = await get(`${path}?limit=1000&before=${cursor}`, s.keys.acmeAdmin);
        if (r.status === 200) {
          expect(new Set(r.json.events.map((e) => e.tenant))).toEqual(new Set(['acme_corp']));
        } else {
          expect(r.json.error?.code).toBe('QUERY_INVALID');
          expect(JSON.stringify(r.json)).not.toMatch(/globex/);
        }
      }
    }
    // A cursor of another tenant's trail is refused outright (not reinterpreted as a position in acme's).
    expect((await get(`/v1/audit?before=${globexCursor}`, s.keys.acmeAdmin)).json.error?.code).toBe('QUERY_INVALID');
    // And globex's admin, given acme's cursor, reads nothing of acme.
    const acmeCursor = (await get(`/v1/audit?until=${UNTIL}&limit=5`, s.keys.acmeAdmin)).json.next!;
    expect((await get(`/v1/audit?before=${acmeCursor}`, s.keys.globexAdmin)).json.error?.code).toBe('QUERY_INVALID');
  });

  it('platform admins page through every tenant: each record once, the last page not cut', async () => {
    const seen: string[] = [];
    let before: string | null = null;
    let pages = 0;
    for (;;) {
      const r = await get(`/v1/admin/audit?tenant=all&until=${UNTIL}&limit=40${before ? `&before=${before}` : ''}`, s.keys.ops);
      expect(r.status).toBe(200);
      pages++;
      seen.push(...ids(r.json.events));
      expect(r.json.truncated).toBe(r.json.next !== null);
      if (!r.json.next) break;
      before = r.json.next;
    }
    expect(pages).toBe(Math.ceil((ACME + GLOBEX) / 40));
    expect(seen).toHaveLength(ACME + GLOBEX);
    expect(new Set(seen).size).toBe(ACME + GLOBEX);
  });
});
