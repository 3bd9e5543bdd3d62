/** docs/benchmarks.md and the console summary, from one run's results. */
import type { ApplyResult } from './apply.ts';
import { auditSection, auditSummaryLines, type AuditBenchResult } from './audit.ts';
import { noisySection, noisySummaryLines, type NoisyResult } from './noisy.ts';
import { tiersSection, tiersSummaryLines, type TiersResult } from './tiers.ts';
import { PEERS_CHART, peersSection, peersSummaryLines, type PeersResult } from './peers.ts';
import { scaleSection, scaleSummaryLines, type ScaleResult } from './scale.ts';
import { startupSection, startupSummaryLines, type StartupResult } from './startup.ts';
import { offboardingSection, offboardingSummaryLines, type OffboardingResult } from './offboarding.ts';
import { migrateSection, migrateSummaryLines, type MigrateBenchResult } from './migrate.ts';
import { doctorSection, doctorSummaryLines, type DoctorResult } from './doctor.ts';
import { ROWS_PER_TENANT, TENANTS } from './dataset.ts';
import type { HttpResult } from './http.ts';
import { httpSection, httpSummaryLines, plannerSection, plannerSummaryLines } from './report-query.ts';
import type { PgbenchResult } from './pgbench.ts';
import type { PlannerResult } from './sql-planner.ts';
import { fmt, median, type Machine } from './support.ts';
import type { PointQueryResult, VariantResult } from './with-tenant.ts';

export const RATIO_GOAL = 0.7;
export const ADD_TENANT_GOAL_MS = 1000;

export interface RunResults {
  machine: Machine;
  apply?: ApplyResult | undefined;
  point?: PointQueryResult | undefined;
  pgbench?: PgbenchResult[] | undefined;
  setup?: { load: number; apply: number; changes: number } | undefined;
  http?: HttpResult | undefined;
  planner?: PlannerResult | undefined;
  doctor?: DoctorResult | undefined;
  audit?: AuditBenchResult | undefined;
  quotas?: NoisyResult | undefined;
  tiers?: TiersResult | undefined;
  peers?: PeersResult | undefined;
  scale?: ScaleResult | undefined;
  startup?: StartupResult | undefined;
  offboarding?: OffboardingResult | undefined;
  migrate?: MigrateBenchResult | undefined;
  totalSeconds: number;
}

const yesNo = (b: boolean) => (b ? 'yes' : 'no');
const byKey = <T extends { key: string }>(xs: T[] | undefined, key: string) => xs?.find((x) => x.key === key);

export function pointRatios(point: PointQueryResult) {
  const a = byKey(point.variants, 'A') as VariantResult;
  const b = byKey(point.variants, 'B') as VariantResult;
  const c = byKey(point.variants, 'C') as VariantResult;
  return { a, b, c, ab: a.tps / b.tps, cb: c.tps / b.tps, ac: a.tps / c.tps };
}

