/**
 * Benchmark 3: the query APIs over HTTP. The gateway runs in this process (createTenantGate →
 * Gateway.create → buildServer, on 127.0.0.1), wrk drives `POST /v1/query` (a semantic point
 * query) and `POST /v1/queries` (the same through the SQL endpoint), and pgbench runs the very
 * statements the gateway sends for the semantic request, recorded off the gateway's own socket
 * (bench/wire.ts), at the same concurrency on the same server. Rounds are interleaved.
 */
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Fastify, { type FastifyInstance } from 'fastify';
import { openDatabase } from '../src/db/database.ts';
import { createTenantGate, type TenantGate } from '../src/gate.ts';
import { Gateway } from '../src/gateway/gateway.ts';
import { buildServer } from '../src/http/server.ts';
import { createApiKey } from '../src/identify/api-keys.ts';
import { compileSemantic } from '../src/plan/semantic/compile.ts';
import { semanticQuerySchema } from '../src/plan/semantic/request.ts';
import { contextMac, deriveKey } from '../src/security/secret.ts';
import { rowId, ROWS_PER_TENANT, TENANTS, tenantId, type Dataset } from './dataset.ts';
import { parsePgbench } from './pgbench.ts';
import { cpuProfile, summariseProfile, type ProfileSummary } from './profile.ts';
import { closedLoop, CpuMeter, keepConnections, log, median, percentile, sleep } from './support.ts';
import { defineArgs, differences, renderScript, replay, scriptShape, type PgbenchMode, type ScriptShape } from './wire-pgbench.ts';
import { WireRecorder, type Capture } from './wire.ts';

/** Tenants with an API key (and a pgbench script file): spread over the table. */
export const KEY_TENANTS = 32;
export const keyTenants = () => Array.from({ length: KEY_TENANTS }, (_, j) => Math.floor(((j + 0.5) * TENANTS) / KEY_TENANTS));

export const SEMANTIC_BODY = (id: number) => ({ dataset: 'orders', dimensions: ['id', 'region', 'status'], filters: [{ field: 'id', op: '=', value: id }] });
export const SQL_TEXT = 'SELECT id, region, amount FROM orders WHERE id = $1';
export const SQL_BODY = (id: number) => ({ sql: SQL_TEXT, params: [id] });

export interface HttpVariantResult {
  key: string;
  label: string;
  tool: 'wrk' | 'pgbench';
  rounds: number[];
  /** Requests (or transactions) per second: median of the rounds. */
  rps: number;
  /** wrk: median over rounds of each round's percentile; pgbench: over a 20% sample of every round's transactions. */
  p50Ms: number;
  p99Ms: number;
  /** CPU per request in µs (medians over rounds): the gateway (this Node process), the server backends, the load generator. */
  nodeUs: number | undefined;
  serverUs: number | undefined;
  clientUs: number | undefined;
  machineBusy: number | undefined;
}

export interface WireDescription {
  capture: Capture;
  compiledSql: string;
  compiledParams: unknown[];
  sqlEndpointSql: string | undefined;
  shape: ScriptShape;
  /** Mode of the pgbench variant matching how the gateway sends its data statement. */
  primaryMode: PgbenchMode;
  differences: Record<PgbenchMode, string[]>;
  exampleScript: string;
}

/** The gateway's layers without HTTP: closed loops in this process at the same concurrency. */
export interface LayerResult {
  key: string;
  label: string;
  ops: number;
  tps: number;
  nodeUs: number;
  serverUs: number | undefined;
}

export interface HttpResult {
  skipped?: string;
  concurrency: number;
  wrkThreads: number;
  pgbenchThreads: number;
  poolSize: number;
  seconds: number;
  rounds: number;
  variants: HttpVariantResult[];
  wire?: WireDescription;
  /** One semantic answer and its Server-Timing header, as the correctness check saw it. */
  example?: { body: unknown; serverTiming: string | null };
  layers?: LayerResult[];
  /** The profiled round: its rate, and the process's CPU time during it (user and system, ms). */
  profile?: { summary: ProfileSummary; rps: number; seconds: number; cpuUserMs: number | undefined; cpuSystemMs: number | undefined; requests: number | undefined };
}

