import { existsSync } from 'node:fs';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { authorize } from '../../authorize/authorize.ts';
import { TenantGateError, isTenantGateError } from '../../errors/index.ts';
import { toGatewayError } from '../../execute/run-plan.ts';
import type { Gateway, RequestRecord } from '../../gateway/gateway.ts';
import { parseBody } from '../../plan/planner.ts';
import { enqueueJob } from '../jobs/runner.ts';
import { jobServiceOf } from '../jobs/service.ts';
import { getJobForTenant, jobJson, type Job } from '../jobs/store.ts';
import { checkNotMoving, checkRequest, MANIFEST, type ExportResult } from './export.ts';
import { EXPORT_FORMATS, EXPORT_VIEWS } from './formats.ts';
import { EXPORT_KIND, exportFolder, useExportEnvironment, type ExportParams } from './job.ts';
import { tarStream } from './tar.ts';

/** POST /v1/admin/tenants/{id}/export's body. */
export const adminExportSchema = z.strictObject({
  format: z.enum(EXPORT_FORMATS).default('ndjson'),
  view: z.enum(EXPORT_VIEWS).default('tenant').describe('`full`: every column raw (audited)'),
  datasets: z.array(z.string().min(1).max(63)).min(1).max(1000).optional().describe('default: every dataset'),
});

/** POST /v1/exports's body: the tenant view only. */
export const tenantExportSchema = z.strictObject({
  format: z.enum(EXPORT_FORMATS).default('ndjson'),
  datasets: z.array(z.string().min(1).max(63)).min(1).max(1000).optional().describe('default: every dataset'),
});

type Answer = (req: FastifyRequest, reply: FastifyReply, status: number, body: unknown, error?: TenantGateError) => Promise<unknown>;

/** What a tenant admin sees of its export: no server paths, no runner, no who-asked. */
export function exportJson(j: Job) {
  const r = j.result as ExportResult | null;
  const p = j.params as ExportParams;
  return {
    id: j.id,
    state: j.state,
    progress: j.progress,
    format: p.format ?? 'ndjson',
    view: p.view ?? 'tenant',
    datasets: p.datasets ?? null,
    created_at: j.createdAt.toISOString(),
    finished_at: j.finishedAt ? j.finishedAt.toISOString() : null,
    error: j.error,
    ...(r && j.state === 'done' ? { snapshot_at: r.snapshot_at, rows: r.rows, bytes: r.bytes, files: r.files, archive: `/v1/exports/${j.id}/archive` } : {}),
  };
}

/**
 * Export endpoints. Admin (platform callers): POST /v1/admin/tenants/{id}/export queues a job (its
 * state at GET /v1/admin/jobs/{id}). Self-service (a tenant admin, its own tenant only): POST
 * /v1/exports queues one (tenant view only), GET /v1/exports/{id} its state, GET
 * /v1/exports/{id}/archive the files as one tar stream once done. Another tenant's export id (or
 * any other job's) answers exactly like an unknown id: JOB_UNKNOWN, 404.
 */
export function registerExportRoutes(app: FastifyInstance, gateway: Gateway, rec: (req: FastifyRequest) => RequestRecord, answer: Answer): void {
  const jobs = jobServiceOf(gateway);
  // Export jobs this process's runner runs use the gateway's configuration (and its environment's signing key).
  useExportEnvironment({ config: gateway.config, env: process.env });
  const onDb = <T>(p: Promise<T>) =>
    p.catch((err: unknown) => {
      if (isTenantGateError(err)) throw err;
      throw toGatewayError(err);
    });

  /** A tenant admin acting for its own tenant (a platform admin naming one tenant also may). */
  const tenantAdmin = async (r: RequestRecord) => {
    const c = await gateway.caller(r);
    authorize(c.tenant, c.access, 'audit_read'); // tenant admin or platform; suspended tenants refused
    if (!c.tenant) throw new TenantGateError('TENANT_REQUIRED', 'name one tenant');
    if (c.tenant.features['export'] === false) throw new TenantGateError('POLICY_DENIED', 'export is turned off for this tenant');
    if (gateway.limiting) r.permit = await gateway.admission.admit(c.principal, c.tenant, { slot: false });
    r.timings.mark('authorize');
    return c;
  };
  const ownExport = async (req: FastifyRequest) => {
    const r = rec(req);
    const c = await tenantAdmin(r);
    const id = (req.params as { id?: string }).id ?? '';
    const j = await onDb(getJobForTenant(await jobs.database(), id, c.tenant!.id));
    if (j.kind !== EXPORT_KIND) throw new TenantGateError('JOB_UNKNOWN', 'no such job'); // another kind of job answers like an unknown id
    r.timings.mark('execute');
    return { r, j };
  };

  app.post('/v1/admin/tenants/:id/export', async (req, reply) => {
    const r = rec(req);
    // Platform admins only; a tenant erased since this process loaded its config is TENANT_ERASED, as on every admin endpoint.
    const tenant = (await gateway.platformTenant(r, (req.params as { id?: string }).id ?? '')).id;
    r.write = true;
    const body = parseBody(adminExportSchema, req.body ?? {});
    checkRequest(gateway.config, { tenant, ...body });
    const db = await jobs.database();
    await onDb(checkNotMoving(db, tenant));
    const params: ExportParams = { format: body.format, view: body.view, ...(body.datasets ? { datasets: body.datasets } : {}), config: gateway.config.file };
    const job = await onDb(enqueueJob(db, { kind: EXPORT_KIND, tenant, params: params as Record<string, unknown>, requestedBy: principalOf(r) }));
    jobs.runner?.nudge();
    r.timings.mark('execute');
    return answer(req, reply, 202, { job: jobJson(job) });
  });

  app.post('/v1/exports', async (req, reply) => {
    const r = rec(req);
    const c = await tenantAdmin(r);
    r.write = true;
    const body = parseBody(tenantExportSchema, req.body ?? {});
    checkRequest(gateway.config, { tenant: c.tenant!.id, ...body });
    const db = await jobs.database();
    await onDb(checkNotMoving(db, c.tenant!.id));
    const params: ExportParams = { format: body.format, view: 'tenant', ...(body.datasets ? { datasets: body.datasets } : {}), config: gateway.config.file };
    const job = await onDb(enqueueJob(db, { kind: EXPORT_KIND, tenant: c.tenant!.id, params: params as Record<string, unknown>, requestedBy: principalOf(r) }));
    jobs.runner?.nudge();
    r.timings.mark('execute');
    return answer(req, reply, 202, { export: exportJson(job) });
  });

  app.get('/v1/exports/:id', async (req, reply) => {
    const { j } = await ownExport(req);
    return answer(req, reply, 200, { export: exportJson(j) });
  });

  app.get('/v1/exports/:id/archive', async (req, reply) => {
    const { r, j } = await ownExport(req);
    const result = j.result as ExportResult | null;
    const dir = exportFolder(gateway.config, j.id);
    if (j.state !== 'done' || !result || !existsSync(dir)) throw new TenantGateError('EXPORT_NOT_READY', j.state === 'done' ? 'the export files are gone from the server' : `the export is ${j.state}`);
    r.rows = result.rows;
    reply.header('content-type', 'application/x-tar');
    reply.header('content-disposition', `attachment; filename="export-${j.id}.tar"`);
    return answer(req, reply, 200, tarStream(dir, [MANIFEST, ...result.files.map((f) => f.file)], `export-${j.id}`));
  });
}

function principalOf(r: RequestRecord): string {
  const p = r.principal;
  return p ? `${p.kind === 'jwt' ? 'jwt' : 'key'}:${p.id}` : 'api';
}
