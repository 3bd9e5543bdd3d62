/**
 * Benchmark 13: schema migrations across tiers (issue 15).
 *
 * 1,000 schema-tier tenants and 20 database-tier tenants (and 50 pooled ones), `public.orders`
 * with 200 rows per tenant at each place. Each round applies one new migration that adds a column
 * and an index, to all 1,021 targets (main + 1,020), four ways side by side:
 *   - `migrateUp` (what `tenantgate migrate up` runs) at concurrency 1, 4 and 8;
 *   - a plain sequential loop: one `psql` per target running the same DDL with its search_path set,
 *     which is what a per-schema tool (django-tenants' migrate_schemas) does.
 * Each way gets its own migration (another column), so every run does the same amount of work.
 * While migrate up runs at each concurrency, a pooled tenant runs point queries through `withTenant`;
 * its p99 is compared with its p99 idle (rounds pooled). The provisioning `migrate up` ends with (apply) is timed once.
 */
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseConfig } from '../src/config/load.ts';
import type { Config } from '../src/config/types.ts';
import { openDatabase, type Database } from '../src/db/database.ts';
import { createTenantGate } from '../src/gate.ts';
import { migrateUp } from '../src/migrate/run.ts';
import { listTargets } from '../src/migrate/targets.ts';
import { applyProvision, resolveNames } from '../src/provision/apply.ts';
import { ownerDatabases } from '../src/tiers/databases.ts';
import { configYaml } from './dataset.ts';
import { closedLoop, concat, fmt, log, median, percentile, urlFor, type Scratch } from './support.ts';

export const MIGRATE_HEADING = '## 13. ';
export const LOOP_GOAL = 3;
export const SECONDS_GOAL = 60;
export const P99_GOAL = 2;
const ROWS = 200;
const CONCURRENCIES = [1, 2, 4, 8];

export interface MigrateRound {
  round: number;
  /** Seconds for all targets: psql loop, then migrateUp at each concurrency. */
  loop: number;
  migrate: Record<string, number>;
}

export interface MigrateBenchResult {
  tenants: { schema: number; database: number; pooled: number };
  targets: number;
  rounds: MigrateRound[];
  /** The provisioning after a migration (apply over every target), seconds. */
  applySeconds: number;
  /** A pooled tenant's point-query p99 (ms) idle and during migrate up at each concurrency (and that run's seconds). */
  p99: Array<{ concurrency: number; idle: number; during: number; ops: number; seconds: number }>;
  setupSeconds: number;
  skipped?: string;
}

const DDL = `CREATE TABLE public.orders (
  id bigserial PRIMARY KEY,
  tenant_id text NOT NULL,
  region text,
  status text NOT NULL DEFAULT 'open',
  amount numeric,
  created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX orders_tenant_idx ON public.orders (tenant_id, id);`;

async function setUp(scratch: Scratch, secret: Buffer, schemaN: number, dbN: number, pooledN: number) {
  const name = await scratch.database('migrate');
  const prefix = scratch.prefix('m');
  const url = urlFor(name);
  const db = await openDatabase(url, { max: 10 });
  await db.query(DDL);
  const ids = (p: string, n: number) => Array.from({ length: n }, (_, i) => `${p}${String(i).padStart(4, '0')}`);
  const schema = ids('s', schemaN);
  const database = ids('d', dbN);
  const pooled = ids('p', pooledN);
  await db.query(
    `INSERT INTO public.orders (tenant_id, region, amount) SELECT t, 'North', g FROM unnest($1::text[]) t, generate_series(1, ${ROWS}) g`,
    [pooled],
  );
  const dir = mkdtempSync(join(tmpdir(), 'tg-bench-migrate-'));
  const yaml = configYaml({
    url,
    prefix,
    tenants: [...pooled, ...schema.map((t): [string, string] => [t, 'schema']), ...database.map((t): [string, string] => [t, 'database'])],
    unlimited: true,
    database: ['migrations_dir: migrations'],
  });
  const file = join(dir, 'tenantgate.yaml');
  writeFileSync(file, yaml);
  const config = await parseConfig(yaml, file, { env: {} });
  log(`migrate: apply ${schemaN} schema, ${dbN} database and ${pooledN} pooled tenants`);
  const applied = await applyProvision(config, db, secret, { env: {} });
  // Each schema and database place gets the tenant's 200 rows.
  for (const t of schema) await db.query(`INSERT INTO "t_${t}".orders (tenant_id, region, amount) SELECT $1, 'North', g FROM generate_series(1, ${ROWS}) g`, [t]);
  const dbs = ownerDatabases(config, db, {});
  const names = resolveNames(config, {});
  for (const t of database) {
    const own = await dbs.get('default', `${names.prefix}_${t}`);
    await own.query(`INSERT INTO public.orders (tenant_id, region, amount) SELECT $1, 'North', g FROM generate_series(1, ${ROWS}) g`, [t]);
  }
  await dbs.close();
  return { db, config, dir, name, prefix, pooled, gatewayUrl: urlFor(name, names.gateway, applied.gatewayPassword!) };
}

