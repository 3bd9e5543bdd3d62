import type { Config } from '../config/types.ts';
import { TenantGateError } from '../errors/index.ts';
import { registerJobKind, type JobContext, type JobKind } from '../lifecycle/jobs/registry.ts';
import { applyProvision } from '../provision/apply.ts';
import { loadServerSecret } from '../security/secret.ts';
import { resolve } from 'node:path';
import { migrateUp, type MigrateReport } from './run.ts';

export const MIGRATE_KIND = 'migrate';

/** What a migrate job is asked for (POST /v1/admin/migrations, `migrate up --detach`). */
export interface MigrateParams {
  to?: string;
  canary?: string[];
  canary_percent?: number;
  concurrency?: number;
  lock_timeout_ms?: number;
  retries?: number;
  continue_on_error?: boolean;
  /** The configuration file it was asked with (a runner without one of its own loads it). */
  config?: string;
}

interface MigrateEnvironment {
  config: Config;
  env: Record<string, string | undefined>;
}
let environment: MigrateEnvironment | undefined;

/** The configuration migrate jobs of this process run with (the gateway's). */
export function useMigrateEnvironment(e: MigrateEnvironment | undefined): void {
  environment = e;
}

async function envFor(params: MigrateParams): Promise<MigrateEnvironment> {
  if (environment && (!params.config || environment.config.file === params.config)) return environment;
  if (!params.config) throw new TenantGateError('CONFIG_NOT_FOUND', 'this runner has no configuration for migrate jobs');
  const { loadConfig } = await import('../config/load.ts');
  return { config: await loadConfig(params.config, { env: process.env }), env: process.env };
}

/**
 * `migrate up` as a job: the ledgers are its checkpoint (a resumed job finds what committed and
 * does the rest), so it saves none of its own. A target that failed fails the job with the first
 * failure's target, file and SQL error; the whole report is in the error detail.
 */
export const migrateKind: JobKind<MigrateParams, null, MigrateReport> = {
  kind: MIGRATE_KIND,
  maxAttempts: 3,
  async run(ctx: JobContext<MigrateParams, null>): Promise<MigrateReport> {
    const { config, env } = await envFor(ctx.params);
    const p = ctx.params;
    const report = await migrateUp({
      config,
      main: ctx.db,
      env,
      dir: resolve(config.dir, config.effective.database.migrations_dir),
      to: p.to,
      canary: p.canary,
      canaryPercent: p.canary_percent,
      concurrency: p.concurrency,
      lockTimeoutMs: p.lock_timeout_ms,
      retries: p.retries,
      continueOnError: p.continue_on_error,
      signal: ctx.signal,
      onProgress: (done, total, phase) => ctx.progress(done, total, phase),
    });
    if (report.failures.length) {
      const f = report.failures[0]!;
      throw new TenantGateError(f.code === 'MIGRATION_LOCKED' ? 'MIGRATION_LOCKED' : 'MIGRATION_FAILED', `${report.failures.length} target(s) failed; first ${f.target}: ${f.file}: ${f.message}${f.line ? ` (line ${f.line})` : ''}`, {
        details: { report },
      });
    }
    if (report.applied > 0) await applyProvision(config, ctx.db, loadServerSecret(config, env), { env });
    return report;
  },
};

registerJobKind(migrateKind);
