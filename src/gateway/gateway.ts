import pino, { type Logger } from 'pino';
import { z } from 'zod';
import { decisionOf, isSecurityEvent, NO_TENANT, type AuditEvent, type LifecycleChange } from '../audit/event.ts';
import { SecurityEvents } from '../audit/security-events.ts';
import { AuditSink } from '../audit/sink.ts';
import { appendEvents, appendStatement, pageOf, pruneAudit, readQuery, type AuditPage } from '../audit/store.ts';
import { authorize } from '../authorize/authorize.ts';
import type { AccessLevel, Config, Tenant } from '../config/types.ts';
import type { Database } from '../db/database.ts';
import { TenantGateError, isTenantGateError, type ErrorCode } from '../errors/index.ts';
import { runPlan, toGatewayError } from '../execute/run-plan.ts';
import type { TenantGate } from '../gate.ts';
import { Identifier, type Credentials } from '../identify/identify.ts';
import { createJwtVerifier } from '../identify/jwt.ts';
import type { Principal } from '../identify/principal.ts';
import { GatewayMetrics } from '../observe/metrics.ts';
import type { RequestLog } from '../observe/request-log.ts';
import { Admission, openBuckets, type Permit } from '../quota/admit.ts';
import { QuotaBook, setQuotas } from '../quota/quota-book.ts';
import { StorageMeter } from '../quota/storage.ts';
import { webhookFrom } from '../observe/webhook.ts';
import { QueryCatalog } from '../plan/catalog.ts';
import { parseBody, QueryPlanner } from '../plan/planner.ts';
import type { QueryAnswer, QueryPlan } from '../plan/types.ts';
import { resolveTenant, type TenantNames } from '../tenancy/resolve-tenant.ts';
import { ALL_TENANTS } from '../tenancy/tenant-id.ts';
import { Timings } from './timings.ts';
import { MoveRunner } from './moves.ts';
import { moveReportJson } from '../tiers/move/move.ts';

export { sqlQuerySchema } from '../plan/planner.ts';

export interface GatewayRequest extends Credentials, TenantNames {}

export interface Caller {
  principal: Principal;
  tenant: Tenant | null;
  access: AccessLevel;
}

/**
 * One request on its way through the pipeline: what each stage learned, for the audit event,
 * the metrics and the security events written when it ends.
 */
export interface RequestRecord {
  id: string;
  at: Date;
  endpoint: string;
  client: string | null;
  req: GatewayRequest;
  timings: Timings;
  principal?: Principal;
  /** undefined: not resolved; null: a platform admin acting for all tenants. */
  tenant?: Tenant | null;
  source?: string;
  plan?: QueryPlan;
  rows?: number;
  write?: boolean;
  /** Written in the request's own transaction (durable mode). */
  audited?: boolean;
  /** What admit granted: a concurrency slot to give back, RateLimit-* headers. */
  permit?: Permit;
  /** A lifecycle change the request made (suspend, resume), with its reason, for the audit record. */
  lifecycle?: LifecycleChange;
}

/** GET /v1/audit's query string (also the OpenAPI parameters). */
export const auditQuerySchema = z.strictObject({
  since: z.iso.datetime({ offset: true }).optional(),
  until: z.iso.datetime({ offset: true }).optional(),
  code: z.string().max(64).optional(),
  principal: z.string().max(200).optional(),
  decision: z.enum(['allow', 'deny', 'error']).optional(),
  request_id: z.string().max(64).optional(),
  before: z.string().max(400).optional().describe('the `next` cursor of the previous page'),
  limit: z.coerce.number().int().min(1).max(1000).default(100).describe('records per page; `truncated` says when more match'),
});
export const adminAuditQuerySchema = auditQuerySchema.extend({ tenant: z.string().min(1).max(40) });

export interface GatewayOptions {
  gate: TenantGate;
  secret: Buffer;
  env?: Record<string, string | undefined>;
  /** JSON logs (pino); default silent. */
  logger?: Logger;
  /** Run the retention job (audit.retention_days) hourly; default true. */
  retention?: boolean;
  /** false: keep no audit trail. Only for measuring what the trail costs (bench/audit.ts); the CLI never sets it. */
  audit?: boolean;
  /** false: admit everything (no rate, concurrency or storage check). Only for measuring what the limiter costs (bench/noisy.ts). */
  quotas?: boolean;
  /** Where each request's log line goes; default `logger.info(…, 'request')`. serve formats it itself (src/observe/request-log.ts). */
  requestLog?: RequestLog;
}

