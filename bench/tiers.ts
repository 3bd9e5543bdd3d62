/**
 * Benchmark 8: isolation tiers.
 *
 * Moves: a tenant with 1,000,000 rows moved pooled → database → schema → pooled, each move side by
 * side (same run, alternating) with a plain `COPY (SELECT … WHERE tenant) TO STDOUT` piped into
 * `COPY … FROM STDIN` of the same rows between the same two databases (binary, through
 * pg-copy-streams: what an operator would script). Throughput is rows per second of the copy phase
 * and of the whole move up to the cut-over (prepare, copy, catch-up, verify, cut-over). While each
 * move runs, the tenant writes through the library (about 200 writes a second): the pause is the
 * mover's seal-to-switch time and the longest a write waited (refused with TENANT_MOVING, retried).
 *
 * Routing: 1,000 tenants spread over the three tiers (900 pooled, 80 in schemas, 20 in databases of
 * their own) against the same 1,000 all pooled, same rows, same keys (90 pooled, 8 schema, 2
 * database tenants: the spread of the whole), wrk driving the semantic point query at two gateways
 * in alternating rounds.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { from as copyFrom, to as copyTo } from 'pg-copy-streams';
import { parseConfig } from '../src/config/load.ts';
import type { Config } from '../src/config/types.ts';
import { openDatabase, type Database } from '../src/db/database.ts';
import { isTenantGateError } from '../src/errors/index.ts';
import { createTenantGate, type TenantGate } from '../src/gate.ts';
import { Gateway } from '../src/gateway/gateway.ts';
import { buildServer } from '../src/http/server.ts';
import { createApiKey } from '../src/identify/api-keys.ts';
import { applyProvision, resolveNames } from '../src/provision/apply.ts';
import type { Names } from '../src/provision/names.ts';
import { ownerDatabases } from '../src/tiers/databases.ts';
import { tenantDatabase, tenantSchema } from '../src/tiers/location.ts';
import { moveTenant, type MoveReport } from '../src/tiers/move/move.ts';
import { configYaml, ORDERS_DDL, ROWS_PER_TENANT, tenantId } from './dataset.ts';
import { findWrk, runWrk, SEMANTIC_BODY, wrkScript } from './http.ts';
import { fmt, keepConnections, log, median, urlFor, type Scratch } from './support.ts';

export const TIERS_HEADING = '## 8. ';
export const MOVE_GOAL = 0.7;
export const PAUSE_GOAL_MS = 1000;
export const ROUTING_GOAL = 0.95;
const MOVE_ROWS = 1_000_000;
/** Past the gateways' routes interval (1 s), as the default (5 s) is. */
const GRACE_MS = 1_500;
const COLS = 'id, tenant_id, region, status, amount, created_at';

export interface MoveRound {
  round: number;
  direction: string;
  baseline: 'cross-database' | 'same-database';
  baselineRps: number;
  copyRps: number;
  moveRps: number;
  pauseMs: number;
  /** The longest a write of the tenant waited during the move (refused and retried), ms. */
  writeWaitMs: number;
  writes: number;
  refused: number;
  replayed: number;
  cleanupSeconds: number;
  /** ms in prepare, copy (with ANALYZE), catch-up, verify, cut-over. */
  phases: number[];
}

export interface TiersResult {
  skipped?: string;
  moves: { rows: number; rounds: MoveRound[] };
  routing?: { seconds: number; rounds: number; tenants: { pooled: number; schema: number; database: number }; keys: { pooled: number; schema: number; database: number }; pooled: number[]; tiers: number[]; ratio: number; p50: { pooled: number; tiers: number }; setupSeconds: number };
}

async function ownerDb(name: string, max = 6): Promise<Database> {
  return openDatabase(urlFor(name), { max });
}

