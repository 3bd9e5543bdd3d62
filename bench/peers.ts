/**
 * Benchmark 9: the gateway against its peers, by concurrency. Four servers answer one point query
 * (one row by id, as one tenant, under RLS) over the same 1,000 × 1,000 data set, each in its own
 * process on the same machine, driven by the same wrk script at the same concurrency, in
 * interleaved rounds:
 *   GW   `tenantgate serve` (the product as shipped: keys, quotas, audit, metrics on)
 *   MIN  node:http + pg with the gateway's one-Sync batch and nothing else (bench/peers/minimal.ts)
 *   PGL  PostGraphile 4.14 with pgSettings setting role and tenant (bench/peers/postgraphile.ts)
 *   PGB  pgbench sending exactly the gateway's statements (from the recorded wire), -M prepared
 * Every server is first asked for a tenant's own row (one row) and a neighbour's (none).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { createApiKey } from '../src/identify/api-keys.ts';
import { contextMac, deriveKey } from '../src/security/secret.ts';
import { configYaml, rowId, TENANTS, tenantId, type Dataset } from './dataset.ts';
import { captureWire, findWrk, keyTenants, pgbenchOnce, runWrk, SEMANTIC_BODY, wrkScript, writeScripts, type RoundResult } from './http.ts';
import type { PeerSpec } from './peers/spec.ts';
import { inclusiveTimes, summariseProfile, trimProfile, type Profile, type ProfileSummary } from './profile.ts';
import { lineChart } from './chart.ts';
import { fmt, log, median, processCpuSeconds } from './support.ts';
import { defineArgs } from './wire-pgbench.ts';

export const PEERS_HEADING = '## 9. Against the peers, by concurrency';
const ROOT = resolve(import.meta.dirname, '..');
const GRAPHQL_BODY = '{"query":"query($id:BigInt!){orderById(id:$id){id region status}}","variables":{"id":"%d"}}';

export const VARIANTS = {
  GW: 'tenantgate serve: `POST /v1/query` (semantic), API key',
  MIN: 'node:http + pg, the same one-Sync batch, key → tenant from a Map, nothing else',
  PGL: 'PostGraphile 4.14: `orderById` over GraphQL, pgSettings role + tenant',
  PGB: 'pgbench -M prepared: the gateway\'s statements, as the gateway login',
} as const;
export type VariantKey = keyof typeof VARIANTS;

export interface PeerPoint {
  variant: VariantKey;
  concurrency: number;
  rounds: number[];
  rps: number;
  p50Ms: number;
  p99Ms: number;
  /** CPU of the server process per request, µs (user + system; the HTTP servers only). */
  cpuUs?: number;
}

export interface PeersResult {
  skipped?: string;
  concurrencies: number[];
  poolSize: number;
  seconds: number;
  rounds: number;
  keys: number;
  points: PeerPoint[];
  postgraphileVersion?: string;
  notes: string[];
  /** The gateway's process profiled through one extra round (the whole process life, start-up included). */
  profile?: { concurrency: number; rps: number; requests: number; summary: ProfileSummary; stages: Array<{ name: string; where: string; ms: number }> };
}

export interface Served {
  url: string;
  child: ChildProcess;
}

/** Start a server process and wait for its "listening on http://…" line. */
export function startServer(name: string, args: string[], env: NodeJS.ProcessEnv, nodeArgs: string[] = []): Promise<Served> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(process.execPath, [...nodeArgs, '--import', 'tsx', ...args], { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${name} did not start in 60 s:\n${out}`));
    }, 60_000);
    const onData = (d: Buffer) => {
      out += d.toString();
      const m = /listening on (http:\/\/[^\s]+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        child.stdout?.off('data', onData);
        child.stdout?.resume();
        child.stderr?.resume();
        resolvePromise({ url: (m[1] as string).replace(/\/$/, ''), child });
      }
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', (d: Buffer) => (out += d.toString()));
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${name} exited (${code}) before listening:\n${out}`));
    });
  });
}

