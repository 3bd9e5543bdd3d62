import type { AccessLevel, Config, Tenant } from '../config/types.ts';
import { authorize } from '../authorize/authorize.ts';
import { TenantGateError } from '../errors/index.ts';
import { runPlan } from '../execute/run-plan.ts';
import type { TenantGate } from '../gate.ts';
import { Identifier, type Credentials } from '../identify/identify.ts';
import { createJwtVerifier } from '../identify/jwt.ts';
import type { Principal } from '../identify/principal.ts';
import { QueryCatalog } from '../plan/catalog.ts';
import { QueryPlanner } from '../plan/planner.ts';
import type { QueryAnswer } from '../plan/types.ts';
import { resolveTenant, type TenantNames } from '../tenancy/resolve-tenant.ts';
import { Timings } from './timings.ts';

export { sqlQuerySchema } from '../plan/planner.ts';

export interface GatewayRequest extends Credentials, TenantNames {}

export interface Caller {
  principal: Principal;
  tenant: Tenant | null;
  access: AccessLevel;
}

/**
 * The request pipeline, transport-free: identify → resolve tenant → authorize → plan →
 * execute. Each stage is one function and is timed. The HTTP server only adapts to it.
 */
export class Gateway {
  readonly planner: QueryPlanner;

  private constructor(
    readonly config: Config,
    readonly gate: TenantGate,
    private readonly identifier: Identifier,
    readonly catalog: QueryCatalog,
  ) {
    this.planner = new QueryPlanner(config, catalog);
  }

  static async create(options: { gate: TenantGate; secret: Buffer; env?: Record<string, string | undefined> }): Promise<Gateway> {
    const { gate } = options;
    const env = options.env ?? process.env;
    const pool = gate.database.pool;
    const identifier = new Identifier(gate.config, options.secret, pool, createJwtVerifier(gate.config, env));
    const catalog = await QueryCatalog.load(gate.config, pool);
    return new Gateway(gate.config, gate, identifier, catalog);
  }

  async caller(req: GatewayRequest, t: Timings): Promise<Caller> {
    const principal = await this.identifier.identify(req);
    t.mark('identify');
    const { tenant } = resolveTenant(this.config, principal, req);
    t.mark('resolve');
    return { principal, tenant, access: principal.access };
  }

  async semantic(req: GatewayRequest, body: unknown, t: Timings): Promise<QueryAnswer> {
    const c = await this.caller(req, t);
    authorize(c.tenant, c.access, 'query');
    t.mark('authorize');
    const plan = this.planner.semantic(body, c.tenant);
    t.mark('plan');
    const answer = await runPlan(this.gate, { tenant: c.tenant?.id ?? null, access: c.access }, plan);
    t.mark('execute');
    return answer;
  }

  async sql(req: GatewayRequest, body: unknown, t: Timings): Promise<QueryAnswer> {
    const c = await this.caller(req, t);
    authorize(c.tenant, c.access, 'sql_read');
    t.mark('authorize');
    const plan = this.planner.sql(body, c.tenant, c.access);
    if (plan.write) authorize(c.tenant, c.access, 'sql_write');
    t.mark('plan');
    const answer = await runPlan(this.gate, { tenant: c.tenant?.id ?? null, access: c.access }, plan);
    t.mark('execute');
    return answer;
  }

  async datasets(req: GatewayRequest, t: Timings) {
    const c = await this.caller(req, t);
    authorize(c.tenant, c.access, 'describe');
    return {
      datasets: [...this.catalog.views(c.tenant).values()].map((v) => ({
        name: v.dataset.name,
        dimensions: v.dimensions,
        metrics: [...v.metrics.keys()],
        columns: [...v.columns.keys()].map((name) => ({ name, ...(v.dataset.columns[name]?.mask ? { mask: v.dataset.columns[name]?.mask } : {}) })),
        tenant_column: v.dataset.tenantColumn,
      })),
    };
  }

  async tenant(req: GatewayRequest, t: Timings) {
    const c = await this.caller(req, t);
    if (!c.tenant) throw new TenantGateError('TENANT_REQUIRED', 'name one tenant (not all) to describe it');
    authorize(c.tenant, c.access, 'describe');
    const x = c.tenant;
    return { id: x.id, name: x.name, tier: x.tier, placement: x.placement, status: x.status, quotas: x.quotas, features: { sql_api: true, ...x.features }, access: c.access, role: c.principal.role };
  }
}
