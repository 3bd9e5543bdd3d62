import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import { ERROR_CODES, TenantGateError, type ErrorCode } from '../errors/index.ts';
import { CounterSeries, HistogramSeries } from './series.ts';
import { NO_TENANT_LABEL, TenantLabels } from './tenant-labels.ts';

/** The endpoints metrics name (a fixed set: a path an attacker makes up is `unknown`). */
export const ENDPOINTS = [
  'POST /v1/query',
  'POST /v1/queries',
  'GET /v1/datasets',
  'GET /v1/tenant',
  'GET /v1/audit',
  'GET /v1/admin/audit',
  'GET /v1/admin/tenants/:id/quotas',
  'PATCH /v1/admin/tenants/:id/quotas',
  'unknown',
] as const;
export const OUTCOMES = ['ok', 'denied', 'invalid', 'error'] as const;
const BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];
/** Codes counted per tenant as denials (the rest are counted per code only). */
const DENIALS = ['AUTH_INVALID', 'TENANT_MISMATCH', 'TENANT_SUSPENDED', 'POLICY_DENIED', 'SQL_FORBIDDEN', 'RATE_LIMITED', 'CONCURRENCY_LIMITED'] as const;
const SECURITY = ['TENANT_MISMATCH', 'SQL_FORBIDDEN', 'POLICY_DENIED'] as const;
const QUOTAS = ['rate', 'concurrency', 'storage'] as const;

export type Outcome = (typeof OUTCOMES)[number];

/** A gauge read at scrape time (pool connections, audit buffer); its series count is taken at startup. */
export interface GaugeSpec {
  name: string;
  help: string;
  labels?: string[];
  collect: () => Array<{ labels?: Record<string, string>; value: number }>;
}

export interface Observed {
  tenant: string | null;
  endpoint: string;
  status: number;
  code: ErrorCode | null;
  seconds: number;
  rows: number | null;
  security: boolean;
}

/** The series a tenant label can add, per tenant label (so the budget is checked before anything runs). */
function perTenantSeries(): number {
  return ENDPOINTS.length * OUTCOMES.length + (BUCKETS.length + 3) + 1 + DENIALS.length + SECURITY.length + 2 * QUOTAS.length;
}

/**
 * Prometheus metrics of one gateway: requests, latency, rows, denials and security events by tenant
 * (top N tenants by traffic, `other`, `none`), errors by code, pool and audit-buffer gauges, and the
 * process's own. The most series it can ever expose is known up front and must fit metrics.series_budget.
 */
export class GatewayMetrics {
  readonly registry = new Registry();
  readonly tenants: TenantLabels;
  // The four every request updates (src/observe/series.ts); the rest change rarely.
  private readonly requests: CounterSeries;
  private readonly duration: HistogramSeries;
  private readonly tenantDuration: HistogramSeries;
  private readonly rows: CounterSeries;
  private readonly denials: Counter<'tenant' | 'code'>;
  private readonly errors: Counter<'code'>;
  private readonly security: Counter<'tenant' | 'code'>;
  private readonly warnings: Counter<'tenant' | 'quota'>;
  /** Upper bound on the series /metrics can show, whatever the traffic. */
  readonly seriesBound: number;

