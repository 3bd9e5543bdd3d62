/**
 * Benchmark 6: what the audit trail costs, and what a crash loses.
 *
 * Throughput: three gateways in this process on the 1,000-tenant dataset, identical but for the
 * trail: none (Gateway option `audit: false`, never set by the CLI), batched (the default) and
 * durable (the record in the request's own transaction). wrk drives the semantic point query of
 * benchmark 3 at each, in interleaved rounds; the ratios batched/none and durable/none are the result.
 *
 * Crash-loss window: `tenantgate serve` in a child process (batched mode), a Node client keeping 16
 * requests in flight with known request ids, SIGKILL mid-run. Lost = answered requests whose
 * record is not in the trail. The same with durable mode must lose none.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseConfig } from '../src/config/load.ts';
import type { Config } from '../src/config/types.ts';
import { appendEvents, appendStatement, rowsToEvents } from '../src/audit/store.ts';
import { openDatabase } from '../src/db/database.ts';
import { createTenantGate, type TenantGate } from '../src/gate.ts';
import { Gateway } from '../src/gateway/gateway.ts';
import { buildServer } from '../src/http/server.ts';
import { createApiKey } from '../src/identify/api-keys.ts';
import { configYaml, rowId, ROWS_PER_TENANT, TENANTS, tenantId, type Dataset } from './dataset.ts';
import { findWrk, KEY_TENANTS, runWrk, SEMANTIC_BODY, wrkScript } from './http.ts';
import { fmt, keepConnections, log, median, sleep } from './support.ts';

export const AUDIT_GOAL = 0.9;
const MODES = ['none', 'batched', 'durable'] as const;
type Mode = (typeof MODES)[number];

export interface AuditBenchResult {
  skipped?: string;
  concurrency: number;
  seconds: number;
  rounds: number;
  variants: Array<{ mode: Mode; rps: number; rounds: number[]; p50Ms: number; p99Ms: number }>;
  /** Median over rounds of each round's ratio to `none` (the modes of a round run back to back, so drift cancels). */
  ratios: { batched: number; durable: number };
  /** Records the batched and durable gateways wrote (checked against the requests answered). */
  recorded: Record<string, number>;
  crash: Array<{ mode: 'batched' | 'durable'; answered: number; recorded: number; lost: number; rps: number; lostMs: number; flushIntervalMs: number }>;
  /** Where a record's cost goes, measured alone (no other load): Node's share and one audit_append call per 500 events. */
  parts?: { nodeUsPerEvent: number; appendUsPerEvent: number; eventBytes: number };
}

async function withMode(ds: Dataset, mode: 'batched' | 'durable', dir: string): Promise<{ config: Config; file: string }> {
  const file = join(dir, `tenantgate-${mode}.yaml`);
  const yaml = configYaml({ url: ds.ownerUrl, prefix: ds.prefix, tenants: ds.tenants }).replace('datasets:', `audit: { mode: ${mode} }\ndatasets:`);
  writeFileSync(file, yaml);
  return { config: await parseConfig(yaml, file, { env: {} }), file };
}

