import { z } from 'zod';
import { ERROR_CODES } from '../errors/index.ts';
import { adminAuditQuerySchema, auditQuerySchema, sqlQuerySchema } from '../gateway/gateway.ts';
import { moveBodySchema } from '../gateway/moves.ts';
import { suspendBodySchema } from '../lifecycle/suspend.ts';
import { jobPaths, jobSchemas } from '../lifecycle/jobs/openapi.ts';
import { exportPaths } from '../lifecycle/export/openapi.ts';
import { migratePaths } from '../migrate/openapi.ts';
import { semanticQuerySchema } from '../plan/semantic/request.ts';

const answer = {
  type: 'object',
  required: ['columns', 'rows', 'row_count', 'truncated'],
  properties: {
    columns: { type: 'array', items: { type: 'string' } },
    rows: { type: 'array', items: { type: 'array', items: {} } },
    row_count: { type: 'integer' },
    truncated: { type: 'boolean' },
  },
};
const error = {
  type: 'object',
  required: ['error'],
  properties: {
    error: {
      type: 'object',
      required: ['code', 'message'],
      properties: { code: { type: 'string', enum: Object.keys(ERROR_CODES) }, message: { type: 'string' }, hint: { type: 'string' } },
    },
  },
};

/** Query-string parameters from a zod object schema. */
function queryParams(schema: z.ZodObject): Array<Record<string, unknown>> {
  const js = z.toJSONSchema(schema, { io: 'input' }) as { properties?: Record<string, unknown>; required?: string[] };
  return Object.entries(js.properties ?? {}).map(([name, s]) => ({ name, in: 'query', required: js.required?.includes(name) ?? false, schema: s }));
}

