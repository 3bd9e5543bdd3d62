import { z } from 'zod';
import { migrateBodySchema } from './routes.ts';

/** The migration endpoints in the OpenAPI document (src/http/openapi.ts adds them). */
export function migratePaths(errors: Record<string, unknown>): Record<string, unknown> {
  return {
    '/v1/admin/migrations': {
      get: {
        summary: '`migrate status`: per migration how many targets (the pooled tables, each schema, each tenant database) have it and which do not, every target, and the latest migrate jobs (platform admin)',
        responses: { 200: { description: '{"migrations", "targets", "upToDate", "jobs"}' }, ...errors },
      },
      post: {
        summary: '`migrate up` as a job: the main database, the canaries, then the rest N at a time; 202 with the job (the one under way, if any); follow it at /v1/admin/jobs/{id} (platform admin)',
        requestBody: { required: false, content: { 'application/json': { schema: z.toJSONSchema(migrateBodySchema, { io: 'input' }) } } },
        responses: { 202: { description: '{"job": …}' }, ...errors },
      },
    },
  };
}
