/**
 * Benchmark 5: `tenantgate doctor` and `tenantgate verify` with 1,000 tenants and 20 tables. A fresh
 * database with its own role prefix, 20 dataset tables `public.t01 … t20` (a few rows each), a
 * config listing them and 1,000 tenants (built in memory), applyProvision, then `runDoctor` timed
 * over 3 runs with every check CHECKS holds at the time, then `runVerify` as `tenantgate verify
 * --url` runs it (default pair sample and 60 s budget, every probe, a live gateway in this process).
 */
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { parseConfig } from '../src/config/load.ts';
import { openDatabase } from '../src/db/database.ts';
import { SEVERITIES, type Severity } from '../src/doctor/finding.ts';
import { CHECKS, runDoctor } from '../src/doctor/run.ts';
import { applyProvision, resolveNames } from '../src/provision/apply.ts';
import { createTenantGate } from '../src/gate.ts';
import { Gateway } from '../src/gateway/gateway.ts';
import { buildServer } from '../src/http/server.ts';
import { DEFAULT_PAIRS, runVerify, type VerifyReport } from '../src/verify/run.ts';
import { TENANTS, tenantId } from './dataset.ts';
import { fmt, log, median, timed, urlFor, type Scratch } from './support.ts';

export const DOCTOR_TABLES = 20;
export const DOCTOR_RUNS = 3;
export const DOCTOR_GOAL_MS = 10_000;
export const VERIFY_GOAL_MS = 60_000;
const ROWS_PER_TABLE = 5;

const tableName = (i: number) => `t${String(i + 1).padStart(2, '0')}`;

export interface DoctorResult {
  tenants: number;
  tables: number;
  checks: Array<{ id: string; title: string }>;
  /** Findings of each run. */
  findingsPerRun: number[];
  applyMs: number;
  changes: number;
  runsMs: number[];
  medianMs: number;
  minMs: number;
  maxMs: number;
  findings: number;
  bySeverity: Record<Severity, number>;
  /** Findings per check id (from the last run). */
  byCheck: Array<{ id: string; count: number }>;
  verify: {
    ms: number;
    ok: boolean;
    probes: number;
    pairs: Omit<VerifyReport['pairs'], 'list'>;
    tenants: number;
    summary: VerifyReport['summary'];
    perPairMs: number;
    /** Probe runs per path (pass + skipped + leak + error). */
    byPath: Record<string, number>;
  };
}

function doctorYaml(opts: { url: string; prefix: string; tables: string[]; tenants: string[] }): string {
  const lines = ['version: 1', 'database:', `  url: ${opts.url}`, `  role_prefix: ${opts.prefix}`, 'datasets:'];
  for (const t of opts.tables) {
    lines.push(`  - name: ${t}`, `    table: public.${t}`, '    tenant_column: tenant_id', '    dimensions: [id, v]', '    metrics:', '      rows: count(*)');
  }
  lines.push('roles:', '  analyst: { access: read }', '  writer: { access: write }', 'tenants:');
  for (const id of opts.tenants) lines.push(`  - id: ${id}`);
  return `${lines.join('\n')}\n`;
}

