import { readFileSync } from 'node:fs';
import { createPublicKey } from 'node:crypto';
import { resolve } from 'node:path';
import type { Config } from '../../config/types.ts';
import type { Database } from '../../db/database.ts';
import { TenantGateError } from '../../errors/index.ts';
import { checkNotMoving, checkRequest, prepareTarget, verifyExport, type ExportResult, type VerifyReport } from '../../lifecycle/export/export.ts';
import { EXPORT_KIND, useExportEnvironment, type ExportParams } from '../../lifecycle/export/job.ts';
import { loadSigningKey } from '../../security/signing.ts';
import type { CliIO } from '../io.ts';
import { jobKinds } from '../../lifecycle/jobs/registry.ts';
import { JobRunner } from '../../lifecycle/jobs/runner.ts';
import type { Job } from '../../lifecycle/jobs/store.ts';
import { ERROR_CODES, type ErrorCode } from '../../errors/index.ts';
import { runJobCommand } from './jobs.ts';
import { killHook } from '../kill-hook.ts';

function jobError(job: Job): TenantGateError {
  if (job.state === 'cancelled') return new TenantGateError('JOB_CANCELLED', `job ${job.id} was cancelled`);
  const code = (job.error?.code && job.error.code in ERROR_CODES ? job.error.code : 'INTERNAL') as ErrorCode;
  return new TenantGateError(code, `job ${job.id} failed: ${job.error?.message ?? 'unknown error'}`);
}

export interface ExportFlags {
  out?: string;
  format?: string;
  datasets?: string;
  view?: string;
  force?: boolean;
  detach?: boolean;
}

/**
 * `tenantgate export ID --out DIR`: refusals first (unknown tenant or dataset, a non-empty folder,
 * a tenant being moved, no signing key), then the export job in the foreground (or queued with
 * --detach); a job that dies here is resumed by any runner.
 */
export async function runExportCommand(io: CliIO, config: Config, db: Database, configFile: string, id: string, flags: ExportFlags, json: boolean): Promise<{ job: string; result: ExportResult | null }> {
  const datasets = flags.datasets === undefined ? undefined : flags.datasets.split(',').map((s) => s.trim()).filter(Boolean);
  const req = checkRequest(config, { tenant: id, format: flags.format, view: flags.view, datasets });
  const out = resolve(io.cwd, flags.out ?? '');
  loadSigningKey(config, io.env);
  await checkNotMoving(db, id);
  // Kill points (tests): dataset (a file written), manifest (renamed into place, before the job is marked done).
  const hook = killHook(io.env, 'TENANTGATE_EXPORT_KILL_AT');
  useExportEnvironment({ config, env: io.env, ...(hook ? { point: hook } : {}) });
  try {
    // The same export left unfinished (its process died): follow it to its end instead of starting another.
    const open = await db.query<{ id: string }>(
      `SELECT id::text AS id FROM tenantgate.jobs WHERE kind = $1 AND tenant = $2 AND state IN ('queued', 'running') AND params ->> 'out' = $3 ORDER BY seq LIMIT 1`,
      [EXPORT_KIND, id, out],
    );
    const resume = open.rows[0]?.id;
    if (resume && !flags.detach) {
      io.stderr(`job ${resume}: an unfinished export of ${id} into ${out}; resuming it (from a new snapshot if it was mid-way) once its last runner's lease lapses\n`);
      const job = await new JobRunner({ db, registry: jobKinds }).follow(resume);
      if (job.state !== 'done') throw jobError(job);
      return { job: job.id, result: job.result as ExportResult };
    }
    prepareTarget(out, flags.force);
    const params: ExportParams = { out, format: req.format, view: req.view, datasets: req.datasets, force: Boolean(flags.force), config: configFile };
    const job = await runJobCommand(io, db, { kind: EXPORT_KIND, tenant: id, params: params as Record<string, unknown> }, { detach: Boolean(flags.detach), json, label: 'export' });
    return { job: job.id, result: (job.state === 'done' ? job.result : null) as ExportResult | null };
  } finally {
    useExportEnvironment(undefined);
  }
}

export function formatExport(r: { job: string; result: ExportResult | null }): string {
  if (!r.result) return '';
  const x = r.result;
  const lines = [
    `Exported ${x.tenant} (${x.view} view, ${x.format}) to ${x.out}: ${x.rows.toLocaleString('en-US')} row(s), ${x.bytes.toLocaleString('en-US')} bytes, snapshot ${x.snapshot_at}.`,
    ...x.files.map((f) => `  ${f.file}  ${f.rows.toLocaleString('en-US')} row(s)  sha256 ${f.sha256}`),
    `  manifest.json is signed; check the folder with \`tenantgate export verify ${x.out}\`.`,
  ];
  return `${lines.join('\n')}\n`;
}

/** `tenantgate export verify DIR [--public-key FILE]`. */
export async function runVerifyCommand(io: CliIO, dir: string, publicKey?: string): Promise<VerifyReport> {
  let trusted;
  if (publicKey) {
    try {
      trusted = createPublicKey(readFileSync(resolve(io.cwd, publicKey), 'utf8'));
    } catch (err) {
      throw new TenantGateError('USAGE', `--public-key: cannot read a PEM public key from ${publicKey}: ${(err as Error).message}`);
    }
  }
  return verifyExport(resolve(io.cwd, dir), trusted);
}

export function formatVerify(r: VerifyReport): string {
  if (r.ok) return `OK: ${r.dir}: signature valid, ${r.files} file(s), ${r.rows.toLocaleString('en-US')} row(s) match the manifest${r.tenant ? ` (tenant ${r.tenant})` : ''}.\n`;
  return `FAILED: ${r.dir}\n${r.problems.map((p) => `  ${p.file}: ${p.problem}`).join('\n')}\n`;
}
