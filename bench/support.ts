/**
 * Shared pieces of the benchmarks: the server (127.0.0.1 only), throwaway databases and role
 * prefixes, a closed-loop load generator, statistics and machine facts.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import pg from 'pg';

export const DEFAULT_URL = 'postgres://postgres@127.0.0.1:5432/postgres';

/** The admin URL, refusing anything but a server on this machine: the benchmarks put real load on it. */
export function adminUrl(): string {
  const url = new URL(process.env['DATABASE_URL'] || DEFAULT_URL);
  if (!/^postgres(ql)?:$/.test(url.protocol)) throw new Error(`DATABASE_URL must be a postgres:// URL`);
  if (url.hostname !== '127.0.0.1' && url.hostname !== 'localhost') {
    throw new Error(`benchmarks only run against 127.0.0.1 (DATABASE_URL points at ${url.hostname})`);
  }
  url.hostname = '127.0.0.1';
  return url.toString();
}

/** The same server, another database and (optionally) another login. */
export function urlFor(database: string, user?: string, password?: string): string {
  const u = new URL(adminUrl());
  u.pathname = `/${database}`;
  if (user !== undefined) {
    u.username = encodeURIComponent(user);
    u.password = password ? encodeURIComponent(password) : '';
  }
  return u.toString();
}

export async function withAdmin<T>(fn: (c: pg.Client) => Promise<T>, database?: string): Promise<T> {
  const c = new pg.Client({ connectionString: database ? urlFor(database) : adminUrl() });
  await c.connect();
  try {
    return await fn(c);
  } finally {
    await c.end();
  }
}

/**
 * Everything one run creates on the server: databases `tg_bench_<tag>…` and roles under the
 * prefixes `tgb<tag>…`. `cleanup` drops exactly those, and is safe to call twice.
 */
export class Scratch {
  readonly tag = randomBytes(4).toString('hex');
  private readonly databases: string[] = [];
  private readonly prefixes: string[] = [];
  private cleaned = false;

  /** A new empty database `tg_bench_<tag>[_suffix]`. */
  async database(suffix = ''): Promise<string> {
    const name = `tg_bench_${this.tag}${suffix ? `_${suffix}` : ''}`;
    this.databases.push(name);
    await withAdmin((c) => c.query(`CREATE DATABASE ${name}`));
    return name;
  }

  /** A role prefix no other run (or test) uses: `tgb<tag><letter>`. */
  prefix(letter: string): string {
    const p = `tgb${this.tag}${letter}`;
    this.prefixes.push(p);
    return p;
  }

