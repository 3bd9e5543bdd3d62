import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { TenantGateError, isTenantGateError } from '../../errors/index.ts';
import { toGatewayError } from '../../execute/run-plan.ts';
import type { Gateway, RequestRecord } from '../../gateway/gateway.ts';
import { parseBody } from '../../plan/planner.ts';
import { jobServiceOf } from './service.ts';
import { cancelJob, jobJson, JOB_STATES, listJobs, requireJob, type Job } from './store.ts';

/** GET /v1/admin/jobs's query string (also the OpenAPI parameters). */
export const jobsQuerySchema = z.strictObject({
  tenant: z.string().regex(/^[a-z][a-z0-9_-]{1,39}$/).optional().describe("one tenant's jobs"),
  state: z.enum(JOB_STATES).optional(),
  kind: z.string().min(1).max(64).optional(),
  before: z.string().max(40).optional().describe('the `next` cursor of the previous page'),
  limit: z.coerce.number().int().min(1).max(1000).default(100).describe('jobs per page, newest first; `truncated` says when more match'),
});

type Endpoint = (fn: (req: FastifyRequest) => Promise<unknown>) => (req: FastifyRequest, reply: FastifyReply) => Promise<unknown>;

/** An owner-database failure of an admin endpoint as the answer it gets: ours as it is, an unreachable database DB_UNAVAILABLE, the rest mapped like a query's. */
export function ownerDbError(err: unknown): never {
  if (isTenantGateError(err)) throw err;
  const code = (err as { code?: string })?.code;
  if (code === 'ECONNREFUSED' || code === 'ENOTFOUND' || code === 'ETIMEDOUT') throw new TenantGateError('DB_UNAVAILABLE', 'the owner database does not answer', { cause: err });
  throw toGatewayError(err);
}

/** The owner-database work of an admin endpoint, its failures answered by ownerDbError. */
export const onDb = <T>(p: Promise<T>): Promise<T> => p.catch(ownerDbError);

/**
 * The admin endpoints of the job runner, for platform callers only. Anyone else with a valid
 * credential gets exactly the answer of an unknown route (404 NOT_FOUND): nothing says jobs exist.
 * Each request is audited like the other admin endpoints (through `endpoint`); a job of one
 * tenant is audited on that tenant's chain.
 */
export function registerJobRoutes(app: FastifyInstance, gateway: Gateway, endpoint: Endpoint, rec: (req: FastifyRequest) => RequestRecord): void {
  const jobs = jobServiceOf(gateway);
  const id = (req: FastifyRequest) => (req.params as { id?: string }).id ?? '';
  const forJob = (r: RequestRecord, j: Job) => {
    r.tenant = (j.tenant && gateway.tenantOf(j.tenant)) || null; // an erased tenant's chain is closed: the platform's records it
  };

  app.get(
    '/v1/admin/jobs',
    endpoint(async (req) => {
      const r = rec(req);
      await platformCaller(gateway, r);
      const f = parseBody(jobsQuerySchema, req.query);
      r.tenant = (f.tenant && gateway.tenantOf(f.tenant)) || null;
      r.timings.mark('plan');
      const page = await onDb(listJobs(await jobs.database(), f));
      r.rows = page.jobs.length;
      r.timings.mark('execute');
      return { jobs: page.jobs.map((j) => jobJson(j)), truncated: page.truncated, next: page.next };
    }),
  );
  app.get(
    '/v1/admin/jobs/:id',
    endpoint(async (req) => {
      const r = rec(req);
      await platformCaller(gateway, r);
      const j = await onDb(requireJob(await jobs.database(), id(req)));
      forJob(r, j);
      r.timings.mark('execute');
      return { job: jobJson(j) };
    }),
  );
  app.delete(
    '/v1/admin/jobs/:id',
    endpoint(async (req) => {
      const r = rec(req);
      await platformCaller(gateway, r);
      r.write = true;
      const db = await jobs.database();
      const j = await onDb(cancelJob(db, id(req)).catch(async (err: unknown) => {
        // Audit a refused cancel on the job's tenant too.
        const known = await requireJob(db, id(req)).catch(() => undefined);
        if (known) forJob(r, known);
        throw err;
      }));
      forJob(r, j);
      jobs.runner?.nudge(j.id); // a runner in this process stops it now; others at their next heartbeat (or NOTIFY)
      r.timings.mark('execute');
      return { job: jobJson(j) };
    }),
  );
  app.addHook('onClose', async () => jobs.close());
}

/** identify, then: platform callers go on (rate-limited like every admin request); anyone else meets an unknown route. */
export async function platformCaller(gateway: Gateway, rec: RequestRecord): Promise<void> {
  const p = await gateway.identify(rec.req);
  rec.principal = p;
  rec.timings.mark('identify');
  if (p.access !== 'platform') throw new TenantGateError('NOT_FOUND', 'no such endpoint');
  if (gateway.limiting) rec.permit = await gateway.admission.admit(p, null, { slot: false });
  rec.timings.mark('authorize');
}
