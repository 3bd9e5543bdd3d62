/** docs/benchmarks.md sections 3 (query APIs over HTTP) and 4 (SQL endpoint planning). */
import { KEY_TENANTS, SEMANTIC_BODY, SQL_BODY, type HttpResult, type HttpVariantResult } from './http.ts';
import type { PlannerResult } from './sql-planner.ts';
import { fmt } from './support.ts';
import { abbreviate, sameText, type ScriptCommand } from './wire-pgbench.ts';
import type { ProfileSummary } from './profile.ts';
import type { RoundTrip } from './wire.ts';

export const HTTP_RATIO_GOAL = 0.5;
export const PLANNER_HIT_GOAL_US = 50;
export const PLANNER_MISS_GOAL_US = 200;

const yesNo = (b: boolean) => (b ? 'yes' : 'no');
const us = (x: number | undefined) => (x === undefined ? 'n/a' : fmt.int(x));
const pct = (x: number) => `${Math.round(x * 100)}%`;
const byKey = (h: HttpResult, key: string) => h.variants.find((v) => v.key === key);

function table(head: string[], rows: string[][], textColumns: number[] = [0, 1]): string {
  const line = (cells: string[]) => `| ${cells.join(' | ')} |`;
  return [line(head), line(head.map((_, i) => (textColumns.includes(i) ? '---' : '---:'))), ...rows.map(line)].join('\n');
}

const BACKEND: Record<string, string> = {
  '1': 'ParseComplete',
  '2': 'BindComplete',
  T: 'RowDescription',
  D: 'DataRow',
  C: 'CommandComplete',
  Z: 'ReadyForQuery',
  n: 'NoData',
  S: 'ParameterStatus',
  E: 'ErrorResponse',
  N: 'NoticeResponse',
  I: 'EmptyQueryResponse',
};

function serverAnswers(trip: RoundTrip): string {
  return Object.entries(trip.server)
    .map(([t, n]) => `${BACKEND[t] ?? t}${n > 1 ? ` ×${n}` : ''}`)
    .join(', ');
}

function statementName(cmd: ScriptCommand): string {
  const st = cmd.from;
  if (st.protocol === 'simple') return 'simple Query';
  if (st.name === '') return 'unnamed (Parse every time)';
  return `\`${st.name}\` (named; ${st.parsed ? 'Parse sent in this request' : 'prepared earlier on the connection, no Parse'})`;
}

function paramLabels(cmd: ScriptCommand, constants: Record<string, string>): string {
  if (cmd.vars.length === 0) return 'none';
  return cmd.vars
    .map((v, i) => `$${i + 1} = ${v === 'tenant' ? 'tenant id' : v === 'mac' ? "the tenant's HMAC" : v === 'id' ? 'the row id' : `'${constants[v]}'`}`)
    .join(', ');
}

export function httpSummaryLines(h: HttpResult): string[] {
  if (h.skipped) return [`HTTP query APIs: skipped (${h.skipped})`];
  const h1 = byKey(h, 'H1') as HttpVariantResult;
  const h2 = byKey(h, 'H2') as HttpVariantResult;
  const g1 = byKey(h, 'G1');
  const out = [`HTTP semantic ${fmt.int(h1.rps)}/s (p50 ${fmt.ms(h1.p50Ms)} ms), SQL endpoint ${fmt.int(h2.rps)}/s (p50 ${fmt.ms(h2.p50Ms)} ms)`];
  if (g1) out.push(`  pgbench same statements (G1) ${fmt.int(g1.rps)} tps; H1/G1 = ${fmt.ratio(h1.rps / g1.rps)} (goal >= ${HTTP_RATIO_GOAL}: ${yesNo(h1.rps / g1.rps >= HTTP_RATIO_GOAL)}), H2/G1 = ${fmt.ratio(h2.rps / g1.rps)}`);
  return out;
}