async function withTable(db: Database, rows: Array<[string, number]>): Promise<void> {
  const c = await db.pool.connect();
  try {
    await c.query('SET synchronous_commit = off');
    await c.query(ORDERS_DDL);
    let next = 1;
    for (const [tenant, n] of rows) {
      await c.query(
        `INSERT INTO public.orders (id, tenant_id, region, status, amount, created_at)
         SELECT g, $1, (ARRAY['North','South','East','West'])[1 + g % 4], CASE WHEN g % 10 = 0 THEN 'closed' ELSE 'open' END, (g % 997) * 1.25, timestamptz '2024-01-01' + g * interval '1 minute'
           FROM generate_series($2::bigint, $3::bigint) g`,
        [tenant, next, next + n - 1],
      );
      next += n;
    }
    await c.query(`SELECT setval(pg_get_serial_sequence('public.orders', 'id'), ${next})`);
    await c.query('ALTER TABLE public.orders ADD PRIMARY KEY (id)');
    await c.query('CREATE INDEX orders_tenant_id_idx ON public.orders (tenant_id, id)');
    await c.query('VACUUM (ANALYZE) public.orders');
  } finally {
    c.release();
  }
}

async function configFor(url: string, prefix: string, tenants: Array<[string, string?]>, dir: string, name: string): Promise<Config> {
  let yaml = configYaml({ url, prefix, tenants: tenants.map(([t]) => t) });
  for (const [t, tier] of tenants) if (tier) yaml = yaml.replace(`  - id: ${t}\n`, `  - id: ${t}\n    tier: ${tier}\n`);
  yaml = yaml.replace('datasets:', 'defaults:\n  quotas: { requests_per_minute: 100000000, burst: 10000000, concurrent_queries: 64 }\ndatasets:');
  const file = join(dir, `${name}.yaml`);
  writeFileSync(file, yaml);
  return parseConfig(yaml, file, { env: {} });
}

/** The plain pipe: COPY the tenant's rows out of one database and into an empty copy of the table in another (or the same). */
async function copyPipe(from: Database, to: Database, source: string, target: string): Promise<number> {
  await to.query(`TRUNCATE ${target}`);
  const src = await from.pool.connect();
  const dst = await to.pool.connect();
  const started = performance.now();
  try {
    const out = src.query(copyTo(`COPY (SELECT ${COLS} FROM ${source} WHERE tenant_id = 'big') TO STDOUT (FORMAT binary)`));
    const into = dst.query(copyFrom(`COPY ${target} (${COLS}) FROM STDIN (FORMAT binary)`));
    await pipeline(out, into);
    const rows = into.rowCount ?? 0;
    return rows / ((performance.now() - started) / 1000);
  } finally {
    src.release();
    dst.release();
  }
}

/** Writes of the tenant through the library at about `perSecond`, each retried while refused (TENANT_MOVING). */
function writer(gate: TenantGate, tenant: string, perSecond: number) {
  let running = true;
  const stats = { writes: 0, refused: 0, maxWaitMs: 0 };
  const loop = (async () => {
    while (running) {
      const started = performance.now();
      for (;;) {
        try {
          await gate.withTenant({ tenant, access: 'write' }, (db) => db.query(`INSERT INTO orders (tenant_id, region, amount) VALUES ($1, 'Bench', 1)`, [tenant]));
          break;
        } catch (err) {
          if (!(isTenantGateError(err) && err.code === 'TENANT_MOVING')) throw err;
          stats.refused++;
          await gate.routes.moved(tenant);
          await new Promise((r) => setTimeout(r, 10));
        }
      }
      stats.writes++;
      stats.maxWaitMs = Math.max(stats.maxWaitMs, performance.now() - started);
      await new Promise((r) => setTimeout(r, 1000 / perSecond));
    }
  })();
  return {
    stats,
    stop: async () => {
      running = false;
      await loop;
    },
  };
}

