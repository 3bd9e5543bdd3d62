import { resolve } from 'node:path';
import type { Config } from '../../config/types.ts';
import type { Database } from '../../db/database.ts';
import { TenantGateError } from '../../errors/index.ts';
import { newMigration } from '../../migrate/files.ts';
import { migrateUp, type MigrateReport } from '../../migrate/run.ts';
import { migrationStatus, type MigrationStatus } from '../../migrate/status.ts';
import { killHook } from '../kill-hook.ts';
import { progress, table, type CliIO } from '../io.ts';

/** The migrations folder: database.migrations_dir, relative to the config file's folder. */
export const migrationsDir = (config: Config) => resolve(config.dir, config.effective.database.migrations_dir);

export interface MigrateUpFlags {
  to?: string;
  canary?: string;
  canaryPercent?: string;
  concurrency?: string;
  lockTimeout?: string;
  retries?: string;
  dryRun?: boolean;
  continueOnError?: boolean;
}

/** `5s`, `500ms`, `2m` or a number of milliseconds. */
export function durationMs(v: string, flag: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m)?$/.exec(v.trim());
  if (!m) throw new TenantGateError('USAGE', `${flag}: a duration like 5s, 500ms or 2m`);
  const n = Number(m[1]);
  return Math.round(m[2] === 's' ? n * 1000 : m[2] === 'm' ? n * 60_000 : n);
}

function count(v: string | undefined, flag: string, min: number, max: number): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < min || n > max) throw new TenantGateError('USAGE', `${flag}: a whole number from ${min} to ${max}`);
  return n;
}

export function runMigrateNew(io: CliIO, config: Config, name: string): string {
  return newMigration(migrationsDir(config), name);
}

/** `migrate up`: in the foreground, progress on stderr; the ledgers make a rerun after a crash do only what is left. */
export async function runMigrateUp(io: CliIO, config: Config, db: Database, flags: MigrateUpFlags): Promise<MigrateReport> {
  if (flags.canary && flags.canaryPercent) throw new TenantGateError('USAGE', 'give --canary or --canary-percent, not both');
  const hook = killHook(io.env, 'TENANTGATE_MIGRATE_KILL_AT');
  let bar: ((done: number, total: number) => void) | undefined;
  return migrateUp({
    config,
    main: db,
    env: io.env,
    dir: migrationsDir(config),
    to: flags.to,
    canary: flags.canary ? flags.canary.split(',').map((s) => s.trim()).filter(Boolean) : undefined,
    canaryPercent: count(flags.canaryPercent, '--canary-percent', 1, 100),
    concurrency: count(flags.concurrency, '--concurrency', 1, 64),
    lockTimeoutMs: flags.lockTimeout === undefined ? undefined : durationMs(flags.lockTimeout, '--lock-timeout'),
    retries: count(flags.retries, '--retries', 0, 20),
    dryRun: flags.dryRun,
    continueOnError: flags.continueOnError,
    onProgress: (done, total) => {
      bar ??= progress(io, 'migrate');
      bar(done, total);
    },
    // Kill points (tests): `<target>@<version>` once that migration committed there, `commit:<n>` after the n-th commit.
    ...(hook
      ? {
          point: (target: string, version: string) => {
            hook(`${target}@${version}`);
            hook('commit');
          },
        }
      : {}),
  });
}

export function formatMigrateUp(r: MigrateReport): string {
  const out: string[] = [];
  if (r.dryRun) {
    if (r.plan.length === 0) out.push(`Nothing to apply: ${r.targets} target(s) have every migration.`);
    else {
      out.push(`Would apply, in this order (main database, canaries, then the rest):`);
      out.push(table([['TARGET', 'MIGRATIONS'], ...r.plan.map((p) => [p.target, p.pending.join(', ')])]).trimEnd());
    }
  } else {
    out.push(`Applied ${r.applied} migration(s) to ${r.plan.length - r.failures.length - r.notStarted.length} of ${r.plan.length} target(s) that needed them (${r.targets} in all) in ${r.seconds.toFixed(1)} s.`);
  }
  for (const f of r.failures) {
    out.push(`FAILED ${f.target}: ${f.file} [${f.code}${f.sqlstate ? ` ${f.sqlstate}` : ''}] ${f.message}${f.line ? ` (line ${f.line}, column ${f.column})` : ''}`);
    if (f.statement) out.push(`  in: ${f.statement.replace(/\s+/g, ' ')}`);
  }
  if (r.notStarted.length) out.push(`Not started (a target failed): ${r.notStarted.length} target(s); rerun \`tenantgate migrate up\` once fixed.`);
  if (r.blocked.length) out.push(`Waiting for a move to end: ${r.blocked.join(', ')}; rerun once it has.`);
  return `${out.join('\n')}\n`;
}

export async function runMigrateStatus(io: CliIO, config: Config, db: Database): Promise<MigrationStatus> {
  return migrationStatus({ config, main: db, env: io.env, dir: migrationsDir(config) });
}

export function formatMigrateStatus(s: MigrationStatus): string {
  if (s.migrations.length === 0) return `No migrations in ${s.dir} (\`tenantgate migrate new NAME\` makes the first).\n`;
  const rows = s.migrations.map((m) => [m.name, `${m.applied}/${m.targets}`, m.missing.slice(0, 5).join(', ') + (m.missing.length > 5 ? ` and ${m.missing.length - 5} more` : '')]);
  const lines = [table([['MIGRATION', 'APPLIED', 'MISSING ON'], ...rows]).trimEnd()];
  for (const t of s.targets) {
    if (t.changed.length) lines.push(`${t.target}: applied ${t.changed.join(', ')} changed since (MIGRATION_CHANGED)`);
    if (t.error) lines.push(`${t.target}: ledger unreadable: ${t.error}`);
    if (t.moving) lines.push(`${t.target}: being moved (migrate waits for the move to end)`);
  }
  lines.push(s.upToDate ? 'Every target is up to date.' : 'Run `tenantgate migrate up` to apply what is missing.');
  return `${lines.join('\n')}\n`;
}
