/**
 * Benchmark 11: how long the CLI takes to start, as whole processes, interleaved round by round
 * so the machine's drift hits every command alike. `--help` from the compiled CLI (dist/) against
 * bare Node and against the sources run through tsx (how every start worked before dist/); and
 * `tenant list` on the embedded demo database against the floor of opening that data directory
 * with PGlite alone. Needs no server.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { log } from './support.ts';

const ROOT = resolve(import.meta.dirname, '..');

export interface StartupResult {
  runs: number;
  /** Median wall milliseconds per command, by label. */
  medianMs: Record<string, number>;
  minMs: Record<string, number>;
  maxMs: Record<string, number>;
}

export const STARTUP_HEADING = '## 11. ';
export const STARTUP_GOALS = { help: 250, list: 1000 };

function timeOnce(cmd: string[], cwd: string): number {
  const t0 = performance.now();
  const r = spawnSync(cmd[0]!, cmd.slice(1), { cwd, stdio: ['ignore', 'ignore', 'pipe'], encoding: 'utf8' });
  const ms = performance.now() - t0;
  if (r.status !== 0) throw new Error(`${cmd.join(' ')} exited ${r.status}: ${r.stderr}`);
  return ms;
}

export async function runStartupBench(options: { runs: number }): Promise<StartupResult> {
  log('CLI startup: building dist/ (npm run build)');
  execFileSync(process.execPath, ['scripts/build.js'], { cwd: ROOT, stdio: 'inherit' });
  const dir = mkdtempSync(join(tmpdir(), 'tg-bench-startup-'));
  try {
    const demo = join(dir, 'demo');
    execFileSync(process.execPath, ['bin/tenantgate.js', 'start', '--dir', demo, '--no-serve'], { cwd: ROOT, stdio: 'ignore' });
    const pgliteOnly = join(dir, 'pglite-open.mjs');
    // The floor of `tenant list`: import PGlite, open the data directory as openDatabase does, one query.
    writeFileSync(
      pgliteOnly,
      `import { openDatabase } from ${JSON.stringify(join(ROOT, 'dist/db/database.js'))};\n` +
        `const db = await openDatabase('pglite://' + process.argv[2]);\nawait db.query('SELECT 1');\nawait db.close();\n`,
    );
    if (!existsSync(join(demo, 'pgdata'))) throw new Error('the demo has no data directory');
    const node = process.execPath;
    const config = join(demo, 'tenantgate.yaml');
    const commands: Record<string, string[]> = {
      'node -e 0 (bare Node)': [node, '-e', '0'],
      'tenantgate --help (dist/)': [node, 'bin/tenantgate.js', '--help'],
      'tenantgate --help (sources through tsx)': [node, '--import', 'tsx', 'src/cli/main.ts', '--help'],
      'tenantgate tenant list (embedded demo)': [node, 'bin/tenantgate.js', '--config', config, 'tenant', 'list'],
      'PGlite: open the same data directory, SELECT 1': [node, pgliteOnly, join(demo, 'pgdata')],
    };
    const times: Record<string, number[]> = Object.fromEntries(Object.keys(commands).map((k) => [k, []]));
    for (const cmd of Object.values(commands)) timeOnce(cmd, ROOT); // warm the page cache
    for (let i = 0; i < options.runs; i++) {
      for (const [label, cmd] of Object.entries(commands)) times[label]!.push(timeOnce(cmd, ROOT));
    }
    const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
    const pick = (f: (xs: number[]) => number) => Object.fromEntries(Object.entries(times).map(([k, xs]) => [k, Math.round(f(xs))]));
    return { runs: options.runs, medianMs: pick(median), minMs: pick((xs) => Math.min(...xs)), maxMs: pick((xs) => Math.max(...xs)) };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export function startupSummaryLines(r: StartupResult): string[] {
  const help = r.medianMs['tenantgate --help (dist/)'] ?? NaN;
  const list = r.medianMs['tenantgate tenant list (embedded demo)'] ?? NaN;
  return [`CLI startup: --help ${help} ms (goal < ${STARTUP_GOALS.help}), tenant list on the embedded database ${list} ms (goal < ${STARTUP_GOALS.list})`];
}

export function startupSection(r: StartupResult, date: string): string {
  const rows = Object.keys(r.medianMs).map((k) => `| ${k} | **${r.medianMs[k]}** | ${r.minMs[k]} / ${r.maxMs[k]} |`);
  const help = r.medianMs['tenantgate --help (dist/)']!;
  const tsx = r.medianMs['tenantgate --help (sources through tsx)']!;
  const list = r.medianMs['tenantgate tenant list (embedded demo)']!;
  const floor = r.medianMs['PGlite: open the same data directory, SELECT 1']!;
  const verdict = (v: number, goal: number) => (v < goal ? `holds` : `**not met**`);
  return `${STARTUP_HEADING}CLI startup

Whole processes started by bench/startup.ts (measured ${date.slice(0, 10)}), ${r.runs} interleaved rounds after one warm-up
round, wall time per process in milliseconds. The CLI runs the compiled dist/ (built by \`npm run build\`, which \`npm ci\` runs
through \`prepare\`) and loads a command's modules only when that command runs; \`tenant list\` runs on the demo's embedded
database (\`start --no-serve\` first).

| command | median ms | min / max |
| --- | ---: | ---: |
${rows.join('\n')}

- \`--help\`: ${help} ms, goal < ${STARTUP_GOALS.help} ms: ${verdict(help, STARTUP_GOALS.help)} (through tsx, as every start was before: ${tsx} ms, ${(tsx / help).toFixed(1)}×).
- \`tenant list\` on the embedded database: ${list} ms, goal < ${STARTUP_GOALS.list} ms: ${verdict(list, STARTUP_GOALS.list)}. Opening the
  data directory with PGlite alone takes ${floor} ms of it (${Math.round((floor / list) * 100)}%); the rest is Node, the config (YAML and the
  SQL parser for row filters) and the query.
`;
}