async function runMoves(scratch: Scratch, secret: Buffer, rounds: number, dir: string): Promise<TiersResult['moves']> {
  const dbName = await scratch.database('mv');
  const prefix = scratch.prefix('m');
  const main = await ownerDb(dbName);
  const copyDbName = await scratch.database('cp');
  const copyDb = await ownerDb(copyDbName, 2);
  const out: MoveRound[] = [];
  let gate: TenantGate | undefined;
  try {
    log(`moves: loading a tenant of ${MOVE_ROWS.toLocaleString('en-US')} rows`);
    await withTable(main, [['big', MOVE_ROWS], ['other', 1_000]]);
    await copyDb.query(`${ORDERS_DDL}; ALTER TABLE public.orders ADD PRIMARY KEY (id); CREATE INDEX ON public.orders (tenant_id, id)`);
    await main.query(`CREATE TABLE public.orders_copy (LIKE public.orders INCLUDING ALL)`);
    const config = await configFor(urlFor(dbName), prefix, [['big'], ['other']], dir, 'moves');
    const names = resolveNames(config, {});
    const applied = await applyProvision(config, main, secret, { env: {} });
    gate = await createTenantGate({ config, gatewayUrl: urlFor(dbName, names.gateway, applied.gatewayPassword!), secret, env: {}, routesIntervalMs: 1000 });
    const dbs = ownerDatabases(config, main, {});
    const steps: Array<{ to: 'database' | 'schema' | 'pooled'; baseline: MoveRound['baseline'] }> = [
      { to: 'database', baseline: 'cross-database' },
      { to: 'schema', baseline: 'cross-database' },
      { to: 'pooled', baseline: 'same-database' },
    ];
    try {
      for (let round = 1; round <= rounds; round++) {
        for (const step of steps) {
          const from = gate.routes.get('big');
          // The pipe, on the same rows between the same two kinds of place, just before the move.
          const fromDb = from.tier === 'database' ? await dbs.get('default', tenantDatabase(names.prefix, 'big')) : main;
          const source = from.tier === 'schema' ? `${tenantSchema('big')}.orders` : 'public.orders';
          const baselineRps = step.baseline === 'cross-database' ? await copyPipe(fromDb, from.tier === 'database' ? main : copyDb, source, from.tier === 'database' ? 'public.orders_copy' : 'public.orders') : await copyPipe(main, main, source, 'public.orders_copy');
          const w = writer(gate, 'big', 200);
          const started = performance.now();
          let cutAt = 0;
          let report: MoveReport;
          try {
            report = await moveTenant({
              config,
              main,
              secret,
              env: {},
              databases: dbs,
              tenant: 'big',
              to: { tier: step.to, placement: 'default' },
              graceMs: GRACE_MS,
              onProgress: (p) => {
                if (p.message.startsWith('cut-over:')) cutAt = performance.now();
              },
            });
          } finally {
            await gate.routes.refresh();
            await w.stop();
          }
          const r: MoveRound = {
            round,
            direction: `${from.tier} → ${step.to}`,
            baseline: step.baseline,
            baselineRps,
            copyRps: report.rowsPerSecond,
            moveRps: report.rows / ((cutAt - started) / 1000),
            pauseMs: report.pauseMs ?? NaN,
            writeWaitMs: w.stats.maxWaitMs,
            writes: w.stats.writes,
            refused: w.stats.refused,
            replayed: report.replayed,
            cleanupSeconds: (performance.now() - cutAt - GRACE_MS) / 1000,
            phases: (['prepare', 'copy', 'catchup', 'verify', 'cutover'] as const).map((p) => report.phaseMs[p] ?? 0),
          };
          out.push(r);
          log(`move ${r.direction} (round ${round}): copy ${fmt.int(r.copyRps)} rows/s, whole move ${fmt.int(r.moveRps)} rows/s, pipe ${fmt.int(r.baselineRps)} rows/s; paused ${r.pauseMs} ms, longest write wait ${Math.round(r.writeWaitMs)} ms`);
          await main.query('TRUNCATE public.orders_copy');
        }
      }
    } finally {
      await dbs.close();
    }
  } finally {
    await gate?.close();
    await main.close();
    await copyDb.close();
  }
  return { rows: MOVE_ROWS, rounds: out };
}

const ROUTING_ROWS = 200;