export function summary(r: RunResults): string {
  const out = ['', `tenantgate benchmarks (${r.machine.cpus} CPUs, ${r.machine.postgres.split(' on ')[0]}, Node ${r.machine.node})`];
  if (r.point) {
    const { a, b, c, ab, ac } = pointRatios(r.point);
    out.push(
      `point query, concurrency ${r.point.concurrency}: A withTenant ${fmt.int(a.tps)}/s, B no RLS ${fmt.int(b.tps)}/s, C no pipeline ${fmt.int(c.tps)}/s`,
      `  A/B = ${fmt.ratio(ab)} (goal >= ${RATIO_GOAL}: ${yesNo(ab >= RATIO_GOAL)}), A/C = ${fmt.ratio(ac)}; p50/p99 ms A ${fmt.ms(a.p50)}/${fmt.ms(a.p99)}, B ${fmt.ms(b.p50)}/${fmt.ms(b.p99)}, C ${fmt.ms(c.p50)}/${fmt.ms(c.p99)}`,
      `  CPU µs/op (Node + server): ${r.point.variants.map((v) => `${v.key} ${Math.round(v.nodeUs)}+${v.serverUs === undefined ? '?' : Math.round(v.serverUs)}`).join(', ')}`,
    );
    const protos = r.point.variants.filter((v) => v.prototype);
    if (protos.length) out.push(`  prototypes vs B: ${protos.map((v) => `${v.key} ${fmt.ratio(v.tps / b.tps)}`).join(', ')}`);
  }
  if (r.pgbench) out.push(`pgbench: ${r.pgbench.map((p) => `${p.key} ${fmt.int(p.tps)} tps`).join(', ')}`);
  else if (r.point) out.push('pgbench: not found, skipped');
  if (r.apply) {
    const first = r.apply.adds[0] as ApplyResult['adds'][number];
    out.push(
      `apply ${r.apply.tenants} tenants: ${fmt.int(r.apply.fresh.totalMs)} ms; no-op apply ${fmt.int(r.apply.noop.totalMs)} ms; add tenant #${r.apply.tenants + 1}: ${fmt.int(first.totalMs)} ms (goal < ${ADD_TENANT_GOAL_MS} ms: ${yesNo(first.totalMs < ADD_TENANT_GOAL_MS)})`,
    );
  }
  if (r.http) out.push(...httpSummaryLines(r.http));
  if (r.planner) out.push(...plannerSummaryLines(r.planner));
  if (r.doctor) out.push(...doctorSummaryLines(r.doctor));
  if (r.audit) out.push(...auditSummaryLines(r.audit));
  if (r.quotas) out.push(...noisySummaryLines(r.quotas));
  if (r.tiers) out.push(...tiersSummaryLines(r.tiers));
  if (r.peers) out.push(...peersSummaryLines(r.peers));
  if (r.scale) out.push(...scaleSummaryLines(r.scale));
  if (r.startup) out.push(...startupSummaryLines(r.startup));
  if (r.offboarding) out.push(...offboardingSummaryLines(r.offboarding));
  if (r.migrate) out.push(...migrateSummaryLines(r.migrate));
  out.push(`total ${Math.round(r.totalSeconds)} s`);
  return out.join('\n');
}

function table(head: string[], rows: string[][]): string {
  const line = (cells: string[]) => `| ${cells.join(' | ')} |`;
  const text = new Set(['', 'variant', 'script', 'prototype', 'step']);
  return [line(head), line(head.map((h) => (text.has(h) ? '---' : '---:'))), ...rows.map(line)].join('\n');
}