/**
 * The request pipeline, transport-free: identify → resolve tenant → authorize → plan → execute →
 * audit. Each stage is one function and is timed. The HTTP server only adapts to it: it opens a
 * record per request (begin), calls an endpoint, and ends it (finish) before answering.
 */
export class Gateway {
  readonly planner: QueryPlanner;
  /** Tenants erased while this process runs (resolveTenant meets them as unknown ids); made once, not per request. */
  private readonly erased = (id: string) => this.gate.routes.erased(id);
  readonly metrics: GatewayMetrics;
  readonly security: SecurityEvents;
  readonly audit: AuditSink | undefined;
  readonly admission: Admission;
  /** Tenant moves started through the admin API. */
  readonly moves: MoveRunner;
  /** Whether admit applies quotas (GatewayOptions.quotas). */
  limiting = true;
  /** Each request's log line (GatewayOptions.requestLog). */
  requestLog: RequestLog = (f) => this.log.info(f, 'request');
  private retentionTimer: NodeJS.Timeout | undefined;
  /** Dataset name → `schema.table`, for the audit event (made once: every request's event names its tables). */
  private readonly tables: Map<string, string>;

  private constructor(
    readonly config: Config,
    readonly gate: TenantGate,
    private readonly identifier: Identifier,
    readonly catalog: QueryCatalog,
    readonly log: Logger,
    env: Record<string, string | undefined>,
    /** The audit writer's own connection, so a batch being written never holds one of the requests' connections. */
    private readonly writer: Database,
    secret: Buffer,
    private readonly auditing = true,
  ) {
    this.planner = new QueryPlanner(config, catalog);
    this.tables = new Map(config.datasets.map((d) => [d.name, `${d.schema}.${d.table}`]));
    this.moves = new MoveRunner(config, gate, secret, env, log);
    const a = config.effective.audit;
    const pool = gate.database.pool;
    this.audit =
      a.mode === 'batched' && auditing
        ? new AuditSink({
            write: (events) => appendEvents(writer, events),
            flushIntervalMs: a.flush_interval_ms,
            batchSize: a.batch_size,
            bufferLimit: a.buffer_limit,
            onError: (err, pending) => log.error({ err, pending }, 'audit: writing a batch failed; it is kept and retried'),
            onDrop: (e) => log.error({ request_id: e.request_id, tenant: e.tenant }, 'audit: buffer full past the wait limit; event dropped'),
          })
        : undefined;
    const sink = this.audit;
    const allTenants = (text: string, values: unknown[]) => gate.statement({ tenant: ALL_TENANTS, access: 'platform' }, { text, values, rowMode: 'array' }) as Promise<{ rows: unknown[][] }>;
    this.admission = new Admission(
      config,
      openBuckets(config, log),
      new QuotaBook(gate.database),
      config.datasets.length
        ? new StorageMeter(config, allTenants, {
            placed: () => [...config.tenants.keys()].map((tenant) => ({ tenant, tier: gate.routes.get(tenant).tier })).filter((p) => p.tier !== 'pooled'),
            // Measuring is not the tenant's request: a suspended one is measured too (or every tenant's measure would stop).
            inOwnDatabase: (tenant, text, values) => gate.statement({ tenant, access: 'platform', allowSuspended: true }, { text, values, rowMode: 'array' }) as Promise<{ rows: unknown[][] }>,
          })
        : undefined,
      log,
      webhookFrom(config.effective.quota_webhook, env, log, 'quota', 'quota_webhook'),
      (w) => this.metrics.quotaWarning(w.tenant, w.quota),
    );
    const admission = this.admission;
    this.metrics = new GatewayMetrics({
      topTenants: config.effective.metrics.top_tenants,
      seriesBudget: config.effective.metrics.series_budget,
      quotaUse: (tenant) => admission.used.get(tenant),
      gauges: [
        {
          name: 'tenantgate_db_pool_connections',
          help: 'Gateway pool connections by state',
          labels: ['state'],
          collect: () => [
            { labels: { state: 'total' }, value: pool.totalCount },
            { labels: { state: 'idle' }, value: pool.idleCount },
            { labels: { state: 'waiting' }, value: pool.waitingCount },
          ],
        },
        { name: 'tenantgate_audit_buffered_events', help: 'Audit events waiting to be written (batched mode)', collect: () => [{ value: sink?.stats.buffered ?? 0 }] },
        { name: 'tenantgate_audit_written_events', help: 'Audit events written since start (batched mode)', collect: () => [{ value: sink?.stats.written ?? 0 }] },
        { name: 'tenantgate_audit_dropped_events', help: 'Audit events dropped after waiting for buffer room', collect: () => [{ value: sink?.stats.dropped ?? 0 }] },
        { name: 'tenantgate_audit_failed_flushes', help: 'Audit batches that failed to write (and were retried)', collect: () => [{ value: sink?.stats.failedFlushes ?? 0 }] },
        { name: 'tenantgate_audit_waiting_requests', help: 'Requests waiting for audit buffer room (backpressure)', collect: () => [{ value: sink?.stats.waiting ?? 0 }] },
      ],
    });
    this.security = new SecurityEvents(log, webhookFrom(a.security_webhook, env, log, 'security', 'audit.security_webhook'));
  }