async function routingSetup(scratch: Scratch, secret: Buffer, dir: string, label: string, tierOf: (i: number) => string | undefined) {
  const dbName = await scratch.database(label);
  const prefix = scratch.prefix(label[0]!);
  const main = await ownerDb(dbName, 4);
  const tenants = Array.from({ length: 1000 }, (_, i) => tenantId(i));
  await main.query(ORDERS_DDL);
  await main.query('ALTER TABLE public.orders ADD PRIMARY KEY (id); CREATE INDEX orders_tenant_id_idx ON public.orders (tenant_id, id)');
  const config = await configFor(urlFor(dbName), prefix, tenants.map((t, i) => [t, tierOf(i)]), dir, label);
  const names: Names = resolveNames(config, {});
  const applied = await applyProvision(config, main, secret, { env: {} });
  // Rows with the same ids everywhere: tenant i owns i*1000+1 … i*1000+200.
  const rows = (ids: number[]) =>
    `INSERT INTO %T (id, tenant_id, region, status, amount) SELECT i * ${ROWS_PER_TENANT} + k, 't' || lpad(i::text, 4, '0'), (ARRAY['North','South','East','West'])[1 + k % 4], 'open', k * 1.25
       FROM unnest(ARRAY[${ids.join(',') || 'NULL'}]::int[]) i, generate_series(1, ${ROUTING_ROWS}) k`;
  const pooled = tenants.map((_, i) => i).filter((i) => !tierOf(i));
  await main.query(rows(pooled).replace('%T', 'public.orders'));
  const dbs = ownerDatabases(config, main, {});
  try {
    for (let i = 0; i < tenants.length; i++) {
      if (tierOf(i) === 'schema') await main.query(rows([i]).replace('%T', `${tenantSchema(tenants[i]!)}.orders`));
      if (tierOf(i) === 'database') await (await dbs.get('default', tenantDatabase(names.prefix, tenants[i]!))).query(`${rows([i]).replace('%T', 'public.orders')}; ANALYZE public.orders`);
    }
  } finally {
    await dbs.close();
  }
  await main.query('ANALYZE');
  const gate = await createTenantGate({ config, gatewayUrl: urlFor(dbName, names.gateway, applied.gatewayPassword!), secret, env: {}, poolSize: 8 });
  keepConnections(gate.database.pool);
  const gateway = await Gateway.create({ gate, secret, env: {}, retention: false });
  const app = buildServer(gateway);
  await app.listen({ host: '127.0.0.1', port: 0 });
  const address = app.server.address();
  return {
    main,
    config,
    names,
    url: `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`,
    close: async () => {
      await app.close(); // closes the gateway too
      await gate.close();
      await main.close();
    },
  };
}

