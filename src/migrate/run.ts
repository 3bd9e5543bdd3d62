import type { Config } from '../config/types.ts';
import type { Database } from '../db/database.ts';
import { TenantGateError, isTenantGateError } from '../errors/index.ts';
import type { PgliteFactory, DatabaseSet } from '../tiers/databases.ts';
import { readMigrations, type MigrationFile } from './files.ts';
import { readLedger, type Applied } from './ledger.ts';
import { checkStatements, createdTables, prepareRewrite, rewriteForSchema } from './rewrite.ts';
import { listTargets, movingTargets, TargetDatabases, type Target } from './targets.ts';

export interface MigrateOptions {
  config: Config;
  /** The owner's connection to the main database. */
  main: Database;
  env: Record<string, string | undefined>;
  /** The migrations folder (absolute). */
  dir: string;
  /** Apply up to this version (inclusive); default every file. */
  to?: string | undefined;
  /** Target keys or tenant ids to run first, after the main database. */
  canary?: string[] | undefined;
  /** Or this share of the tenant targets (0–100), spread evenly over them. */
  canaryPercent?: number | undefined;
  /** Targets migrated at once (after main and the canaries). */
  concurrency?: number | undefined;
  /** `SET lock_timeout` of each migration's transaction, ms. */
  lockTimeoutMs?: number | undefined;
  /** Attempts after a lock timeout (each after a longer pause). */
  retries?: number | undefined;
  dryRun?: boolean | undefined;
  continueOnError?: boolean | undefined;
  signal?: AbortSignal | undefined;
  onProgress?: ((done: number, total: number, phase: string) => void) | undefined;
  pglite?: PgliteFactory | undefined;
  databases?: DatabaseSet | undefined;
  /** Test hook: called after each migration committed on a target (kill points). */
  point?: ((target: string, version: string) => void) | undefined;
}

export interface TargetFailure {
  target: string;
  version: string;
  file: string;
  code: string;
  message: string;
  /** PostgreSQL's SQLSTATE, when the database refused. */
  sqlstate?: string | undefined;
  /** Where in the SQL that ran (for a schema target, the rewritten SQL) it failed: 1-based line and column. */
  line?: number | undefined;
  column?: number | undefined;
  statement?: string | undefined;
}