export function plannerSummaryLines(p: PlannerResult): string[] {
  return [
    `SQL planner p50 µs (hit/miss): ${p.statements.map((s) => `${s.name} ${s.hitP50.toFixed(1)}/${s.missP50.toFixed(1)}`).join(', ')} (goals ${PLANNER_HIT_GOAL_US}/${PLANNER_MISS_GOAL_US}: ${yesNo(plannerHitHolds(p))}/${yesNo(plannerMissHolds(p))})`,
  ];
}

const plannerHitHolds = (p: PlannerResult) => p.statements.every((s) => s.hitP50 <= PLANNER_HIT_GOAL_US);
const plannerMissHolds = (p: PlannerResult) => p.statements.every((s) => s.missP50 <= PLANNER_MISS_GOAL_US);

export function httpSection(h: HttpResult, cpus: number): string {
  const head = `## 3. Query APIs over HTTP

The gateway as a client sees it: API key, tenant resolution, authorization, planning, one tenant-scoped
statement, JSON out. Same data as section 1, with \`id\` added to the dataset's \`dimensions\` so a semantic
query can filter on it. ${KEY_TENANTS} API keys (role \`analyst\`, read access), one per tenant, tenants spread over the table.
The gateway runs in the benchmark's Node process: \`createTenantGate({ config, gatewayUrl, secret, poolSize: ${h.poolSize} })\` →
\`Gateway.create\` (quotas off: benchmark 7 measures admission, benchmark 9 the gateway as shipped) → \`buildServer\` →
\`listen\` on 127.0.0.1, connections kept open.
`;
  if (h.skipped) return `${head}\n**Skipped:** ${h.skipped}. The SQL planner section below does not need it.\n`;
  const h1 = byKey(h, 'H1') as HttpVariantResult;
  const h2 = byKey(h, 'H2') as HttpVariantResult;
  const g1 = byKey(h, 'G1');
  const g2 = byKey(h, 'G2');
  const out: string[] = [head];
  out.push(`- **H1** \`POST /v1/query\`, \`X-API-Key\` of one tenant, body \`${JSON.stringify(SEMANTIC_BODY(15518)).replace('15518', '<id>')}\`
  (\`amount\` is no dimension; the point is one row by id).
- **H2** \`POST /v1/queries\` (SQL endpoint), body \`${JSON.stringify(SQL_BODY(15518)).replace('15518', '<id>')}\`.
- Load: \`wrk -t ${h.wrkThreads} -c ${h.concurrency} --latency\` with a Lua script that takes the keys in turn and, for each, a random id of that
  key's tenant. wrk, the gateway and PostgreSQL share the ${cpus} CPUs${h.wrkThreads === 1 ? ' (one wrk thread: a second one only competes for them)' : ''}.
  Any non-2xx answer or socket error fails the run.
- Before timing, every key asks both endpoints for one of its own rows (one row, that id) and for a neighbour's (no row).
- API keys are verified against the database once and then cached for 5 s, so about ${KEY_TENANTS} key look-ups per 5 s ride along.
`);
  if (h.example) {
    out.push(`One answer (from the check, the key's first request, so \`identify\` includes its database look-up):
\`${JSON.stringify(h.example.body)}\`, \`Server-Timing: ${h.example.serverTiming ?? ''}\`.
`);
  }
  if (h.wire) out.push(wireSection(h));
  const base = g1 ?? h1;
  const rows = h.variants.map((v) => [`**${v.key}**`, v.label, fmt.int(v.rps), v.rounds.map(fmt.int).join(' / '), fmt.ms(v.p50Ms), fmt.ms(v.p99Ms), g1 ? `**${fmt.ratio(v.rps / base.rps)}**` : 'n/a']);
  out.push(`### Results

${h.rounds} interleaved rounds of ${h.seconds} s per variant after a 1 s warm-up each; throughput is the median of the rounds (requests/s for wrk,
transactions/s without connection time for pgbench). p50/p99 in ms: for wrk the median over rounds of each round's
percentile (wrk's \`--latency\` histogram, measured at the client, so it includes HTTP); for pgbench over a 20% sample of every
round's transactions (\`--log --sampling-rate=0.2\`).

${table(['', 'variant', 'req/s', 'rounds', 'p50 ms', 'p99 ms', g1 ? 'vs G1' : ''], rows)}
`);
  const bullets: string[] = [];
  if (g1) {
    const ratio = h1.rps / g1.rps;
    bullets.push(
      `**H1/G1 = ${fmt.ratio(ratio)}** (issue goal ≥ ${HTTP_RATIO_GOAL}); per round, H1 over the G1 of the same round: ${h1.rounds.map((x, i) => fmt.ratio(x / (g1.rounds[i] as number))).join(' / ')}.`,
      `The SQL endpoint: H2/G1 = ${fmt.ratio(h2.rps / g1.rps)}, H2/H1 = ${fmt.ratio(h2.rps / h1.rps)}.`,
    );
    if (g2) bullets.push(`pgbench in the other protocol mode (G2, \`${(g2.label.split(':')[0] ?? '').replace('pgbench ', '')}\`): ${fmt.int(g2.rps)} tps, ${fmt.ratio(g2.rps / g1.rps)} of G1; H1/G2 = ${fmt.ratio(h1.rps / g2.rps)}.`);
  } else {
    bullets.push('pgbench was not found, so there is no database baseline and no ratio.');
  }
  out.push(bullets.map((b) => `- ${b}`).join('\n'));
  if (g1) {
    const ratio = h1.rps / g1.rps;
    out.push(`\n**Goal holds? ${yesNo(ratio >= HTTP_RATIO_GOAL)}** (H1/G1 = ${fmt.ratio(ratio)}, goal ≥ ${HTTP_RATIO_GOAL}).\n`);
  }
  out.push(cpuSection(h, cpus));
  if (h.profile) out.push(profileSection(h));
  return out.join('\n');
}