  static async create(options: GatewayOptions): Promise<Gateway> {
    const { gate } = options;
    const env = options.env ?? process.env;
    const pool = gate.database.pool;
    const identifier = new Identifier(gate.config, options.secret, pool, createJwtVerifier(gate.config, env));
    const catalog = await QueryCatalog.load(gate.config, pool);
    // Plans follow a tenant's tier (a schema-tier tenant's name its schema); a move makes them again.
    catalog.tierOf = (t) => gate.routes.get(t).tier;
    const previous = gate.routes.onChange;
    gate.routes.onChange = (tenants, before) => {
      for (const t of tenants) catalog.forget(t);
      previous(tenants, before);
    };
    const writer = await gate.database.sibling(1);
    const gateway = new Gateway(gate.config, gate, identifier, catalog, options.logger ?? pino({ level: 'silent' }), env, writer, options.secret, options.audit !== false);
    if (options.retention !== false) gateway.startRetention();
    gateway.limiting = options.quotas !== false;
    if (options.requestLog) gateway.requestLog = options.requestLog;
    const refresh = gate.config.effective.quota_refresh;
    const warn = (what: string) => (err: unknown) => gateway.log.warn({ err: (err as Error)?.message }, `${what} failed; will retry`);
    await gateway.admission.book.refresh().catch(warn('reading runtime quota changes'));
    if (!(await gateway.admission.buckets.ready(2_000))) gateway.log.warn('quota store not reachable at start: quota_store_failure decides until it is');
    gateway.admission.book.start(refresh.overrides_ms, warn('reading runtime quota changes'));
    gateway.admission.storage?.start(refresh.storage_ms, warn('measuring tenant storage'));
    return gateway;
  }

  /** Open the record of one request. */
  begin(init: { id: string; endpoint: string; client?: string | null; req: GatewayRequest }): RequestRecord {
    return { id: init.id, at: new Date(), endpoint: init.endpoint, client: init.client ?? null, req: init.req, timings: new Timings() };
  }

  /** identify alone (for /metrics). */
  async identify(req: GatewayRequest): Promise<Principal> {
    return this.identifier.identify(req);
  }

  async caller(rec: RequestRecord): Promise<Caller> {
    const t = rec.timings;
    const p = this.identifier.identify(rec.req);
    rec.principal = p instanceof Promise ? await p : p;
    t.mark('identify');
    const { tenant, source } = resolveTenant(this.config, rec.principal, rec.req, this.erased);
    rec.tenant = tenant;
    rec.source = source;
    t.mark('resolve');
    // The tenant as authorize sees it: suspended when the catalog says so (every process re-reads it each second).
    const seen = tenant && tenant.status !== 'suspended' && this.gate.routes.suspended(tenant.id) ? { ...tenant, status: 'suspended' as const } : tenant;
    return { principal: rec.principal, tenant: seen, access: rec.principal.access };
  }

