/**
 * Benchmark 10: does the number of tenants cost anything per request? Three databases hold the
 * same 1,000,000 rows of `public.orders`, split over 10, 1,000 and 10,000 tenants, each provisioned
 * with `applyProvision` (every tenant in the config, its roles and grants). A `tenantgate serve`
 * process per database answers the semantic point query for 100 API keys spread over its tenants;
 * wrk drives the three in interleaved rounds at the same concurrency.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseConfig } from '../src/config/load.ts';
import { openDatabase, type Database } from '../src/db/database.ts';
import { createApiKey } from '../src/identify/api-keys.ts';
import { applyProvision, resolveNames } from '../src/provision/apply.ts';
import { configYaml, ORDERS_DDL, tenantId } from './dataset.ts';
import { findWrk, runWrk, SEMANTIC_BODY, wrkScript } from './http.ts';
import { startServer, stop, type Served } from './peers.ts';
import { fmt, log, median, timed, urlFor, type Scratch } from './support.ts';

export const SCALE_HEADING = '## 10. Latency by number of tenants';
export const SCALE_TENANTS = [10, 1_000, 10_000];
const ROWS = 1_000_000;
const KEYS = 100;
export const SCALE_GOAL = 1.1;

export interface ScalePoint {
  tenants: number;
  rowsPerTenant: number;
  applyMs: number;
  changes: number;
  rounds: number[];
  rps: number;
  p50Ms: number;
  p99Ms: number;
}

export interface ScaleResult {
  skipped?: string;
  concurrency: number;
  seconds: number;
  rounds: number;
  keys: number;
  points: ScalePoint[];
}

async function provision(scratch: Scratch, secret: Buffer, tenants: number, dir: string): Promise<{ db: Database; configFile: string; gatewayUrl: string; applyMs: number; changes: number; keys: Array<{ key: string; idBase: number }> }> {
  const dbName = await scratch.database(`s${tenants}`);
  const prefix = scratch.prefix(`s${'abcdefgh'[SCALE_TENANTS.indexOf(tenants)] ?? 'x'}`);
  const url = urlFor(dbName);
  const db = await openDatabase(url, { max: 2 });
  const per = ROWS / tenants;
  await db.query(`SET synchronous_commit = off`);
  await db.query(ORDERS_DDL);
  await db.query(
    `INSERT INTO public.orders (id, tenant_id, region, status, amount, created_at)
     SELECT g, 't' || lpad(((g - 1) / ${per})::text, 4, '0'), (ARRAY['North', 'South', 'East', 'West'])[1 + g % 4],
            CASE WHEN g % 10 = 0 THEN 'closed' ELSE 'open' END, (g % 997) * 1.25, timestamptz '2024-01-01' + g * interval '1 minute'
       FROM generate_series(1, ${ROWS}) g`,
  );
  await db.query(`ALTER TABLE public.orders ADD PRIMARY KEY (id); CREATE INDEX ON public.orders (tenant_id, id)`);
  await db.query(`VACUUM (ANALYZE) public.orders`);
  const ids = Array.from({ length: tenants }, (_, i) => tenantId(i));
  const sub = join(dir, String(tenants));
  mkdirSync(sub, { recursive: true });
  const configFile = join(sub, 'tenantgate.yaml');
  const yaml = `${configYaml({ url, prefix, tenants: ids })}server:\n  pool_size: 16\ndefaults:\n  quotas: { requests_per_minute: 100000000, burst: 10000000, concurrent_queries: 1000 }\n`;
  writeFileSync(configFile, yaml);
  const config = await parseConfig(yaml, configFile, { env: {} });
  log(`apply: ${tenants.toLocaleString('en-US')} tenants × ${per.toLocaleString('en-US')} rows`);
  const applied = await timed(() => applyProvision(config, db, secret, { env: {} }));
  const password = applied.value.gatewayPassword;
  if (!password) throw new Error('apply did not create the gateway login');
  const names = resolveNames(config, {});
  const keys: Array<{ key: string; idBase: number }> = [];
  for (let j = 0; j < KEYS; j++) {
    const i = Math.floor(((j + 0.5) * tenants) / KEYS);
    const created = await createApiKey(db, config, names, secret, { tenant: tenantId(i), role: 'analyst' });
    keys.push({ key: created.key, idBase: i * per + 1 });
  }
  return { db, configFile, gatewayUrl: urlFor(dbName, names.gateway, password), applyMs: applied.ms, changes: applied.value.changes.length, keys };
}

export async function runScaleBench(scratch: Scratch, secret: Buffer, dir: string, opts: { rounds: number; seconds: number; concurrency: number }): Promise<ScaleResult> {
  const base: ScaleResult = { concurrency: opts.concurrency, seconds: opts.seconds, rounds: opts.rounds, keys: KEYS, points: [] };
  const wrk = findWrk();
  if (!wrk.path) return { ...base, skipped: wrk.note as string };
  const sets: Array<{ tenants: number; served: Served; script: string; applyMs: number; changes: number; db: Database }> = [];
  try {
    for (const n of SCALE_TENANTS) {
      const p = await provision(scratch, secret, n, dir);
      const script = join(dir, `scale-${n}.lua`);
      writeFileSync(script, wrkScript('/v1/query', JSON.stringify(SEMANTIC_BODY(0)).replace(/"value":0/, '"value":%d'), p.keys, Math.min(1000, ROWS / n)));
      const served = await startServer(`tenantgate serve (${n} tenants)`, ['src/cli/main.ts', '--config', p.configFile, 'serve', '--port', '0'], {
        TENANTGATE_GATEWAY_URL: p.gatewayUrl,
        TENANTGATE_SECRET: secret.toString('utf8'),
      });
      sets.push({ tenants: n, served, script, applyMs: p.applyMs, changes: p.changes, db: p.db });
      // Each key reads a row of its own tenant: a wrong answer fails the run rather than being timed.
      const own = await fetch(`${served.url}/v1/query`, { method: 'POST', headers: { 'x-api-key': p.keys[0]!.key, 'content-type': 'application/json' }, body: JSON.stringify(SEMANTIC_BODY(p.keys[0]!.idBase)) });
      const body = (await own.json()) as { row_count?: number };
      if (own.status !== 200 || body.row_count !== 1) throw new Error(`${n} tenants: own row answered ${own.status} ${JSON.stringify(body)}`);
    }
    const run = (s: (typeof sets)[number], seconds: number) => runWrk(wrk.path as string, s.script, `${s.served.url}/v1/query`, { threads: 1, connections: opts.concurrency, seconds });
    for (const s of sets) await run(s, 1);
    const got = new Map<number, Array<Awaited<ReturnType<typeof run>>>>(sets.map((s) => [s.tenants, []]));
    for (let round = 0; round < opts.rounds; round++) {
      for (let i = 0; i < sets.length; i++) {
        const s = sets[(i + round) % sets.length]!;
        const r = await run(s, opts.seconds);
        got.get(s.tenants)!.push(r);
        log(`scale round ${round + 1}/${opts.rounds} ${s.tenants} tenants: ${Math.round(r.rps)}/s, p50 ${r.p50Ms.toFixed(2)} ms, p99 ${r.p99Ms.toFixed(2)} ms`);
      }
    }
    for (const s of sets) {
      const rs = got.get(s.tenants)!;
      base.points.push({ tenants: s.tenants, rowsPerTenant: ROWS / s.tenants, applyMs: s.applyMs, changes: s.changes, rounds: rs.map((r) => r.rps), rps: median(rs.map((r) => r.rps)), p50Ms: median(rs.map((r) => r.p50Ms)), p99Ms: median(rs.map((r) => r.p99Ms)) });
    }
    return base;
  } finally {
    for (const s of sets) {
      await stop(s.served);
      await s.db.close();
    }
  }
}

/** p50 with the most tenants over p50 with the fewest. */
export function scaleRatio(t: ScaleResult): number | undefined {
  const lo = t.points[0];
  const hi = t.points[t.points.length - 1];
  return lo && hi && lo !== hi ? hi.p50Ms / lo.p50Ms : undefined;
}