function wireSection(h: HttpResult): string {
  const w = h.wire as NonNullable<HttpResult['wire']>;
  const trips = w.capture.roundTrips;
  const statements = trips.flatMap((t) => t.statements);
  const explicit = statements.some((s) => /^\s*BEGIN\b/i.test(s.text));
  const syncs = trips.reduce((a, t) => a + t.syncPoints, 0);
  const writes = trips.reduce((a, t) => a + t.writes, 0);
  const shape = `${trips.length} round trip${trips.length === 1 ? '' : 's'}, ${writes} socket write${writes === 1 ? '' : 's'}, ${syncs} Sync/Query message${syncs === 1 ? '' : 's'}; ${
    explicit ? 'an explicit transaction (BEGIN … COMMIT)' : syncs === 1 ? 'no BEGIN/COMMIT: the statements form one implicit transaction that ends at the Sync' : 'no BEGIN/COMMIT'
  }`;
  const rows = trips.map((t, i) => [
    String(i + 1),
    String(t.writes),
    `\`${t.messages.map((m) => m.type).join(' ')}\``,
    String(t.statements.length),
    serverAnswers(t),
  ]);
  const cmds = w.shape.trips.flat();
  const sql = cmds.map((c, i) => `-- ${i + 1}. ${statementName(c).replace(/`/g, '')}; parameters: ${paramLabels(c, w.shape.constants).replace(/\n/g, ' ')}\n${c.text};`).join('\n\n');
  const primary = w.primaryMode;
  const other = primary === 'prepared' ? 'extended' : 'prepared';
  const diff = (mode: 'extended' | 'prepared') => (w.differences[mode].length ? w.differences[mode].map((d) => `  - ${d}`).join('\n') : '  - none: the same messages in the same order, the same statement texts and parameters, one Sync per request');
  const renumbered = cmds.some((c) => !sameText(c));
  return `### What the gateway sends, and what pgbench sends