/** OpenAPI 3 from the same zod schemas that validate the requests. */
export function openApiDocument(): Record<string, unknown> {
  const json = (s: z.ZodType) => z.toJSONSchema(s, { io: 'input' });
  const errors = { default: { description: 'error (see docs/errors.md)', content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } } } };
  const tenantParam = { name: 'tenant', in: 'path', required: true, schema: { type: 'string', pattern: '^[a-z][a-z0-9_-]{1,39}$' } };
  const op = (summary: string, body: string | undefined, response: string, withTenant = false) => ({
    summary,
    ...(withTenant ? { parameters: [tenantParam] } : {}),
    ...(body ? { requestBody: { required: true, content: { 'application/json': { schema: { $ref: `#/components/schemas/${body}` } } } } } : {}),
    responses: { 200: { description: 'ok', content: { 'application/json': { schema: { $ref: `#/components/schemas/${response}` } } } }, ...errors },
  });
  const paths: Record<string, unknown> = {};
  for (const [prefix, withTenant] of [['/v1', false], ['/v1/tenants/{tenant}', true]] as const) {
    paths[`${prefix}/query`] = { post: op('Semantic query', 'SemanticQuery', 'Answer', withTenant) };
    paths[`${prefix}/queries`] = { post: op('SQL query (one statement, allowlisted)', 'SqlQuery', 'Answer', withTenant) };
    paths[`${prefix}/datasets`] = { get: op('Datasets, dimensions and metrics the caller may use', undefined, 'Object', withTenant) };
    paths[`${prefix}/tenant`] = { get: op("The caller's tenant", undefined, 'Object', withTenant) };
    paths[`${prefix}/audit`] = { get: { ...op("The caller tenant's own audit trail, newest first (tenant admin)", undefined, 'AuditPage', withTenant), parameters: [...(withTenant ? [tenantParam] : []), ...queryParams(auditQuerySchema)] } };
  }
  paths['/v1/admin/audit'] = { get: { ...op('Any tenant\'s audit trail (platform admin): tenant=<id>, all, or * (requests that named no tenant)', undefined, 'AuditPage'), parameters: queryParams(adminAuditQuerySchema) } };
  const idParam = { name: 'id', in: 'path', required: true, schema: { type: 'string', pattern: '^[a-z][a-z0-9_-]{1,39}$' } };
  const admin = (summary: string, body?: string) => ({ ...op(summary, body, 'Object'), parameters: [idParam] });
  paths['/v1/admin/tenants/{id}/quotas'] = {
    get: admin("A tenant's quotas in force, its runtime changes and usage (platform admin)"),
    patch: admin('Change quotas at runtime; null drops a change (platform admin)', 'Object'),
  };
  paths['/v1/admin/tenants/{id}/move'] = {
    get: admin("The tenant's current or last move: phase, progress, error (platform admin)"),
    post: { ...admin('Move the tenant to another tier or placement online; 202 once under way, 200 with the plan for dry_run (platform admin)', 'MoveRequest'), responses: { 202: { description: 'under way' }, 200: { description: 'dry run: the plan' }, ...errors } },
    delete: admin('Abandon an unfinished move before its cut-over (platform admin)'),
  };
  // Answer for a suspended tenant too; the body is optional ({} or none).
  const lifecycle = (summary: string) => ({ ...admin(summary), requestBody: { required: false, content: { 'application/json': { schema: { $ref: '#/components/schemas/SuspendRequest' } } } } });
  paths['/v1/admin/tenants/{id}'] = { get: admin("The tenant's place and status: active or suspended, and a suspension's reason, author and start (platform admin)") };
  paths['/v1/admin/tenants/{id}/suspend'] = {
    post: lifecycle('Suspend the tenant: every gateway refuses its requests (TENANT_SUSPENDED) within a second, its direct logins stop; idempotent (platform admin)'),
  };
  paths['/v1/admin/tenants/{id}/resume'] = { post: lifecycle('Resume a suspended tenant; idempotent (platform admin)') };
  paths['/v1/admin/tenants/{id}/erase'] = {
    post: { ...admin('Erase the tenant (GDPR Art. 17) as a job: body {"confirm": "<id>", "batch_rows"?}; 202 with the job (GET /v1/admin/jobs/{id}), whose result is the signed certificate of deletion (platform admin)', 'Object'), responses: { 202: { description: 'the erase job, queued or under way' }, ...errors } },
  };
  Object.assign(paths, jobPaths(errors)); // /v1/admin/jobs, /v1/admin/jobs/{id}
  Object.assign(paths, exportPaths(errors)); // /v1/admin/tenants/{id}/export, /v1/exports[/{id}[/archive]]
  Object.assign(paths, migratePaths(errors)); // /v1/admin/migrations
  paths['/metrics'] = { get: { summary: 'Prometheus metrics (platform credential unless metrics.public)', responses: { 200: { description: 'text/plain; version=0.0.4' }, ...errors } } };
  paths['/healthz'] = { get: { summary: 'Liveness', responses: { 200: { description: 'ok' } } } };
  paths['/readyz'] = { get: { summary: 'Readiness (the database answers)', responses: { 200: { description: 'ready' }, 503: { description: 'not ready' } } } };
  return {
    openapi: '3.1.0',
    info: { title: 'tenantgate', version: '1' },
    components: {
      securitySchemes: { apiKey: { type: 'apiKey', in: 'header', name: 'X-API-Key' }, bearer: { type: 'http', scheme: 'bearer' } },
      schemas: {
        SemanticQuery: json(semanticQuerySchema),
        SqlQuery: json(sqlQuerySchema),
        Answer: answer,
        Error: error,
        Object: { type: 'object' },
        MoveRequest: json(moveBodySchema),
        SuspendRequest: json(suspendBodySchema),
        ...jobSchemas(),
        AuditPage: {
          type: 'object',
          required: ['events', 'truncated', 'next'],
          properties: {
            events: { type: 'array', items: { type: 'object' }, description: 'newest first, at most `limit`' },
            truncated: { type: 'boolean', description: 'more records match than this page holds' },
            next: { type: ['string', 'null'], description: 'when truncated: an opaque cursor to pass as `before` for the next page (stable while records are appended); null on the last page' },
          },
        },
      },
    },
    security: [{ apiKey: [] }, { bearer: [] }],
    paths,
  };
}
