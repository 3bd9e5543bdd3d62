/**
 * Benchmark 7: quotas.
 *
 * Limiter overhead: three gateways in this process on the 1,000-tenant dataset, identical but for
 * admission: none (Gateway option `quotas: false`, never set by the CLI), the in-process limiter
 * (quota_store: memory), and Redis (quota_store: redis://…). wrk drives the semantic point query
 * at each in interleaved rounds, with quotas far above the load so nothing is refused.
 *
 * Noisy neighbour: one gateway; tenant B (32 tenants' keys) sends a steady 100 requests a second
 * (an open-loop client in its own process, bench/load-client.ts); in alternate phases tenant A
 * floods at ten times its rate limit with a query that would run for minutes (a three-way cross
 * join of its 1,000 rows), held by its quotas: 12 a minute, burst 2, one query at a time, a 100 ms
 * statement timeout. B's p99 with A flooding is compared with B's p99 alone.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Redis } from 'ioredis';
import { parseConfig } from '../src/config/load.ts';
import type { Config } from '../src/config/types.ts';
import { createTenantGate } from '../src/gate.ts';
import { Gateway } from '../src/gateway/gateway.ts';
import { buildServer } from '../src/http/server.ts';
import { createApiKey } from '../src/identify/api-keys.ts';
import { configYaml, rowId, TENANTS, tenantId, type Dataset } from './dataset.ts';
import { findWrk, KEY_TENANTS, runWrk, SEMANTIC_BODY, wrkScript } from './http.ts';
import { fmt, keepConnections, log, median } from './support.ts';

export const NOISY_GOAL = 1.25;
const MODES = ['none', 'memory', 'redis'] as const;
type Mode = (typeof MODES)[number];

export interface ClientResult {
  sent: number;
  codes: Record<string, number>;
  p50: number;
  p99: number;
  max: number;
}

export interface NoisyResult {
  skipped?: string;
  overhead: { seconds: number; rounds: number; concurrency: number; variants: Array<{ mode: Mode; rps: number; rounds: number[]; p50Ms: number }>; ratios: Partial<Record<Mode, number>>; redisNote?: string };
  noisy: { seconds: number; rounds: number; rateB: number; rateA: number; alone: ClientResult[]; withA: ClientResult[]; flood: ClientResult[]; ratio: number };
}

const REDIS = process.env['REDIS_URL'] ?? 'redis://127.0.0.1:6379';

async function redisUp(): Promise<boolean> {
  const r = new Redis(REDIS, { lazyConnect: true, maxRetriesPerRequest: 0, connectTimeout: 1000, retryStrategy: () => null });
  r.on('error', () => {});
  try {
    await r.connect();
    return (await r.ping()) === 'PONG';
  } catch {
    return false;
  } finally {
    r.disconnect();
  }
}

async function configWith(ds: Dataset, dir: string, name: string, extra: string, tenantQuotas: Record<string, string> = {}): Promise<Config> {
  let yaml = configYaml({ url: ds.ownerUrl, prefix: ds.prefix, tenants: ds.tenants }).replace('datasets:', `${extra}\ndatasets:`);
  for (const [t, q] of Object.entries(tenantQuotas)) yaml = yaml.replace(`  - id: ${t}\n`, `  - id: ${t}\n    quotas: ${q}\n`);
  const file = join(dir, `${name}.yaml`);
  writeFileSync(file, yaml);
  return parseConfig(yaml, file, { env: {} });
}

async function listen(ds: Dataset, config: Config, opts: { quotas: boolean; pool: number }) {
  const gate = await createTenantGate({ config, gatewayUrl: ds.gatewayUrl, secret: ds.secret, poolSize: opts.pool, env: {} });
  keepConnections(gate.database.pool);
  const gateway = await Gateway.create({ gate, secret: ds.secret, env: {}, quotas: opts.quotas, retention: false });
  const app = buildServer(gateway);
  await app.listen({ host: '127.0.0.1', port: 0 });
  const address = app.server.address();
  return { url: `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`, close: async () => (await app.close(), await gate.close()) };
}

function client(url: string, path: string, rate: number, seconds: number, keys: string[], body: unknown): Promise<ClientResult> {
  return new Promise((ok, fail) => {
    const child = spawn(process.execPath, ['--import', 'tsx', resolve(import.meta.dirname, 'load-client.ts'), url, path, String(rate), String(seconds), keys.join(','), JSON.stringify(body)], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.on('exit', (code) => (code === 0 ? ok(JSON.parse(out) as ClientResult) : fail(new Error(`load client exited ${code}: ${out}`))));
  });
}

export async function runNoisyBench(ds: Dataset, opts: { rounds: number; seconds: number; concurrency: number; wrkThreads: number }): Promise<NoisyResult> {
  const wrk = findWrk();
  const empty: NoisyResult = { overhead: { seconds: 0, rounds: 0, concurrency: 0, variants: [], ratios: {} }, noisy: { seconds: 0, rounds: 0, rateB: 0, rateA: 0, alone: [], withA: [], flood: [], ratio: NaN } };
  if (!wrk.path) return { ...empty, skipped: wrk.note as string };
  const dir = mkdtempSync(join(tmpdir(), 'tg-bench-noisy-'));
  try {
    // Keys of 32 tenants (B's traffic) and of tenant A.
    const keys: Array<{ key: string; idBase: number }> = [];
    for (let j = 0; j < KEY_TENANTS; j++) {
      const i = 1 + Math.floor(((j + 0.5) * (TENANTS - 1)) / KEY_TENANTS);
      keys.push({ key: (await createApiKey(ds.owner, ds.config, ds.names, ds.secret, { tenant: tenantId(i), role: 'analyst' })).key, idBase: rowId(i, 0) });
    }
    const aKey = (await createApiKey(ds.owner, ds.config, ds.names, ds.secret, { tenant: tenantId(0), role: 'analyst' })).key;
    const script = join(dir, 'semantic.lua');
    writeFileSync(script, wrkScript('/v1/query', JSON.stringify(SEMANTIC_BODY(0)).replace(/"value":0/, '"value":%d'), keys));

    // Limiter overhead.
    const roomy = 'defaults:\n  quotas: { requests_per_minute: 100000000, burst: 10000000, concurrent_queries: 64 }';
    const withRedis = await redisUp();
    const modes: Mode[] = withRedis ? [...MODES] : ['none', 'memory'];
    const served = new Map<Mode, Awaited<ReturnType<typeof listen>>>();
    for (const m of modes) {
      const config = await configWith(ds, dir, `overhead-${m}`, `${roomy}\nquota_store: ${m === 'redis' ? REDIS : 'memory'}`);
      served.set(m, await listen(ds, config, { quotas: m !== 'none', pool: opts.concurrency }));
    }
    const results = new Map<Mode, Array<{ rps: number; p50Ms: number }>>(modes.map((m) => [m, []]));
    try {
      for (const m of modes) await runWrk(wrk.path, script, `${served.get(m)!.url}/v1/query`, { threads: opts.wrkThreads, connections: opts.concurrency, seconds: 2 });
      for (let round = 0; round < opts.rounds; round++) {
        for (let k = 0; k < modes.length; k++) {
          const m = modes[(k + round) % modes.length]!;
          const r = await runWrk(wrk.path, script, `${served.get(m)!.url}/v1/query`, { threads: opts.wrkThreads, connections: opts.concurrency, seconds: opts.seconds });
          results.get(m)!.push(r);
          log(`limiter round ${round + 1}/${opts.rounds} ${m}: ${Math.round(r.rps)}/s`);
        }
      }
    } finally {
      for (const s of served.values()) await s.close();
    }
    const ratio = (m: Mode) => median(results.get(m)!.map((r, i) => r.rps / results.get('none')![i]!.rps));
    const overhead: NoisyResult['overhead'] = {
      seconds: opts.seconds,
      rounds: opts.rounds,
      concurrency: opts.concurrency,
      variants: modes.map((m) => ({ mode: m, rounds: results.get(m)!.map((r) => r.rps), rps: median(results.get(m)!.map((r) => r.rps)), p50Ms: median(results.get(m)!.map((r) => r.p50Ms)) })),
      ratios: Object.fromEntries(modes.map((m) => [m, ratio(m)])),
      ...(withRedis ? {} : { redisNote: `Redis at ${REDIS} did not answer: the Redis variant was left out` }),
    };

    // Noisy neighbour.
    const config = await configWith(ds, dir, 'noisy', 'defaults:\n  quotas: { requests_per_minute: 100000, burst: 10000, concurrent_queries: 8 }', {
      [tenantId(0)]: '{ requests_per_minute: 12, burst: 2, concurrent_queries: 1, queue_timeout_ms: 0, statement_timeout_ms: 100 }',
    });
    const g = await listen(ds, config, { quotas: true, pool: 8 });
    const rateB = 100;
    const rateA = 2; // ten times its 12 a minute
    const seconds = Math.max(8, opts.seconds * 2);
    const noisy: NoisyResult['noisy'] = { seconds, rounds: opts.rounds, rateB, rateA, alone: [], withA: [], flood: [], ratio: NaN };
    const bBody = (k: number) => SEMANTIC_BODY(keys[k % keys.length]!.idBase + 7);
    try {
      await client(g.url, '/v1/query', rateB, 2, keys.map((k) => k.key), bBody(0));
      for (let round = 0; round < opts.rounds; round++) {
        const alone = await client(g.url, '/v1/query', rateB, seconds, keys.map((k) => k.key), bBody(round));
        const [withA, flood] = await Promise.all([
          client(g.url, '/v1/query', rateB, seconds, keys.map((k) => k.key), bBody(round)),
          client(g.url, '/v1/queries', rateA, seconds, [aKey], { sql: 'SELECT count(*) FROM orders a, orders b, orders c' }),
        ]);
        noisy.alone.push(alone);
        noisy.withA.push(withA);
        noisy.flood.push(flood);
        log(`noisy round ${round + 1}/${opts.rounds}: B alone p99 ${alone.p99.toFixed(2)} ms, with A ${withA.p99.toFixed(2)} ms; A ${JSON.stringify(flood.codes)}`);
        await new Promise((r) => setTimeout(r, 1000));
      }
    } finally {
      await g.close();
    }
    noisy.ratio = median(noisy.withA.map((x) => x.p99)) / median(noisy.alone.map((x) => x.p99));
    return { overhead, noisy };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export const NOISY_HEADING = '## 7. ';

export function noisySummaryLines(n: NoisyResult): string[] {
  if (n.skipped) return [`quotas: skipped (${n.skipped})`];
  const r = n.overhead.ratios;
  const nb = n.noisy;
  const refusedB = nb.withA.reduce((s, x) => s + Object.entries(x.codes).filter(([c]) => c !== '200').reduce((a, [, v]) => a + v, 0), 0);
  return [
    `limiter overhead: memory/none ${fmt.ratio(r.memory ?? NaN)}${r.redis !== undefined ? `, redis/none ${fmt.ratio(r.redis)}` : ''}`,
    `noisy neighbour: B p99 alone ${fmt.ms(median(nb.alone.map((x) => x.p99)))} ms, with A flooding ${fmt.ms(median(nb.withA.map((x) => x.p99)))} ms = ${fmt.ratio(nb.ratio)} (goal <= ${NOISY_GOAL}: ${nb.ratio <= NOISY_GOAL ? 'yes' : 'no'}); B refused ${refusedB}`,
  ];
}

export function noisySection(n: NoisyResult, date: string): string {
  if (n.skipped) return `${NOISY_HEADING}quotas\n\nSkipped: ${n.skipped}.\n`;
  const o = n.overhead;
  const none = o.variants.find((v) => v.mode === 'none')!;
  const rows = o.variants.map((v) => `| ${v.mode} | ${fmt.int(v.rps)} | ${v.rounds.map(fmt.int).join(' / ')} | ${fmt.ms(v.p50Ms)} | ${v.rounds.map((x, i) => fmt.ratio(x / none.rounds[i]!)).join(' / ')} | **${fmt.ratio(o.ratios[v.mode] ?? NaN)}** |`);
  const nb = n.noisy;
  const codes = (c: Record<string, number>) => Object.entries(c).map(([k, v]) => `${k} ×${v}`).join(', ');
  const phaseRows = nb.alone.map((a, i) => {
    const w = nb.withA[i]!;
    return `| ${i + 1} | ${fmt.ms(a.p50)} / ${fmt.ms(a.p99)} | ${fmt.ms(w.p50)} / ${fmt.ms(w.p99)} | ${codes(w.codes)} | ${codes(nb.flood[i]!.codes)} |`;
  });
  const pA = median(nb.alone.map((x) => x.p99));
  const pW = median(nb.withA.map((x) => x.p99));
  return `${NOISY_HEADING}quotas: limiter overhead and a noisy neighbour

bench/noisy.ts, measured ${date.slice(0, 10)} on the dataset of benchmark 3 (1,000 tenants × 1,000 rows).

### What the limiter costs

Three gateways in one process, identical but for admission, each with a pool of ${o.concurrency}; wrk with the semantic point
query of benchmark 3 (${o.concurrency} connections, ${o.seconds} s × ${o.rounds} interleaved rounds), quotas far above the load so nothing is
refused. "none" admits everything (a Gateway option only this benchmark sets); "memory" is \`quota_store: memory\` (a token
bucket per tenant and per key in this process, a concurrency slot per query); "redis" is \`quota_store: redis://…\` (the
same two buckets in one Lua script, one round trip per request, on this machine's Redis).${o.redisNote ? ` ${o.redisNote}.` : ''}

| admission | req/s (median) | rounds | p50 ms | each round vs none | vs none (median of rounds) |
| --- | ---: | --- | ---: | --- | ---: |
${rows.join('\n')}

### Noisy neighbour

One gateway (pool of 8). Tenant B is 32 tenants' keys sending a steady ${nb.rateB} requests a second (open loop, its own process) for
${nb.seconds} s, alone, then again while tenant A sends ${nb.rateA} a second, ten times its limit of 12 a minute, of a query that would
run for minutes (\`SELECT count(*) FROM orders a, orders b, orders c\` over A's 1,000 rows). A's quotas: burst 2, one query
at a time with no wait, statement timeout 100 ms. ${nb.rounds} rounds; latencies of B's 200 answers (p50 / p99 ms).

| round | B alone | B while A floods | B's answers while A floods | A's answers |
| --- | --- | --- | --- | --- |
${phaseRows.join('\n')}

B's p99 alone ${fmt.ms(pA)} ms, while A floods ${fmt.ms(pW)} ms (medians of the rounds): **${fmt.ratio(nb.ratio)}**. A p99 is the tenth-slowest of
about a thousand answers, so it moves from round to round on this shared 2-core box (compare the rounds); what holds every
round is that B is never refused and none of A's slow queries runs past its timeout. What keeps A's cost down is its
quotas, not luck: it gets about three queries in ten seconds, each cut after 100 ms, one at a time.
**Goal (B's p99 ≤ ${NOISY_GOAL}× alone, B never refused, A's slow queries cut) holds? ${nb.ratio <= NOISY_GOAL && nb.withA.every((w) => Object.keys(w.codes).every((c) => c === '200')) && nb.flood.every((f) => !f.codes['200']) ? 'yes' : 'no'}**
`;
}