  async cleanup(): Promise<void> {
    if (this.cleaned) return;
    this.cleaned = true;
    const problems: string[] = [];
    await withAdmin(async (c) => {
      for (const db of this.databases) {
        await c.query(`DROP DATABASE IF EXISTS ${db} WITH (FORCE)`).catch((err: Error) => problems.push(`${db}: ${err.message}`));
      }
      for (const p of this.prefixes) {
        // Database-tier tenants' own databases are named with the prefix.
        const owned = (await c.query<{ datname: string }>(`SELECT datname FROM pg_database WHERE datname LIKE $1`, [`${p}\\_%`])).rows.map((r) => r.datname);
        for (const db of owned) await c.query(`DROP DATABASE IF EXISTS "${db}" WITH (FORCE)`).catch((err: Error) => problems.push(`${db}: ${err.message}`));
        const roles = (await c.query<{ rolname: string }>(`SELECT rolname FROM pg_roles WHERE rolname LIKE $1`, [`${p}\\_%`])).rows.map((r) => r.rolname);
        // Memberships go with the roles; DROP ROLE takes a list, so a few statements drop thousands.
        for (let i = 0; i < roles.length; i += 500) {
          const batch = roles.slice(i, i + 500);
          await c.query(`DROP ROLE IF EXISTS ${batch.map((r) => `"${r}"`).join(', ')}`).catch((err: Error) => problems.push(`roles ${p}_*: ${err.message}`));
        }
      }
    });
    if (problems.length) throw new Error(`cleanup left things behind (${problems.join('; ')}): drop tg_bench_${this.tag}* and roles tgb${this.tag}* by hand`);
  }
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export interface LoadResult {
  ops: number;
  seconds: number;
  tps: number;
  /** Milliseconds per operation, unsorted. */
  latencies: Float64Array;
}

/**
 * Closed loop: `concurrency` workers each run `op` back to back until `seconds` are up.
 * Any failing operation aborts the run (a benchmark of errors is no benchmark).
 */
export async function closedLoop(op: () => Promise<unknown>, concurrency: number, seconds: number): Promise<LoadResult> {
  let lat = new Float64Array(1 << 16);
  let n = 0;
  const start = performance.now();
  const deadline = start + seconds * 1000;
  const worker = async () => {
    for (;;) {
      const t0 = performance.now();
      if (t0 >= deadline) return;
      await op();
      const t1 = performance.now();
      if (n === lat.length) {
        const bigger = new Float64Array(lat.length * 2);
        bigger.set(lat);
        lat = bigger;
      }
      lat[n++] = t1 - t0;
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  const elapsed = (performance.now() - start) / 1000;
  return { ops: n, seconds: elapsed, tps: n / elapsed, latencies: lat.slice(0, n) };
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
}

/** Nearest-rank percentile of an unsorted sample (copied, not modified). */
export function percentile(xs: Float64Array, p: number): number {
  if (xs.length === 0) return NaN;
  const s = Float64Array.from(xs).sort();
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))] as number;
}

