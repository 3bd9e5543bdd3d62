import { z } from 'zod';
import { JOB_STATES } from './store.ts';
import { jobsQuerySchema } from './routes.ts';

/** The admin job endpoints in the OpenAPI document (src/http/openapi.ts adds them). */
export function jobPaths(errors: Record<string, unknown>): Record<string, unknown> {
  const js = z.toJSONSchema(jobsQuerySchema, { io: 'input' }) as { properties?: Record<string, unknown>; required?: string[] };
  const query = Object.entries(js.properties ?? {}).map(([name, s]) => ({ name, in: 'query', required: js.required?.includes(name) ?? false, schema: s }));
  const idParam = { name: 'id', in: 'path', required: true, schema: { type: 'string', format: 'uuid' } };
  const ok = (schema: string) => ({ 200: { description: 'ok', content: { 'application/json': { schema: { $ref: `#/components/schemas/${schema}` } } } }, ...errors });
  return {
    '/v1/admin/jobs': {
      get: { summary: 'Lifecycle jobs, newest first: filter by tenant, state, kind; paged with a cursor (platform admin)', parameters: query, responses: ok('JobPage') },
    },
    '/v1/admin/jobs/{id}': {
      get: { summary: 'One job: state, progress, result or error (platform admin)', parameters: [idParam], responses: ok('JobAnswer') },
      delete: { summary: 'Cancel a job: a queued one at once, a running one at its next checkpoint; JOB_FINISHED if it already ended (platform admin)', parameters: [idParam], responses: ok('JobAnswer') },
    },
  };
}

export function jobSchemas(): Record<string, unknown> {
  const time = { type: ['string', 'null'], format: 'date-time' };
  return {
    Job: {
      type: 'object',
      required: ['id', 'kind', 'tenant', 'state', 'cancel_requested', 'progress', 'result', 'error', 'requested_by', 'attempts', 'created_at'],
      properties: {
        id: { type: 'string', format: 'uuid' },
        kind: { type: 'string', description: 'export, erase, backup, …' },
        tenant: { type: ['string', 'null'], description: 'null: a job across tenants' },
        state: { type: 'string', enum: [...JOB_STATES] },
        cancel_requested: { type: 'boolean', description: 'a cancel was asked for while it ran: it stops at its next checkpoint' },
        progress: {
          type: 'object',
          properties: { done: { type: 'integer' }, total: { type: ['integer', 'null'] }, phase: { type: ['string', 'null'] } },
        },
        params: { type: 'object' },
        result: { description: 'what the job produced (done jobs)' },
        error: { type: ['object', 'null'], properties: { code: { type: 'string' }, message: { type: 'string' } }, description: 'failed jobs: a code of docs/errors.md' },
        requested_by: { type: 'string', description: 'cli:<user>, key:<key id> or jwt:<subject>' },
        attempts: { type: 'integer' },
        max_attempts: { type: 'integer' },
        runner: { type: ['string', 'null'] },
        created_at: time,
        started_at: time,
        heartbeat_at: time,
        lease_until: time,
        finished_at: time,
      },
    },
    JobAnswer: { type: 'object', required: ['job'], properties: { job: { $ref: '#/components/schemas/Job' } } },
    JobPage: {
      type: 'object',
      required: ['jobs', 'truncated', 'next'],
      properties: {
        jobs: { type: 'array', items: { $ref: '#/components/schemas/Job' }, description: 'newest first, at most `limit`' },
        truncated: { type: 'boolean', description: 'more jobs match than this page holds' },
        next: { type: ['string', 'null'], description: 'when truncated: pass as `before` for the next page; null on the last page' },
      },
    },
  };
}
