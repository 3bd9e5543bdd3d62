import { resolve } from 'node:path';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { TenantGateError } from '../errors/index.ts';
import type { Gateway, RequestRecord } from '../gateway/gateway.ts';
import { parseBody } from '../plan/planner.ts';
import { enqueueJob } from '../lifecycle/jobs/runner.ts';
import { onDb, platformCaller } from '../lifecycle/jobs/routes.ts';
import { jobServiceOf } from '../lifecycle/jobs/service.ts';
import { jobJson, listJobs } from '../lifecycle/jobs/store.ts';
import { MIGRATE_KIND, useMigrateEnvironment } from './job.ts';
import { migrationStatus } from './status.ts';

/** POST /v1/admin/migrations's body: `migrate up`'s flags. */
export const migrateBodySchema = z.strictObject({
  to: z.string().regex(/^\d{4}$/).optional().describe('stop after this migration (its number)'),
  canary: z.array(z.string().max(64)).max(1000).optional().describe('schema/database-tier tenants migrated first, after the main database'),
  canary_percent: z.number().int().min(1).max(100).optional(),
  concurrency: z.number().int().min(1).max(64).optional().describe('targets at once after the canaries (default 2)'),
  lock_timeout_ms: z.number().int().min(1).max(600_000).optional().describe('how long one migration may wait for a lock (default 5000)'),
  retries: z.number().int().min(0).max(20).optional().describe('tries after a lock timeout (default 3)'),
  continue_on_error: z.boolean().optional(),
});

type Endpoint = (fn: (req: FastifyRequest) => Promise<unknown>) => (req: FastifyRequest, reply: FastifyReply) => Promise<unknown>;
type Answer = (req: FastifyRequest, reply: FastifyReply, status: number, body: unknown, error?: TenantGateError) => Promise<unknown>;

/**
 * GET /v1/admin/migrations (`migrate status` and the latest migrate jobs) and POST (queue `migrate
 * up` as a job for the gateway's runner; 202 with the job, or the one already queued or running).
 * Platform callers only; anyone else meets an unknown route.
 */
export function registerMigrateRoutes(app: FastifyInstance, gateway: Gateway, endpoint: Endpoint, rec: (req: FastifyRequest) => RequestRecord, answer: Answer): void {
  const jobs = jobServiceOf(gateway);
  app.get(
    '/v1/admin/migrations',
    endpoint(async (req) => {
      const r = rec(req);
      await platformCaller(gateway, r);
      r.timings.mark('plan');
      const db = await jobs.database();
      const config = gateway.config;
      const status = await onDb(migrationStatus({ config, main: db, env: process.env, dir: resolve(config.dir, config.effective.database.migrations_dir) }));
      const recent = await onDb(listJobs(db, { kind: MIGRATE_KIND, limit: 5 }));
      r.timings.mark('execute');
      return { ...status, jobs: recent.jobs.map((j) => jobJson(j)) };
    }),
  );
  app.post('/v1/admin/migrations', async (req, reply) => {
    const r = rec(req);
    await platformCaller(gateway, r);
    r.write = true;
    const body = parseBody(migrateBodySchema, req.body ?? {});
    r.timings.mark('plan');
    const p = r.principal!;
    const db = await onDb(jobs.database());
    useMigrateEnvironment({ config: gateway.config, env: process.env });
    // One migrate job at a time: a second POST is answered with the one under way.
    const open = await onDb(listJobs(db, { kind: MIGRATE_KIND, limit: 20 }));
    let job = open.jobs.find((j) => j.state === 'queued' || j.state === 'running');
    if (!job) {
      job = await onDb(enqueueJob(db, { kind: MIGRATE_KIND, tenant: null, params: { ...body, config: gateway.config.file }, requestedBy: `${p.kind === 'api_key' ? 'key' : 'jwt'}:${p.id}` }));
      jobs.runner?.nudge();
    }
    r.timings.mark('execute');
    return answer(req, reply, 202, { job: jobJson(job) });
  });
}