export function renderReport(r: RunResults): string {
  const m = r.machine;
  const parts: string[] = [];
  parts.push(`# Benchmarks

Written by \`npm run bench\` (bench/run.ts) on ${m.date.slice(0, 10)}; rerun it rather than editing this file.
It needs a PostgreSQL server on 127.0.0.1 (\`DATABASE_URL\`, default \`postgres://postgres@127.0.0.1:5432/postgres\`),
creates a database \`tg_bench_<random>\` (and \`tg_bench_<random>_apply\`, \`tg_bench_<random>_doctor\`) and roles under a random prefix, and
drops them all at the end. The whole run took ${Math.round(r.totalSeconds)} s.

## Machine

| | |
|---|---|
| CPUs (\`nproc\`) | ${m.cpus} |
| CPU model | ${m.cpuModel} |
| memory | ${m.memoryGiB} GiB |
| PostgreSQL | ${m.postgres} |
| Node | ${m.node} (pg ${m.pg}) |
| date | ${m.date} |

The load generator (Node, or pgbench) and the server share these ${m.cpus} CPUs, so every number
here is "client + server on one small box". Other work on the machine adds noise to absolute
numbers; the variants of one benchmark run in interleaved rounds (A, B, C, then B, C, A, …) so
their ratios are comparable even when the absolute numbers move.
`);

  if (r.point) parts.push(pointSection(r));
  if (r.apply) parts.push(applySection(r.apply));
  if (r.http) parts.push(httpSection(r.http, m.cpus));
  if (r.planner) parts.push(plannerSection(r.planner));
  if (r.doctor) parts.push(doctorSection(r.doctor, m.date));
  if (r.audit) parts.push(auditSection(r.audit, m.date));
  if (r.quotas) parts.push(noisySection(r.quotas, m.date));
  if (r.tiers) parts.push(tiersSection(r.tiers, m.date));
  if (r.peers) parts.push(peersSection(r.peers, m.date, PEERS_CHART));
  if (r.scale) parts.push(scaleSection(r.scale, m.date));
  if (r.startup) parts.push(startupSection(r.startup, m.date));
  if (r.offboarding) parts.push(offboardingSection(r.offboarding, m.date));
  if (r.migrate) parts.push(migrateSection(r.migrate, m.date));
  parts.push(`## Running it

\`\`\`
npm run bench                                  # everything; rewrites this file
DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres npm run bench
npx tsx bench/run.ts --only=point --no-write   # one benchmark (point|apply|http|planner|doctor|audit|quotas|tiers|peers|scale|startup|offboarding|migrate), report on stdout
BENCH_SECONDS=2 BENCH_ROUNDS=1 npx tsx bench/run.ts --no-write   # a quick look
\`\`\`

The runner refuses any server but 127.0.0.1. \`--no-profile\` skips the profiled HTTP round, \`--json=FILE\` also writes the raw
results, \`BENCH_WRK_THREADS\` sets wrk's threads (default 1). The HTTP benchmark needs \`wrk\` (installed with apt-get when
missing and running as root, otherwise skipped with a note) and uses \`pgbench\` for its baseline. Benchmark 9 also starts
\`tenantgate serve\`, bench/peers/minimal.ts and PostGraphile 4.14 (a devDependency, bench/peers/postgraphile.ts) as processes of
their own; \`--from-json=FILE\` rewrites this file from a \`--json\` dump without measuring again.
Files: \`bench/run.ts\` (entry), \`bench/with-tenant.ts\` (benchmark 1), \`bench/pgbench.ts\`, \`bench/prototypes.ts\`
(the D/E/F/H variants), \`bench/apply.ts\` (benchmark 2), \`bench/http.ts\` (benchmark 3), \`bench/wire.ts\` and
\`bench/wire-pgbench.ts\` (recording the gateway's wire traffic, pgbench scripts from it), \`bench/profile.ts\` (the CPU profile),
\`bench/sql-planner.ts\` (benchmark 4), \`bench/doctor.ts\` (benchmark 5), \`bench/audit.ts\` (benchmark 6), \`bench/noisy.ts\` and \`bench/load-client.ts\` (benchmark 7), \`bench/tiers.ts\` (benchmark 8), \`bench/peers.ts\`, \`bench/peers/\` and \`bench/chart.ts\` (benchmark 9 and its chart), \`bench/scale.ts\` (benchmark 10), \`bench/startup.ts\` (benchmark 11), \`bench/offboarding.ts\` and \`bench/suspension.ts\` (benchmark 12), \`bench/migrate.ts\` (benchmark 13), \`bench/dataset.ts\`, \`bench/support.ts\`, \`bench/report.ts\` and
\`bench/report-query.ts\` (write this file).
`);
  return `${parts.join('\n')}\n`;
}

const us = (x: number | undefined) => (x === undefined ? 'n/a' : fmt.int(x));
const cpuTotal = (v: VariantResult) => (v.serverUs === undefined ? undefined : v.nodeUs + v.serverUs);

