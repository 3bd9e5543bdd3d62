/**
 * Benchmark 12: offboarding (issue 14).
 *
 * Export: a pooled tenant of 1,000,000 rows in `public.orders` (among neighbours) exported as CSV,
 * NDJSON and Parquet by `runExport`, side by side in alternating rounds with what an operator would
 * script: `COPY (SELECT <the same columns> FROM orders WHERE tenant_id = …) TO STDOUT` (CSV) into a
 * file. Throughput is rows per second; the ratio is the export's over the COPY's of the same round.
 * Peak memory: the real CLI (`bin/tenantgate.js export`, compiled) exporting 1M and 5M rows in
 * each format, its maximum resident set size read as the process exits.
 *
 * Erase: a 1,000,000-row pooled tenant erased by the erase job (the same code `tenantgate erase`
 * runs) while a neighbour runs point queries and a small aggregate through `withTenant`; the
 * neighbour's p99 during the erase against its p99 in windows just before and after with nothing
 * else running. The erase time is reported next to one plain `DELETE … WHERE tenant_id` of another
 * 1M-row tenant of the same table.
 *
 * Suspension: bench/suspension.ts (two `serve` processes).
 */
import { execFileSync, spawn } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, createWriteStream } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { to as copyTo } from 'pg-copy-streams';
import { parseConfig } from '../src/config/load.ts';
import type { Config } from '../src/config/types.ts';
import { openDatabase, type Database } from '../src/db/database.ts';
import { createTenantGate } from '../src/gate.ts';
import { bindEraseEnvironment, type EraseParams } from '../src/lifecycle/erase/job.ts';
import { runExport, type ExportResult } from '../src/lifecycle/export/export.ts';
import type { ExportFormat } from '../src/lifecycle/export/formats.ts';
import { JobRunner } from '../src/lifecycle/jobs/runner.ts';
import { applyProvision, resolveNames } from '../src/provision/apply.ts';
import { configYaml, ORDERS_DDL } from './dataset.ts';
import { runSuspensionBench, suspensionLines, suspensionSummary, type SuspensionResult } from './suspension.ts';
import { closedLoop, concat, fmt, log, median, percentile, urlFor, type Scratch } from './support.ts';

export const OFFBOARDING_HEADING = '## 12. ';
export const CSV_GOAL = 0.8;
export const NDJSON_GOAL = 0.5;
export const RSS_GOAL_MB = 200;
export const ERASE_P99_GOAL = 1.25;
const ROOT = resolve(import.meta.dirname, '..');
const FORMATS: ExportFormat[] = ['csv', 'ndjson', 'parquet'];
const NEIGHBOURS = 20;
const NEIGHBOUR_ROWS = 5_000;

export interface ExportRound {
  round: number;
  /** Rows per second: the plain COPY, then each format. */
  copy: number;
  csv: number;
  ndjson: number;
  parquet: number;
}
export interface RssRun {
  rows: number;
  format: ExportFormat;
  maxRssMb: number;
  seconds: number;
}
export interface EraseRun {
  rows: number;
  batchRows: number;
  pauseRatio: number;
  seconds: number;
  plainDeleteSeconds: number;
  neighbour: { concurrency: number; before: { p50: number; p99: number; ops: number }; during: { p50: number; p99: number; ops: number }; after: { p50: number; p99: number; ops: number } };
  ratio: number;
}
export interface OffboardingResult {
  export: { rows: number; rounds: ExportRound[]; ratio: { csv: number; ndjson: number; parquet: number }; rss: RssRun[] };
  erase: EraseRun[];
  suspension?: SuspensionResult | undefined;
  setupSeconds: number;
}

interface Place {
  db: Database;
  config: Config;
  file: string;
  dir: string;
  env: Record<string, string>;
  gatewayUrl: string;
  secret: Buffer;
}