  /** admit(ctx) → Permit: rate limits, then (for work on the database) a concurrency slot. */
  private async admit(rec: RequestRecord, c: Caller, slot: boolean): Promise<void> {
    if (!this.limiting) return;
    const permit = this.admission.admit(c.principal, c.tenant, { slot });
    rec.permit = permit instanceof Promise ? await permit : permit;
    rec.timings.mark('admit');
  }

  async semantic(rec: RequestRecord, body: unknown): Promise<QueryAnswer> {
    const c = await this.caller(rec);
    authorize(c.tenant, c.access, 'query');
    rec.timings.mark('authorize');
    await this.admit(rec, c, true);
    const plan = (rec.plan = this.planner.semantic(body, c.tenant));
    rec.timings.mark('plan');
    return this.execute(rec, c, plan, () => this.planner.semantic(body, c.tenant));
  }

  async sql(rec: RequestRecord, body: unknown): Promise<QueryAnswer> {
    const c = await this.caller(rec);
    authorize(c.tenant, c.access, 'sql_read');
    rec.timings.mark('authorize');
    await this.admit(rec, c, true);
    let plan: QueryPlan;
    try {
      plan = rec.plan = this.planner.sql(body, c.tenant, c.access);
    } catch (err) {
      // The planner refuses a reader's INSERT/UPDATE/DELETE with POLICY_DENIED: a denied write.
      if (isTenantGateError(err) && err.code === 'POLICY_DENIED') rec.write = true;
      throw err;
    }
    rec.write = plan.write;
    if (plan.write) {
      authorize(c.tenant, c.access, 'sql_write');
      this.admission.checkStorage(c.tenant);
    }
    rec.timings.mark('plan');
    return this.execute(rec, c, plan, () => this.planner.sql(body, c.tenant, c.access));
  }

  /**
   * Run a plan. A write that meets a move's cut-over at the tenant's old place (TENANT_MOVING)
   * runs once more, planned again, when the tenant turns out to live elsewhere already.
   */
  private async execute(rec: RequestRecord, c: Caller, plan: QueryPlan, replan: () => QueryPlan): Promise<QueryAnswer> {
    try {
      return await this.executeOnce(rec, c, plan);
    } catch (err) {
      if (!(isTenantGateError(err) && err.code === 'TENANT_MOVING' && c.tenant && (await this.gate.routes.moved(c.tenant.id)))) throw err;
      return this.executeOnce(rec, c, (rec.plan = replan()));
    }
  }

  private async executeOnce(rec: RequestRecord, c: Caller, plan: QueryPlan): Promise<QueryAnswer> {
    // Durable writes commit with their record; durable reads have nothing to be atomic with, so
    // their record is written after the statement and before the answer (finish), one round trip more.
    // (A database-tier tenant's write commits in its own database: its record follows in the main one.)
    const durable = this.auditing && this.config.effective.audit.mode === 'durable' && plan.write && (c.tenant === null || this.gate.routes.get(c.tenant.id).tier !== 'database');
    const answer = await runPlan(
      this.gate,
      { tenant: c.tenant?.id ?? null, access: c.access },
      plan,
      durable
        ? {
            durable: (a) => {
              rec.rows = a.row_count;
              rec.audited = true;
              return appendStatement([this.event(rec, 200, null)]);
            },
          }
        : {},
    ).catch((err: unknown) => {
      rec.audited = false;
      throw err;
    });
    rec.rows = answer.row_count;
    rec.timings.mark('execute');
    return answer;
  }