export async function runDoctorBench(scratch: Scratch, secret: Buffer): Promise<DoctorResult> {
  const dbName = await scratch.database('doctor');
  const prefix = scratch.prefix('d');
  const url = urlFor(dbName);
  const db = await openDatabase(url, { max: 2 });
  try {
    const tables = Array.from({ length: DOCTOR_TABLES }, (_, i) => tableName(i));
    const ddl = tables.flatMap((t) => [
      `CREATE TABLE public.${t} (id bigserial PRIMARY KEY, tenant_id text NOT NULL, v text)`,
      `CREATE INDEX ${t}_tenant_id_idx ON public.${t} (tenant_id, id)`,
      `INSERT INTO public.${t} (tenant_id, v) SELECT 't' || lpad((g % ${TENANTS})::text, 4, '0'), 'row ' || g FROM generate_series(1, ${ROWS_PER_TABLE}) g`,
    ]);
    await db.query(ddl.join(';\n'));
    await db.query('ANALYZE');
    const tenants = Array.from({ length: TENANTS }, (_, i) => tenantId(i));
    const config = await parseConfig(doctorYaml({ url, prefix, tables, tenants }), join(tmpdir(), 'tg-bench-doctor', 'tenantgate.yaml'), { env: {} });
    const names = resolveNames(config, {});
    log(`doctor: apply ${config.tenants.size} tenants × ${config.datasets.length} tables`);
    const applied = await timed(() => applyProvision(config, db, secret, { env: {} }));
    log(`doctor: apply ${Math.round(applied.ms)} ms, ${applied.value.changes.length} change(s); ${CHECKS.length} checks`);

    const runsMs: number[] = [];
    const findingsPerRun: number[] = [];
    let last: Awaited<ReturnType<typeof runDoctor>> = [];
    for (let i = 0; i < DOCTOR_RUNS; i++) {
      const t = await timed(() => runDoctor({ db, config, names, gatewayRole: names.gateway }));
      runsMs.push(t.ms);
      findingsPerRun.push(t.value.length);
      last = t.value;
      log(`doctor run ${i + 1}: ${Math.round(t.ms)} ms, ${t.value.length} finding(s)`);
    }
    // verify, as `tenantgate verify --url` runs it: every probe, the default pair sample, the 60 s budget.
    const gate = await createTenantGate({ config, gatewayUrl: urlFor(dbName, names.gateway), secret, poolSize: 4, env: {} });
    const gateway = await Gateway.create({ gate, secret, env: {} });
    const app = buildServer(gateway);
    await app.listen({ host: '127.0.0.1', port: 0 });
    const address = app.server.address();
    let report: VerifyReport;
    try {
      log(`verify: ${config.tenants.size} tenants × ${config.datasets.length} datasets, up to ${DEFAULT_PAIRS} pairs, ${VERIFY_GOAL_MS / 1000} s budget`);
      report = await runVerify({
        config,
        names,
        owner: db,
        gate,
        secret,
        url: `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`,
        budgetMs: VERIFY_GOAL_MS,
        onProgress: (done, total) => {
          if (done % 5 === 0 || done === total) log(`verify: ${done}/${total} pairs`);
        },
      });
    } finally {
      await app.close();
      await gate.close();
    }
    log(`verify: ${report.ok ? 'PASS' : 'FAIL'} in ${Math.round(report.ms)} ms, ${report.pairs.covered} of ${report.pairs.total} pairs`);
    const byPath: Record<string, number> = {};
    for (const r of report.results) byPath[r.path] = (byPath[r.path] ?? 0) + 1;
    const bySeverity = Object.fromEntries(SEVERITIES.map((s) => [s, last.filter((f) => f.severity === s).length])) as Record<Severity, number>;
    const counts = new Map<string, number>();
    for (const f of last) counts.set(f.id, (counts.get(f.id) ?? 0) + 1);
    return {
      tenants: config.tenants.size,
      tables: config.datasets.length,
      checks: CHECKS.map((c) => ({ id: c.id, title: c.title })),
      findingsPerRun,
      applyMs: applied.ms,
      changes: applied.value.changes.length,
      runsMs,
      medianMs: median(runsMs),
      minMs: Math.min(...runsMs),
      maxMs: Math.max(...runsMs),
      findings: last.length,
      bySeverity,
      byCheck: [...counts].map(([id, count]) => ({ id, count })),
      verify: {
        ms: report.ms,
        ok: report.ok,
        probes: report.probes,
        pairs: { covered: report.pairs.covered, sampled: report.pairs.sampled, total: report.pairs.total, ...(report.pairs.stopped ? { stopped: report.pairs.stopped } : {}) },
        tenants: report.tenants,
        summary: report.summary,
        perPairMs: report.pairs.covered ? report.ms / report.pairs.covered : 0,
        byPath,
      },
    };
  } finally {
    await db.close();
  }
}

const yesNo = (b: boolean) => (b ? 'yes' : 'no');
const secs = (ms: number) => (ms < 1000 ? `${Math.round(ms)} ms` : `${(ms / 1000).toFixed(2)} s`);

export function doctorSummaryLines(d: DoctorResult): string[] {
  return [
    `doctor, ${fmt.int(d.tenants)} tenants × ${d.tables} tables, ${d.checks.length} checks: median ${secs(d.medianMs)} (min ${secs(d.minMs)}, max ${secs(d.maxMs)}; goal < ${DOCTOR_GOAL_MS / 1000} s: ${yesNo(d.medianMs < DOCTOR_GOAL_MS)})`,
    `  findings: ${d.findings} (${SEVERITIES.map((s) => `${s} ${d.bySeverity[s]}`).join(', ')})`,
    `verify, same database: ${d.verify.ok ? 'PASS' : 'FAIL'} in ${secs(d.verify.ms)}, ${d.verify.pairs.covered} of ${fmt.int(d.verify.pairs.total)} pairs (goal < ${VERIFY_GOAL_MS / 1000} s: ${yesNo(d.verify.ms < VERIFY_GOAL_MS)})`,
  ];
}