async function load(db: Database, tenant: string, rows: number): Promise<void> {
  await db.query(
    `INSERT INTO public.orders (tenant_id, region, status, amount, created_at)
     SELECT $1, (ARRAY['North', 'South', 'East', 'West'])[1 + g % 4], CASE WHEN g % 10 = 0 THEN 'closed' ELSE 'open' END,
            (g % 997) * 1.25, timestamptz '2024-01-01' + g * interval '1 second'
       FROM generate_series(1, ${rows}) g`,
    [tenant],
  );
}

async function setUp(scratch: Scratch, secret: Buffer, tenants: Array<[string, number]>): Promise<Place> {
  const name = await scratch.database('offboard');
  const prefix = scratch.prefix('o');
  const url = urlFor(name);
  const db = await openDatabase(url, { max: 8 });
  await db.query(`ALTER DATABASE ${name} SET synchronous_commit = off`);
  await db.query(ORDERS_DDL);
  for (const [t, n] of tenants) {
    log(`offboarding: loading ${t} (${n.toLocaleString('en-US')} rows)`);
    await load(db, t, n);
  }
  await db.query(`ALTER TABLE public.orders ADD PRIMARY KEY (id)`);
  await db.query(`CREATE INDEX orders_tenant_id_idx ON public.orders (tenant_id, id)`);
  await db.query(`VACUUM (ANALYZE) public.orders`);
  const dir = mkdtempSync(join(tmpdir(), 'tg-bench-offboard-'));
  const file = join(dir, 'tenantgate.yaml');
  const yaml = configYaml({ url, prefix, tenants: tenants.map(([t]) => t), unlimited: true });
  writeFileSync(file, yaml);
  const pem = generateKeyPairSync('ed25519').privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
  const env = { TENANTGATE_SIGNING_KEY: pem };
  const config = await parseConfig(yaml, file, { env });
  const applied = await applyProvision(config, db, secret, { env });
  const names = resolveNames(config, env);
  return { db, config, file, dir, env, gatewayUrl: urlFor(name, names.gateway, applied.gatewayPassword!), secret };
}

/** A plain COPY of the same columns the export writes, into a file: what an operator would script. */
async function plainCopy(db: Database, tenant: string, columns: string[], out: string): Promise<number> {
  const c = await db.pool.connect();
  try {
    const t0 = performance.now();
    const list = columns.map((x) => `"${x}"`).join(', ');
    await pipeline(c.query(copyTo(`COPY (SELECT ${list} FROM public.orders WHERE tenant_id = '${tenant}') TO STDOUT (FORMAT csv, HEADER true)`)), createWriteStream(out));
    return performance.now() - t0;
  } finally {
    c.release();
  }
}

async function exportRounds(p: Place, tenant: string, rows: number, rounds: number): Promise<{ rounds: ExportRound[]; ratio: OffboardingResult['export']['ratio'] }> {
  const out = join(p.dir, 'export');
  const once = async (format: ExportFormat): Promise<{ ms: number; result: ExportResult }> => {
    const t0 = performance.now();
    const result = await runExport({ config: p.config, main: p.db, env: p.env, tenant, out, format, view: 'tenant', force: true });
    if (result.rows !== rows) throw new Error(`export of ${tenant} wrote ${result.rows} rows, ${rows} expected`);
    return { ms: performance.now() - t0, result };
  };
  const first = await once('csv'); // warm: caches, and the columns the export writes
  for (const f of FORMATS.filter((x) => x !== 'csv')) await once(f); // and each format's code (the JIT)
  const manifest = JSON.parse(readFileSync(join(out, 'manifest.json'), 'utf8')) as { files: Array<{ columns: Array<{ name: string }> }> };
  const columns = manifest.files[0]!.columns.map((c) => c.name);
  log(`offboarding: warm-up export ${fmt.int(first.ms)} ms; columns ${columns.join(', ')}`);
  const out2 = join(p.dir, 'copy.csv');
  const list: ExportRound[] = [];
  for (let round = 1; round <= rounds; round++) {
    // Each round rotates the order, so no side always runs on a warmer cache.
    const order: Array<'copy' | ExportFormat> = ['copy', ...FORMATS];
    const rot = order.slice(round % order.length).concat(order.slice(0, round % order.length));
    const r: ExportRound = { round, copy: 0, csv: 0, ndjson: 0, parquet: 0 };
    for (const what of rot) {
      const ms = what === 'copy' ? await plainCopy(p.db, tenant, columns, out2) : (await once(what)).ms;
      r[what] = rows / (ms / 1000);
    }
    log(`offboarding: export round ${round}: COPY ${fmt.int(r.copy)} rows/s, csv ${(r.csv / r.copy).toFixed(2)}, ndjson ${(r.ndjson / r.copy).toFixed(2)}, parquet ${(r.parquet / r.copy).toFixed(2)}`);
    list.push(r);
  }
  rmSync(out, { recursive: true, force: true });
  rmSync(out2, { force: true });
  const ratio = (f: ExportFormat) => median(list.map((r) => r[f] / r.copy));
  return { rounds: list, ratio: { csv: ratio('csv'), ndjson: ratio('ndjson'), parquet: ratio('parquet') } };
}