Recorded off the gateway's own socket during one H1 request (bench/wire.ts decodes every protocol message the
pg client writes; a write that follows an answer from the server starts a new round trip), after one warm-up request.
This is src/execute as it was at the time of the run (\`gate.statement\` → \`runTenantStatement\` when this was written): ${shape}.

${table(['round trip', 'socket writes', 'frontend messages', 'statements', 'server answered'], rows, [0, 2, 4])}

(P Parse, B Bind, D Describe, E Execute, S Sync, Q simple Query.) The statements, as sent; the data statement is exactly
\`compileSemantic\`'s output for the request:

\`\`\`sql
${sql}
\`\`\`

The pgbench scripts are built from that recording: one script file per tenant with a key, each round trip of the gateway
one pgbench pipeline (\`\\startpipeline … \\endpipeline\`, which pgbench ends with one Sync), every \`$n\` a pgbench variable
so pgbench sends it as a bind parameter too${renumbered ? '' : ' and the statement text is byte for byte the gateway\'s'}: the tenant and its HMAC per file
(\`-D tenant_<j>=… -D mac_<j>=…\`, the real \`contextMac\`), the id from \`\\set\`, the rest as constants (\`-D c<k>=…\`).
Before timing, the same statements framed as pgbench frames them are replayed as the gateway login: one row for the
tenant's own id, none for a neighbour's. pgbench runs as the gateway login with \`-c ${h.concurrency} -j ${h.pgbenchThreads}\` (the gateway's
pool size), one file chosen at random per transaction. The file for ${abbreviate(w.exampleScript.split('\n')[0] ?? '', 80).replace('\\set id ', 'ids from ')}:

\`\`\`
${w.exampleScript.trimEnd()}
\`\`\`

How pgbench's traffic differs from the gateway's:
- **G1** (\`-M ${primary}\`, the mode that matches how the gateway sends its data statement):
${diff(primary)}
- **G2** (\`-M ${other}\`):
${diff(other)}
${w.sqlEndpointSql ? `\nFor H2 the gateway sends the same context statement and, as the data statement, the SQL endpoint's rewrite:\n\n\`\`\`sql\n${w.sqlEndpointSql};\n\`\`\`\n` : ''}`;
}