async function runRouting(scratch: Scratch, secret: Buffer, o: { rounds: number; seconds: number; concurrency: number; wrkThreads: number }, dir: string): Promise<TiersResult['routing'] | string> {
  const wrk = findWrk();
  if (!wrk.path) return wrk.note as string;
  const tierOf = (i: number) => (i % 50 === 0 ? 'database' : i % 50 <= 4 ? 'schema' : undefined);
  const started = performance.now();
  log('routing: 1,000 tenants all pooled, and over three tiers (900 pooled, 80 schemas, 20 databases)');
  const pooled = await routingSetup(scratch, secret, dir, 'rp', () => undefined);
  const tiers = await routingSetup(scratch, secret, dir, 'rt', tierOf);
  const setupSeconds = (performance.now() - started) / 1000;
  try {
    // The same tenants' keys at both: 2 in databases, 8 in schemas, 90 pooled (the spread of the 1,000).
    const chosen = [0, 50, 1, 2, 3, 4, 51, 52, 53, 54, ...Array.from({ length: 90 }, (_, j) => 105 + 10 * j)];
    const scripts: string[] = [];
    for (const [k, s] of [pooled, tiers].entries()) {
      const keys: Array<{ key: string; idBase: number }> = [];
      for (const i of chosen) keys.push({ key: (await createApiKey(s.main, s.config, s.names, secret, { tenant: tenantId(i), role: 'analyst' })).key, idBase: i * ROWS_PER_TENANT + 1 });
      const script = join(dir, `routing-${k}.lua`);
      // Ids within each tenant's 200 rows (wrk adds 0…999 to the base: keep to the first 200 by the body's modulo).
      writeFileSync(script, wrkScript('/v1/query', JSON.stringify(SEMANTIC_BODY(0)).replace(/"value":0/, '"value":%d'), keys).replace(`math.random(0, ${ROWS_PER_TENANT - 1})`, `math.random(0, ${ROUTING_ROWS - 1})`));
      scripts.push(script);
    }
    const results: number[][] = [[], []];
    const p50s: number[][] = [[], []];
    const targets = [pooled, tiers];
    for (let k = 0; k < 2; k++) await runWrk(wrk.path, scripts[k]!, `${targets[k]!.url}/v1/query`, { threads: o.wrkThreads, connections: o.concurrency, seconds: 2 });
    // Two variants on a shared 2-core box move a lot from round to round: at least 5 alternating rounds.
    const rounds = Math.max(o.rounds, 5);
    for (let round = 0; round < rounds; round++) {
      for (let j = 0; j < 2; j++) {
        const k = (j + round) % 2;
        const r = await runWrk(wrk.path, scripts[k]!, `${targets[k]!.url}/v1/query`, { threads: o.wrkThreads, connections: o.concurrency, seconds: o.seconds });
        results[k]!.push(r.rps);
        p50s[k]!.push(r.p50Ms);
        log(`routing round ${round + 1}/${rounds} ${k === 0 ? 'all pooled' : 'three tiers'}: ${Math.round(r.rps)}/s`);
      }
    }
    return {
      seconds: o.seconds,
      rounds,
      tenants: { pooled: 900, schema: 80, database: 20 },
      keys: { pooled: 90, schema: 8, database: 2 },
      pooled: results[0]!,
      tiers: results[1]!,
      ratio: median(results[1]!.map((r, i) => r / results[0]![i]!)),
      p50: { pooled: median(p50s[0]!), tiers: median(p50s[1]!) },
      setupSeconds,
    };
  } finally {
    await pooled.close();
    await tiers.close();
  }
}