/** The CLI as a user runs it (compiled), its peak RSS read as it exits. */
async function cliPeak(p: Place, tenant: string, rows: number, format: ExportFormat): Promise<RssRun> {
  const reporter = join(p.dir, 'max-rss.cjs');
  writeFileSync(reporter, `process.on('exit', () => { try { require('fs').writeSync(2, '\\nTG_BENCH_MAXRSS=' + process.resourceUsage().maxRSS + '\\n'); } catch {} });\n`);
  const out = join(p.dir, `cli-${format}`);
  const t0 = performance.now();
  const res = await new Promise<{ code: number | null; err: string }>((done) => {
    const child = spawn(process.execPath, [join(ROOT, 'bin/tenantgate.js'), '--config', p.file, 'export', tenant, '--out', out, '--format', format, '--force'], {
      env: { ...process.env, ...p.env, NODE_OPTIONS: `--require ${reporter}` },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let err = '';
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('exit', (code) => done({ code, err }));
  });
  const seconds = (performance.now() - t0) / 1000;
  rmSync(out, { recursive: true, force: true });
  const m = /TG_BENCH_MAXRSS=(\d+)/.exec(res.err);
  if (res.code !== 0 || !m) throw new Error(`tenantgate export ${tenant} --format ${format} failed (${res.code}): ${res.err.slice(-2000)}`);
  const run = { rows, format, maxRssMb: Number(m[1]) / 1024, seconds };
  log(`offboarding: CLI export ${rows.toLocaleString('en-US')} rows ${format}: peak RSS ${fmt.int(run.maxRssMb)} MB, ${run.seconds.toFixed(1)} s`);
  return run;
}

/** The neighbour: point queries and a small aggregate of its own rows through withTenant. */
async function neighbourLoad(p: Place, concurrency: number) {
  const gate = await createTenantGate({ config: p.config, gatewayUrl: p.gatewayUrl, secret: p.secret, poolSize: concurrency, env: {} });
  const ids = (await p.db.query<{ id: string }>(`SELECT id::text FROM public.orders WHERE tenant_id = 'n00' ORDER BY id`)).rows.map((r) => Number(r.id));
  let i = 0;
  const op = () => {
    const n = i++;
    if (n % 10 === 9) return gate.withTenant({ tenant: 'n00', access: 'read' }, (db) => db.query(`SELECT status, sum(amount) FROM public.orders WHERE created_at < timestamptz '2024-01-01 00:10' GROUP BY status`));
    return gate.withTenant({ tenant: 'n00', access: 'read' }, (db) => db.query({ name: 'pt', text: 'SELECT id, region, amount FROM public.orders WHERE id = $1', values: [ids[n % ids.length]] }));
  };
  return { gate, op };
}

const stats = (l: Float64Array, ops: number) => ({ p50: percentile(l, 50), p99: percentile(l, 99), ops });

async function eraseRun(p: Place, tenant: string, plain: string, rows: number, params: EraseParams, concurrency: number): Promise<EraseRun> {
  const { gate, op } = await neighbourLoad(p, concurrency);
  try {
    await closedLoop(op, concurrency, 2); // warm
    const before = await closedLoop(op, concurrency, 8);
    bindEraseEnvironment(p.db, { config: p.config, env: p.env });
    const runner = new JobRunner({ db: p.db, pollMs: 50 });
    const during: Float64Array[] = [];
    let ops = 0;
    let erasing = true;
    const t0 = performance.now();
    const erase = (async () => {
      try {
        const job = await runner.submit({ kind: 'erase', tenant, params: { ...params }, requestedBy: 'bench' });
        const done = await runner.follow(job.id);
        if (done.state !== 'done') throw new Error(`erase ${tenant}: ${done.state} ${JSON.stringify(done.error)} ${done.errorDetail ?? ''}`);
      } finally {
        erasing = false;
      }
      return (performance.now() - t0) / 1000;
    })();
    while (erasing) {
      const r = await closedLoop(op, concurrency, 1);
      if (erasing) {
        during.push(r.latencies);
        ops += r.ops;
      }
    }
    const seconds = await erase;
    await runner.stop();
    await p.db.query(`VACUUM public.orders`);
    const after = await closedLoop(op, concurrency, 8);
    const t1 = performance.now();
    const deleted = await p.db.query(`DELETE FROM public.orders WHERE tenant_id = $1`, [plain]);
    const plainDeleteSeconds = (performance.now() - t1) / 1000;
    if (deleted.rowCount !== rows) throw new Error(`the plain DELETE removed ${deleted.rowCount} rows, ${rows} expected`);
    const left = await p.db.query(`SELECT count(*)::int AS n FROM public.orders WHERE tenant_id = $1`, [tenant]);
    if (left.rows[0]!['n'] !== 0) throw new Error(`the erase left ${left.rows[0]!['n']} rows of ${tenant}`);
    const quiet = concat([before.latencies, after.latencies]);
    const d = concat(during);
    const run: EraseRun = {
      rows,
      batchRows: params.batch_rows ?? 5000,
      pauseRatio: params.pause_ratio ?? 1,
      seconds,
      plainDeleteSeconds,
      neighbour: { concurrency, before: stats(before.latencies, before.ops), during: stats(d, ops), after: stats(after.latencies, after.ops) },
      ratio: percentile(d, 99) / percentile(quiet, 99),
    };
    log(`offboarding: erase ${fmt.int(rows)} rows in ${seconds.toFixed(1)} s (plain DELETE ${plainDeleteSeconds.toFixed(1)} s); neighbour p99 ${percentile(quiet, 99).toFixed(2)} → ${run.neighbour.during.p99.toFixed(2)} ms (×${run.ratio.toFixed(2)})`);
    return run;
  } finally {
    await gate.close();
  }
}

export async function runOffboardingBench(scratch: Scratch, secret: Buffer, opts: { rounds: number; rows?: number; bigRows?: number }): Promise<OffboardingResult> {
  const rows = opts.rows ?? 1_000_000;
  const bigRows = opts.bigRows ?? 5_000_000;
  const started = performance.now();
  log('offboarding: building the CLI (dist/) so the memory is the shipped program\'s');
  execFileSync(process.execPath, [join(ROOT, 'scripts/build.js')], { cwd: ROOT, stdio: 'ignore' });
  const neighbours = Array.from({ length: NEIGHBOURS }, (_, i) => [`n${String(i).padStart(2, '0')}`, NEIGHBOUR_ROWS] as [string, number]);
  const p = await setUp(scratch, secret, [['big', rows], ['huge', bigRows], ['gone', rows], ['plain', rows], ...neighbours]);
  const setupSeconds = (performance.now() - started) / 1000;
  try {
    const ex = await exportRounds(p, 'big', rows, opts.rounds);
    const rss: RssRun[] = [];
    for (const [tenant, n] of [['big', rows], ['huge', bigRows]] as Array<[string, number]>) for (const f of FORMATS) rss.push(await cliPeak(p, tenant, n, f));
    const erase = [await eraseRun(p, 'gone', 'plain', rows, { batch_rows: 5000, pause_ratio: 1 }, 4)];
    await p.db.close();
    const suspension = await runSuspensionBench(scratch, secret, { trials: 9 });
    return { export: { rows, ...ex, rss }, erase, suspension, setupSeconds };
  } finally {
    await p.db.close().catch(() => {});
    rmSync(p.dir, { recursive: true, force: true });
  }
}

const met = (ok: boolean) => (ok ? 'met' : '**not met**');
const mb = (x: number) => fmt.int(x);

export function offboardingSummaryLines(r: OffboardingResult): string[] {
  const e = r.erase[0]!;
  const peak = Math.max(...r.export.rss.filter((x) => x.rows === r.export.rows).map((x) => x.maxRssMb));
  return [
    `export ${fmt.int(r.export.rows)} rows vs COPY: csv ${fmt.ratio(r.export.ratio.csv)} (goal ≥ ${CSV_GOAL}), ndjson ${fmt.ratio(r.export.ratio.ndjson)} (goal ≥ ${NDJSON_GOAL}), parquet ${fmt.ratio(r.export.ratio.parquet)}; peak RSS ${mb(peak)} MB (goal < ${RSS_GOAL_MB})`,
    `erase ${fmt.int(e.rows)} rows ${e.seconds.toFixed(1)} s (plain DELETE ${e.plainDeleteSeconds.toFixed(1)} s); neighbour p99 ×${fmt.ratio(e.ratio)} (goal ≤ ${ERASE_P99_GOAL})`,
    ...(r.suspension ? [suspensionSummary(r.suspension)] : []),
  ];
}

export function offboardingSection(r: OffboardingResult, date: string): string {
  const x = r.export;
  const rounds = x.rounds.map((q) => `| ${q.round} | ${fmt.int(q.copy)} | ${fmt.int(q.csv)} (${fmt.ratio(q.csv / q.copy)}) | ${fmt.int(q.ndjson)} (${fmt.ratio(q.ndjson / q.copy)}) | ${fmt.int(q.parquet)} (${fmt.ratio(q.parquet / q.copy)}) |`);
  const rss = FORMATS.map((f) => {
    const at = (n: number) => x.rss.find((q) => q.format === f && q.rows === n);
    const sizes = [...new Set(x.rss.map((q) => q.rows))].sort((a, b) => a - b);
    return `| ${f} | ${sizes.map((n) => `${mb(at(n)!.maxRssMb)} MB (${at(n)!.seconds.toFixed(1)} s)`).join(' | ')} |`;
  });
  const sizes = [...new Set(x.rss.map((q) => q.rows))].sort((a, b) => a - b);
  const peak1 = Math.max(...x.rss.filter((q) => q.rows === x.rows).map((q) => q.maxRssMb));
  const erase = r.erase.map(
    (e) =>
      `| ${fmt.int(e.rows)} | ${e.batchRows} rows, pause ${e.pauseRatio}× the batch | ${e.seconds.toFixed(1)} s | ${e.plainDeleteSeconds.toFixed(1)} s | ${fmt.ms(e.neighbour.before.p99)} / ${fmt.ms(e.neighbour.after.p99)} | ${fmt.ms(e.neighbour.during.p99)} | **×${fmt.ratio(e.ratio)}** |`,
  );
  const e = r.erase[0]!;
  return `${OFFBOARDING_HEADING}Offboarding: export, erase, suspension

Measured by bench/offboarding.ts (${date.slice(0, 10)}) on one PostgreSQL database: \`public.orders\` with a ${fmt.int(x.rows)}-row pooled tenant
to export, a ${fmt.int(sizes.at(-1) ?? 0)}-row one for memory, two ${fmt.int(x.rows)}-row ones to erase and delete, and ${NEIGHBOURS} neighbours of ${fmt.int(NEIGHBOUR_ROWS)} rows.

### Export throughput against a plain COPY

Each round runs, in a rotating order, \`runExport\` (what \`tenantgate export\` and the export job run: one REPEATABLE READ snapshot,
the tenant view, SHA-256 of every file, the signed manifest) in each format, and the baseline an operator would script:
\`COPY (SELECT <the same columns> FROM orders WHERE tenant_id = …) TO STDOUT (FORMAT csv)\` into a file. Rows per second (ratio to
the COPY of the same round):

| round | COPY rows/s | CSV | NDJSON | Parquet |
| ---: | ---: | ---: | ---: | ---: |
${rounds.join('\n')}

Median ratios: CSV **${fmt.ratio(x.ratio.csv)}** (goal ≥ ${CSV_GOAL}: ${met(x.ratio.csv >= CSV_GOAL)}), NDJSON **${fmt.ratio(x.ratio.ndjson)}** (goal ≥ ${NDJSON_GOAL}: ${met(x.ratio.ndjson >= NDJSON_GOAL)}),
Parquet **${fmt.ratio(x.ratio.parquet)}** (reported). CSV is PostgreSQL's own COPY output passed through the hash. NDJSON is COPY
text turned into JSON in tenantgate's process (src/lifecycle/export/ndjson.ts), so the backend reading rows and the JSON
writing run on two cores; \`row_to_json\` in the backend, as the first version did, ran at 0.35 of the COPY. Parquet is typed
columns encoded in JavaScript (hyparquet-writer) from a cursor: about ${fmt.int(x.rounds[0] ? median(x.rounds.map((q) => q.parquet)) : 0)} rows a second.

### Peak memory of \`tenantgate export\`

The compiled CLI (\`bin/tenantgate.js export ID --out DIR --format F\`), its maximum resident set size read as it exits
(\`process.resourceUsage().maxRSS\`), wall time in brackets:

| format | ${sizes.map((n) => `${fmt.int(n)} rows`).join(' | ')} |
| --- | ${sizes.map(() => '---:').join(' | ')} |
${rss.join('\n')}

Peak at ${fmt.int(x.rows)} rows: **${mb(peak1)} MB** (goal < ${RSS_GOAL_MB} MB: ${met(peak1 < RSS_GOAL_MB)}). The CLI with its modules loaded (the SQL parser's
WebAssembly included) is about 100 MB before the first row; CSV and NDJSON stream with backpressure and stay flat. Parquet
holds one row group (10,000 rows) and collects garbage every 4 groups: the encoder's dead buffers otherwise pile up to V8's
external-memory limit (244 MB at 1M rows before that change).

### Erasing a ${fmt.int(e.rows)}-row tenant next to a busy neighbour

The erase job (what \`tenantgate erase\` runs: suspend, inventory, then the rows in short batches, each its own transaction
with its checkpoint, pausing after each batch as long as it took) while a neighbour tenant runs, through \`withTenant\` at
${e.neighbour.concurrency} connections, point queries by id and one small aggregate in ten. The neighbour's p99 in the 8 s just before and the
8 s just after (nothing else running) against its p99 during the erase; then a plain \`DELETE FROM orders WHERE tenant_id = …\`
of another tenant of the same size:

| rows | batches | erase | plain DELETE | neighbour p99 before / after (ms) | during (ms) | ratio |
| ---: | --- | ---: | ---: | ---: | ---: | ---: |
${erase.join('\n')}

Goal: the neighbour's p99 at most ${ERASE_P99_GOAL}× without the erase: ${met(e.ratio <= ERASE_P99_GOAL)}. The erase takes ${fmt.ratio(e.seconds / e.plainDeleteSeconds)}× the plain DELETE:
the price of batches that hold their row locks for milliseconds, a checkpoint per batch (a rerun after kill -9 goes on from
the last one), and the pauses that leave the neighbours the CPU.
${r.suspension ? `
${suspensionLines(r.suspension).join('\n')}
` : ''}`;
}