function cpuSection(h: HttpResult, cpus: number): string {
  const rows = h.variants.map((v) => {
    const total = v.tool === 'wrk' && v.nodeUs !== undefined && v.serverUs !== undefined && v.clientUs !== undefined ? v.nodeUs + v.serverUs + v.clientUs : v.serverUs !== undefined && v.clientUs !== undefined ? v.serverUs + v.clientUs : undefined;
    return [`**${v.key}**`, fmt.int(v.rps), v.tool === 'wrk' ? us(v.nodeUs) : '–', us(v.serverUs), us(v.clientUs), us(total), total ? fmt.int((cpus * 1e6) / total) : 'n/a'];
  });
  const h1 = byKey(h, 'H1') as HttpVariantResult;
  const g1 = byKey(h, 'G1');
  const busy = h.variants.find((v) => v.machineBusy !== undefined)?.machineBusy;
  const lines = [
    `### Where the time goes

CPU per request in µs, medians over the rounds: the gateway (this Node process, \`process.cpuUsage()\`), the server (user+system time
of the backends serving it, from \`/proc/<pid>/stat\`; for pgbench sampled from 1 s after its start to 0.5 s before its end, as its
backends exist only while it runs), and the load generator (wrk's or pgbench's own CPU time). "CPU bound" is ${cpus} cores over the
total: the rate these costs alone would allow if nothing else ran on the machine${busy !== undefined ? ` (during the wrk rounds the machine was ${pct(busy)} busy, everything on it included)` : ''}.

${table(['', 'req/s', 'gateway µs', 'server µs', 'load generator µs', 'total µs', 'CPU bound req/s'], rows, [0])}
`,
  ];
  const bullets: string[] = [];
  if (h1.nodeUs !== undefined && h1.serverUs !== undefined) {
    bullets.push(
      `Per semantic request the gateway's Node process spends ${us(h1.nodeUs)} µs of CPU, the server ${us(h1.serverUs)} µs${g1?.serverUs !== undefined ? ` (pgbench's transactions with the same statements: ${us(g1.serverUs)} µs)` : ''}, wrk ${us(h1.clientUs)} µs${
        g1?.clientUs !== undefined ? ` (pgbench: ${us(g1.clientUs)} µs)` : ''
      }. With client, gateway and server on the same ${cpus} cores, throughput follows the sum.`,
    );
    if (g1?.serverUs !== undefined && h1.serverUs > g1.serverUs * 1.15) {
      bullets.push(
        `The server's share differs for the same statements (${us(h1.serverUs)} µs per gateway request, ${us(g1.serverUs)} per pgbench transaction). A gateway
  request reaches a backend that sat idle for most of the ${fmt.ms(h1.p50Ms)} ms (p50) a request takes end to end, against ${fmt.ms(g1.p50Ms)} ms under pgbench;
  waking it, with caches cooled by the gateway's own work in between, likely accounts for the difference.`,
      );
    }
    if (g1?.serverUs !== undefined && g1.clientUs !== undefined) {
      const gwTotal = h1.nodeUs + h1.serverUs + (h1.clientUs ?? 0);
      const pgTotal = g1.serverUs + g1.clientUs;
      bullets.push(
        `CPU ratio (pgbench's total over the gateway's): ${fmt.ratio(pgTotal / gwTotal)}, against a measured H1/G1 of ${fmt.ratio(h1.rps / g1.rps)}. Even with a free load generator and server-side work as cheap as pgbench's, the gateway's own ${us(h1.nodeUs)} µs would cap H1 at about ${fmt.int((cpus * 1e6) / (h1.nodeUs + g1.serverUs))} req/s on ${cpus} cores; reaching ${HTTP_RATIO_GOAL} of G1 (${fmt.int(HTTP_RATIO_GOAL * g1.rps)} req/s) needs gateway + server + wrk ≤ ${fmt.int((cpus * 1e6) / (HTTP_RATIO_GOAL * g1.rps))} µs per request.`,
      );
    }
  }
  if (bullets.length) lines.push(bullets.map((b) => `- ${b}`).join('\n'));
  if (h.layers?.length) lines.push(layersTable(h));
  return `${lines.join('\n')}\n`;
}

function layersTable(h: HttpResult): string {
  const layers = h.layers ?? [];
  const n1 = layers.find((l) => l.key === 'N1');
  const n2 = layers.find((l) => l.key === 'N2');
  const f0 = layers.find((l) => l.key === 'F0');
  const h1 = byKey(h, 'H1') as HttpVariantResult;
  const rows = layers.map((l) => [`**${l.key}**`, l.label, fmt.int(l.tps), us(l.nodeUs), us(l.serverUs)]);
  const out = [
    `
The gateway's own CPU split by layer. N1 and N2 are closed loops in the gateway's process (${h.concurrency} callers, ${h.seconds} s each, after
the rounds, same gate and pool, no HTTP); F0 is the HTTP floor: a bare Fastify app in the same process, driven by the same
wrk script, answering every request with the same JSON and doing nothing else:

${table(['', 'what', 'ops/s', 'Node µs/op', 'server µs/op'], rows)}
`,
  ];
  if (n1 && n2 && h1.nodeUs !== undefined) {
    const split = [
      ['pg: the one-Sync batch (context + statement), results to rows', 'N1', us(n1.nodeUs)],
      ['tenantgate: identify (key HMAC, cache), resolve, authorize, zod, compile, shape rows, Server-Timing', 'N2 − N1', us(n2.nodeUs - n1.nodeUs)],
      ['HTTP: Node http + Fastify (parse, route, hooks, request id, JSON body and reply, socket)', 'H1 − N2', `${us(h1.nodeUs - n2.nodeUs)}${f0 ? ` (bare Fastify: ${us(f0.nodeUs)})` : ''}`],
      ['**the gateway per HTTP request**', 'H1', `**${us(h1.nodeUs)}**`],
    ];
    out.push(`${table(['layer', 'from', 'Node µs/request'], split, [0, 1])}

(Differences of separate runs, so approximate; the wrk rounds also run with wrk and more context switches on the same cores.)`);
  }
  return out.join('\n');
}