  constructor(options: {
    topTenants: number;
    seriesBudget: number;
    gauges?: GaugeSpec[];
    /** The share of each quota a tenant used last (rate, concurrency, storage), for the labelled tenants. */
    quotaUse?: (tenant: string) => Partial<Record<(typeof QUOTAS)[number], number>> | undefined;
  }) {
    const r = [this.registry];
    const tenantSeries: Array<{ remove(labels: Record<string, string>): void }> = [];
    this.tenants = new TenantLabels(options.topTenants, 60_000, (evicted) => {
      for (const t of evicted) for (const m of tenantSeries) m.remove({ tenant: t });
    });
    this.requests = new CounterSeries('tenantgate_requests_total', 'Requests by tenant (top N, other, none), endpoint and outcome', ['tenant', 'endpoint', 'outcome']);
    this.duration = new HistogramSeries('tenantgate_request_duration_seconds', 'Request latency by endpoint', ['endpoint'], BUCKETS);
    this.tenantDuration = new HistogramSeries('tenantgate_tenant_request_duration_seconds', 'Request latency by tenant (top N, other, none)', ['tenant'], BUCKETS);
    this.rows = new CounterSeries('tenantgate_rows_total', 'Rows returned or written, by tenant', ['tenant']);
    for (const m of [this.requests, this.duration, this.tenantDuration, this.rows]) this.registry.registerMetric(m as never);
    this.denials = new Counter({ name: 'tenantgate_denials_total', help: 'Denied requests by tenant and code', labelNames: ['tenant', 'code'], registers: r });
    this.errors = new Counter({ name: 'tenantgate_errors_total', help: 'Failed requests by error code', labelNames: ['code'], registers: r });
    this.security = new Counter({ name: 'tenantgate_security_events_total', help: 'Security events (tenant mismatch, forbidden SQL, denied write) by tenant and code', labelNames: ['tenant', 'code'], registers: r });
    this.warnings = new Counter({ name: 'tenantgate_quota_warnings_total', help: 'Quota warnings (a tenant at warn_at of a quota) by tenant and quota', labelNames: ['tenant', 'quota'], registers: r });
    const labels0 = () => this.tenants.labelled;
    const quotaUse = options.quotaUse;
    const used: Gauge<'tenant' | 'quota'> = new Gauge({
      name: 'tenantgate_quota_used_ratio',
      help: 'Share of each quota the tenant used last (labelled tenants only)',
      labelNames: ['tenant', 'quota'],
      registers: r,
      collect() {
        used.reset();
        for (const t of labels0()) for (const [q, v] of Object.entries(quotaUse?.(t) ?? {})) used.set({ tenant: t, quota: q }, v as number);
      },
    });
    tenantSeries.push(this.requests, this.tenantDuration, this.rows, this.denials, this.security, this.warnings);
    let extra = 0;
    const labels = this.tenants;
    const own: GaugeSpec[] = [{ name: 'tenantgate_metrics_tenant_labels', help: 'Tenants with a label of their own (at most metrics.top_tenants)', collect: () => [{ value: labels.labelled.length }] }];
    for (const g of [...own, ...(options.gauges ?? [])]) {
      const gauge: Gauge<string> = new Gauge({
        name: g.name,
        help: g.help,
        labelNames: g.labels ?? [],
        registers: r,
        collect() {
          for (const v of g.collect()) {
            if (v.labels) gauge.set(v.labels, v.value);
            else gauge.set(v.value);
          }
        },
      });
      extra += Math.max(1, g.collect().length);
    }
    collectDefaultMetrics({ register: this.registry });
    const fixed = 52 + extra + Object.keys(ERROR_CODES).length + ENDPOINTS.length * (BUCKETS.length + 3);
    this.seriesBound = fixed + (options.topTenants + 2) * perTenantSeries();
    if (this.seriesBound > options.seriesBudget) {
      throw new TenantGateError(
        'CONFIG_INVALID',
        `metrics.top_tenants ${options.topTenants} can give up to ${this.seriesBound} series, over metrics.series_budget ${options.seriesBudget}: lower top_tenants or raise the budget`,
      );
    }
  }

  observe(o: Observed): void {
    const tenant = this.tenants.label(o.tenant);
    const endpoint = (ENDPOINTS as readonly string[]).includes(o.endpoint) ? o.endpoint : 'unknown';
    const outcome: Outcome = o.status < 400 ? 'ok' : o.status === 401 || o.status === 403 || o.status === 429 || o.code === 'SQL_FORBIDDEN' ? 'denied' : o.status < 500 ? 'invalid' : 'error';
    this.requests.inc([tenant, endpoint, outcome]);
    this.duration.observe([endpoint], o.seconds);
    this.tenantDuration.observe([tenant], o.seconds);
    if (o.rows) this.rows.inc([tenant], o.rows);
    if (o.code) {
      this.errors.inc({ code: o.code });
      if ((DENIALS as readonly string[]).includes(o.code)) this.denials.inc({ tenant, code: o.code });
      if (o.security) this.security.inc({ tenant, code: o.code });
    }
  }

  quotaWarning(tenant: string, quota: string): void {
    this.warnings.inc({ tenant: this.tenants.label(tenant), quota });
  }

  text(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}

export { NO_TENANT_LABEL };