export async function runAuditBench(ds: Dataset, opts: { rounds: number; seconds: number; concurrency: number; wrkThreads: number }): Promise<AuditBenchResult> {
  const base: AuditBenchResult = { concurrency: opts.concurrency, seconds: opts.seconds, rounds: opts.rounds, variants: [], ratios: { batched: NaN, durable: NaN }, recorded: {}, crash: [] };
  const wrk = findWrk();
  if (!wrk.path) return { ...base, skipped: wrk.note as string };
  const dir = mkdtempSync(join(tmpdir(), 'tg-bench-audit-'));
  const keys: Array<{ key: string; idBase: number }> = [];
  for (let j = 0; j < KEY_TENANTS; j++) {
    const i = Math.floor(((j + 0.5) * TENANTS) / KEY_TENANTS);
    keys.push({ key: (await createApiKey(ds.owner, ds.config, ds.names, ds.secret, { tenant: tenantId(i), role: 'analyst' })).key, idBase: rowId(i, 0) });
  }
  const script = join(dir, 'semantic.lua');
  writeFileSync(script, wrkScript('/v1/query', JSON.stringify(SEMANTIC_BODY(0)).replace(/"value":0/, '"value":%d'), keys));
  const configs: Record<Mode, Config> = { none: ds.config, batched: (await withMode(ds, 'batched', dir)).config, durable: (await withMode(ds, 'durable', dir)).config };
  const served: Array<{ mode: Mode; url: string; gate: TenantGate; close: () => Promise<void> }> = [];
  try {
    const before = await countRecords(ds);
    for (const mode of MODES) {
      const gate = await createTenantGate({ config: configs[mode], gatewayUrl: ds.gatewayUrl, secret: ds.secret, poolSize: opts.concurrency, env: {} });
      keepConnections(gate.database.pool);
      const gateway = await Gateway.create({ gate, secret: ds.secret, env: {}, audit: mode !== 'none', retention: false, quotas: false });
      const app = buildServer(gateway);
      await app.listen({ host: '127.0.0.1', port: 0 });
      const address = app.server.address();
      served.push({ mode, gate, url: `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`, close: async () => { await app.close(); await gate.close(); } });
    }
    const results = new Map<Mode, Array<{ rps: number; p50Ms: number; p99Ms: number; requests: number }>>(MODES.map((m) => [m, []]));
    // Warm up each (JIT, pools, caches) before anything is counted.
    for (const s of served) await runWrk(wrk.path, script, `${s.url}/v1/query`, { threads: opts.wrkThreads, connections: opts.concurrency, seconds: 3 });
    for (let round = 0; round < opts.rounds; round++) {
      for (let k = 0; k < served.length; k++) {
        const s = served[(k + round) % served.length]!;
        const r = await runWrk(wrk.path, script, `${s.url}/v1/query`, { threads: opts.wrkThreads, connections: opts.concurrency, seconds: opts.seconds });
        results.get(s.mode)!.push(r);
        log(`audit round ${round + 1}/${opts.rounds} ${s.mode}: ${Math.round(r.rps)}/s, p50 ${r.p50Ms.toFixed(2)} ms`);
      }
    }
    for (const s of served) await s.close();
    served.length = 0;
    const after = await countRecords(ds);
    base.recorded = { written: after - before };
    const ratio = (m: Mode) => median(results.get(m)!.map((r, i) => r.rps / results.get('none')![i]!.rps));
    base.ratios = { batched: ratio('batched'), durable: ratio('durable') };
    base.variants = MODES.map((mode) => {
      const rs = results.get(mode)!;
      return { mode, rounds: rs.map((r) => r.rps), rps: median(rs.map((r) => r.rps)), p50Ms: median(rs.map((r) => r.p50Ms)), p99Ms: median(rs.map((r) => r.p99Ms)) };
    });
    for (const mode of ['batched', 'durable'] as const) {
      for (let i = 0; i < 2; i++) base.crash.push(await crashOnce(ds, mode, dir, keys, opts.concurrency));
    }
    base.parts = await costParts(ds);
    return base;
  } finally {
    for (const s of served) await s.close().catch(() => {});
    rmSync(dir, { recursive: true, force: true });
  }
}

/** A real event from the trail, appended again in batches of 500 on the gateway login: µs per event in Node and in the server call. */
async function costParts(ds: Dataset): Promise<AuditBenchResult['parts']> {
  const sample = rowsToEvents((await ds.owner.query(`SELECT seq, event FROM tenantgate.audit_log WHERE event::jsonb ->> 'code' IS NULL LIMIT 1`)).rows)[0];
  if (!sample) return undefined;
  const { seq: _seq, ...event } = sample;
  const writer = await openDatabase(ds.gatewayUrl, { max: 1 });
  try {
    const batch = (b: number) => Array.from({ length: 500 }, (_, i) => ({ ...event, request_id: `parts-${b}-${i}`, at: new Date().toISOString() }));
    await appendEvents(writer, batch(-1));
    let node = 0;
    let total = 0;
    for (let b = 0; b < 20; b++) {
      const events = batch(b);
      const t0 = performance.now();
      appendStatement(events);
      node += performance.now() - t0;
      const t1 = performance.now();
      await appendEvents(writer, events);
      total += performance.now() - t1;
    }
    return { nodeUsPerEvent: (node * 1000) / 10_000, appendUsPerEvent: ((total - node) * 1000) / 10_000, eventBytes: JSON.stringify(event).length };
  } finally {
    await writer.close();
  }
}

async function countRecords(ds: Dataset): Promise<number> {
  return Number((await ds.owner.query<{ n: string }>(`SELECT count(*) AS n FROM tenantgate.audit_log`)).rows[0]?.n ?? 0);
}