/** The per-schema tool's way: one psql per target, the same DDL with the target's search_path. */
async function psqlLoop(config: Config, db: Database, dbName: string, column: string): Promise<number> {
  const targets = await listTargets(config, db, {});
  const prefix = resolveNames(config, {}).prefix;
  const t0 = performance.now();
  for (const t of targets) {
    const database = t.tier === 'database' ? `${prefix}_${t.tenant}` : dbName;
    const path = t.tier === 'schema' ? `"t_${t.tenant}", public` : 'public';
    const sql = `BEGIN; SET LOCAL search_path = ${path}; ALTER TABLE orders ADD COLUMN ${column} int; CREATE INDEX orders_${column}_idx ON orders (${column}); COMMIT;`;
    const u = new URL(urlFor(database));
    await new Promise<void>((resolve, reject) => {
      const p = spawn('psql', ['-X', '-q', '-v', 'ON_ERROR_STOP=1', '-h', u.hostname, '-p', u.port || '5432', '-U', decodeURIComponent(u.username), '-d', database, '-c', sql], { stdio: ['ignore', 'ignore', 'pipe'] });
      let err = '';
      p.stderr.on('data', (d: Buffer) => (err += d.toString()));
      p.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`psql on ${t.key}: ${err}`))));
    });
  }
  return (performance.now() - t0) / 1000;
}

