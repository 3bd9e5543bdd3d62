import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { TenantGateError } from '../../errors/index.ts';
import type { Gateway, RequestRecord } from '../../gateway/gateway.ts';
import { parseBody } from '../../plan/planner.ts';
import { enqueueJob } from '../jobs/runner.ts';
import { jobServiceOf } from '../jobs/service.ts';
import { jobJson } from '../jobs/store.ts';
import { ownerDbError } from '../jobs/routes.ts';
import { bindEraseEnvironment, ERASE_KIND } from './job.ts';
import { checkEraseRequest, erasedTenant, openEraseJob } from './requests.ts';

/** POST /v1/admin/tenants/{id}/erase's body. */
export const eraseBodySchema = z.strictObject({
  confirm: z.string().max(64).describe('the tenant id again: the erasure is refused (ERASE_CONFIRM_MISMATCH) unless it matches'),
  batch_rows: z.number().int().min(1).max(1_000_000).optional().describe('rows per delete batch in the shared tables (default 5000)'),
});

type Answer = (req: FastifyRequest, reply: FastifyReply, status: number, body: unknown, error?: TenantGateError) => Promise<unknown>;

/**
 * POST /v1/admin/tenants/{id}/erase (platform admins): queue the tenant's erase job for the
 * gateway's runner and answer 202 with it (follow it with GET /v1/admin/jobs/{id}; its result is
 * the certificate). An erase of the tenant already under way is answered with that job.
 */
export function registerEraseRoutes(app: FastifyInstance, gateway: Gateway, rec: (req: FastifyRequest) => RequestRecord, answer: Answer): void {
  const jobs = jobServiceOf(gateway);
  app.post('/v1/admin/tenants/:id/erase', async (req, reply) => {
    const r = rec(req);
    const t = await gateway.platformTenant(r, (req.params as { id?: string }).id);
    r.write = true;
    const body = parseBody(eraseBodySchema, req.body ?? {});
    checkEraseRequest(t.id, body.confirm);
    r.timings.mark('plan');
    const p = r.principal!;
    try {
      const db = await jobs.database();
      bindEraseEnvironment(db, { config: gateway.config, env: process.env });
      const open = await openEraseJob(db, t.id);
      let job = open;
      if (!job) {
        if (await erasedTenant(db, t.id)) throw new TenantGateError('TENANT_ERASED', `${t.id} was erased already`);
        job = await enqueueJob(db, { kind: ERASE_KIND, tenant: t.id, params: { config_file: gateway.config.file, ...(body.batch_rows ? { batch_rows: body.batch_rows } : {}) }, requestedBy: `${p.kind === 'api_key' ? 'key' : 'jwt'}:${p.id}` });
        jobs.runner?.nudge();
      }
      r.timings.mark('execute');
      return answer(req, reply, 202, { job: jobJson(job) });
    } catch (err) {
      ownerDbError(err);
    }
  });
}
