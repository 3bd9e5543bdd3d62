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
import { fmt, log, machineCpuSeconds, median, processCpuSeconds } from './support.ts';
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
  /** CPU of the whole machine per request, µs (all cores, every process and the kernel), and its busy share. */
  machineUs?: number;
  busy?: number;
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
    const runOne = async (v: VariantKey, c: number, seconds: number, round: string): Promise<RoundResult & { machineUs?: number; busy?: number }> => {
      // The whole machine's CPU over the round (load generator, server, PostgreSQL, kernel), per request.
      const m0 = machineCpuSeconds();
      const whole = (r: RoundResult, requests: number) => {
        const m1 = machineCpuSeconds();
        return m0 && m1 ? { ...r, machineUs: ((m1.busy - m0.busy) / requests) * 1e6, busy: (m1.busy - m0.busy) / (m1.total - m0.total) } : r;
      };
      if (v === 'PGB') {
        const r = await pgbenchOnce(pgbenchBinary as string, ds, files, defines, 'prepared', seconds, { concurrency: c, pgbenchThreads: Math.min(c, 2) }, join(dir, `pgb_${c}_${round}`));
        // pgbench reports a rate, not a count: the round's transactions are rate × its length.
        return whole(r, r.rps * seconds);
      }
      const s = servers[v] as Served;
      const cpu0 = processCpuSeconds([s.child.pid as number]);
      const r = await runWrk(wrk.path as string, scripts[v], `${s.url}${v === 'PGL' ? '/graphql' : '/v1/query'}`, { threads: Math.min(opts.wrkThreads, c), connections: c, seconds });
      return whole({ ...r, nodeUs: ((processCpuSeconds([s.child.pid as number]) - cpu0) / r.requests) * 1e6 }, r.requests);
    };
    const variants = (Object.keys(VARIANTS) as VariantKey[]).filter((v) => v !== 'PGB' || pgbenchBinary);
    for (const c of opts.concurrencies) {
      for (const v of variants) await runOne(v, c, 1, 'warmup');
      const got = new Map<VariantKey, Array<RoundResult & { machineUs?: number; busy?: number }>>(variants.map((v) => [v, []]));
      // Every round at the issue's concurrency; two elsewhere (the chart's other points), to keep `npm run bench` short.
      const rounds = c === mainConcurrency(opts.concurrencies) ? opts.rounds : Math.min(opts.rounds, 2);
      for (let round = 0; round < rounds; round++) {
        for (let i = 0; i < variants.length; i++) {
          const v = variants[(i + round) % variants.length] as VariantKey;
          const r = await runOne(v, c, opts.seconds, String(round));
          got.get(v)?.push(r);
          log(`peers c=${c} round ${round + 1}/${rounds} ${v}: ${Math.round(r.rps)}/s, p50 ${r.p50Ms.toFixed(2)} ms, p99 ${r.p99Ms.toFixed(2)} ms${r.nodeUs === undefined ? '' : `, ${Math.round(r.nodeUs)} µs CPU/request`}`);
        }
      }
      for (const v of variants) {
        const rs = got.get(v) ?? [];
        const of = (f: (r: (typeof rs)[number]) => number | undefined) => {
          const xs = rs.flatMap((r) => (f(r) === undefined ? [] : [f(r) as number]));
          return xs.length ? median(xs) : undefined;
        };
        const [cpuUs, machineUs, busy] = [of((r) => r.nodeUs), of((r) => r.machineUs), of((r) => r.busy)];
        base.points.push({
          variant: v,
          concurrency: c,
          rounds: rs.map((r) => r.rps),
          rps: median(rs.map((r) => r.rps)),
          p50Ms: median(rs.map((r) => r.p50Ms)),
          p99Ms: median(rs.map((r) => r.p99Ms)),
          ...(cpuUs === undefined ? {} : { cpuUs }),
          ...(machineUs === undefined ? {} : { machineUs }),
          ...(busy === undefined ? {} : { busy }),
        });
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
concurrency, interleaved rounds of ${t.seconds} s after a 1 s warm-up each (${t.rounds} at ${mainConcurrency(t.concurrencies)} connections, ${Math.min(t.rounds, 2)} at the others); the median round. Before timing, each server
returned a tenant's own row and no row of its neighbour.

${(Object.keys(VARIANTS) as VariantKey[]).map((v) => `- **${v}** ${VARIANTS[v]}`).join('\n')}

What each does per request: GW verifies the key (by HMAC once, then from a 5 s cache), resolves the tenant, checks the role, validates and plans
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

CPU of the whole machine per request, µs (every process and the kernel, from /proc/stat; how busy the 2 cores were):

| | variant | ${head.join(' | ')} |
| --- | --- | ${cs.map(() => '---:').join(' | ')} |
${variants.map((v) => row(v, (p) => (p.machineUs === undefined ? '–' : `${fmt.int(p.machineUs)} (${Math.round((p.busy ?? 0) * 100)}%)`))).join('\n')}

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
  const us = (x?: number) => (x === undefined ? '–' : fmt.int(x));
  const core = (p: PeerPoint) => (p.cpuUs === undefined ? undefined : (p.cpuUs * p.rps) / 1e6);
  const prof = t.profile;
  const socketUs = prof ? ((prof.summary.categories.find((x) => x.name.startsWith('socket I/O'))?.ms ?? 0) * 1000) / prof.requests : undefined;
  const ownTop = prof?.summary.top.find((x) => x.category.startsWith('tenantgate'));
  const lines = ['', '### What stands between the gateway and the goals', ''];
  if (pgb) {
    lines.push(
      `- **pgbench.** MIN, a Node server with no gateway logic at all doing the same round trip, reaches ${fmt.ratio(min.rps / pgb.rps)} of pgbench at ${c} connections: wrk, the server and PostgreSQL share 2 cores, and the whole machine spends ${us(min.machineUs)} µs of CPU per MIN request against ${us(pgb.machineUs)} per pgbench transaction. The difference is HTTP itself: wrk's side of it, and the server's two socket reads and two writes per request (the client's and the database's), which are expensive system calls on this virtual machine (${socketUs === undefined ? 'see the profile below' : `${us(socketUs)} µs per request in the gateway's profile below`}). ${min.rps / pgb.rps < PEER_GOALS.PGB ? `No Node HTTP server reaches ${PEER_GOALS.PGB} of pgbench here: the goal is blocked by the machine, not by the gateway's design.` : ''}`,
    );
  }
  const gwCore = core(gw);
  lines.push(
    `- **node:http + pg.** The gateway's process spends ${us(gw.cpuUs)} µs of CPU per request against MIN's ${us(min.cpuUs)}${gwCore === undefined ? '' : `, and at ${fmt.int(gw.rps)} req/s that is ${fmt.ratio(gwCore)} of a core: Node runs the pipeline on one thread, so that thread is the limit (the machine as a whole was ${gw.busy === undefined ? '–' : `${Math.round(gw.busy * 100)}%`} busy)`}. ${PEER_GOALS.MIN} of MIN's ${fmt.int(min.rps)} req/s needs the process to spend at most ${fmt.int(1e6 / (PEER_GOALS.MIN * min.rps))} µs per request, of which MIN's own ${us(min.cpuUs)} (the socket calls, pg, the JSON) leave ${fmt.int(1e6 / (PEER_GOALS.MIN * min.rps) - (min.cpuUs ?? 0))} µs for everything the gateway adds: the key, tenant resolution, authorization, validation and planning, quotas, the audit record, metrics, the log line, Server-Timing and Fastify. It adds ${fmt.int((gw.cpuUs ?? 0) - (min.cpuUs ?? 0))} µs now. The whole machine spends ${us(gw.machineUs)} µs per gateway request against ${us(min.machineUs)} per MIN request${gw.machineUs === undefined ? '' : `, so even with every cycle of both cores in use (several \`serve\` processes, which share a Redis quota store) the gateway would top out near ${fmt.int(2e6 / gw.machineUs)} req/s, ${fmt.ratio(2e6 / gw.machineUs / min.rps)} of MIN`}.`,
  );
  if (pgl) {
    lines.push(
      `- **PostGraphile.** PostGraphile ${t.postgraphileVersion ?? '4.14'} spends ${us(pgl.cpuUs)} µs per request here (GraphQL parse, validation, its transaction of four statements) and serves ${fmt.int(pgl.rps)} req/s at ${c} connections on this machine, several times the ~885 req/s the issue quotes for it. Twice that needs the gateway's one thread to spend at most ${fmt.int(1e6 / (PEER_GOALS.PGL * pgl.rps))} µs per request, against the ${us(gw.cpuUs)} it spends: the same gap as above.`,
    );
  }
  lines.push(
    '- Changed because of the profiles, each measured side by side with the code before it (GW µs of CPU per request at 16 connections, on one day, 2026-12-02): the request log lines written in batches (a `write` to stdout per request was 6% of the samples); a pooled tenant\'s context statement without `search_path` (one `set_config` fewer per request, and the same statements pgbench replays); a verified API key remembered by its own bytes for its cache lifetime, so a repeat is a constant-time compare, not an HMAC; the request log line formatted by hand in pino\'s shape; an audit event queued without a promise, hashed with one-shot `crypto.hash`; stage timings without an array per stage (together 230 → 206 µs); no async Fastify hooks (the record ends where the answer is sent) and the pg batch built without pg copying a config object (196 → 189 µs); the four per-request metrics kept as plain series that the registry writes in prom-client\'s format, instead of prom-client hashing a label object per update (189 → 177 µs); no promise on the common path of admission and identify, and no pino child logger per request (202 → 181 µs, a slower round). The throughput of the rounds above moves more from run to run than these steps, which is why each was measured side by side.',
    `- What is left is spread thin: ${ownTop ? `the tenantgate function with the most time of its own in the profile below, \`${ownTop.name}\` (${ownTop.where}), has ${((ownTop.ms * 1000) / (prof?.requests ?? 1)).toFixed(1)} µs per request, and the rest less` : 'no tenantgate function stands out in the profile below'}. Further gains would come from doing less per request (no audit record or no metrics for some endpoints, which the product does not offer: every request is audited) or from several processes on a larger machine, not from one hot spot.`,
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