function profileSection(h: HttpResult): string {
  const p = h.profile as NonNullable<HttpResult['profile']>;
  const s = p.summary;
  const top = s.top.map((f) => [`\`${f.name}\``, `\`${f.where}\``, f.category, fmt.int(f.ms), pct(f.share)]);
  const share = (name: RegExp) => s.categories.filter((c) => name.test(c.name)).reduce((a, c) => a + c.share, 0);
  const cpuMs = p.cpuUserMs !== undefined && p.cpuSystemMs !== undefined ? p.cpuUserMs + p.cpuSystemMs : undefined;
  const socket = s.categories.filter((c) => /^socket I\/O/.test(c.name)).reduce((a, c) => a + c.ms, 0);
  const cpuNote =
    cpuMs !== undefined
      ? ` The process used ${fmt.int(cpuMs)} ms of CPU in the round (all threads; user ${fmt.int(p.cpuUserMs as number)}, system ${fmt.int(p.cpuSystemMs as number)}${
          p.requests ? `: ${fmt.int((cpuMs * 1000) / p.requests)} µs per request, ${fmt.int(((p.cpuSystemMs as number) * 1000) / p.requests)} µs of it in the kernel` : ''
        }).
Samples on \`writev\` (${fmt.int(socket)} ms) are the socket writes in the kernel: on Linux a write to a loopback socket also runs the
receiving side's TCP and wakes the reader (wrk, or a PostgreSQL backend). The process's system time bounds what they really
cost; samples beyond it are the thread waiting for a CPU after such a wake-up. The last column leaves them out, to show how
the JavaScript time divides.`
      : '';
  const rest = s.busyMs - socket;
  const cats2 = s.categories.map((c) => [c.name, fmt.int(c.ms), pct(c.share), /^socket I\/O/.test(c.name) ? '–' : pct(c.ms / rest)]);
  return `### CPU profile of the gateway (H1)

One extra ${p.seconds} s H1 round (not in the table above) with the V8 sampling profiler on (\`node:inspector\` Session in the
gateway's process, 0.5 ms interval): ${fmt.int(p.rps)} req/s under the profiler. The main thread was busy ${fmt.int(s.busyMs)} ms of the ${fmt.int(s.wallMs)} ms
by the samples (the rest idle in the event loop).${cpuNote} Self time by where the code lives:

${table(['', 'self ms', 'share of samples', 'share without socket writes'], cats2, [0])}

The ${s.top.length} functions with the most self time:

${table(['function', 'where', 'category', 'self ms', 'share'], top, [0, 1, 2])}

- Without the socket-write samples: tenantgate's own code (src/: identify, resolve, authorize, compile, row shaping, the batch)
  ${pct(share(/^tenantgate/) / (1 - share(/^socket I\/O/)))}, pg ${pct(share(/^pg /) / (1 - share(/^socket I\/O/)))}, Fastify ${pct(share(/^Fastify/) / (1 - share(/^socket I\/O/)))}, JSON ${pct(share(/^JSON/) / (1 - share(/^socket I\/O/)))}, zod ${pct(share(/^zod/) / (1 - share(/^socket I\/O/)))},
  Node's http and net code ${pct(share(/^Node (net|http)/) / (1 - share(/^socket I\/O/)))}, GC ${pct(share(/^GC/) / (1 - share(/^socket I\/O/)))}. ${hottest(s)}
- Each request costs the gateway two socket writes (the HTTP answer, and context + statement to PostgreSQL in one write) and
  two reads; pgbench's transaction costs its client one of each. The system time above is what they cost on this machine.
`;
}