export async function stop(s: Served | undefined): Promise<void> {
  if (!s || s.child.exitCode !== null) return;
  await new Promise<void>((r) => {
    const t = setTimeout(() => (s.child.kill('SIGKILL'), r()), 10_000);
    s.child.once('exit', () => (clearTimeout(t), r()));
    s.child.kill('SIGTERM');
  });
}

async function post(url: string, key: string, body: string): Promise<{ status: number; text: string; timing: string | null }> {
  const res = await fetch(url, { method: 'POST', headers: { 'x-api-key': key, 'content-type': 'application/json' }, body });
  return { status: res.status, text: await res.text(), timing: res.headers.get('server-timing') };
}

/** Each server returns a tenant's own row and not its neighbour's: none of them is measured answering nothing. */
async function checkServer(name: string, url: string, keys: Array<{ key: string; index: number }>, body: (id: number) => string, count: (text: string) => number): Promise<void> {
  for (const k of keys.slice(0, 4)) {
    const own = await post(url, k.key, body(rowId(k.index, 500)));
    if (own.status !== 200 || count(own.text) !== 1) throw new Error(`${name}: own row answered ${own.status} ${own.text.slice(0, 300)}`);
    const other = await post(url, k.key, body(rowId((k.index + 1) % TENANTS, 500)));
    if (other.status !== 200 || count(other.text) !== 0) throw new Error(`${name}: a neighbour's row answered ${other.status} ${other.text.slice(0, 300)}`);
    if (own.timing) log(`${name}: Server-Timing ${own.timing}`);
  }
}