export async function runMigrateBench(scratch: Scratch, secret: Buffer, opts: { rounds: number; schema?: number; database?: number; pooled?: number }): Promise<MigrateBenchResult> {
  const schemaN = opts.schema ?? 1000;
  const dbN = opts.database ?? 20;
  const pooledN = opts.pooled ?? 50;
  const started = performance.now();
  const s = await setUp(scratch, secret, schemaN, dbN, pooledN);
  const setupSeconds = (performance.now() - started) / 1000;
  const migrations = join(s.dir, 'migrations');
  let n = 0;
  const next = (column: string) => {
    n++;
    writeFileSync(join(migrations, `${String(n).padStart(4, '0')}_${column}.sql`), `ALTER TABLE public.orders ADD COLUMN ${column} int;\nCREATE INDEX orders_${column}_idx ON public.orders (${column});\n`);
  };
  mkdirSync(migrations, { recursive: true });
  const targets = 1 + schemaN + dbN;
  try {
    const rounds: MigrateRound[] = [];
    let applySeconds = 0;
    for (let round = 1; round <= opts.rounds; round++) {
      const r: MigrateRound = { round, loop: 0, migrate: {} };
      // The loop's column never goes through migrate (no file): it is the per-schema tool's run.
      r.loop = await psqlLoop(s.config, s.db, s.name, `loop${round}`);
      log(`migrate: round ${round}: psql loop over ${targets} targets ${r.loop.toFixed(1)} s`);
      for (const c of CONCURRENCIES) {
        next(`r${round}c${c}`);
        const t0 = performance.now();
        const rep = await migrateUp({ config: s.config, main: s.db, env: {}, dir: migrations, concurrency: c });
        r.migrate[c] = (performance.now() - t0) / 1000;
        if (rep.failures.length || rep.applied !== targets) throw new Error(`migrate up at ${c}: applied ${rep.applied} of ${targets}; ${JSON.stringify(rep.failures.slice(0, 2))}`);
        log(`migrate: round ${round}: migrate up --concurrency ${c}: ${r.migrate[c]!.toFixed(1)} s (×${(r.loop / r.migrate[c]!).toFixed(1)} the loop)`);
      }
      if (round === 1) {
        const t0 = performance.now();
        await applyProvision(s.config, s.db, secret, { env: {} });
        applySeconds = (performance.now() - t0) / 1000;
        log(`migrate: the provisioning after it (apply over every target): ${applySeconds.toFixed(1)} s`);
      }
      rounds.push(r);
    }
    // A pooled tenant's p99 idle, then while migrate runs at each concurrency.
    const gate = await createTenantGate({ config: s.config, gatewayUrl: s.gatewayUrl, secret, poolSize: 4, env: {} });
    try {
      const tenant = s.pooled[0]!;
      const ids = (await s.db.query<{ id: string }>(`SELECT id::text FROM public.orders WHERE tenant_id = $1`, [tenant])).rows.map((r) => Number(r.id));
      let i = 0;
      const op = () => gate.withTenant({ tenant, access: 'read' }, (db) => db.query({ name: 'pt', text: 'SELECT id, region, amount FROM public.orders WHERE id = $1', values: [ids[i++ % ids.length]] }));
      await closedLoop(op, 4, 2);
      // Rounds of: an idle window, then one migrate up per concurrency (rotating order) under the load;
      // the samples of every round pooled per concurrency (one short run alone gives a noisy p99).
      const idle: Float64Array[] = [];
      const during = new Map<number, { lat: Float64Array[]; ops: number; seconds: number[] }>(CONCURRENCIES.map((c) => [c, { lat: [], ops: 0, seconds: [] }]));
      for (let round = 0; round < opts.rounds; round++) {
        idle.push((await closedLoop(op, 4, 4)).latencies);
        const order = CONCURRENCIES.slice(round % CONCURRENCIES.length).concat(CONCURRENCIES.slice(0, round % CONCURRENCIES.length));
        for (const c of order) {
          next(`load${round}c${c}`);
          let running = true;
          const d = during.get(c)!;
          const t0 = performance.now();
          const mig = migrateUp({ config: s.config, main: s.db, env: {}, dir: migrations, concurrency: c }).finally(() => (running = false));
          while (running) {
            const l = await closedLoop(op, 4, 0.25);
            if (running) {
              d.lat.push(l.latencies);
              d.ops += l.ops;
            }
          }
          const rep = await mig;
          if (rep.failures.length) throw new Error(`migrate under load: ${JSON.stringify(rep.failures[0])}`);
          d.seconds.push((performance.now() - t0) / 1000);
        }
      }
      const idleP99 = percentile(concat(idle), 99);
      const p99: MigrateBenchResult['p99'] = CONCURRENCIES.map((c) => {
        const d = during.get(c)!;
        return { concurrency: c, idle: idleP99, during: percentile(concat(d.lat), 99), ops: d.ops, seconds: median(d.seconds) };
      });
      for (const row of p99) log(`migrate: pooled tenant p99 idle ${row.idle.toFixed(2)} ms, during migrate --concurrency ${row.concurrency} ${row.during.toFixed(2)} ms (×${(row.during / row.idle).toFixed(2)}, ${row.seconds.toFixed(1)} s)`);
      return { tenants: { schema: schemaN, database: dbN, pooled: pooledN }, targets, rounds, applySeconds, p99, setupSeconds };
    } finally {
      await gate.close();
    }
  } finally {
    await s.db.close();
    rmSync(s.dir, { recursive: true, force: true });
  }
}

export function migrateSummaryLines(r: MigrateBenchResult): string[] {
  if (r.skipped) return [`migrate: skipped (${r.skipped})`];
  const loop = median(r.rounds.map((x) => x.loop));
  const best = Math.min(...CONCURRENCIES.map((c) => median(r.rounds.map((x) => x.migrate[c]!))));
  return [`migrate ${r.targets} targets: ${best.toFixed(1)} s at the best concurrency vs psql loop ${loop.toFixed(1)} s (×${(loop / best).toFixed(1)}; goals ≥ ${LOOP_GOAL}×, < ${SECONDS_GOAL} s); pooled p99 ${r.p99.map((p) => `×${(p.during / p.idle).toFixed(2)} at ${p.concurrency}`).join(', ')} (goal ≤ ${P99_GOAL})`];
}