export const DOCTOR_HEADING = '## 5. ';

export function doctorSection(d: DoctorResult, date: string): string {
  const severityRows = [...SEVERITIES].reverse().map((s) => `| ${s} | ${d.bySeverity[s]} |`);
  const checkRows = d.checks.map((c) => `| \`${c.id}\` | ${c.title} | ${d.byCheck.find((b) => b.id === c.id)?.count ?? 0} |`);
  const other = d.byCheck.filter((b) => !d.checks.some((c) => c.id === b.id));
  const same = d.findingsPerRun.every((n) => n === d.findings);
  const v = d.verify;
  const pathRows = Object.entries(v.byPath).map(([path, n]) => `| ${path} | ${fmt.int(n)} |`);
  return `${DOCTOR_HEADING}doctor and verify with ${fmt.int(d.tenants)} tenants and ${d.tables} tables

\`runDoctor\` (src/doctor/run.ts) as \`tenantgate doctor\` calls it, on a fresh database \`tg_bench_<random>_doctor\` with its own role
prefix (bench/doctor.ts, measured ${date.slice(0, 10)}): ${d.tables} dataset tables \`public.t01 … t${String(d.tables).padStart(2, '0')}\`, each
\`(id bigserial primary key, tenant_id text not null, v text)\` with an index on \`(tenant_id, id)\` and ${ROWS_PER_TABLE} rows, and a
config (built in memory) listing the ${d.tables} datasets and ${fmt.int(d.tenants)} tenants, provisioned with \`applyProvision\`
(${fmt.int(d.applyMs)} ms, ${fmt.int(d.changes)} changes). Then ${d.runsMs.length} doctor runs back to back with every check
\`CHECKS\` held at the time (${d.checks.length}, listed below).

| | |
| --- | ---: |
| median | **${secs(d.medianMs)}** |
| min / max | ${secs(d.minMs)} / ${secs(d.maxMs)} |
| runs | ${d.runsMs.map(secs).join(' / ')} |

Findings of the last run (per run: ${d.findingsPerRun.join(' / ')}${same ? ', the same each time' : ''}). Nothing was changed after
\`applyProvision\`, so these are what the doctor reports on a freshly provisioned database:

| severity | findings |
| --- | ---: |
${severityRows.join('\n')}

| check | title | findings |
| --- | --- | ---: |
${[...checkRows, ...other.map((c) => `| \`${c.id}\` | (no check of that id) | ${c.count} |`)].join('\n')}

**Goal (doctor under ${DOCTOR_GOAL_MS / 1000} s) holds? ${yesNo(d.medianMs < DOCTOR_GOAL_MS)}** (median ${secs(d.medianMs)}, worst run ${secs(d.maxMs)}).

### verify on the same database

\`runVerify\` as \`tenantgate verify --url\` runs it, right after the doctor runs: every probe (${v.probes}), the default sample of
${DEFAULT_PAIRS} ordered tenant pairs out of ${fmt.int(v.pairs.total)}, the CLI's default budget of ${VERIFY_GOAL_MS / 1000} s (no new pair is started
once the next one would end past it), a gateway (Gateway + buildServer) listening in this process for the HTTP probes, the
gateway login's pool of 4. Canaries: one row per sampled tenant and table, planted in one statement per table, removed after.

| | |
| --- | ---: |
| wall time | **${secs(v.ms)}** |
| pairs covered | ${v.pairs.covered} of ${v.pairs.sampled} sampled (of ${fmt.int(v.pairs.total)})${v.pairs.stopped ? ', stopped by the time budget' : ''} |
| tenants involved | ${v.tenants} |
| per pair (${d.tables} datasets × ${v.probes} probes) | ${secs(v.perPairMs)} |
| results | ${fmt.int(v.summary.pass)} pass, ${v.summary.leak} leak, ${v.summary.error} error, ${fmt.int(v.summary.skipped)} skipped |

| path | probe runs |
| --- | ---: |
${pathRows.join('\n')}

**Goal (verify under ${VERIFY_GOAL_MS / 1000} s, saying how many pairs it covered) holds? ${yesNo(v.ms < VERIFY_GOAL_MS)}** (${secs(v.ms)}; ${v.pairs.covered} pairs).
`;
}