/** The hottest JS function outside socket writes, GC and "(program)", or a note that none stands out. */
function hottest(s: ProfileSummary): string {
  const socket = s.categories.filter((c) => /^socket I\/O/.test(c.name)).reduce((a, c) => a + c.ms, 0);
  const top = s.top.find((f) => !/^(socket I\/O|GC|V8\/Node runtime)/.test(f.category));
  const share = top ? top.ms / (s.busyMs - socket) : 0;
  if (!top || share < 0.05) {
    return `No function stands out (the hottest, \`${top?.name ?? '?'}\`, has ${pct(share)}): the cost is spread thin over many small steps (V8 inline caches, promises, buffers), which is what a generic HTTP server + driver stack costs per request.`;
  }
  return `The hottest function is \`${top.name}\` (${top.where}, ${top.category}) with ${pct(share)}.`;
}

export function plannerSection(p: PlannerResult): string {
  const rows = p.statements.map((s) => [
    s.name,
    `\`${abbreviate(s.sql, 70)}\``,
    s.hitP50.toFixed(1),
    s.hitP99.toFixed(1),
    s.missP50.toFixed(1),
    s.missP99.toFixed(1),
    s.parseP50.toFixed(1),
    `${s.parseRewrittenP50.toFixed(1)} (${fmt.int(s.rewrittenLength)} chars)`,
  ]);
  const hit = plannerHitHolds(p);
  const miss = plannerMissHolds(p);
  return `## 4. SQL endpoint: parse + check + rewrite

What the SQL endpoint adds before a statement reaches PostgreSQL, without the database: \`SqlPlanner.plan\` (bench/sql-planner.ts)
with the catalog of \`test/fixtures/seed003.yaml\` (\`orders\` with an additional filter, a hashed column and a restricted one), as
tenant \`acme_corp\` with read access. A **hit** plans the same text again (${fmt.int(p.iterations)} times): the checked template comes from the
cache and only the parameters are bound. A **miss** plans a new text each time (the statement with a different comment,
${fmt.int(p.iterations / 4)} times): the PostgreSQL parser (libpg-query, WASM), the allowlist walk over the AST, the tenant-predicate rewrite and a
cache insert. Each call is timed on its own (\`process.hrtime\`), after ${fmt.int(p.warmup)} warm-up plans; µs.

${table(['statement', 'SQL', 'hit p50', 'hit p99', 'miss p50', 'miss p99', 'parse p50', 'parse rewritten p50'], rows, [0, 1])}

The last two columns time \`parseSql\` alone (p50 of ${fmt.int(p.iterations / 10)}): on the caller's text, and on the rewritten text the plan
carries (what a check of the output by re-parsing it costs).

- Cache hit, goal p50 ≤ ${PLANNER_HIT_GOAL_US} µs: **${yesNo(hit)}** (worst p50 ${Math.max(...p.statements.map((s) => s.hitP50)).toFixed(1)} µs).
- Cache miss, goal p50 ≤ ${PLANNER_MISS_GOAL_US} µs: **${yesNo(miss)}** (worst p50 ${Math.max(...p.statements.map((s) => s.missP50)).toFixed(1)} µs).
- Where a miss goes: parsing the caller's text takes ${p.statements.map((s) => `${fmt.int(s.parseP50)}`).join(' / ')} µs, parsing the rewritten text (what checking the planner's
  output with the parser costs) ${p.statements.map((s) => `${fmt.int(s.parseRewrittenP50)}`).join(' / ')} µs, against misses of ${p.statements.map((s) => `${fmt.int(s.missP50)}`).join(' / ')} µs (same order as the table).
- The p99s carry the machine's noise (other work, GC pauses) more than the planner's: a miss's p99 is a pause, not a slower parse.

**Goals hold? hit ${yesNo(hit)}, miss ${yesNo(miss)}.**
`;
}