export interface MigrateReport {
  dryRun: boolean;
  migrations: string[];
  targets: number;
  /** Targets that had something to apply, in the order they ran. */
  plan: Array<{ target: string; pending: string[] }>;
  /** Migrations committed in this run (target × version). */
  applied: number;
  /** Targets left for a move to end first (rerun once it has). */
  blocked: string[];
  failures: TargetFailure[];
  /** Targets not started because an earlier one failed. */
  notStarted: string[];
  seconds: number;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Targets at once by default: on the 2-core machine of docs/benchmarks.md §13, 2 keeps a pooled
 * tenant's p99 within 2× its idle p99 while 1,021 targets migrate in about a second; more finishes
 * sooner and costs live queries more (--concurrency).
 */
export const DEFAULT_CONCURRENCY = 2;

/**
 * Everything the ledgers say, checked against the files before anything runs: an applied file that
 * changed (MIGRATION_CHANGED), an applied version with no file (MIGRATION_CHANGED), a gap — a
 * version applied after one that is not (MIGRATION_GAP). Returns each target's pending files.
 */
export function pendingFor(files: MigrationFile[], ledgers: Map<string, Applied[]>, targets: Target[], upTo: MigrationFile[]): Map<string, MigrationFile[]> {
  const byVersion = new Map(files.map((f) => [f.version, f]));
  const changed = new Map<string, string[]>();
  const gone = new Map<string, string[]>();
  const out = new Map<string, MigrationFile[]>();
  for (const t of targets) {
    const applied = new Map((ledgers.get(t.key) ?? []).map((a) => [a.version, a]));
    for (const a of applied.values()) {
      const f = byVersion.get(a.version);
      if (!f) gone.set(a.name, [...(gone.get(a.name) ?? []), t.key]);
      else if (f.checksum !== a.checksum) changed.set(f.name, [...(changed.get(f.name) ?? []), t.key]);
    }
    let missing: string | undefined;
    for (const f of files) {
      if (!applied.has(f.version)) missing ??= f.name;
      else if (missing) throw new TenantGateError('MIGRATION_GAP', `${t.key} has ${f.name} applied but not ${missing}: apply the migrations in order (restore the ledger or the missing migration's effect by hand)`);
    }
    out.set(
      t.key,
      upTo.filter((f) => !applied.has(f.version)),
    );
  }
  const few = (ts: string[]) => `${ts.slice(0, 5).join(', ')}${ts.length > 5 ? ` and ${ts.length - 5} more` : ''}`;
  if (changed.size) {
    throw new TenantGateError('MIGRATION_CHANGED', [...changed].map(([f, ts]) => `${f}.sql changed after it was applied to ${few(ts)}`).join('; ') + ': put the applied text back and make a new migration for the change');
  }
  if (gone.size) throw new TenantGateError('MIGRATION_CHANGED', [...gone].map(([f, ts]) => `${f} was applied to ${few(ts)} but its file is gone`).join('; '));
  return out;
}

/** The canary targets: named ones (target keys or tenant ids) or P% of the tenant targets spread evenly. */
export function canaries(targets: Target[], names: string[] | undefined, percent: number | undefined): Target[] {
  const tenants = targets.filter((t) => t.tenant);
  if (names?.length) {
    return names.map((n) => {
      const t = tenants.find((x) => x.key === n || x.tenant === n);
      if (!t) throw new TenantGateError('USAGE', `--canary: ${n} is not a schema- or database-tier tenant (pooled tenants are migrated with the main database)`);
      return t;
    });
  }
  if (!percent || percent <= 0) return [];
  const n = Math.min(tenants.length, Math.ceil((tenants.length * Math.min(100, percent)) / 100));
  const step = tenants.length / n;
  return Array.from({ length: n }, (_, i) => tenants[Math.floor(i * step)]!);
}

/** 1-based line and column of a 1-based character position. */
function lineColumn(sql: string, position: number): { line: number; column: number } {
  const before = sql.slice(0, Math.max(0, position - 1));
  const lines = before.split('\n');
  return { line: lines.length, column: lines.at(-1)!.length + 1 };
}

/** The statement around a position: from the previous `;` to the next. */
function statementAt(sql: string, position: number): string {
  const start = sql.lastIndexOf(';', position - 2) + 1;
  const end = sql.indexOf(';', position - 1);
  return sql.slice(start, end === -1 ? undefined : end).trim().slice(0, 300);
}

/**
 * `migrate up`: every target gets each pending migration in its own transaction, the main database
 * first, then the canaries, then the rest `concurrency` at a time. Each transaction takes the
 * target's advisory lock (two runners never apply one migration twice: the second waits, then finds
 * it in the ledger), pins `search_path` for a schema target (and runs the SQL rewritten to its
 * schema), sets `lock_timeout` (a migration waiting for a lock gives up and retries later instead of
 * queueing live queries behind it), and writes the ledger row before it commits. The ledgers are
 * the checkpoint: a rerun after kill -9 finds what was committed and does the rest.
 */
export async function migrateUp(o: MigrateOptions): Promise<MigrateReport> {
  const started = performance.now();
  const all = readMigrations(o.dir);
  if (o.to !== undefined && !all.some((f) => f.version === o.to)) throw new TenantGateError('USAGE', `--to ${o.to}: no migration with that number in ${o.dir}`);
  const upTo = o.to === undefined ? all : all.filter((f) => f.version <= o.to!);
  await prepareRewrite();
  for (const f of upTo) checkStatements(f.sql, f.name);
  const targets = await listTargets(o.config, o.main, o.env);
  const dbs = new TargetDatabases(o.main, o.config, o.env, o.pglite, o.databases);
  try {
    // Every target's ledger, read before anything runs (the main database holds main's and the schemas').
    const ledgers = new Map<string, Applied[]>();
    for (const [k, v] of await readLedger(o.main, targets.filter((t) => t.tier !== 'database').map((t) => t.key))) ledgers.set(k, v);
    for (const t of targets.filter((x) => x.tier === 'database')) {
      for (const [k, v] of await readLedger(await dbs.db(t), [t.key])) ledgers.set(k, v);
    }
    const pending = pendingFor(all, ledgers, targets, upTo);
    const moving = await movingTargets(o.main);
    const todo = targets.filter((t) => pending.get(t.key)!.length > 0);
    // The main database goes first: while a move holds it, every target waits.
    const mainWaits = moving.main && todo.some((t) => t.key === 'main');
    const blocked = todo.filter((t) => mainWaits || (t.tenant ? moving.tenants.has(t.tenant) : moving.main)).map((t) => t.key);
    const runnable = todo.filter((t) => !blocked.includes(t.key));
    const first = canaries(targets, o.canary, o.canaryPercent).filter((t) => runnable.includes(t));
    const order = [...runnable.filter((t) => t.key === 'main'), ...first, ...runnable.filter((t) => t.key !== 'main' && !first.includes(t))];
    const report: MigrateReport = {
      dryRun: !!o.dryRun,
      migrations: upTo.map((f) => f.name),
      targets: targets.length,
      plan: order.map((t) => ({ target: t.key, pending: pending.get(t.key)!.map((f) => f.name) })),
      applied: 0,
      blocked,
      failures: [],
      notStarted: [],
      seconds: 0,
    };
    if (o.dryRun) {
      // The rewriting is checked for every schema target now, so a migration it cannot place fails here.
      for (const t of order) for (const f of pending.get(t.key)!) sqlFor(o.config, t, f, all);
      report.seconds = (performance.now() - started) / 1000;
      return report;
    }
    const total = order.length;
    let done = 0;
    let stop = false;
    const one = async (t: Target) => {
      const db = await dbs.db(t);
      for (const f of pending.get(t.key)!) {
        o.signal?.throwIfAborted();
        if (!(await applyOne(db, t, f, sqlFor(o.config, t, f, all), o))) continue; // another runner did it
        report.applied++;
        o.point?.(t.key, f.version);
      }
    };
    const run = async (t: Target) => {
      try {
        await one(t);
      } catch (err) {
        if (o.signal?.aborted) throw err;
        report.failures.push(failure(t, err));
        if (!o.continueOnError) stop = true;
      } finally {
        done++;
        o.onProgress?.(done, total, t.key);
      }
    };
    o.onProgress?.(0, total, 'main');
    const stages = [order.filter((t) => t.key === 'main'), order.filter((t) => first.includes(t)), order.filter((t) => t.key !== 'main' && !first.includes(t))];
    for (const stage of stages) {
      if (stop) {
        report.notStarted.push(...stage.map((t) => t.key));
        continue;
      }
      // The main database alone; then N workers over the stage's targets, no new one once a target failed.
      const width = stage[0]?.key === 'main' ? 1 : Math.max(1, Math.floor(o.concurrency ?? DEFAULT_CONCURRENCY));
      let next = 0;
      await Promise.all(
        Array.from({ length: Math.min(width, stage.length) }, async () => {
          while (next < stage.length) {
            const t = stage[next++]!;
            if (stop) {
              report.notStarted.push(t.key);
              continue;
            }
            await run(t);
          }
        }),
      );
    }
    report.seconds = (performance.now() - started) / 1000;
    return report;
  } finally {
    await dbs.close();
  }
}

/**
 * The SQL a target runs: the file as written, or rewritten to a schema-tier tenant's schema. The
 * tables rewritten are the dataset tables and every table an earlier migration created in their
 * schema (each schema target got its own copy of it then), whether or not the config declares it yet.
 */
function sqlFor(config: Config, t: Target, f: MigrationFile, all: MigrationFile[]): string {
  if (t.tier !== 'schema') return f.sql;
  const bySchema = new Map<string, Set<string>>();
  for (const d of config.datasets) bySchema.set(d.schema, (bySchema.get(d.schema) ?? new Set()).add(d.table));
  for (const [from, tables] of bySchema) for (const earlier of all.filter((x) => x.version < f.version)) for (const c of createdTables(earlier.sql, from)) tables.add(c);
  let sql = f.sql;
  for (const [from, tables] of bySchema) sql = rewriteForSchema(sql, { from, to: t.schema!, tables }, f.name).sql;
  return sql;
}

/** One migration on one target in its own transaction; false when another runner had applied it meanwhile. */
async function applyOne(db: Database, t: Target, f: MigrationFile, sql: string, o: MigrateOptions): Promise<boolean> {
  const retries = Math.max(0, Math.floor(o.retries ?? 3));
  const lockTimeout = Math.max(1, Math.floor(o.lockTimeoutMs ?? 5000));
  const schemas = [...new Set(o.config.datasets.map((d) => d.schema))];
  const searchPath = [...(t.schema ? [t.schema] : []), ...schemas].map((s) => `"${s.replace(/"/g, '""')}"`).join(', ');
  for (let attempt = 0; ; attempt++) {
    const c = await db.pool.connect();
    let broken = false;
    try {
      await c.query('BEGIN');
      // Waits for another runner on this target (it may be applying this very migration); no lock_timeout yet.
      await c.query(`SELECT pg_advisory_xact_lock(hashtextextended($1, 0))`, [`tenantgate.migrate:${t.key}`]);
      const there = await c.query<{ checksum: string }>(`SELECT checksum FROM tenantgate.migrations WHERE target = $1 AND version = $2`, [t.key, f.version]);
      if (there.rows[0]) {
        await c.query('ROLLBACK');
        if (there.rows[0].checksum !== f.checksum) throw new TenantGateError('MIGRATION_CHANGED', `${f.name}.sql changed after it was applied to ${t.key}`);
        return false; // another runner applied it meanwhile
      }
      await c.query(`SET LOCAL lock_timeout = ${lockTimeout}; SET LOCAL search_path = ${searchPath}`);
      const t0 = performance.now();
      await c.query(sql);
      await c.query(`INSERT INTO tenantgate.migrations (target, version, name, checksum, duration_ms) VALUES ($1, $2, $3, $4, $5)`, [
        t.key,
        f.version,
        f.name,
        f.checksum,
        Math.round(performance.now() - t0),
      ]);
      await c.query('COMMIT');
      return true;
    } catch (err) {
      await c.query('ROLLBACK').catch(() => (broken = true));
      const code = (err as { code?: string }).code;
      // 55P03: lock_timeout; 40P01: deadlock with a live transaction. Both are worth another try, later.
      if ((code === '55P03' || code === '40P01') && attempt < retries) {
        await sleep(Math.min(10_000, 250 * 2 ** attempt) * (0.5 + Math.random()));
        continue;
      }
      throw Object.assign(err as object, { sqlText: sql, migration: f });
    } finally {
      c.release(broken);
    }
  }
}

function failure(t: Target, err: unknown): TargetFailure {
  const e = err as { code?: string; message?: string; position?: string; sqlText?: string; migration?: MigrationFile };
  const f = e.migration;
  const base = { target: t.key, version: f?.version ?? '', file: f ? `${f.name}.sql` : '' };
  if (isTenantGateError(err)) return { ...base, code: err.code, message: err.message };
  const position = Number(e.position);
  const where = e.sqlText && position > 0 ? { ...lineColumn(e.sqlText, position), statement: statementAt(e.sqlText, position) } : {};
  const code = e.code === '55P03' ? 'MIGRATION_LOCKED' : 'MIGRATION_FAILED';
  return { ...base, code, message: e.message ?? String(err), ...(e.code ? { sqlstate: e.code } : {}), ...where };
}