export async function runPeersBench(
  ds: Dataset,
  pgbenchBinary: string | undefined,
  dir: string,
  opts: { rounds: number; seconds: number; concurrencies: number[]; poolSize: number; wrkThreads: number; profile: boolean },
): Promise<PeersResult> {
  const base: PeersResult = { concurrencies: opts.concurrencies, poolSize: opts.poolSize, seconds: opts.seconds, rounds: opts.rounds, keys: 0, points: [], notes: [] };
  const wrk = findWrk();
  if (!wrk.path) return { ...base, skipped: wrk.note as string };
  mkdirSync(dir, { recursive: true });
  const macKey = deriveKey(ds.secret, 'context');
  const keys: Array<{ key: string; index: number; tenant: string; idBase: number }> = [];
  for (const i of keyTenants()) {
    const created = await createApiKey(ds.owner, ds.config, ds.names, ds.secret, { tenant: tenantId(i), role: 'analyst' });
    keys.push({ key: created.key, index: i, tenant: tenantId(i), idBase: rowId(i, 0) });
  }
  const wire = await captureWire(ds, keys[0] as (typeof keys)[number], macKey);
  const spec: PeerSpec = {
    url: ds.gatewayUrl,
    poolSize: opts.poolSize,
    keys: Object.fromEntries(keys.map((k) => [k.key, { tenant: k.tenant, mac: contextMac(macKey, k.tenant), role: ds.names.access.read }])),
    sql: wire.compiledSql,
    limit: Number(wire.compiledParams[2]),
  };
  const specFile = join(dir, 'peer-spec.json');
  writeFileSync(specFile, JSON.stringify(spec));
  // The gateway as shipped, quotas raised out of the way (the benchmark is one client at full speed).
  const configFile = join(dir, 'tenantgate.yaml');
  writeFileSync(
    configFile,
    `${configYaml({ url: ds.ownerUrl, prefix: ds.prefix, tenants: ds.tenants })}server:\n  pool_size: ${opts.poolSize}\ndefaults:\n  quotas: { requests_per_minute: 100000000, burst: 10000000, concurrent_queries: 1000 }\n`,
  );

  // GW and MIN take the very same requests.
  const semanticScript = join(dir, 'semantic.lua');
  const scripts = { GW: semanticScript, MIN: semanticScript, PGL: join(dir, 'graphql.lua') };
  writeFileSync(semanticScript, wrkScript('/v1/query', JSON.stringify(SEMANTIC_BODY(0)).replace(/"value":0/, '"value":%d'), keys));
  writeFileSync(scripts.PGL, wrkScript('/graphql', GRAPHQL_BODY, keys));

  const gwArgs = ['src/cli/main.ts', '--config', configFile, 'serve', '--port', '0'];
  const gwEnv = { TENANTGATE_GATEWAY_URL: ds.gatewayUrl, TENANTGATE_SECRET: ds.secret.toString('utf8') };
  const servers: Partial<Record<'GW' | 'MIN' | 'PGL', Served>> = {};
  try {
    log('starting tenantgate serve, the minimal node:http handler and PostGraphile 4.14');
    servers.GW = await startServer('tenantgate serve', gwArgs, gwEnv);
    servers.MIN = await startServer('minimal handler', ['bench/peers/minimal.ts', specFile], {});
    servers.PGL = await startServer('PostGraphile', ['bench/peers/postgraphile.ts', specFile], {});
    const semantic = (id: number) => JSON.stringify(SEMANTIC_BODY(id));
    const rowCount = (text: string) => (JSON.parse(text) as { row_count: number }).row_count;
    await checkServer('tenantgate serve', `${servers.GW.url}/v1/query`, keys, semantic, rowCount);
    await checkServer('minimal handler', `${servers.MIN.url}/v1/query`, keys, semantic, rowCount);
    await checkServer('PostGraphile', `${servers.PGL.url}/graphql`, keys, (id) => GRAPHQL_BODY.replace('%d', String(id)), (text) => {
      const j = JSON.parse(text) as { data?: { orderById: unknown }; errors?: unknown };
      if (j.errors || !j.data) throw new Error(`PostGraphile: ${text.slice(0, 300)}`);
      return j.data.orderById ? 1 : 0;
    });

    const files = pgbenchBinary ? writeScripts(dir, wire.shape, keys) : [];
    const defines = defineArgs(wire.shape, keys.map((k) => ({ tenant: k.tenant, mac: contextMac(macKey, k.tenant) })));
    if (!pgbenchBinary) base.notes.push('pgbench not found: PGB left out');
    const runOne = async (v: VariantKey, c: number, seconds: number, round: string): Promise<RoundResult> => {
      if (v === 'PGB') return pgbenchOnce(pgbenchBinary as string, ds, files, defines, 'prepared', seconds, { concurrency: c, pgbenchThreads: Math.min(c, 2) }, join(dir, `pgb_${c}_${round}`));
      const s = servers[v] as Served;
      const cpu0 = processCpuSeconds([s.child.pid as number]);
      const r = await runWrk(wrk.path as string, scripts[v], `${s.url}${v === 'PGL' ? '/graphql' : '/v1/query'}`, { threads: Math.min(opts.wrkThreads, c), connections: c, seconds });
      return { ...r, nodeUs: ((processCpuSeconds([s.child.pid as number]) - cpu0) / r.requests) * 1e6 };
    };
    const variants = (Object.keys(VARIANTS) as VariantKey[]).filter((v) => v !== 'PGB' || pgbenchBinary);
    for (const c of opts.concurrencies) {
      for (const v of variants) await runOne(v, c, 1, 'warmup');
      const got = new Map<VariantKey, RoundResult[]>(variants.map((v) => [v, []]));
      for (let round = 0; round < opts.rounds; round++) {
        for (let i = 0; i < variants.length; i++) {
          const v = variants[(i + round) % variants.length] as VariantKey;
          const r = await runOne(v, c, opts.seconds, String(round));
          got.get(v)?.push(r);
          log(`peers c=${c} round ${round + 1}/${opts.rounds} ${v}: ${Math.round(r.rps)}/s, p50 ${r.p50Ms.toFixed(2)} ms, p99 ${r.p99Ms.toFixed(2)} ms${r.nodeUs === undefined ? '' : `, ${Math.round(r.nodeUs)} µs CPU/request`}`);
        }
      }
      for (const v of variants) {
        const rs = got.get(v) ?? [];
        const cpu = rs.flatMap((r) => (r.nodeUs === undefined ? [] : [r.nodeUs]));
        base.points.push({ variant: v, concurrency: c, rounds: rs.map((r) => r.rps), rps: median(rs.map((r) => r.rps)), p50Ms: median(rs.map((r) => r.p50Ms)), p99Ms: median(rs.map((r) => r.p99Ms)), ...(cpu.length ? { cpuUs: median(cpu) } : {}) });
      }
    }
    if (opts.profile) {
      // A gateway of its own under V8's sampling profiler (written at exit), one round at the main concurrency.
      for (const s of Object.values(servers)) await stop(s);
      const c = mainConcurrency(opts.concurrencies);
      const profDir = join(dir, 'profile');
      const spawned = performance.now();
      const profiled = await startServer('tenantgate serve (profiled)', gwArgs, gwEnv, ['--cpu-prof', `--cpu-prof-dir=${profDir}`, '--cpu-prof-interval=500']);
      try {
        await runWrk(wrk.path, scripts.GW, `${profiled.url}/v1/query`, { threads: 1, connections: c, seconds: 1 });
        const from = performance.now() - spawned;
        const r = await runWrk(wrk.path, scripts.GW, `${profiled.url}/v1/query`, { threads: 1, connections: c, seconds: opts.seconds });
        const to = performance.now() - spawned;
        log(`profiled round c=${c}: ${Math.round(r.rps)}/s`);
        await stop(profiled);
        const file = readdirSync(profDir).find((f) => f.endsWith('.cpuprofile'));
        if (!file) throw new Error('the profiled gateway wrote no .cpuprofile');
        const trimmed = trimProfile(JSON.parse(readFileSync(join(profDir, file), 'utf8')) as Profile, from, to);
        base.profile = { concurrency: c, rps: r.rps, requests: r.requests, summary: summariseProfile(trimmed, 20), stages: inclusiveTimes(trimmed, /\/src\//, 25) };
      } finally {
        await stop(profiled);
      }
    }
    base.keys = keys.length;
    base.postgraphileVersion = (await import('postgraphile/package.json', { with: { type: 'json' } })).default.version as string;
    return base;
  } finally {
    for (const s of Object.values(servers)) await stop(s);
  }
}

export const PEER_GOALS = { PGB: 0.5, PGL: 2, MIN: 0.8 } as const;

const point = (t: PeersResult, v: VariantKey, c: number) => t.points.find((p) => p.variant === v && p.concurrency === c);

/** Ratios of the gateway over each peer at one concurrency (undefined where one side is missing). */
export function peerRatios(t: PeersResult, c: number): Partial<Record<Exclude<VariantKey, 'GW'>, number>> {
  const gw = point(t, 'GW', c);
  const out: Partial<Record<Exclude<VariantKey, 'GW'>, number>> = {};
  for (const v of ['PGB', 'PGL', 'MIN'] as const) {
    const p = point(t, v, c);
    if (gw && p && p.rps > 0) out[v] = gw.rps / p.rps;
  }
  return out;
}

export function peersSection(t: PeersResult, date: string, chart: string | undefined): string {
  if (t.skipped) return `${PEERS_HEADING}\n\nSkipped: ${t.skipped}.\n`;
  const cs = t.concurrencies;
  const head = cs.map((c) => `c=${c}`);
  const row = (v: VariantKey, f: (p: PeerPoint) => string) => `| **${v}** | ${VARIANTS[v]} | ${cs.map((c) => { const p = point(t, v, c); return p ? f(p) : '–'; }).join(' | ')} |`;
  const variants = (Object.keys(VARIANTS) as VariantKey[]).filter((v) => t.points.some((p) => p.variant === v));
  const main = mainConcurrency(cs);
  const r = peerRatios(t, main);
  const holds = (v: keyof typeof PEER_GOALS) => (r[v] === undefined ? 'not measured' : r[v] >= PEER_GOALS[v] ? 'yes' : 'no');
  return `${PEERS_HEADING}

bench/peers.ts, measured ${date.slice(0, 10)}. The same data as section 1 (1,000 tenants × 1,000 rows under RLS); one row by id,
as one tenant, from ${t.keys} API keys of ${t.keys} tenants taken in turn, a random id of the key's tenant each time. Every server runs in
a process of its own on this machine, with a pool of ${t.poolSize} connections as the gateway login; wrk (one thread) drives the
HTTP servers with the same script, pgbench the database directly with the same number of clients (connections). Per
concurrency, ${t.rounds} interleaved rounds of ${t.seconds} s after a 1 s warm-up each; the median round. Before timing, each server
returned a tenant's own row and no row of its neighbour.

${(Object.keys(VARIANTS) as VariantKey[]).map((v) => `- **${v}** ${VARIANTS[v]}`).join('\n')}

What each does per request: GW verifies the key (HMAC, cached), resolves the tenant, checks the role, validates and plans
the query, applies quotas, runs one round trip (context + statement under one Sync), shapes JSON, writes an audit record
(batched) and metrics. MIN does only the round trip and the JSON. PostGraphile ${t.postgraphileVersion ?? '4.14'} parses and validates the GraphQL,
then runs its transaction (BEGIN, set_config of the settings, the query, COMMIT). pgbench only sends the statements.

Requests (or transactions) per second:

| | variant | ${head.join(' | ')} |
| --- | --- | ${cs.map(() => '---:').join(' | ')} |
${variants.map((v) => row(v, (p) => fmt.int(p.rps))).join('\n')}

Latency p50 / p99, ms:

| | variant | ${head.join(' | ')} |
| --- | --- | ${cs.map(() => '---:').join(' | ')} |
${variants.map((v) => row(v, (p) => `${p.p50Ms.toFixed(2)} / ${p.p99Ms.toFixed(1)}`)).join('\n')}

CPU of the server's own process per request, µs (user + system, from /proc; for pgbench there is no server process between
client and database):

| | variant | ${head.join(' | ')} |
| --- | --- | ${cs.map(() => '---:').join(' | ')} |
${variants.filter((v) => v !== 'PGB').map((v) => row(v, (p) => (p.cpuUs === undefined ? '–' : fmt.int(p.cpuUs)))).join('\n')}

The gateway over each peer (throughput ratio, same run):

| concurrency | GW ÷ pgbench | GW ÷ PostGraphile | GW ÷ minimal node:http |
| ---: | ---: | ---: | ---: |
${cs.map((c) => { const x = peerRatios(t, c); const f = (n?: number) => (n === undefined ? '–' : fmt.ratio(n)); return `| ${c} | ${f(x.PGB)} | ${f(x.PGL)} | ${f(x.MIN)} |`; }).join('\n')}

${chart ? `![throughput and latency by concurrency](${chart})\n\n` : ''}At ${main} connections (the issue's setting):
- GW ÷ pgbench = **${r.PGB === undefined ? '–' : fmt.ratio(r.PGB)}** (goal ≥ ${PEER_GOALS.PGB}): holds? **${holds('PGB')}**
- GW ÷ PostGraphile = **${r.PGL === undefined ? '–' : fmt.ratio(r.PGL)}** (goal ≥ ${PEER_GOALS.PGL}): holds? **${holds('PGL')}**
- GW ÷ minimal node:http + pg = **${r.MIN === undefined ? '–' : fmt.ratio(r.MIN)}** (goal ≥ ${PEER_GOALS.MIN}): holds? **${holds('MIN')}**
${t.notes.map((n) => `- ${n}`).join('\n')}
${blockers(t, main)}${t.profile ? profileText(t.profile) : ''}`;
}

/** What the measured numbers say stands between the gateway and each goal. */
function blockers(t: PeersResult, c: number): string {
  const gw = point(t, 'GW', c);
  const min = point(t, 'MIN', c);
  const pgl = point(t, 'PGL', c);
  const pgb = point(t, 'PGB', c);
  if (!gw || !min) return '';
  const us = (p?: PeerPoint) => (p?.cpuUs === undefined ? '–' : fmt.int(p.cpuUs));
  const lines = ['', '### What stands between the gateway and the goals', ''];
  if (pgb) {
    lines.push(
      `- **pgbench.** Node's own ceiling, MIN (no gateway logic at all, the same round trip), reaches ${fmt.ratio(min.rps / pgb.rps)} of pgbench at ${c} connections on this machine: wrk, the HTTP server and PostgreSQL share 2 cores, and an HTTP request costs its server process ${us(min)} µs of CPU before any gateway work, where pgbench's client spends a few µs per transaction. ${min.rps / pgb.rps < PEER_GOALS.PGB ? `No Node HTTP server can reach ${PEER_GOALS.PGB} of pgbench here; the goal is blocked by the machine, not by the gateway's design.` : ''}`,
    );
  }
  lines.push(
    `- **node:http + pg.** The gateway's process spends ${us(gw)} µs of CPU per request against MIN's ${us(min)}: the difference is the gateway's own work (key verification, tenant resolution, authorization, request validation and planning, quotas, the audit record and its hash, metrics, the log line, Server-Timing, Fastify). Throughput here follows the CPU all parties spend per request on the 2 cores (wrk, the server process, the PostgreSQL backend), so ${PEER_GOALS.MIN} of MIN leaves the gateway about a quarter of MIN's whole per-request cost for all of its own work, roughly half of what it spends now.`,
  );
  if (pgl) lines.push(`- **PostGraphile.** PostGraphile 4.14 spends ${us(pgl)} µs per request here (GraphQL parse, validation and its transaction of four statements), close to the gateway's; it serves ${fmt.int(pgl.rps)} req/s at ${c} connections on this machine, several times the ~885 req/s the issue quotes for it, so a 2× lead needs the gateway to halve its CPU per request too.`);
  lines.push(
    '- Where the gateway\'s CPU goes (the profile below, and trials made once on 2026-12-02, not rerun by this benchmark): in its own process, without HTTP, the pipeline (identify … execute, then the audit record and metrics) cost about 190 µs per request, of which turning the audit record off saved about 25 µs (and about 10 µs of the PostgreSQL backend\'s, which runs `audit_append` on the same cores) and admission (rate and concurrency limits) about 14 µs; served, turning the audit off saved about 55 µs per request in one round. Fastify itself costs about 8 µs over bare node:http (33 vs 25 µs per request serving a fixed answer); key verification (an HMAC per request) about 10 µs; planning about 15 µs; metrics about 7 µs. No single part is large: halving the gateway\'s CPU means thinning every one of them. Both servers profiled the same way on 2026-12-02 (a slow day: ×1.5–2 on every number), per request: MIN spent 90 µs in socket system calls, 23 in pg and 16 in promises and timers; GW 127, 44 (it also writes the audit batches) and 50, plus about 106 µs of self time in tenantgate\'s own functions spread over some fifty of them (the audit event 8, the route hooks 7, compiling the query 7, the audit batch\'s JSON and hashes 7, number conversion 5, the key 4, Server-Timing 4, …), 22 in Fastify, 21 in HMACs and hashes, 13 in pino, 11 in zod and 11 in JSON.',
    '- Changed because of the profiles: the request log lines are written in batches (a `write` to stdout per request was 6% of the gateway\'s samples in the first profile); a pooled tenant\'s context statement no longer sets `search_path` (one `set_config` fewer per request, and the same statements as pgbench replays).',
    '',
  );
  return lines.join('\n');
}

function profileText(p: NonNullable<PeersResult['profile']>): string {
  const s = p.summary;
  const ms = (x: number) => fmt.int(x);
  const pct = (x: number) => `${Math.round(x * 100)}%`;
  return `
### CPU profile of the gateway under load

One more round of GW at ${p.concurrency} connections (${fmt.int(p.rps)} req/s under the profiler), the \`tenantgate serve\` process
started with \`--cpu-prof --cpu-prof-interval=500\` and the profile cut to the ${Math.round(s.wallMs / 1000)} s of load: the main thread
was busy ${ms(s.busyMs)} ms of ${ms(s.wallMs)} (the rest idle in the event loop). Self time by where the code lives:

| | self ms | share |
| --- | ---: | ---: |
${s.categories.map((c) => `| ${c.name} | ${ms(c.ms)} | ${pct(c.share)} |`).join('\n')}

tenantgate's own functions by inclusive time (everything they and what they call spent, the request's socket writes included
where they happen inside them), µs per request:

| function | where | µs / request |
| --- | --- | ---: |
${p.stages.map((f) => `| \`${f.name}\` | \`${f.where}\` | ${fmt.int((f.ms * 1000) / p.requests)} |`).join('\n')}

The functions with the most self time:

| function | where | category | self ms | share |
| --- | --- | --- | ---: | ---: |
${s.top.map((f) => `| \`${f.name}\` | \`${f.where}\` | ${f.category} | ${ms(f.ms)} | ${pct(f.share)} |`).join('\n')}
`;
}

const COLORS: Record<VariantKey, string> = { GW: '#d62728', MIN: '#1f77b4', PGL: '#2ca02c', PGB: '#7f7f7f' };
const NAMES: Record<VariantKey, string> = { GW: 'tenantgate (GW)', MIN: 'node:http + pg (MIN)', PGL: 'PostGraphile 4.14 (PGL)', PGB: 'pgbench (PGB)' };

/** Throughput, p50 and p99 by concurrency, one line per variant (docs/benchmarks-peers.svg). */
export function peersChart(t: PeersResult): string {
  const variants = (Object.keys(VARIANTS) as VariantKey[]).filter((v) => t.points.some((p) => p.variant === v));
  const series = (f: (p: PeerPoint) => number) => variants.map((v) => ({ name: NAMES[v], color: COLORS[v], dashed: v === 'PGB', ys: t.concurrencies.map((c) => { const p = point(t, v, c); return p ? f(p) : undefined; }) }));
  return lineChart(
    [
      { title: 'Throughput', yLabel: 'requests / s', series: series((p) => p.rps) },
      { title: 'Latency p50', yLabel: 'ms (log)', series: series((p) => p.p50Ms), logY: true },
      { title: 'Latency p99', yLabel: 'ms (log)', series: series((p) => p.p99Ms), logY: true },
    ],
    t.concurrencies,
    variants.map((v) => ({ name: NAMES[v], color: COLORS[v], dashed: v === 'PGB' })),
  );
}

/** Concurrency levels of the sweep (16 is the issue's setting), and the chart's file name under docs/. */
export const PEERS_CONCURRENCY = [1, 4, 16, 32];
export const PEERS_CHART = 'benchmarks-peers.svg';

export function peersSummaryLines(t: PeersResult): string[] {
  if (t.skipped) return [`peers: skipped (${t.skipped})`];
  return t.concurrencies.map((c) => {
    const r = peerRatios(t, c);
    const f = (n?: number) => (n === undefined ? '–' : fmt.ratio(n));
    return `peers c=${c}: GW ${fmt.int(point(t, 'GW', c)?.rps ?? NaN)}/s; GW÷pgbench ${f(r.PGB)}, GW÷PostGraphile ${f(r.PGL)}, GW÷node:http ${f(r.MIN)}`;
  });
}

/** The concurrency the goals are judged at: 16 connections (the issue's setting), else the middle one. */
export const mainConcurrency = (cs: number[]) => (cs.includes(16) ? 16 : (cs[Math.floor(cs.length / 2)] as number));
