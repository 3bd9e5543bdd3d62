import { z } from 'zod';
import type { AccessLevel, Config, Tenant } from '../config/types.ts';
import { TenantGateError } from '../errors/index.ts';
import type { QueryCatalog } from './catalog.ts';
import { compileSemantic } from './semantic/compile.ts';
import { semanticQuerySchema } from './semantic/request.ts';
import { SqlPlanner } from './sql/plan-sql.ts';
import type { QueryPlan } from './types.ts';

/** The body of `POST /v1/queries` (also the OpenAPI schema). */
export const sqlQuerySchema = z.strictObject({
  sql: z.string().min(1).max(100_000),
  params: z.array(z.union([z.string(), z.number(), z.boolean(), z.null()])).max(1000).default([]),
  async: z.literal(false).optional(),
});

/**
 * plan(request, ctx, catalog) → QueryPlan for both query APIs: body validation, the semantic
 * compiler and the SQL planner (with its plan cache). Pure: no I/O. `tenant` null is a platform
 * admin reading all tenants (no tenant predicate). The gateway plans with it, and so does
 * `tenantgate verify` when it checks the gateway's own wall with the database's wall opened.
 */
export class QueryPlanner {
  private readonly sqlPlanner = new SqlPlanner();

  constructor(
    readonly config: Config,
    readonly catalog: QueryCatalog,
  ) {}

  semantic(body: unknown, tenant: Tenant | null): QueryPlan {
    const q = parseBody(semanticQuerySchema, body);
    const view = this.catalog.views(tenant).get(q.dataset);
    if (!view) throw new TenantGateError('QUERY_INVALID', `unknown dataset "${q.dataset}"`);
    return compileSemantic(q, view, tenant, this.maxRows(tenant));
  }

  sql(body: unknown, tenant: Tenant | null, access: AccessLevel): QueryPlan {
    const q = parseBody(sqlQuerySchema, body);
    return this.sqlPlanner.plan(q, {
      views: this.catalog.views(tenant),
      tenant,
      write: (access === 'write' || access === 'admin') && tenant !== null,
      maxRows: this.maxRows(tenant),
      cacheKey: this.catalog.sqlCacheKey(tenant, access),
    });
  }

  maxRows(tenant: Tenant | null): number {
    return (tenant?.quotas ?? this.config.defaultQuotas).max_rows;
  }
}

/** Validate a request body; the first problem becomes a QUERY_INVALID naming the field. */
export function parseBody<T>(schema: z.ZodType<T>, body: unknown): T {
  const r = schema.safeParse(body);
  if (r.success) return r.data;
  const issue = r.error.issues[0];
  const where = issue?.path.length ? `${issue.path.join('.')}: ` : '';
  const what = issue?.code === 'unrecognized_keys' ? `unknown field ${issue.keys.map((k) => `"${k}"`).join(', ')}` : (issue?.message ?? 'invalid body');
  throw new TenantGateError('QUERY_INVALID', `${where}${what}`);
}