  async datasets(rec: RequestRecord) {
    const c = await this.caller(rec);
    authorize(c.tenant, c.access, 'describe');
    await this.admit(rec, c, false);
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

  async tenant(rec: RequestRecord) {
    const c = await this.caller(rec);
    if (!c.tenant) throw new TenantGateError('TENANT_REQUIRED', 'name one tenant (not all) to describe it');
    authorize(c.tenant, c.access, 'describe');
    await this.admit(rec, c, false);
    const x = c.tenant;
    const at = this.gate.routes.get(x.id);
    return { id: x.id, name: x.name, tier: at.tier, placement: at.placement, status: x.status, quotas: this.admission.quotasFor(x), usage: this.usage(x), features: { sql_api: true, ...x.features }, access: c.access, role: c.principal.role };
  }

  /** What a tenant uses now: storage (as last measured), queries in flight in this process. */
  private usage(t: Tenant) {
    const storage = this.admission.storage;
    return {
      storage_bytes: storage?.used(t.id) ?? null,
      storage_measured_at: storage?.measuredAt?.toISOString() ?? null,
      concurrent_queries: this.admission.slots.inUse(`t:${t.id}`),
    };
  }

  /** GET /v1/admin/tenants/{id}/quotas: the quotas in force, the runtime changes among them, usage. */
  async adminQuotas(rec: RequestRecord, id: string | undefined) {
    const t = await this.platformTenant(rec, id);
    return { tenant: t.id, quotas: this.admission.quotasFor(t), overrides: this.admission.book.override(t.id), usage: this.usage(t) };
  }

  /** PATCH /v1/admin/tenants/{id}/quotas: change quotas at runtime (null drops a change); every gateway process follows within quota_refresh.overrides_ms. */
  async setAdminQuotas(rec: RequestRecord, id: string | undefined, body: unknown) {
    const t = await this.platformTenant(rec, id);
    rec.write = true;
    await setQuotas(this.gate.database, t.id, body, `${rec.principal!.kind === 'api_key' ? 'key' : 'jwt'}:${rec.principal!.id}`).catch((err: unknown) => {
      throw isTenantGateError(err) ? err : toGatewayError(err);
    });
    await this.admission.book.refresh();
    rec.timings.mark('execute');
    return this.adminQuotas(rec, id);
  }

  /** GET /v1/admin/tenants/{id}/move: the tenant's current or last move, and whether it runs here. */
  async adminMove(rec: RequestRecord, id: string | undefined) {
    const t = await this.platformTenant(rec, id);
    const r = await this.moves.status(t.id);
    rec.timings.mark('execute');
    return { tenant: t.id, location: this.gate.routes.get(t.id), ...r };
  }

  /** POST /v1/admin/tenants/{id}/move: move the tenant (202 once under way), or say what would happen (dry_run). */
  async startMove(rec: RequestRecord, id: string | undefined, body: unknown): Promise<{ status: number; body: unknown }> {
    const t = await this.platformTenant(rec, id);
    rec.write = true;
    const r = await this.moves.start(t.id, body).catch((err: unknown) => {
      throw isTenantGateError(err) ? err : toGatewayError(err);
    });
    rec.timings.mark('execute');
    return r.dryRun ? { status: 200, body: { tenant: t.id, plan: moveReportJson(r.report) } } : { status: 202, body: { tenant: t.id, move: r.move } };
  }

  /** DELETE /v1/admin/tenants/{id}/move: abandon an unfinished move before its cut-over. */
  async abortMove(rec: RequestRecord, id: string | undefined) {
    const t = await this.platformTenant(rec, id);
    rec.write = true;
    const move = await this.moves.abort(t.id).catch((err: unknown) => {
      throw isTenantGateError(err) ? err : toGatewayError(err);
    });
    rec.timings.mark('execute');
    return { tenant: t.id, move };
  }

  /** The config's tenant of this id, unless it was erased since this process loaded the config (then undefined, as an unknown id). */
  tenantOf(id: string): Tenant | undefined {
    return this.gate.routes.erased(id) ? undefined : this.config.tenants.get(id);
  }

  /** A platform admin acting on one tenant of the config (admin API). */
  async platformTenant(rec: RequestRecord, id: string | undefined): Promise<Tenant> {
    rec.principal = await this.identifier.identify(rec.req);
    rec.timings.mark('identify');
    if (rec.principal.access !== 'platform') throw new TenantGateError('POLICY_DENIED', 'the admin API is for platform admins');
    // Platform admins may know an id was erased (its tombstone); anyone else meets an unknown id.
    if (id !== undefined && this.gate.routes.erased(id)) throw new TenantGateError('TENANT_ERASED', `${id} was erased`);
    const t = id === undefined ? undefined : this.config.tenants.get(id);
    if (!t) throw new TenantGateError('TENANT_UNKNOWN', 'no such tenant');
    rec.tenant = t;
    rec.permit = await this.admission.admit(rec.principal, null, { slot: false });
    rec.timings.mark('authorize');
    return t;
  }

  /**
   * GET /v1/audit: the caller tenant's own trail, for its tenant admin. The query filters on the
   * caller's tenant and runs under the audit table's policy for that tenant (the database's wall).
   */
  async auditTrail(rec: RequestRecord, query: unknown): Promise<AuditPage> {
    const c = await this.caller(rec);
    authorize(c.tenant, c.access, 'audit_read');
    if (!c.tenant) throw new TenantGateError('TENANT_REQUIRED', 'name one tenant; platform admins read every tenant at /v1/admin/audit');
    const f = parseBody(auditQuerySchema, query);
    rec.timings.mark('authorize');
    await this.admit(rec, c, true);
    return this.readAudit(rec, { tenant: c.tenant.id, access: c.access === 'platform' ? 'platform' : 'admin' }, c.tenant.id, f);
  }

  /** GET /v1/admin/audit: platform admins, any tenant (`tenant=all` for every chain, `*` included). */
  async adminAudit(rec: RequestRecord, query: unknown): Promise<AuditPage> {
    rec.principal = await this.identifier.identify(rec.req);
    rec.timings.mark('identify');
    if (rec.principal.access !== 'platform') throw new TenantGateError('POLICY_DENIED', 'the admin API is for platform admins');
    const f = parseBody(adminAuditQuerySchema, query);
    // `all`: every chain; `*`: the chain of requests that named no tenant; else one tenant's.
    const wide = f.tenant === ALL_TENANTS || f.tenant === NO_TENANT;
    if (!wide && this.gate.routes.erased(f.tenant)) throw new TenantGateError('TENANT_ERASED', `${f.tenant} was erased`);
    rec.tenant = wide ? null : (this.config.tenants.get(f.tenant) ?? null);
    if (!wide && !rec.tenant) throw new TenantGateError('TENANT_UNKNOWN', 'no such tenant');
    rec.permit = await this.admission.admit(rec.principal, null, { slot: true });
    rec.timings.mark('authorize');
    return rec.tenant
      ? this.readAudit(rec, { tenant: rec.tenant.id, access: 'platform', allowSuspended: true }, rec.tenant.id, f) // a suspended tenant's trail too
      : this.readAudit(rec, { tenant: ALL_TENANTS, access: 'platform' }, f.tenant === NO_TENANT ? NO_TENANT : undefined, f);
  }

  /** One page, newest first: `truncated` says more records match, `next` (pass as `before`) reads them. */
  private async readAudit(rec: RequestRecord, scope: { tenant: string; access: AccessLevel; allowSuspended?: boolean }, tenant: string | undefined, f: z.infer<typeof auditQuerySchema>): Promise<AuditPage> {
    const q = readQuery({
      tenant,
      since: f.since ? new Date(f.since) : undefined,
      until: f.until ? new Date(f.until) : undefined,
      code: f.code,
      principal: f.principal,
      decision: f.decision,
      requestId: f.request_id,
      before: f.before,
      limit: f.limit,
    });
    if ('invalid' in q) throw new TenantGateError('QUERY_INVALID', q.invalid);
    rec.timings.mark('plan');
    const r = await this.gate.statement(scope, q).catch((err: unknown) => {
      throw toGatewayError(err);
    });
    const page = pageOf(r.rows as Array<Record<string, unknown>>, f.limit);
    rec.rows = page.events.length;
    rec.timings.mark('execute');
    return page;
  }

  private tablesOf(datasets: string[]): string[] {
    const out: string[] = [];
    for (const name of datasets) {
      const t = this.tables.get(name);
      if (t !== undefined) out.push(t);
    }
    return out;
  }

  /** The audit event of a request that ended with `status` (and `code` when it failed). */
  event(rec: RequestRecord, status: number, code: ErrorCode | null): AuditEvent {
    const p = rec.principal;
    // A refused credential is recorded on its one tenant's chain, unless that tenant was erased (its chain is closed): then on the platform's.
    const tenant = rec.tenant ? rec.tenant.id : rec.tenant === null ? NO_TENANT : p && p.tenants.length === 1 && !this.erased(p.tenants[0] as string) ? (p.tenants[0] as string) : NO_TENANT;
    const { header, path } = rec.req;
    const named = header !== undefined && header !== tenant ? header : path !== undefined && path !== tenant ? path : null;
    const plan = rec.plan;
    const executed = rec.rows !== undefined && plan !== undefined;
    return {
      at: rec.at.toISOString(),
      request_id: rec.id,
      tenant,
      principal: p ? `${p.kind === 'api_key' ? 'key' : 'jwt'}:${p.id}` : keyIdOf(rec.req),
      role: p?.role ?? null,
      access: p?.access ?? null,
      endpoint: rec.endpoint,
      tenant_from: rec.source ?? null,
      // Only what the request itself sent, and only when it is not the tenant acted for.
      named_tenant: typeof named === 'string' ? named.slice(0, 64) : null,
      datasets: plan?.datasets ?? [],
      tables: plan ? this.tablesOf(plan.datasets) : [],
      sql: plan?.normalized ?? null,
      fingerprint: plan?.fingerprint ?? null,
      rows: rec.rows ?? null,
      status,
      decision: decisionOf(status, code),
      code,
      duration_ms: Math.round(rec.timings.elapsed() * 1000) / 1000,
      stages: rec.timings.toJSON(),
      tenant_predicate: plan ? plan.tenantPredicate : null,
      rls: executed ? true : null,
      client: rec.client,
      // undefined (and absent from the record's JSON) but on lifecycle changes.
      lifecycle: rec.lifecycle,
    };
  }

  /**
   * End a request: metrics, a security event when it is one, and its audit record: queued (batched),
   * or written now when it was not already written in its transaction (durable; then the answer waits
   * for it, and a failure to write turns the answer into DB_UNAVAILABLE).
   */
  async finish(rec: RequestRecord, status: number, error?: unknown): Promise<TenantGateError | undefined> {
    rec.permit?.release();
    const code = error ? (isTenantGateError(error) ? error.code : 'INTERNAL') : null;
    const event = this.event(rec, status, code);
    this.metrics.observe({ tenant: event.tenant === NO_TENANT ? null : event.tenant, endpoint: rec.endpoint, status, code, seconds: event.duration_ms / 1000, rows: event.rows, security: isSecurityEvent(code, rec.write === true) });
    if (isSecurityEvent(code, rec.write === true)) {
      this.security.emit({ at: event.at, request_id: event.request_id, code: code as string, tenant: event.tenant, principal: event.principal, endpoint: event.endpoint, named_tenant: event.named_tenant, client: event.client });
    }
    let failure: TenantGateError | undefined;
    if (this.audit) {
      const full = this.audit.record(event);
      if (full) await full;
    } else if (this.auditing && !rec.audited) {
      try {
        // The requests' pool, not the batch writer's single connection: every durable answer waits on this.
        await appendEvents(this.gate.database, [event]);
      } catch (err) {
        this.log.error({ err, request_id: rec.id }, 'audit: durable write failed; the request is answered DB_UNAVAILABLE');
        failure = new TenantGateError('DB_UNAVAILABLE', 'the audit record could not be written', { cause: err });
      }
    }
    rec.timings.mark('audit');
    this.requestLog({ request_id: rec.id, tenant: event.tenant, principal: event.principal, endpoint: event.endpoint, status, code, ms: event.duration_ms, rows: event.rows });
    return failure;
  }

  private startRetention(): void {
    const run = () =>
      pruneAudit(this.writer).then(
        (n) => n > 0 && this.log.info({ removed: n }, 'audit retention: removed expired records'),
        (err: unknown) => this.log.warn({ err }, 'audit retention failed; will retry'),
      );
    this.retentionTimer = setInterval(run, 3_600_000);
    this.retentionTimer.unref();
    void run();
  }

  /** Flush the audit buffer and the security webhook; stop timers. */
  async close(): Promise<void> {
    if (this.retentionTimer) clearInterval(this.retentionTimer);
    this.admission.book.stop();
    this.admission.storage?.stop();
    await this.audit?.close();
    await this.security.flush();
    await this.admission.close();
    await this.moves.close();
    await this.writer.close();
  }
}

/** The key id of a malformed or refused API key (never the secret part), for the trail. */
function keyIdOf(req: GatewayRequest): string | null {
  const token = req.apiKey ?? /^Bearer\s+(\S+)/i.exec(req.authorization ?? '')?.[1];
  const m = token ? /^tg_([a-z0-9]{12})_/.exec(token) : null;
  return m ? `key:${m[1]}` : null;
}