/** wrk from PATH; installed with apt-get when missing and running as root. */
export function findWrk(): { path?: string; note?: string } {
  const look = () => ['/usr/bin/wrk', '/usr/local/bin/wrk', ...(process.env['PATH'] ?? '').split(':').map((d) => join(d, 'wrk'))].find((p) => existsSync(p));
  const found = look();
  if (found) return { path: found };
  if (process.getuid?.() === 0) {
    try {
      log('wrk not found: apt-get install -y wrk');
      execFileSync('apt-get', ['install', '-y', 'wrk'], { stdio: 'ignore', timeout: 180_000, env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
      const installed = look();
      if (installed) return { path: installed };
    } catch (err) {
      return { note: `wrk is not installed and \`apt-get install -y wrk\` failed (${(err as Error).message.split('\n')[0]})` };
    }
  }
  return { note: 'wrk is not installed (install it with `apt-get install wrk` and rerun)' };
}

/** Run a command, also returning the CPU seconds it used (its shell's cutime + cstime after waiting for it). */
function runWithCpu(cmd: string, args: string[], env: NodeJS.ProcessEnv = process.env): Promise<{ stdout: string; stderr: string; code: number; cpuSeconds: number | undefined }> {
  return new Promise((resolve, reject) => {
    const child = spawn('sh', ['-c', '"$@"; s=$?; echo "TGSTAT $(cat /proc/$$/stat)" >&2; exit $s', 'sh', cmd, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => {
      const m = /TGSTAT (.*)/.exec(stderr);
      let cpuSeconds: number | undefined;
      if (m) {
        const f = (m[1] as string).slice((m[1] as string).lastIndexOf(')') + 2).split(' ');
        cpuSeconds = (Number(f[13]) + Number(f[14])) / 100;
      }
      resolve({ stdout, stderr: stderr.replace(/TGSTAT .*\n?/, ''), code: code ?? -1, cpuSeconds });
    });
  });
}

/** wrk script: round-robin over the keys, a random id of that key's tenant, a summary line at the end. */
export function wrkScript(path: string, bodyTemplate: string, keys: Array<{ key: string; idBase: number }>, span = ROWS_PER_TENANT): string {
  return `-- generated by bench/http.ts
local keys = { ${keys.map((k) => `"${k.key}"`).join(', ')} }
local bases = { ${keys.map((k) => k.idBase).join(', ')} }
local n = #keys
local i = 0
local headers = { ["Content-Type"] = "application/json" }
local body = [[${bodyTemplate}]]
math.randomseed(os.time())
request = function()
  i = i + 1
  local k = i % n + 1
  headers["X-API-Key"] = keys[k]
  return wrk.format("POST", "${path}", headers, string.format(body, bases[k] + math.random(0, ${span - 1})))
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("TGWRK %d %d %d %d %d %d %d %.1f %.1f\\n", summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout, latency:percentile(50), latency:percentile(99)))
end
`;
}

/** One wrk run of a script made by wrkScript: rate, latency percentiles, wrk's own CPU; any error or non-2xx fails it. */
export async function runWrk(wrkPath: string, script: string, url: string, o: { threads: number; connections: number; seconds: number }): Promise<{ rps: number; requests: number; p50Ms: number; p99Ms: number; cpuSeconds: number | undefined }> {
  const out = await runWithCpu(wrkPath, ['-t', String(o.threads), '-c', String(o.connections), '-d', `${o.seconds}s`, '--timeout', '5s', '--latency', '-s', script, url]);
  const m = /TGWRK (\d+) (\d+) (\d+) (\d+) (\d+) (\d+) (\d+) ([\d.]+) ([\d.]+)/.exec(out.stdout);
  if (out.code !== 0 || !m) throw new Error(`wrk failed (exit ${out.code}):\n${out.stdout}\n${out.stderr}`);
  const [requests, durationUs, connect, read, writeErr, status, timeout] = m.slice(1, 8).map(Number) as [number, number, number, number, number, number, number];
  if (connect + read + writeErr + status + timeout > 0) throw new Error(`wrk saw errors (connect ${connect}, read ${read}, write ${writeErr}, non-2xx ${status}, timeout ${timeout}):\n${out.stdout}`);
  return { rps: requests / (durationUs / 1e6), requests, p50Ms: Number(m[8]) / 1000, p99Ms: Number(m[9]) / 1000, cpuSeconds: out.cpuSeconds };
}

export interface RoundResult {
  rps: number;
  requests?: number;
  /** This process's CPU during the run, ms (user, system). */
  cpuUserMs?: number;
  cpuSystemMs?: number;
  p50Ms: number;
  p99Ms: number;
  latenciesMs?: Float64Array;
  nodeUs?: number | undefined;
  serverUs?: number | undefined;
  clientUs?: number | undefined;
  busy?: number | undefined;
}

interface Runner {
  key: string;
  label: string;
  tool: 'wrk' | 'pgbench';
  run(seconds: number, round: string): Promise<RoundResult>;
}

async function post(url: string, key: string, body: unknown): Promise<{ status: number; json: { rows?: unknown[][]; row_count?: number; error?: unknown }; timing: string | null }> {
  const res = await fetch(url, { method: 'POST', headers: { 'x-api-key': key, 'content-type': 'application/json' }, body: JSON.stringify(body) });
  return { status: res.status, json: (await res.json()) as never, timing: res.headers.get('server-timing') };
}

async function listen(gate: TenantGate, ds: Dataset): Promise<{ app: FastifyInstance; url: string; gateway: Gateway }> {
  const gateway = await Gateway.create({ gate, secret: ds.secret, env: {}, quotas: false }); // admission is benchmark 7's; here the pipeline alone
  const app = buildServer(gateway);
  await app.listen({ host: '127.0.0.1', port: 0 });
  const address = app.server.address();
  return { app, gateway, url: `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}` };
}

export async function runHttpBench(
  ds: Dataset,
  pgbenchBinary: string | undefined,
  dir: string,
  opts: { rounds: number; seconds: number; concurrency: number; wrkThreads: number; pgbenchThreads: number; profile: boolean },
): Promise<HttpResult> {
  const base: HttpResult = { concurrency: opts.concurrency, wrkThreads: opts.wrkThreads, pgbenchThreads: opts.pgbenchThreads, poolSize: opts.concurrency, seconds: opts.seconds, rounds: opts.rounds, variants: [] };
  const wrk = findWrk();
  if (!wrk.path) {
    log(`HTTP benchmark skipped: ${wrk.note}`);
    return { ...base, skipped: wrk.note as string };
  }
  mkdirSync(dir, { recursive: true });
  const macKey = deriveKey(ds.secret, 'context');
  const tenants = keyTenants();
  log(`creating ${KEY_TENANTS} API keys`);
  const keys: Array<{ key: string; index: number; tenant: string; idBase: number }> = [];
  for (const i of tenants) {
    const created = await createApiKey(ds.owner, ds.config, ds.names, ds.secret, { tenant: tenantId(i), role: 'analyst' });
    keys.push({ key: created.key, index: i, tenant: tenantId(i), idBase: rowId(i, 0) });
  }

  const wire = await captureWire(ds, keys[0] as (typeof keys)[number], macKey);

  const gate = await createTenantGate({ config: ds.config, gatewayUrl: ds.gatewayUrl, secret: ds.secret, poolSize: opts.concurrency, env: {} });
  keepConnections(gate.database.pool);
  const served = await listen(gate, ds);
  try {
    const example = await checkAnswers(served.url, keys);
    const semanticScript = join(dir, 'semantic.lua');
    const sqlScript = join(dir, 'sql.lua');
    writeFileSync(semanticScript, wrkScript('/v1/query', JSON.stringify(SEMANTIC_BODY(0)).replace(/"value":0/, '"value":%d'), keys));
    writeFileSync(sqlScript, wrkScript('/v1/queries', JSON.stringify(SQL_BODY(0)).replace(/\[0\]/, '[%d]'), keys));

    const gatewayPids = async () =>
      (await ds.owner.query<{ pid: number }>(`SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND usename = $1`, [ds.names.gateway])).rows.map((r) => r.pid);
    const wrkRun = (script: string, path: string, baseUrl = served.url) => async (seconds: number): Promise<RoundResult> => {
      const meter = new CpuMeter(await gatewayPids());
      const own0 = process.cpuUsage();
      const out = await runWrk(wrk.path as string, script, baseUrl + path, { threads: opts.wrkThreads, connections: opts.concurrency, seconds });
      const cpu = meter.stop();
      const own = process.cpuUsage(own0);
      return {
        ...out,
        cpuUserMs: own.user / 1000,
        cpuSystemMs: own.system / 1000,
        nodeUs: (cpu.nodeSeconds / out.requests) * 1e6,
        serverUs: cpu.serverSeconds === undefined ? undefined : (cpu.serverSeconds / out.requests) * 1e6,
        clientUs: out.cpuSeconds === undefined ? undefined : (out.cpuSeconds / out.requests) * 1e6,
        busy: cpu.machineBusy,
      };
    };

    const runners: Runner[] = [
      { key: 'H1', label: 'HTTP `POST /v1/query` (semantic), wrk → gateway → PostgreSQL', tool: 'wrk', run: wrkRun(semanticScript, '/v1/query') },
      { key: 'H2', label: 'HTTP `POST /v1/queries` (SQL endpoint), wrk → gateway → PostgreSQL', tool: 'wrk', run: wrkRun(sqlScript, '/v1/queries') },
    ];
    if (pgbenchBinary) {
      const files = writeScripts(dir, wire.shape, keys);
      const defines = defineArgs(
        wire.shape,
        keys.map((k) => ({ tenant: k.tenant, mac: contextMac(macKey, k.tenant) })),
      );
      const modes: PgbenchMode[] = wire.primaryMode === 'extended' ? ['extended', 'prepared'] : ['prepared', 'extended'];
      modes.forEach((mode, n) =>
        runners.push({
          key: `G${n + 1}`,
          label: `pgbench -M ${mode}: the gateway's statements for H1, as the gateway login${n === 0 ? ' (matches how the gateway sends the data statement)' : ''}`,
          tool: 'pgbench',
          run: (seconds, round) => pgbenchOnce(pgbenchBinary, ds, files, defines, mode, seconds, opts, join(dir, `log_${mode}_${round}`)),
        }),
      );
    } else {
      log('pgbench not found: the HTTP benchmark runs without its database baseline');
    }

    for (const r of runners) {
      log(`warm-up ${r.key} (1s)`);
      await r.run(1, 'warmup');
    }
    const results = new Map<string, RoundResult[]>(runners.map((r) => [r.key, []]));
    for (let round = 0; round < opts.rounds; round++) {
      const order = runners.map((_, i) => runners[(i + round) % runners.length] as Runner);
      for (const r of order) {
        const res = await r.run(opts.seconds, String(round));
        results.get(r.key)?.push(res);
        log(`http round ${round + 1}/${opts.rounds} ${r.key}: ${Math.round(res.rps)}/s, p50 ${res.p50Ms.toFixed(2)} ms`);
      }
    }
    const layers = await measureLayers(gate, served.gateway, keys, wire, opts, gatewayPids);
    // The floor of the HTTP layer: a bare Fastify app answering the same request with the same JSON, nothing else.
    const bare = Fastify();
    const answer = example?.body;
    bare.post('/v1/query', async () => answer);
    await bare.listen({ host: '127.0.0.1', port: 0 });
    try {
      const address = bare.server.address();
      const res = await wrkRun(semanticScript, '/v1/query', `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`)(opts.seconds);
      layers.push({ key: 'F0', label: 'bare Fastify 5 (defaults, one route returning the same answer), same wrk script', ops: res.requests ?? 0, tps: res.rps, nodeUs: res.nodeUs ?? NaN, serverUs: undefined });
      log(`layer F0: ${Math.round(res.rps)}/s, Node ${Math.round(res.nodeUs ?? NaN)} µs/op`);
    } finally {
      await bare.close();
    }
    let profile: HttpResult['profile'];
    if (opts.profile) {
      log(`CPU profile of the gateway during one ${opts.seconds}s H1 round`);
      const run = runners[0] as Runner;
      const { value, profile: p } = await cpuProfile(() => run.run(opts.seconds, 'profile'));
      profile = { summary: summariseProfile(p), rps: value.rps, seconds: opts.seconds, cpuUserMs: value.cpuUserMs, cpuSystemMs: value.cpuSystemMs, requests: value.requests };
    }
    const med = (xs: Array<number | undefined>) => (xs.length > 0 && xs.every((x) => x !== undefined) ? median(xs as number[]) : undefined);
    return {
      ...base,
      wire,
      example,
      layers,
      ...(profile ? { profile } : {}),
      variants: runners.map((r) => {
        const rs = results.get(r.key) ?? [];
        const lat = rs.flatMap((x) => (x.latenciesMs ? [x.latenciesMs] : []));
        const all = lat.length ? Float64Array.from(lat.flatMap((a) => [...a])) : undefined;
        return {
          key: r.key,
          label: r.label,
          tool: r.tool,
          rounds: rs.map((x) => x.rps),
          rps: median(rs.map((x) => x.rps)),
          p50Ms: all && all.length ? percentile(all, 50) : median(rs.map((x) => x.p50Ms)),
          p99Ms: all && all.length ? percentile(all, 99) : median(rs.map((x) => x.p99Ms)),
          nodeUs: med(rs.map((x) => x.nodeUs)),
          serverUs: med(rs.map((x) => x.serverUs)),
          clientUs: med(rs.map((x) => x.clientUs)),
          machineBusy: med(rs.map((x) => x.busy)),
        };
      }),
    };
  } finally {
    await served.app.close();
    await gate.close();
  }
}

/**
 * The gateway without HTTP, at the same concurrency: N1 the execute stage alone (`gate.statement`
 * with the compiled SQL), N2 the whole pipeline (`gateway.semantic`: identify … execute, rows shaped).
 * Subtracting gives what each layer costs the Node process per request.
 */
async function measureLayers(
  gate: TenantGate,
  gateway: Gateway,
  keys: Array<{ key: string; index: number; tenant: string }>,
  wire: WireDescription,
  opts: { seconds: number; concurrency: number },
  pids: () => Promise<number[]>,
): Promise<LayerResult[]> {
  let n = 0;
  const next = () => {
    const k = keys[n++ % keys.length] as (typeof keys)[number];
    return { k, id: rowId(k.index, Math.floor(Math.random() * ROWS_PER_TENANT)) };
  };
  // compileSemantic's parameters are the tenant, the id and the row cap (checked against the capture).
  const [capTenant, capId] = wire.compiledParams;
  const values = (tenant: string, id: number) => wire.compiledParams.map((v) => (v === capTenant ? tenant : v === capId ? id : v));
  const layers: Array<{ key: string; label: string; op: () => Promise<unknown> }> = [
    {
      key: 'N1',
      label: 'execute stage alone: `gate.statement(scope, { text: compiled SQL, values, rowMode: \'array\' })`',
      op: () => {
        const { k, id } = next();
        return gate.statement({ tenant: k.tenant, access: 'read' }, { text: wire.compiledSql, values: values(k.tenant, id), rowMode: 'array' }).then((r) => {
          if (r.rowCount !== 1) throw new Error(`N1 returned ${r.rowCount} rows`);
        });
      },
    },
    {
      key: 'N2',
      label: 'whole pipeline without HTTP: `gateway.semantic(gateway.begin({ … apiKey }), body)`',
      op: () => {
        const { k, id } = next();
        return gateway.semantic(gateway.begin({ id: 'bench', endpoint: 'POST /v1/query', req: { apiKey: k.key } }), SEMANTIC_BODY(id)).then((r) => {
          if (r.row_count !== 1) throw new Error(`N2 returned ${r.row_count} rows`);
        });
      },
    },
  ];
  const out: LayerResult[] = [];
  for (const l of layers) {
    await closedLoop(l.op, opts.concurrency, 1);
    const meter = new CpuMeter(await pids());
    const res = await closedLoop(l.op, opts.concurrency, opts.seconds);
    const cpu = meter.stop();
    out.push({ key: l.key, label: l.label, ops: res.ops, tps: res.tps, nodeUs: (cpu.nodeSeconds / res.ops) * 1e6, serverUs: cpu.serverSeconds === undefined ? undefined : (cpu.serverSeconds / res.ops) * 1e6 });
    log(`layer ${l.key}: ${Math.round(res.tps)}/s, Node ${Math.round((cpu.nodeSeconds / res.ops) * 1e6)} µs/op`);
  }
  return out;
}

/** The wall and the answer's shape, through HTTP, before anything is timed. */
async function checkAnswers(url: string, keys: Array<{ key: string; index: number }>): Promise<HttpResult['example']> {
  let example: HttpResult['example'];
  for (const k of keys) {
    const own = rowId(k.index, 500);
    const other = rowId((k.index + 1) % TENANTS, 500);
    for (const [path, body] of [
      ['/v1/query', SEMANTIC_BODY],
      ['/v1/queries', SQL_BODY],
    ] as const) {
      const mine = await post(url + path, k.key, body(own));
      if (mine.status !== 200 || mine.json.row_count !== 1 || mine.json.rows?.[0]?.[0] !== own) {
        throw new Error(`${path} for its own row ${own} answered ${mine.status} ${JSON.stringify(mine.json)}`);
      }
      const theirs = await post(url + path, k.key, body(other));
      if (theirs.status !== 200 || theirs.json.row_count !== 0) throw new Error(`${path} for another tenant's row ${other} answered ${theirs.status} ${JSON.stringify(theirs.json)}`);
      if (!example && path === '/v1/query') example = { body: mine.json, serverTiming: mine.timing };
    }
  }
  return example;
}

/**
 * One semantic request through a gateway of its own (pool of one connection) with its socket
 * recorded, after one warm-up request (key lookup, first Parse of named statements).
 */
export async function captureWire(ds: Dataset, k: { key: string; index: number; tenant: string }, macKey: Buffer): Promise<WireDescription> {
  // The recorder must see the connection open, before the gate's first use of it (the routing table's read).
  const database = await openDatabase(ds.gatewayUrl, { max: 1, pipeline: true });
  const recorder = new WireRecorder();
  recorder.attach(database.pool);
  const gate = await createTenantGate({ config: ds.config, database, secret: ds.secret, env: {} });
  const served = await listen(gate, ds);
  try {
    const id = rowId(k.index, 517);
    const inject = async (path: string, body: unknown) => {
      const res = await served.app.inject({ method: 'POST', url: path, headers: { 'x-api-key': k.key, 'content-type': 'application/json' }, payload: JSON.stringify(body) });
      if (res.statusCode !== 200) throw new Error(`capture request ${path} answered ${res.statusCode}: ${res.body}`);
    };
    await inject('/v1/query', SEMANTIC_BODY(rowId(k.index, 3)));
    await inject('/v1/queries', SQL_BODY(rowId(k.index, 3)));
    const capture = await recorder.record(() => inject('/v1/query', SEMANTIC_BODY(id)));
    const sqlCapture = await recorder.record(() => inject('/v1/queries', SQL_BODY(id)));
    // What compileSemantic makes of the request, to name the data statement in the report.
    const tenant = ds.config.tenants.get(k.tenant);
    const view = served.gateway.catalog.views(tenant ?? null).get('orders');
    if (!tenant || !view) throw new Error('tenant or dataset missing from the catalog');
    const plan = compileSemantic(semanticQuerySchema.parse(SEMANTIC_BODY(id)), view, tenant, tenant.quotas.max_rows ?? 10000);
    const values = { tenant: k.tenant, mac: contextMac(macKey, k.tenant), id };
    const shape = scriptShape(capture, values);
    const dataStatement = shape.trips[shape.data[0]]?.[shape.data[1]];
    if (dataStatement?.text !== plan.sql) throw new Error(`the captured data statement is not the compiled semantic SQL:\n${dataStatement?.text}\n---\n${plan.sql}`);
    const primaryMode: PgbenchMode = dataStatement.from.name !== '' && !dataStatement.from.parsed ? 'prepared' : 'extended';
    // The scripts enforce the same wall: the tenant's row, and nothing of a neighbour's.
    const own = await replay(ds.gatewayUrl, shape, values);
    const foreign = await replay(ds.gatewayUrl, shape, { ...values, id: rowId(k.index + 1, 517) });
    if (own !== 1 || foreign !== 0) throw new Error(`the pgbench statements replayed return ${own} row(s) for the tenant's id and ${foreign} for a neighbour's (expected 1 and 0)`);
    const sqlData = sqlCapture.roundTrips.flatMap((t) => t.statements).find((s) => s.params.includes(String(id)));
    return {
      capture,
      compiledSql: plan.sql,
      compiledParams: plan.params,
      sqlEndpointSql: sqlData?.text,
      shape,
      primaryMode,
      differences: { extended: differences(capture, shape, 'extended'), prepared: differences(capture, shape, 'prepared') },
      exampleScript: renderScript(shape, 0, rowId(k.index, 0), ROWS_PER_TENANT),
    };
  } finally {
    await served.app.close();
    await gate.close();
    await database.close();
  }
}

export function writeScripts(dir: string, shape: ScriptShape, keys: Array<{ tenant: string; idBase: number }>): string[] {
  const sdir = join(dir, 'pgbench');
  mkdirSync(sdir, { recursive: true });
  return keys.map((k, j) => {
    const f = join(sdir, `${k.tenant}.sql`);
    writeFileSync(f, renderScript(shape, j, k.idBase, ROWS_PER_TENANT));
    return f;
  });
}

/**
 * One pgbench run. The server's CPU is read from its backends between 1 s after the start and
 * 0.5 s before the end (they exist only while pgbench runs); latencies come from a 20% sample
 * of the transaction log.
 */
export async function pgbenchOnce(
  binary: string,
  ds: Dataset,
  files: string[],
  defines: string[],
  mode: PgbenchMode,
  seconds: number,
  opts: { concurrency: number; pgbenchThreads: number },
  logPrefix: string,
): Promise<RoundResult> {
  const server = new URL(ds.ownerUrl);
  const args = ['-n', '-M', mode, '-c', String(opts.concurrency), '-j', String(opts.pgbenchThreads), '-T', String(seconds), '--log', `--log-prefix=${logPrefix}`, '--sampling-rate=0.2', ...defines];
  for (const f of files) args.push('-f', `${f}@1`);
  args.push('-h', '127.0.0.1', '-p', server.port || '5432', '-U', ds.names.gateway, ds.dbName);
  let window: { t0: number; t1?: number; meter: CpuMeter; server?: number | undefined } | undefined;
  const timers: NodeJS.Timeout[] = [];
  if (seconds >= 3) {
    timers.push(
      setTimeout(() => {
        ds.owner
          .query<{ pid: number }>(`SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND application_name = 'pgbench'`)
          .then((r) => (window = { t0: performance.now(), meter: new CpuMeter(r.rows.map((x) => x.pid)) }))
          .catch(() => {});
      }, 1000),
      setTimeout(() => {
        if (window) {
          window.server = window.meter.stop().serverSeconds;
          window.t1 = performance.now();
        }
      }, (seconds - 0.5) * 1000),
    );
  }
  const out = await runWithCpu(binary, args, { ...process.env, PGPASSWORD: ds.gatewayPassword });
  for (const t of timers) clearTimeout(t);
  if (out.code !== 0 || /aborted|error/i.test(out.stderr)) throw new Error(`pgbench -M ${mode} failed:\n${out.stderr}`);
  const { tps } = parsePgbench(out.stdout);
  const txns = Number(/number of transactions actually processed: (\d+)/.exec(out.stdout)?.[1] ?? NaN);
  const latencies: number[] = [];
  const dirName = join(logPrefix, '..');
  const stem = logPrefix.slice(dirName.length + 1);
  for (const f of readdirSync(dirName).filter((n) => n.startsWith(`${stem}.`))) {
    for (const line of readFileSync(join(dirName, f), 'utf8').split('\n')) {
      const us = Number(line.split(' ')[2]);
      if (Number.isFinite(us) && line) latencies.push(us / 1000);
    }
  }
  const lat = Float64Array.from(latencies);
  await sleep(50);
  const serverUs = window?.server !== undefined && window.t1 ? (window.server / (tps * ((window.t1 - window.t0) / 1000))) * 1e6 : undefined;
  return {
    rps: tps,
    p50Ms: percentile(lat, 50),
    p99Ms: percentile(lat, 99),
    latenciesMs: lat,
    serverUs,
    clientUs: out.cpuSeconds === undefined || !Number.isFinite(txns) ? undefined : (out.cpuSeconds / txns) * 1e6,
  };
}