export function scaleSection(t: ScaleResult, date: string): string {
  if (t.skipped) return `${SCALE_HEADING}\n\nSkipped: ${t.skipped}.\n`;
  const r = scaleRatio(t);
  return `${SCALE_HEADING}

bench/scale.ts, measured ${date.slice(0, 10)}. Three databases with the same ${fmt.int(ROWS)} rows of \`public.orders\` (same indexes), split
over ${SCALE_TENANTS.map((n) => fmt.int(n)).join(', ')} tenants, each provisioned by \`applyProvision\` with every tenant in its config. A
\`tenantgate serve\` process per database (pool of 16, quotas raised out of the way) answers the semantic point query
for ${t.keys} API keys spread evenly over its tenants (a random id among the key's tenant's first rows); wrk at ${t.concurrency}
connections, ${t.rounds} interleaved rounds of ${t.seconds} s after a 1 s warm-up, the median round.

| tenants | rows each | apply ms (changes) | req/s | rounds | p50 ms | p99 ms |
| ---: | ---: | ---: | ---: | --- | ---: | ---: |
${t.points.map((p) => `| ${fmt.int(p.tenants)} | ${fmt.int(p.rowsPerTenant)} | ${fmt.int(p.applyMs)} (${fmt.int(p.changes)}) | ${fmt.int(p.rps)} | ${p.rounds.map((x) => fmt.int(x)).join(' / ')} | ${p.p50Ms.toFixed(2)} | ${p.p99Ms.toFixed(2)} |`).join('\n')}

p50 at ${fmt.int(t.points[t.points.length - 1]?.tenants ?? 0)} tenants over p50 at ${fmt.int(t.points[0]?.tenants ?? 0)}: **${r === undefined ? '–' : fmt.ratio(r)}** (goal ≤ ${SCALE_GOAL}). **Goal holds? ${r !== undefined && r <= SCALE_GOAL ? 'yes' : 'no'}**
`;
}

export function scaleSummaryLines(t: ScaleResult): string[] {
  if (t.skipped) return [`scale: skipped (${t.skipped})`];
  const r = scaleRatio(t);
  return [`scale: ${t.points.map((p) => `${fmt.int(p.tenants)} tenants p50 ${p.p50Ms.toFixed(2)} ms`).join(', ')}; ratio ${r === undefined ? '–' : fmt.ratio(r)} (goal <= ${SCALE_GOAL})`];
}