export function concat(parts: Float64Array[]): Float64Array {
  const out = new Float64Array(parts.reduce((a, p) => a + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

export async function timed<T>(fn: () => Promise<T>): Promise<{ ms: number; value: T }> {
  const t0 = performance.now();
  const value = await fn();
  return { ms: performance.now() - t0, value };
}

export interface Machine {
  cpus: number;
  cpuModel: string;
  memoryGiB: number;
  postgres: string;
  node: string;
  pg: string;
  date: string;
  pgbench: string | undefined;
}

export async function machineFacts(): Promise<Machine> {
  let nproc = cpus().length;
  try {
    nproc = Number(execFileSync('nproc', { encoding: 'utf8' }).trim()) || nproc;
  } catch {
    // nproc missing: os.cpus() is close enough
  }
  const postgres = await withAdmin(async (c) => (await c.query<{ v: string }>(`SELECT version() AS v`)).rows[0]?.v ?? 'unknown');
  const { version: pgVersion } = (await import('pg/package.json', { with: { type: 'json' } })).default as { version: string };
  return {
    cpus: nproc,
    cpuModel: cpus()[0]?.model.trim() ?? 'unknown',
    memoryGiB: Math.round((totalmem() / 2 ** 30) * 10) / 10,
    postgres,
    node: process.version,
    pg: pgVersion,
    date: new Date().toISOString(),
    pgbench: findPgbench(),
  };
}

/** pgbench from PATH, else the Debian location; undefined when neither exists. */
export function findPgbench(): string | undefined {
  for (const candidate of ['pgbench', '/usr/lib/postgresql/15/bin/pgbench', '/usr/lib/postgresql/16/bin/pgbench', '/usr/lib/postgresql/17/bin/pgbench']) {
    try {
      execFileSync(candidate, ['--version'], { stdio: 'ignore' });
      return candidate;
    } catch {
      // try the next one
    }
  }
  return undefined;
}

export const fmt = {
  int: (x: number) => Math.round(x).toLocaleString('en-US'),
  ms: (x: number) => (x < 10 ? x.toFixed(2) : x.toFixed(1)),
  ratio: (x: number) => x.toFixed(2),
};

export function log(msg: string): void {
  process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${msg}\n`);
}

/** Clock ticks per second of /proc/<pid>/stat (USER_HZ; 100 on every mainstream Linux). */
const CLK_TCK = 100;

/** CPU seconds (user + system) used so far by the given processes; missing ones count 0. */
export function processCpuSeconds(pids: number[]): number {
  let ticks = 0;
  for (const pid of pids) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      // Fields after the parenthesised command name: state is 3rd, utime 14th, stime 15th.
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      ticks += Number(fields[11]) + Number(fields[12]);
    } catch {
      // gone, or no /proc: contributes nothing
    }
  }
  return ticks / CLK_TCK;
}

/** Busy and total CPU time of the whole machine (all cores), from /proc/stat; undefined off Linux. */
export function machineCpuSeconds(): { busy: number; total: number } | undefined {
  try {
    const line = readFileSync('/proc/stat', 'utf8').split('\n')[0] as string;
    const v = line.trim().split(/\s+/).slice(1).map(Number);
    const idle = (v[3] ?? 0) + (v[4] ?? 0);
    const total = v.slice(0, 8).reduce((a, b) => a + b, 0);
    return { busy: (total - idle) / CLK_TCK, total: total / CLK_TCK };
  } catch {
    return undefined;
  }
}

/**
 * Where the CPU went during a measurement: this Node process, the server backends serving it
 * (their pids from pg_stat_activity; only visible when the server runs on this machine, not in a
 * container), and the whole machine (everything else on it included).
 */
export class CpuMeter {
  private node0 = process.cpuUsage();
  private server0 = 0;
  private machine0 = machineCpuSeconds();
  private readonly serverPids: number[];
  constructor(pids: number[]) {
    // A server in a container reports its own pids: only count processes here that are PostgreSQL.
    this.serverPids = pids.filter((pid) => {
      try {
        return /postgres/.test(readFileSync(`/proc/${pid}/cmdline`, 'utf8'));
      } catch {
        return false;
      }
    });
    this.server0 = processCpuSeconds(this.serverPids);
  }
  stop(): { nodeSeconds: number; serverSeconds: number | undefined; machineBusy: number | undefined } {
    const node = process.cpuUsage(this.node0);
    const server = this.serverPids.length > 0 && existsSync(`/proc/${this.serverPids[0]}`) ? processCpuSeconds(this.serverPids) - this.server0 : undefined;
    const m1 = machineCpuSeconds();
    const machineBusy = this.machine0 && m1 ? (m1.busy - this.machine0.busy) / Math.max(1e-9, m1.total - this.machine0.total) : undefined;
    return { nodeSeconds: (node.user + node.system) / 1e6, serverSeconds: server, machineBusy };
  }
}

/** A pool that never closes idle connections, so connection churn stays out of the timed rounds. */
export function keepConnections(pool: pg.Pool): void {
  (pool as unknown as { options: { idleTimeoutMillis: number } }).options.idleTimeoutMillis = 0;
}

/**
 * Put one section into an existing docs/benchmarks.md without touching the others (for --only runs):
 * replace the section whose heading starts with `heading` (e.g. "## 5. "), else insert it before
 * "## Running it" (or at the end).
 */
export function spliceSection(file: string, heading: string, section: string): void {
  if (!existsSync(file)) {
    writeFileSync(file, `# Benchmarks\n\n${section}`);
    return;
  }
  const lines = readFileSync(file, 'utf8').split('\n');
  const start = lines.findIndex((l) => l.startsWith(heading));
  const body = section.replace(/\n+$/, '').split('\n');
  let out: string[];
  if (start >= 0) {
    let end = lines.findIndex((l, i) => i > start && l.startsWith('## '));
    if (end < 0) end = lines.length;
    out = [...lines.slice(0, start), ...body, '', ...lines.slice(end)];
  } else {
    const running = lines.findIndex((l) => l.startsWith('## Running it'));
    const at = running >= 0 ? running : lines.length;
    out = [...lines.slice(0, at), ...body, '', ...lines.slice(at)];
  }
  writeFileSync(file, out.join('\n'));
}
