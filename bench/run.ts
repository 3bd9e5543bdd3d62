/**
 * `npm run bench`: every benchmark of docs/benchmarks.md, then the file rewritten with this run's
 * numbers. Needs a PostgreSQL server on 127.0.0.1 (DATABASE_URL, default
 * postgres://postgres@127.0.0.1:5432/postgres). Everything it creates there (databases
 * tg_bench_<tag>*, roles tgb<tag>*) is dropped at the end, also when a benchmark fails.
 *
 * Options (for exploring; the defaults are what the report is made of):
 *   --only=point|apply|http|planner|doctor|audit|quotas|tiers|peers|scale|startup|offboarding|migrate   run one benchmark (--only=doctor, audit, quotas, tiers, peers, scale, startup, offboarding or migrate writes only its section of docs/benchmarks.md)
 *   --no-write           print the report instead of writing docs/benchmarks.md
 *   --no-profile         skip the CPU profile round of the HTTP benchmark
 *   --json=FILE          also write the raw results as JSON
 *   --from-json=FILE     measure nothing: write the report (or the --only section) from such a file
 *   BENCH_SECONDS, BENCH_ROUNDS   length and number of interleaved rounds (4 s × 3)
 *   BENCH_PEERS_C        concurrencies of benchmark 9, comma-separated (default 1,4,16,32)
 *   BENCH_WRK_THREADS    wrk threads for the HTTP benchmark (default 1: wrk, the gateway and the server share the CPUs)
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { runApplyBench, type ApplyResult } from './apply.ts';
import { createDataset } from './dataset.ts';
import { auditSection, AUDIT_HEADING, runAuditBench, type AuditBenchResult } from './audit.ts';
import { noisySection, NOISY_HEADING, runNoisyBench, type NoisyResult } from './noisy.ts';
import { doctorSection, DOCTOR_HEADING, runDoctorBench, type DoctorResult } from './doctor.ts';
import { runHttpBench, type HttpResult } from './http.ts';
import { runPgbench, type PgbenchResult } from './pgbench.ts';
import { renderReport, summary, type RunResults } from './report.ts';
import { runPlannerBench, type PlannerResult } from './sql-planner.ts';
import { runTiersBench, tiersSection, TIERS_HEADING, type TiersResult } from './tiers.ts';
import { runScaleBench, scaleSection, SCALE_HEADING, type ScaleResult } from './scale.ts';
import { runStartupBench, startupSection, STARTUP_HEADING, type StartupResult } from './startup.ts';
import { offboardingSection, OFFBOARDING_HEADING, runOffboardingBench, type OffboardingResult } from './offboarding.ts';
import { migrateSection, MIGRATE_HEADING, runMigrateBench, type MigrateBenchResult } from './migrate.ts';
import { PEERS_CHART, PEERS_CONCURRENCY, peersChart, peersSection, PEERS_HEADING, runPeersBench, type PeersResult } from './peers.ts';
import { log, machineFacts, Scratch, spliceSection } from './support.ts';
import { checkIsolation, openVariants, runPointQuery, type PointQueryResult } from './with-tenant.ts';

const args = new Set(process.argv.slice(2));
const only = [...args].find((a) => a.startsWith('--only='))?.slice('--only='.length);
const BENCHMARKS = ['point', 'apply', 'http', 'planner', 'doctor', 'audit', 'quotas', 'tiers', 'peers', 'scale', 'startup', 'offboarding', 'migrate'];
if (only && !BENCHMARKS.includes(only)) {
  process.stderr.write(`--only takes one of ${BENCHMARKS.join(', ')}\n`);
  process.exit(2);
}
const write = !args.has('--no-write');
const profile = !args.has('--no-profile');
const WRK_THREADS = Number(process.env['BENCH_WRK_THREADS'] ?? 1);
const SECONDS = Number(process.env['BENCH_SECONDS'] ?? 4);
const ROUNDS = Number(process.env['BENCH_ROUNDS'] ?? 3);
const CONCURRENCY = 8;

async function main(): Promise<void> {
  // Rewrite the report from an earlier run's --json dump (its text changed, its numbers did not).
  const from = [...args].find((a) => a.startsWith('--from-json='))?.slice('--from-json='.length);
  if (from) return publish(JSON.parse(readFileSync(from, 'utf8')) as RunResults);
  const started = performance.now();
  const machine = await machineFacts();
  const scratch = new Scratch();
  const tmp = mkdtempSync(join(tmpdir(), 'tg-bench-run-'));
  let interrupted = false;
  const onSignal = (sig: NodeJS.Signals) => {
    if (interrupted) process.exit(130);
    interrupted = true;
    log(`${sig}: dropping the benchmark databases and roles`);
    cleanup().then(
      () => process.exit(130),
      (err: unknown) => {
        process.stderr.write(`${(err as Error)?.message}\n`);
        process.exit(130);
      },
    );
  };
  const cleanup = () => {
    // Dropping a database ends the connections still open on it (after a failure, or on a signal);
    // their errors must not kill the process before the roles are gone.
    const ignore = (err: unknown) => log(`ignored during cleanup: ${(err as Error)?.message}`);
    process.on('uncaughtException', ignore);
    process.on('unhandledRejection', ignore);
    rmSync(tmp, { recursive: true, force: true });
    return scratch.cleanup().finally(() => {
      process.off('uncaughtException', ignore);
      process.off('unhandledRejection', ignore);
    });
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  const secretText = randomBytes(24).toString('hex');
  const secret = Buffer.from(secretText, 'utf8');
  let apply: ApplyResult | undefined;
  let point: PointQueryResult | undefined;
  let pgbench: PgbenchResult[] | undefined;
  let setup: { load: number; apply: number; changes: number } | undefined;
  let http: HttpResult | undefined;
  let planner: PlannerResult | undefined;
  let doctor: DoctorResult | undefined;
  let audit: AuditBenchResult | undefined;
  let quotas: NoisyResult | undefined;
  let tiers: TiersResult | undefined;
  let peers: PeersResult | undefined;
  let scale: ScaleResult | undefined;
  let startup: StartupResult | undefined;
  let offboarding: OffboardingResult | undefined;
  let migrate: MigrateBenchResult | undefined;
  try {
    log(`tag ${scratch.tag}: ${machine.cpus} CPUs, ${machine.postgres.split(' on ')[0]}, Node ${machine.node}`);
    if (!only || only === 'planner') {
      log('SQL endpoint planner: parse + check + rewrite');
      planner = await runPlannerBench();
    }
    if (!only || only === 'apply') apply = await runApplyBench(scratch, secretText);
    if (!only || only === 'doctor') doctor = await runDoctorBench(scratch, secret);
    if (!only || only === 'point' || only === 'http' || only === 'audit' || only === 'quotas' || only === 'peers') {
      const ds = await createDataset(scratch, secret);
      setup = ds.timings;
      try {
        if (only !== 'audit' && only !== 'quotas' && only !== 'peers') await checkIsolation(ds);
        if (!only || only === 'point') {
          const variants = await openVariants(ds, CONCURRENCY);
          try {
            point = await runPointQuery(ds, variants, { rounds: ROUNDS, seconds: SECONDS, concurrency: CONCURRENCY, warmupSeconds: 1 });
          } finally {
            for (const v of variants) await v.close().catch(() => {});
          }
          if (machine.pgbench) {
            pgbench = await runPgbench(machine.pgbench, ds, tmp, { rounds: ROUNDS, seconds: SECONDS, clients: CONCURRENCY, threads: 2 });
          } else {
            log('pgbench not found: the database ceiling is left out');
          }
        }
        if (!only || only === 'http') {
          http = await runHttpBench(ds, machine.pgbench, join(tmp, 'http'), {
            rounds: ROUNDS,
            seconds: SECONDS,
            concurrency: CONCURRENCY,
            wrkThreads: WRK_THREADS,
            pgbenchThreads: 2,
            profile,
          });
        }
        if (!only || only === 'peers') {
          peers = await runPeersBench(ds, machine.pgbench, join(tmp, 'peers'), { rounds: ROUNDS, seconds: SECONDS, concurrencies: process.env['BENCH_PEERS_C'] ? process.env['BENCH_PEERS_C'].split(',').map(Number) : PEERS_CONCURRENCY, poolSize: 16, wrkThreads: WRK_THREADS, profile });
        }
        if (!only || only === 'audit') {
          audit = await runAuditBench(ds, { rounds: ROUNDS, seconds: SECONDS, concurrency: CONCURRENCY, wrkThreads: WRK_THREADS });
        }
        if (!only || only === 'quotas') {
          quotas = await runNoisyBench(ds, { rounds: ROUNDS, seconds: SECONDS, concurrency: CONCURRENCY, wrkThreads: WRK_THREADS });
        }
      } finally {
        await ds.owner.close();
      }
    }
    if (!only || only === 'scale') {
      scale = await runScaleBench(scratch, secret, join(tmp, 'scale'), { rounds: ROUNDS, seconds: SECONDS, concurrency: 16 });
    }
    if (!only || only === 'startup') startup = await runStartupBench({ runs: 7 });
    if (!only || only === 'offboarding') offboarding = await runOffboardingBench(scratch, secret, { rounds: Math.max(ROUNDS, 5) });
    if (!only || only === 'migrate') migrate = await runMigrateBench(scratch, secret, { rounds: ROUNDS });
    if (!only || only === 'tiers') {
      tiers = await runTiersBench(scratch, secret, { rounds: ROUNDS, seconds: SECONDS, concurrency: CONCURRENCY, wrkThreads: WRK_THREADS });
    }
  } finally {
    await cleanup();
  }
  const totalSeconds = (performance.now() - started) / 1000;
  const results: RunResults = { machine, apply, point, pgbench, setup, http, planner, doctor, audit, quotas, tiers, peers, scale, startup, offboarding, migrate, totalSeconds };
  const dump = [...args].find((a) => a.startsWith('--json='))?.slice('--json='.length);
  if (dump) writeFileSync(dump, JSON.stringify(results, null, 2));
  publish(results);
}

/** The console summary, then docs/benchmarks.md (whole, or the one section --only names) and the chart. */
function publish(r: RunResults): void {
  const { machine, doctor, audit, quotas, tiers, peers, scale, startup, offboarding, migrate } = r;
  const report = renderReport(r);
  process.stdout.write(`${summary(r)}\n`);
  const docs = resolve(import.meta.dirname, '..', 'docs');
  // The chart goes next to the report whenever the peers benchmark ran (the report links it).
  if (write && peers && !peers.skipped) writeFileSync(join(docs, PEERS_CHART), peersChart(peers));
  // What --only=X may write on its own: that one section, the others keep the full run's numbers.
  const sections: Record<string, [heading: string, text: string] | undefined> = {
    doctor: doctor && [DOCTOR_HEADING, doctorSection(doctor, machine.date)],
    audit: audit && [AUDIT_HEADING, auditSection(audit, machine.date)],
    quotas: quotas && [NOISY_HEADING, noisySection(quotas, machine.date)],
    tiers: tiers && [TIERS_HEADING, tiersSection(tiers, machine.date)],
    peers: peers && [PEERS_HEADING, peersSection(peers, machine.date, PEERS_CHART)],
    scale: scale && [SCALE_HEADING, scaleSection(scale, machine.date)],
    startup: startup && [STARTUP_HEADING, startupSection(startup, machine.date)],
    offboarding: offboarding && [OFFBOARDING_HEADING, offboardingSection(offboarding, machine.date)],
    migrate: migrate && [MIGRATE_HEADING, migrateSection(migrate, machine.date)],
  };
  const file = join(docs, 'benchmarks.md');
  if (write && !only) {
    writeFileSync(file, report);
    log(`wrote ${file} (${Math.round(r.totalSeconds)} s in all)`);
  } else if (!write) {
    process.stdout.write(`\n${(only && sections[only]?.[1]) ?? report}`);
  } else if (only && sections[only]) {
    const [heading, text] = sections[only];
    spliceSection(file, heading, text);
    log(`wrote the ${only} section of ${file}, the other sections left as they were`);
  } else {
    log('--only: docs/benchmarks.md left as it was (it holds the full run)');
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`bench failed: ${(err as Error)?.stack ?? String(err)}\n`);
  process.exitCode = 1;
});