/** `tenantgate serve` as a child process; resolves with its URL once it listens. */
async function startServe(file: string, ds: Dataset): Promise<{ child: ChildProcess; url: string }> {
  const child = spawn(process.execPath, ['--import', 'tsx', resolve(import.meta.dirname, '..', 'src', 'cli', 'main.ts'), '--config', file, 'serve', '--port', '0'], {
    env: { ...process.env, TENANTGATE_SECRET: ds.secret.toString('utf8'), TENANTGATE_GATEWAY_URL: ds.gatewayUrl, TENANTGATE_LOG_LEVEL: 'warn' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const url = await new Promise<string>((ok, fail) => {
    let out = '';
    const t = setTimeout(() => fail(new Error(`serve did not start:\n${out}`)), 30_000);
    const on = (d: Buffer) => {
      out += d.toString();
      const m = /gateway listening on (http:\/\/\S+)/.exec(out);
      if (m) {
        clearTimeout(t);
        ok(m[1] as string);
      }
    };
    child.stdout!.on('data', on);
    child.stderr!.on('data', on);
    child.on('exit', (code) => fail(new Error(`serve exited (${code}):\n${out}`)));
  });
  return { child, url };
}

/** Load with known request ids, SIGKILL after `ms`, then count answered requests missing from the trail. */
async function crashOnce(ds: Dataset, mode: 'batched' | 'durable', dir: string, keys: Array<{ key: string; idBase: number }>, concurrency: number): Promise<AuditBenchResult['crash'][number]> {
  const { file, config } = await withMode(ds, mode, dir);
  const { child, url } = await startServe(file, ds);
  const tag = `crash-${mode}-${Date.now()}`;
  const answered: string[] = [];
  let stop = false;
  let n = 0;
  const worker = async () => {
    while (!stop) {
      const i = n++;
      const k = keys[i % keys.length]!;
      const id = `${tag}-${i}`;
      try {
        const res = await fetch(`${url}/v1/query`, {
          method: 'POST',
          headers: { 'x-api-key': k.key, 'content-type': 'application/json', 'x-request-id': id },
          body: JSON.stringify(SEMANTIC_BODY(k.idBase + (i % ROWS_PER_TENANT))),
        });
        await res.arrayBuffer();
        if (res.status === 200) answered.push(id);
      } catch {
        // the process is gone: this request was never answered
      }
    }
  };
  const workers = Array.from({ length: concurrency }, worker);
  await sleep(1500);
  const started = answered.length;
  const t0 = performance.now();
  await sleep(1500);
  const rps = (answered.length - started) / ((performance.now() - t0) / 1000);
  child.kill('SIGKILL');
  stop = true;
  await Promise.all(workers);
  await sleep(200);
  const r = await ds.owner.query<{ id: string }>(`SELECT event::jsonb->>'request_id' AS id FROM tenantgate.audit_log WHERE event::jsonb->>'request_id' LIKE $1`, [`${tag}-%`]);
  const stored = new Set(r.rows.map((x) => x.id));
  const lost = answered.filter((id) => !stored.has(id)).length;
  log(`crash (${mode}): ${answered.length} answered, ${lost} without a record (${Math.round(rps)}/s)`);
  return { mode, answered: answered.length, recorded: answered.length - lost, lost, rps, lostMs: rps > 0 ? (lost / rps) * 1000 : 0, flushIntervalMs: config.effective.audit.flush_interval_ms };
}

export const AUDIT_HEADING = '## 6. ';

export function auditSummaryLines(a: AuditBenchResult): string[] {
  if (a.skipped) return [`audit: skipped (${a.skipped})`];
  const v = (m: Mode) => a.variants.find((x) => x.mode === m)!;
  const crash = a.crash.filter((c) => c.mode === 'batched');
  return [
    `audit, concurrency ${a.concurrency}: none ${fmt.int(v('none').rps)}/s, batched ${fmt.int(v('batched').rps)}/s, durable ${fmt.int(v('durable').rps)}/s`,
    `  batched/none = ${fmt.ratio(a.ratios.batched)} (goal >= ${AUDIT_GOAL}: ${a.ratios.batched >= AUDIT_GOAL ? 'yes' : 'no'}), durable/none = ${fmt.ratio(a.ratios.durable)} (medians of per-round ratios)`,
    `  crash (SIGKILL under load): batched lost ${crash.map((c) => `${c.lost} (${Math.round(c.lostMs)} ms)`).join(', ')}; durable lost ${a.crash.filter((c) => c.mode === 'durable').map((c) => c.lost).join(', ')}`,
  ];
}

export function auditSection(a: AuditBenchResult, date: string): string {
  if (a.skipped) return `${AUDIT_HEADING}audit trail\n\nSkipped: ${a.skipped}.\n`;
  const v = (m: Mode) => a.variants.find((x) => x.mode === m)!;
  const none_ = v('none');
  const rows = a.variants.map((x) => `| ${x.mode} | ${fmt.int(x.rps)} | ${x.rounds.map(fmt.int).join(' / ')} | ${fmt.ms(x.p50Ms)} | ${fmt.ms(x.p99Ms)} | ${x.rounds.map((r, i) => fmt.ratio(r / none_.rounds[i]!)).join(' / ')} | **${fmt.ratio(x.mode === 'none' ? 1 : a.ratios[x.mode])}** |`);
  const crashRows = a.crash.map((c) => `| ${c.mode} | ${fmt.int(c.answered)} | ${fmt.int(c.recorded)} | **${c.lost}** | ${fmt.int(c.rps)} | ${c.mode === 'batched' ? `${Math.round(c.lostMs)} ms (flush every ${c.flushIntervalMs} ms)` : '—'} |`);
  const batched = a.ratios.batched;
  const worst = Math.max(...a.crash.filter((c) => c.mode === 'batched').map((c) => c.lostMs));
  return `${AUDIT_HEADING}audit trail: cost and crash-loss window

bench/audit.ts, measured ${date.slice(0, 10)} on the dataset of benchmark 3 (1,000 tenants × 1,000 rows): three gateways in one
process, identical but for the audit trail, each with a pool of ${a.concurrency}, driven by wrk with the semantic point query of
benchmark 3 (${a.concurrency} connections, ${a.seconds} s × ${a.rounds} interleaved rounds). "none" keeps no trail (a Gateway option only
this benchmark sets); "batched" is the default (records queued, written every 200 ms or 500 at a time by one
\`tenantgate.audit_append\` call on the writer's own connection); "durable" answers only after the record is committed:
a read runs its statement, then appends its record (one round trip more); a write runs BEGIN, context, the write, the
append and COMMIT, so the change and its record commit together.

| mode | req/s (median) | rounds | p50 ms | p99 ms | each round vs none | vs none (median of rounds) |
| --- | ---: | --- | ---: | ---: | --- | ---: |
${rows.join('\n')}

Records written by the batched and durable gateways during the rounds: ${fmt.int(a.recorded['written'] ?? 0)}.

The three modes of a round run back to back (their order rotates each round), so a ratio is taken within each round and
the median of those is reported: this 2-core VM drifts by tens of percent between rounds.

**Goal (batched ≥ ${AUDIT_GOAL} of none) holds? ${batched >= AUDIT_GOAL ? 'yes' : 'no'}** (${fmt.ratio(batched) === fmt.ratio(AUDIT_GOAL) ? batched.toFixed(4) : fmt.ratio(batched)}). Durable: ${fmt.ratio(a.ratios.durable)} of none.
${
  a.parts
    ? `
Where a record's cost goes, measured alone right after (a ${a.parts.eventBytes}-byte event of this run, 20 batches of 500 on the gateway
login): ${a.parts.nodeUsPerEvent.toFixed(1)} µs per event in the gateway (JSON text and its SHA-256) and ${a.parts.appendUsPerEvent.toFixed(1)} µs per event in
\`audit_append\` (split the lists, lock the heads, chain the hashes, insert the rows, move the heads: one statement per batch).
The floor of that is the row insert itself (heap, primary key, time index, WAL: about 9 µs per row measured alone while
building this); under the benchmark's own load, on 2 shared cores, the same call costs about twice as much. A point
query costs the gateway and the server about 200 µs of CPU together, so ~25–35 µs per record is the ~15% seen above.
What was changed because of it: the writer uses its own connection (it held one of the requests' eight), flushes only
full batches between ticks (a trickle of 12-event statements cost 200 µs per event), sends each list as one text split
on the server (array literals of escaped JSON cost 8 µs per event), keeps the event as text (no jsonb parse on write)
and hashes it in Node, and dropped a third index. What would go further: fewer rows (several events per row), which
only helps when a batch holds many events of one tenant, or an audit store outside this database.
On 2026-12-02 the rest of the request got about a fifth cheaper (section 9) while a record did not, so the same record is a
larger share of it: across that day's runs batched measured 0.86–0.90 of none. Tried then and dropped, each measured
worse in this benchmark: serialising the event when the request ends instead of at the flush (0.81–0.84), and flushing
every 25 ms instead of 200 (0.82: a batch's round trip costs more than it saves).
`
    : ''
}

### Crash-loss window

\`tenantgate serve\` in a child process, a Node client keeping ${a.concurrency} requests in flight with known request ids for 3 s,
then SIGKILL. "lost" counts requests that were answered 200 but have no audit record.

| mode | answered | recorded | lost | req/s | window |
| --- | ---: | ---: | ---: | ---: | --- |
${crashRows.join('\n')}

What a crash of a batched gateway loses is what was buffered: at most one flush interval of traffic plus the batch being
written (here up to ${Math.round(worst)} ms of answered requests). \`audit.mode: durable\` loses none: no answer leaves before its
record is committed, at the cost in the table above. A graceful stop (SIGTERM, SIGINT) flushes the buffer first.
`;
}