export function migrateSection(r: MigrateBenchResult, date: string): string {
  const loop = median(r.rounds.map((x) => x.loop));
  const per = CONCURRENCIES.map((c) => [c, median(r.rounds.map((x) => x.migrate[c]!))] as const);
  const best = per.reduce((a, b) => (b[1] < a[1] ? b : a));
  const met = (ok: boolean) => (ok ? 'met' : '**not met**');
  const rows = r.rounds.map((x) => `| ${x.round} | ${x.loop.toFixed(1)} | ${CONCURRENCIES.map((c) => `${x.migrate[c]!.toFixed(1)} (×${(x.loop / x.migrate[c]!).toFixed(1)})`).join(' | ')} |`);
  const load = r.p99.map((p) => `| ${p.concurrency} | ${p.seconds.toFixed(1)} | ${fmt.ms(p.idle)} | ${fmt.ms(p.during)} | ×${(p.during / p.idle).toFixed(2)} ${p.during / p.idle <= P99_GOAL ? '' : '(over)'} |`);
  const ok = r.p99.filter((p) => p.during / p.idle <= P99_GOAL).map((p) => p.concurrency);
  // The fastest concurrency within every goal: [concurrency, seconds, p99 ratio].
  const all3 = per
    .map(([c, v]) => [c, v, (r.p99.find((p) => p.concurrency === c)?.during ?? Infinity) / (r.p99.find((p) => p.concurrency === c)?.idle ?? 1)] as const)
    .filter(([, v, q]) => q <= P99_GOAL && v < SECONDS_GOAL && loop / v >= LOOP_GOAL)
    .sort((a, b) => a[1] - b[1])[0];
  return `${MIGRATE_HEADING}Schema migrations across tiers

Measured by bench/migrate.ts (${date.slice(0, 10)}): ${fmt.int(r.tenants.schema)} schema-tier tenants, ${r.tenants.database} database-tier tenants (each its own
database) and ${r.tenants.pooled} pooled ones, \`public.orders\` with ${ROWS} rows per tenant at each place: **${fmt.int(r.targets)} targets** (the main
database and ${fmt.int(r.targets - 1)} tenant places). Each run applies a new migration that adds a column and an index, to every target: \`migrate up\`
(\`migrateUp\`, in-process) at concurrency ${CONCURRENCIES.join(', ')}, and a plain sequential loop of one \`psql\` per target running the
same DDL with the target's \`search_path\` (what a per-schema tool does), in the same rounds. Seconds for all targets (× the loop):

| round | psql loop | ${CONCURRENCIES.map((c) => `migrate up, concurrency ${c}`).join(' | ')} |
| ---: | ---: | ${CONCURRENCIES.map(() => '---:').join(' | ')} |
${rows.join('\n')}

Median: the loop ${loop.toFixed(1)} s; \`migrate up\` ${per.map(([c, v]) => `${v.toFixed(1)} s at ${c}`).join(', ')}. Best: **${best[1].toFixed(1)} s at concurrency ${best[0]}, ×${(loop / best[1]).toFixed(1)}
the loop** (goal ≥ ${LOOP_GOAL}×: ${met(loop / best[1] >= LOOP_GOAL)}; under ${SECONDS_GOAL} s for the ${fmt.int(r.targets)} targets: ${met(best[1] < SECONDS_GOAL)}). At concurrency 1 the gain over
the loop is what one process with open connections saves over a process and a connection per target; above it, targets run side
by side (each is its own transaction on its own table, so they do not wait for each other). \`migrate up\` then runs the
provisioning \`apply\` does, over every target: ${r.applySeconds.toFixed(1)} s here, once per \`migrate up\` that applied something (not in the times above).

A pooled tenant running point queries through \`withTenant\` (4 connections) while \`migrate up\` ran at each concurrency (a new
migration each time; ${r.rounds.length} rounds, each with an idle window first, the samples of all rounds pooled), against its p99 idle (goal:
at most ${P99_GOAL}× idle; seconds are the median run under the load):

| concurrency | migrate up (s) | p99 idle (ms) | p99 during (ms) | ratio |
| ---: | ---: | ---: | ---: | ---: |
${load.join('\n')}

${ok.length ? `Within the goal at concurrency ${ok.join(', ')}` : '**Not within the goal at any concurrency**'}${all3 ? ` (so concurrency ${all3[0]} meets all three goals at once: ${all3[1].toFixed(1)} s, ×${(loop / all3[1]).toFixed(1)} the loop, p99 ×${all3[2].toFixed(2)})` : ''}: its table is locked only while the main target's migration runs (one short
transaction, under \`lock_timeout\`); the rest is CPU, which the migrating connections and the tenant's queries share on this
machine's cores: a higher \`--concurrency\` finishes sooner and costs live queries more while it runs.
`;
}