export async function runTiersBench(scratch: Scratch, secret: Buffer, o: { rounds: number; seconds: number; concurrency: number; wrkThreads: number; moveRounds?: number }): Promise<TiersResult> {
  const dir = mkdtempSync(join(tmpdir(), 'tg-bench-tiers-'));
  try {
    const moves = await runMoves(scratch, secret, o.moveRounds ?? 2, dir);
    const routing = await runRouting(scratch, secret, o, dir);
    return typeof routing === 'string' ? { moves, skipped: `routing: ${routing}` } : { moves, routing };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export function tiersSummaryLines(t: TiersResult): string[] {
  const copy = median(t.moves.rounds.map((r) => r.copyRps / r.baselineRps));
  const whole = median(t.moves.rounds.map((r) => r.moveRps / r.baselineRps));
  const pause = Math.max(...t.moves.rounds.map((r) => r.pauseMs));
  return [
    `tiers: move copy/pipe ${fmt.ratio(copy)}, whole move/pipe ${fmt.ratio(whole)} (goal ≥ ${MOVE_GOAL}); longest write pause ${Math.round(pause)} ms (goal < ${PAUSE_GOAL_MS} ms)`,
    ...(t.routing ? [`tiers: three tiers / all pooled ${fmt.ratio(t.routing.ratio)} (goal ≥ ${ROUTING_GOAL})`] : []),
  ];
}

export function tiersSection(t: TiersResult, date: string): string {
  const rows = t.moves.rounds.map(
    (r) =>
      `| ${r.round} | ${r.direction} | ${r.baseline} | ${fmt.int(r.baselineRps)} | ${fmt.int(r.copyRps)} (**${fmt.ratio(r.copyRps / r.baselineRps)}**) | ${fmt.int(r.moveRps)} (**${fmt.ratio(r.moveRps / r.baselineRps)}**) | ${r.phases.map(fmt.int).join(' / ')} | ${Math.round(r.pauseMs)} | ${Math.round(r.writeWaitMs)} | ${fmt.int(r.writes)} / ${r.refused} | ${fmt.int(r.replayed)} | ${r.cleanupSeconds.toFixed(1)} |`,
  );
  const copy = median(t.moves.rounds.map((r) => r.copyRps / r.baselineRps));
  const whole = median(t.moves.rounds.map((r) => r.moveRps / r.baselineRps));
  const pause = Math.max(...t.moves.rounds.map((r) => r.pauseMs));
  const wait = Math.max(...t.moves.rounds.map((r) => r.writeWaitMs));
  const parts = [
    `${TIERS_HEADING}tiers: moving tenants, and routing across tiers

bench/tiers.ts, measured ${date.slice(0, 10)}.

### Moving a 1,000,000-row tenant

A tenant with ${fmt.int(t.moves.rows)} rows (and a neighbour with 1,000) moved pooled → database → schema → pooled, ${Math.max(...t.moves.rounds.map((r) => r.round))} rounds. Just
before each move, the plain pipe: \`COPY (SELECT … WHERE tenant_id = …) TO STDOUT (FORMAT binary)\` streamed into
\`COPY … FROM STDIN\` of an empty copy of the table, between the same two kinds of place (another database, or the same
one). "copy" is the mover's copy phase (key-ordered chunks of 100,000 rows, each a binary COPY stream from the old
place into the new one, within one database too); "whole move" is the time until the tenant lives at its new place (making the new place,
copy, catch-up, checksums of both sides, cut-over), cleanup of the old place after. While each move runs, the tenant
writes about 200 rows a second through the library; "paused" is the mover's seal-to-switch time, "longest wait" the
longest any of those writes took (including its retries after 503 TENANT_MOVING).

| round | move | pipe between | pipe rows/s | copy rows/s (vs pipe) | whole move rows/s (vs pipe) | ms in prepare / copy / catch-up / verify / cut-over | paused ms | longest wait ms | writes / refused | replayed | cleanup s |
| ---: | --- | --- | ---: | ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: |
${rows.join('\n')}

Copy phase vs the pipe (median): **${fmt.ratio(copy)}**; whole move vs the pipe: **${fmt.ratio(whole)}**; longest pause **${Math.round(pause)} ms**, longest write wait ${Math.round(wait)} ms.
**Goal (move ≥ ${MOVE_GOAL}× the pipe, writes paused under ${PAUSE_GOAL_MS / 1000} s) holds? ${whole >= MOVE_GOAL && pause < PAUSE_GOAL_MS ? 'yes' : copy >= MOVE_GOAL && pause < PAUSE_GOAL_MS ? 'the copy phase yes; the whole move (it also verifies) no' : 'no'}**
`,
  ];
  if (t.routing) {
    const g = t.routing;
    parts.push(`### Routing: 1,000 tenants over three tiers vs all pooled

Two gateways (pool of 8 each) on two databases with the same 1,000 tenants × ${ROUTING_ROWS} rows: all pooled, or
${g.tenants.pooled} pooled, ${g.tenants.schema} in schemas of their own and ${g.tenants.database} in databases of their own. wrk (8 connections,
${g.seconds} s × ${g.rounds} alternating rounds) sends the semantic point query of benchmark 3 with the keys of the same ${g.keys.pooled + g.keys.schema + g.keys.database} tenants
at both: ${g.keys.pooled} pooled, ${g.keys.schema} schema, ${g.keys.database} database (the spread of the whole). Setup (both sets, 20 databases made and provisioned) took ${Math.round(g.setupSeconds)} s.

| variant | req/s (median) | rounds | p50 ms |
| --- | ---: | --- | ---: |
| all pooled | ${fmt.int(median(g.pooled))} | ${g.pooled.map(fmt.int).join(' / ')} | ${fmt.ms(g.p50.pooled)} |
| three tiers | ${fmt.int(median(g.tiers))} | ${g.tiers.map(fmt.int).join(' / ')} | ${fmt.ms(g.p50.tiers)} |

Three tiers vs all pooled (median of the rounds' ratios): **${fmt.ratio(g.ratio)}**.
**Goal (overhead ≤ 5%: ratio ≥ ${ROUTING_GOAL}) holds? ${g.ratio >= ROUTING_GOAL ? 'yes' : 'no'}**
`);
  } else if (t.skipped) parts.push(`Routing: skipped (${t.skipped}).\n`);
  return parts.join('\n');
}