function pointSection(r: RunResults): string {
  const p = r.point as PointQueryResult;
  const { a, b, c, ab, cb, ac } = pointRatios(p);
  const row = (v: VariantResult) => [
    `**${v.key}**`,
    v.label,
    fmt.int(v.tps),
    v.rounds.map(fmt.int).join(' / '),
    fmt.ms(v.p50),
    fmt.ms(v.p99),
    `**${fmt.ratio(v.tps / b.tps)}**`,
  ];
  const head = ['', 'variant', 'ops/s', 'rounds (ops/s)', 'p50 ms', 'p99 ms', 'vs B'];
  const main = p.variants.filter((v) => !v.prototype);
  const protos = p.variants.filter((v) => v.prototype);
  const s = byKey(p.variants, 'S');
  const out: string[] = [];
  out.push(`## 1. Point query by id through \`withTenant\`

${fmt.int(TENANTS)} tenants × ${fmt.int(ROWS_PER_TENANT)} rows: \`public.orders(id bigserial primary key, tenant_id text not null, region, status, amount numeric, created_at)\`
with an index on \`(tenant_id, id)\`, loaded with \`INSERT … SELECT generate_series\`${r.setup ? ` (${fmt.int(r.setup.load)} ms with indexes and \`VACUUM ANALYZE\`)` : ''}, then
\`applyProvision\` from a config listing the ${fmt.int(TENANTS)} tenants${r.setup ? ` (${fmt.int(r.setup.apply)} ms, ${fmt.int(r.setup.changes)} changes)` : ''}.
Before timing, the run checks that a tenant reads its own row and not its neighbour's, and that
the gateway query is an index scan. Each operation picks a random tenant and one of its ids.
${p.concurrency} concurrent callers, pool size ${p.concurrency}, connections kept open; ${p.rounds} interleaved rounds of ${p.seconds} s per
variant after a 1 s warm-up. Throughput is the median of the rounds; p50/p99 are over every
operation of every round, in milliseconds, measured in Node around the call.

- **A**: \`gate.withTenant({ tenant, access: 'read' }, db => db.query({ name: 'pt', text: 'SELECT id, tenant_id, region, amount FROM public.orders WHERE id = $1', values: [id] }))\`,
  gate from \`createTenantGate({ gatewayUrl })\` (gateway login, pipelining on).
- **B**: a plain \`pg.Pool\` as the owner (superuser: no RLS), no transaction, prepared
  \`SELECT id, tenant_id, region, amount FROM public.orders WHERE tenant_id = $1 AND id = $2\`.
- **C**: as A on \`openDatabase(gatewayUrl, { max: ${p.concurrency} })\` (pipelining off) passed as \`database\`.
- **S**: \`gate.statement({ tenant, access: 'read' }, { text, values })\` on A's gate: context and statement under one
  Sync (what the HTTP gateway executes with).

${table(head, main.map(row))}

- **A/B = ${fmt.ratio(ab)}** (issue goal ≥ ${RATIO_GOAL}); per round, A over the B of the same round: ${a.rounds.map((x, i) => fmt.ratio(x / (b.rounds[i] as number))).join(' / ')}. C/B = ${fmt.ratio(cb)}.
- Pipelining (A vs C): ${fmt.ratio(ac)}× the throughput, p50 ${fmt.ms(c.p50)} → ${fmt.ms(a.p50)} ms.

${s ? `- **S/B = ${fmt.ratio(s.tps / b.tps)}**: the one-statement path the gateway uses.
` : ''}
**Goal holds? ${yesNo(ab >= RATIO_GOAL)}** (withTenant A/B = ${fmt.ratio(ab)}${s ? `; gate.statement S/B = ${fmt.ratio(s.tps / b.tps)}` : ''}; goal ≥ ${RATIO_GOAL}).
`);
  if (r.pgbench) out.push(pgbenchSection(r.pgbench, a, b));
  out.push(analysis(r, protos));
  return out.join('\n');
}

