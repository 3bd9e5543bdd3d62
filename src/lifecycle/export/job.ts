import { join, resolve } from 'node:path';
import { randomUUID } from 'node:crypto';
import { appendEvents } from '../../audit/store.ts';
import type { AuditEvent } from '../../audit/event.ts';
import type { Config } from '../../config/types.ts';
import { TenantGateError, isTenantGateError } from '../../errors/index.ts';
import { mapDatabaseError } from '../../execute/tenant-transaction.ts';
import { registerJobKind, type JobContext, type JobKind } from '../jobs/registry.ts';
import { defaultRetryable } from '../jobs/runner.ts';
import { checkRequest, plannedFiles, removeFiles, runExport, type ExportResult } from './export.ts';
import type { ExportFormat, ExportView } from './formats.ts';

export const EXPORT_KIND = 'export';

/** What an export job is asked for (the job's `params`; its tenant is the job's). */
export interface ExportParams {
  /** The folder (absolute); default `<config dir>/.tenantgate/exports/<job id>` (the HTTP endpoints'). */
  out?: string;
  format?: ExportFormat;
  view?: ExportView;
  datasets?: string[];
  force?: boolean;
  /** The configuration file the job was asked with (a runner without one of its own loads it). */
  config?: string;
}

/** Where a job's checkpoint says it is. A resumed job that was `writing` lost its snapshot: it writes every file again under a new one. */
export type ExportCheckpoint = { phase: 'writing'; attempt: number } | { phase: 'written'; result: ExportResult };

interface ExportEnvironment {
  config: Config;
  env: Record<string, string | undefined>;
  /** Test hook: kill points. */
  point?: (name: 'dataset' | 'manifest') => void;
}

let environment: ExportEnvironment | undefined;

/** The configuration export jobs of this process run with (the gateway's, or the CLI's). */
export function useExportEnvironment(e: ExportEnvironment | undefined): void {
  environment = e;
}

async function envFor(params: ExportParams): Promise<ExportEnvironment> {
  // The process's own configuration when the job was asked with it (or names none); else the file the job names.
  if (environment && (!params.config || environment.config.file === params.config)) return environment;
  if (!params.config) throw new TenantGateError('CONFIG_NOT_FOUND', 'this runner has no configuration for export jobs');
  const { loadConfig } = await import('../../config/load.ts');
  return { config: await loadConfig(params.config, { env: process.env }), env: process.env };
}

/** The folder of an export made for the HTTP endpoints: under the config's folder, named by the job. */
export function exportFolder(config: Config, jobId: string): string {
  return join(config.dir, '.tenantgate', 'exports', jobId);
}

export const outOf = (config: Config, jobId: string, params: ExportParams) => (params.out ? resolve(config.dir, params.out) : exportFolder(config, jobId));

/** The audit record of a full-view export (platform only): the tenant's chain, who asked, which datasets. */
function fullViewEvent(tenant: string, by: string, datasets: string[], rows: number | null, started: number): AuditEvent {
  return {
    at: new Date(started).toISOString(),
    request_id: randomUUID(),
    tenant,
    principal: by,
    role: null,
    access: 'platform',
    endpoint: 'export --view full',
    tenant_from: null,
    named_tenant: null,
    datasets,
    tables: [],
    sql: null,
    fingerprint: null,
    rows,
    status: 200,
    decision: 'allow',
    code: null,
    duration_ms: Date.now() - started,
    stages: {},
    tenant_predicate: true,
    rls: false,
    client: null,
  };
}

export const exportKind: JobKind<ExportParams, ExportCheckpoint, ExportResult> = {
  kind: EXPORT_KIND,
  exclusive: 'tenant',
  // A move that starts is refused (TENANT_MOVING), not waited for; lost connections are retried.
  retryable: (err) => {
    const m = mapDatabaseError(err);
    if (isTenantGateError(m) && m.code === 'TENANT_MOVING') return false;
    return defaultRetryable(err);
  },
  async run(ctx: JobContext<ExportParams, ExportCheckpoint>): Promise<ExportResult> {
    if (ctx.saved?.phase === 'written') return ctx.saved.result; // written before the runner died: done once
    const { config, env, point } = await envFor(ctx.params);
    const tenant = ctx.job.tenant ?? '';
    const req = checkRequest(config, { tenant, format: ctx.params.format, view: ctx.params.view, datasets: ctx.params.datasets });
    const out = outOf(config, ctx.job.id, ctx.params);
    const fresh = ctx.saved === null;
    if (!fresh) removeFiles(out, plannedFiles(req.datasets, req.format)); // this job's own files of the attempt that died
    const started = Date.now();
    const result = await runExport({
      config,
      main: ctx.db,
      env,
      tenant,
      out,
      format: req.format,
      view: req.view,
      datasets: req.datasets,
      force: ctx.params.force,
      jobId: ctx.job.id,
      fresh,
      signal: ctx.signal,
      onProgress: (done, total, phase) => ctx.progress(done, total, phase),
      ...(point ? { point } : {}),
      // The folder is checked: save that before writing anything, so a resume knows the files in it are its own.
      ...(fresh ? { beforeWrite: () => ctx.checkpoint({ phase: 'writing', attempt: ctx.job.attempts }) } : {}),
    });
    if (req.view === 'full') await appendEvents(ctx.db, [fullViewEvent(tenant, ctx.job.requestedBy, req.datasets, result.rows, started)]);
    await ctx.checkpoint({ phase: 'written', result });
    return result;
  },
};

registerJobKind(exportKind);
