import { z } from 'zod';
import { adminExportSchema, tenantExportSchema } from './routes.ts';

/** The export endpoints in the OpenAPI document (src/http/openapi.ts adds them). */
export function exportPaths(errors: Record<string, unknown>): Record<string, unknown> {
  const body = (s: z.ZodType) => ({ required: false, content: { 'application/json': { schema: z.toJSONSchema(s, { io: 'input' }) } } });
  const idParam = { name: 'id', in: 'path', required: true, schema: { type: 'string' } };
  const queued = (what: string) => ({ 202: { description: `queued: ${what}` }, ...errors });
  return {
    '/v1/admin/tenants/{id}/export': {
      post: {
        summary: "Export a tenant's data (a job, one snapshot, a file per dataset and a signed manifest); `view: full` is every column raw and audited (platform admin)",
        parameters: [idParam],
        requestBody: body(adminExportSchema),
        responses: queued('{"job": …}; follow it at /v1/admin/jobs/{id}'),
      },
    },
    '/v1/exports': {
      post: { summary: "Export the caller's own tenant (tenant admin): the tenant view only, as a job", requestBody: body(tenantExportSchema), responses: queued('{"export": {"id", "state", …}}') },
    },
    '/v1/exports/{id}': {
      get: { summary: 'An export of the caller\'s tenant: state, progress; once done the files, rows, snapshot time and the archive link. Another tenant\'s id answers like an unknown one (JOB_UNKNOWN)', parameters: [idParam], responses: { 200: { description: '{"export": …}' }, ...errors } },
    },
    '/v1/exports/{id}/archive': {
      get: {
        summary: 'The files of a finished export (manifest.json first) as one streamed tar archive; EXPORT_NOT_READY before it is done',
        parameters: [idParam],
        responses: { 200: { description: 'application/x-tar', content: { 'application/x-tar': { schema: { type: 'string', format: 'binary' } } } }, ...errors },
      },
    },
  };
}