function pgbenchSection(pg: PgbenchResult[], a: VariantResult, b: VariantResult): string {
  const p0 = byKey(pg, 'P0') as PgbenchResult;
  const p1 = byKey(pg, 'P1') as PgbenchResult;
  const p2 = byKey(pg, 'P2') as PgbenchResult;
  const p3 = byKey(pg, 'P3');
  const p4 = byKey(pg, 'P4');
  const rows = pg.map((v) => [`**${v.key}**`, v.label, fmt.int(v.tps), v.rounds.map(fmt.int).join(' / '), fmt.ms(v.latencyMs), fmt.ratio(v.tps / p0.tps)]);
  return `### The database's own ceiling (pgbench)

pgbench on the same data, \`-M prepared -c 8 -j 2\`, interleaved rounds like above; P1–P4 log in as the
gateway login and send the gateway's exact statements (\`SELECT set_config('role', …, true), set_config('tenantgate.tenant', …, true),
set_config('tenantgate.mac', …, true), set_config('statement_timeout', …, true)\` with the real HMAC from
\`contextMac(deriveKey(secret, 'context'), tenant)\`), so the policy checks the signature exactly as in A.
pgbench cannot build strings, so each of 32 script files carries one tenant's context and pgbench picks
one at random per transaction (ids random within that tenant). A pgbench pipeline ends with a single
Sync, so P1 is the whole transaction in one message batch.

${table(['', 'script', 'tps', 'rounds (tps)', 'latency avg ms', 'vs P0'], rows)}

- RLS + signed context + transaction, one round trip (P1/P0): **${fmt.ratio(p1.tps / p0.tps)}**: what the server itself costs for the
  gateway's transaction against the plain statement, with a client (pgbench, in C) far cheaper than Node.
- The same with COMMIT in a second round trip, as \`withTenant\` does it (P2/P0): ${fmt.ratio(p2.tps / p0.tps)}.
${p3 ? `- Without the HMAC check in the policy (P3/P0): ${fmt.ratio(p3.tps / p0.tps)}; the signature check costs ${fmt.ratio(1 - p1.tps / p3.tps)} of P3's throughput.\n` : ''}${p4 ? `- Context and query as one implicit transaction, no BEGIN/COMMIT (P4/P0): ${fmt.ratio(p4.tps / p0.tps)}.\n` : ''}- \`withTenant\` from Node reaches ${fmt.ratio(a.tps / p2.tps)} of what pgbench gets from the same statements (A/P2),
  and the plain Node query reaches ${fmt.ratio(b.tps / p0.tps)} of pgbench's (B/P0).
`;
}

function analysis(r: RunResults, protos: VariantResult[]): string {
  const p = r.point as PointQueryResult;
  const { a, b, c, ab } = pointRatios(p);
  const all = [a, b, c, ...protos];
  const cpuKnown = all.every((v) => v.serverUs !== undefined);
  const rows = all.map((v) => [
    `**${v.key}**`,
    fmt.int(v.tps),
    `**${fmt.ratio(v.tps / b.tps)}**`,
    us(v.nodeUs),
    us(v.serverUs),
    us(cpuTotal(v)),
    cpuKnown ? fmt.ratio((cpuTotal(b) as number) / (cpuTotal(v) as number)) : 'n/a',
  ]);
  const busy = median(all.flatMap((v) => (v.machineBusy === undefined ? [] : [v.machineBusy])));
  const d = byKey(protos, 'D');
  const e = byKey(protos, 'E');
  const h = byKey(protos, 'H');
  const pg = r.pgbench;
  const p1 = byKey(pg, 'P1');
  const p0 = byKey(pg, 'P0');
  const p3 = byKey(pg, 'P3');
  const goalText =
    ab >= RATIO_GOAL
      ? `A/B = ${fmt.ratio(ab)} meets the goal of ${RATIO_GOAL}; the breakdown below shows what the remaining gap is made of.`
      : `A/B = ${fmt.ratio(ab)} is below the goal of ${RATIO_GOAL}. The numbers below say where the time goes.`;
  const protoRows = protos.map((v) => [`**${v.key}**`, v.label, fmt.int(v.tps), v.rounds.map(fmt.int).join(' / '), fmt.ms(v.p50), fmt.ms(v.p99), `**${fmt.ratio(v.tps / b.tps)}**`]);
  const lines: string[] = [];
  lines.push(`### Where the time goes

${goalText}

Client and server share ${r.machine.cpus} cores, and during the rounds the machine was ${Number.isFinite(busy) ? `${Math.round(busy * 100)}%` : 'n/a'} busy
(median; other work on the machine included), so throughput is set by CPU per operation rather than
by latency. CPU per operation, measured in the same rounds: Node from \`process.cpuUsage()\`, the
server as the user+system time of the benchmark database's backends (\`/proc/<pid>/stat\`). "CPU
ratio" is B's total over the variant's: the throughput ratio to expect if CPU were the only limit.

${table(['', 'ops/s', 'vs B', 'Node µs/op', 'server µs/op', 'total µs/op', 'CPU ratio'], rows)}

Prototypes of changes (bench/prototypes.ts; not library code: the same context, the same
statement, the same isolation, checked before timing, only packed differently on the wire):

${table(['', 'prototype', 'ops/s', 'rounds (ops/s)', 'p50 ms', 'p99 ms', 'vs B'], protoRows)}
`);
  const f = byKey(protos, 'F');
  const p4 = byKey(pg, 'P4');
  const bullets: string[] = [];
  bullets.push(
    `**Statements, writes and Syncs, not SQL.** B is one prepared statement: one socket write, one Sync, one flush back. A is four
  statements (BEGIN READ ONLY, the context \`SELECT set_config(…) ×4\`, the query — corked into one write — then
  \`RESET ALL; RESET ROLE; RESET SESSION AUTHORIZATION; DISCARD TEMP; COMMIT\`) in two round trips; pg's pipeline mode
  writes each statement to the socket separately and makes each its own protocol exchange (a Sync, or a simple Query),
  so the server answers each with a ReadyForQuery and a flush. Node pays per statement (a Query object, a promise, a socket write: ${us(a.nodeUs)} vs ${us(b.nodeUs)} µs/op)
  and so does the server (${us(a.serverUs)} vs ${us(b.serverUs)} µs/op). A CPU profile of A (\`node --cpu-prof\`, taken while writing
  this benchmark) put about 40% of Node's busy time in the socket writes themselves (\`writeBuffer\`/\`writev\`: syscalls are dear in
  this VM), and little in tenantgate's own code.`,
  );
  bullets.push(`**Pipelining matters** (A vs C: ${fmt.ratio(a.tps / c.tps)}×): without it the same four statements take four round trips.`);
  if (f) bullets.push(`**Fewer writes alone** (F: \`withTenant\` unchanged but BEGIN, context and first statement corked into one write): ${fmt.ratio(f.tps / b.tps)} of B, Node ${us(a.nodeUs)} → ${us(f.nodeUs)} µs/op.`);
  if (d) bullets.push(`**One round trip instead of two** (D: all four statements, COMMIT included, in one write): ${fmt.ratio(d.tps / b.tps)} of B, ${us(cpuTotal(d))} µs/op (A: ${us(cpuTotal(a))}).`);
  if (e)
    bullets.push(
      `**One Sync** (E: context and query as one implicit transaction under one Sync, no BEGIN/COMMIT, read-only by
  \`set_config('transaction_read_only', 'on', true)\`; settings, timeout and read-only end with the implicit transaction):
  ${fmt.ratio(e.tps / b.tps)} of B, ${us(e.nodeUs)} + ${us(e.serverUs)} µs/op.${p4 && p0 ? ` pgbench sending the same (P4/P0): ${fmt.ratio(p4.tps / p0.tps)}.` : ''}`,
    );
  if (e && h)
    bullets.push(
      `**The HMAC check in the policy** (H vs E, same wire format): server ${us(e.serverUs)} → ${us(h.serverUs)} µs/op, ${fmt.ratio(e.tps / b.tps)} → ${fmt.ratio(h.tps / b.tps)} of B.
  \`tenantgate.gateway_tenant()\` is a SECURITY DEFINER plpgsql function with \`SET search_path\` that reads the key
  table through SPI and hashes twice; as an InitPlan it runs once per query${p3 && p1 ? `. pgbench agrees: P3/P1 = ${fmt.ratio(p3.tps / p1.tps)}` : ''}.`,
    );
  if (p1 && p0)
    bullets.push(
      `**Reading pgbench beside Node.** pgbench's client costs next to nothing, so its ratios (P1/P0 = ${fmt.ratio(p1.tps / p0.tps)}) compare
  server work alone. In Node every statement also costs client CPU (B: ${us(b.nodeUs)} µs of Node for ${us(b.serverUs)} µs of server per
  operation): that makes A (four statements) dearer still, and dilutes the server-side difference for the one-statement
  prototypes. The issue's ratio is the Node one; pgbench says how much of the server's share is the transaction's
  shape rather than RLS.`,
    );
  const reach = protos.filter((v) => v.tps / b.tps >= RATIO_GOAL);
  bullets.push(
    `**Against the goal.** Prototypes over B in this run: ${protos.map((v) => `${v.key} ${fmt.ratio(v.tps / b.tps)}`).join(', ')}; ${
      reach.length ? `${reach.map((v) => v.key).join(' and ')} reach${reach.length === 1 ? 'es' : ''} ${RATIO_GOAL}` : `none reaches ${RATIO_GOAL} on this machine`
    }.`,
  );
  lines.push(bullets.map((x) => `- ${x}`).join('\n'));
  lines.push(`
What changed because of these measurements: the gateway now executes its one-statement plans as
context + statement under one Sync (\`gate.statement\`, variant S, the shipped form of prototype E), and
\`withTenant\` corks BEGIN, the context and the callback's first statement into one write (what prototype F
measured). What is left: the HMAC check (E → H), weighed against what it defends (SQL inside \`withTenant\`
that rewrites the tenant setting sees no tenant; without the signature it would see another tenant's rows),
and the two round trips \`withTenant\` needs because a callback may run several statements.`);
  return `${lines.join('\n')}\n`;
}

function applySection(a: ApplyResult): string {
  const first = a.adds[0] as ApplyResult['adds'][number];
  const rows = [a.fresh, a.noop, ...a.adds].map((s) => [s.label, fmt.int(s.loadMs), fmt.int(s.applyMs), `**${fmt.int(s.totalMs)}**`, fmt.int(s.changes)]);
  return `## 2. \`apply\` with ${fmt.int(a.tenants)} tenants

The operator path on a fresh database (its own role prefix): \`tenantgate.yaml\` plus one
\`tenants/<id>.yaml\` per tenant written by \`writeTenantFile\` (as \`tenant add\` does; writing the
${fmt.int(a.tenants)} files took ${fmt.int(a.writeFilesMs)} ms), then \`loadConfig\` + \`applyProvision\` on an open owner
connection. "load" is reading and validating the config with every tenant file; "total" includes
writing the new tenant's file where there is one.

${table(['step', 'load ms', 'apply ms', 'total ms', 'changes'], rows)}
${a.cliAddMs !== undefined ? `\nFor reference, \`tenantgate tenant add ${'t' + String(a.tenants + 3).padStart(4, '0')}\` as a new process (Node start, tsx, SQL parser load, config loaded twice, connect, apply, exit): ${fmt.int(a.cliAddMs)} ms${a.cliStartMs !== undefined ? `, of which ${fmt.int(a.cliStartMs)} ms is starting the CLI at all (\`tenantgate --help\`)` : ''}.\n` : ''}
- Adding tenant #${fmt.int(a.tenants + 1)}: ${fmt.int(first.totalMs)} ms (median of #${a.tenants + 1}–#${a.tenants + a.adds.length}: ${fmt.int(a.addMedianMs)} ms).

**Goal holds? ${yesNo(first.totalMs < ADD_TENANT_GOAL_MS)}** (adding tenant #${fmt.int(a.tenants + 1)} takes ${fmt.int(first.totalMs)} ms, goal < ${fmt.int(ADD_TENANT_GOAL_MS)} ms).
`;
}
