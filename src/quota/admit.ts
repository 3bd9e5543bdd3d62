import type { Logger } from 'pino';
import type { Config, Quotas, Tenant } from '../config/types.ts';
import { TenantGateError } from '../errors/index.ts';
import type { Principal } from '../identify/principal.ts';
import type { WebhookPoster } from '../observe/webhook.ts';
import { MemoryBuckets, RedisBuckets, ResilientBuckets, type Buckets, type Decision } from './buckets.ts';
import { ConcurrencySlots } from './concurrency.ts';
import type { QuotaBook } from './quota-book.ts';
import type { StorageMeter } from './storage.ts';

export type QuotaKind = 'rate' | 'concurrency' | 'storage';

/** What admit grants: the concurrency slot to give back, and the RateLimit-* headers of the answer. */
export interface Permit {
  headers: Record<string, string>;
  release(): void;
}

export interface QuotaWarning {
  at: string;
  tenant: string;
  quota: QuotaKind;
  used: number;
  limit: number;
  ratio: number;
}

/** The quota store named by `quota_store`: memory (one process) or Redis (shared), falling back per quota_store_failure. */
export function openBuckets(config: Config, log: Logger): Buckets {
  const store = config.effective.quota_store;
  if (store === 'memory') return new MemoryBuckets();
  if (!/^rediss?:\/\//.test(store)) throw new TenantGateError('CONFIG_INVALID', 'quota_store takes memory or a redis:// URL');
  let logged = 0;
  return new ResilientBuckets(new RedisBuckets(store, { namespace: config.effective.database.role_prefix }), new MemoryBuckets(), config.effective.quota_store_failure, (err) => {
    // One line a minute at most while Redis is away.
    if (Date.now() - logged > 60_000) {
      logged = Date.now();
      log.error({ err: (err as Error)?.message, mode: config.effective.quota_store_failure }, 'quota store unreachable: deciding locally (open) or refusing (closed)');
    }
  });
}

/**
 * admit(ctx) → Permit: the request's rate (a token bucket per tenant and one per key or JWT
 * subject, so rotating keys never raises a tenant's limit), then a concurrency slot (a bounded
 * wait, and never more of the pool than tenant_pool_share). Storage is checked for writes once
 * the plan says it writes (checkStorage). Warnings go out at warn_at of any quota.
 */
export class Admission {
  readonly slots = new ConcurrencySlots();
  /** Last seen share of each quota per tenant (for /metrics; bounded by the metrics' labels). */
  readonly used = new Map<string, Partial<Record<QuotaKind, number>>>();
  private readonly warned = new Map<string, number>();

  constructor(
    private readonly config: Config,
    readonly buckets: Buckets,
    readonly book: QuotaBook,
    readonly storage: StorageMeter | undefined,
    private readonly log: Logger,
    private readonly webhook?: WebhookPoster<QuotaWarning>,
    private readonly onWarning: (w: QuotaWarning) => void = () => {},
  ) {}

  /** The quotas a request is held to: its tenant's (runtime changes included), or the defaults for platform callers. */
  quotasFor(tenant: Tenant | null): Quotas {
    return tenant ? this.book.quotas(tenant) : this.config.defaultQuotas;
  }

  /**
   * The request's permit. Synchronous when nothing has to wait (the in-process limiter, a free
   * slot): a promise per request and per bucket was most of what admission cost.
   */
  admit(principal: Principal, tenant: Tenant | null, options: { slot: boolean }): Permit | Promise<Permit> {
    const q = this.quotasFor(tenant);
    // The key's own bucket first: a refused key spends nothing of its tenant's.
    const buckets = [{ key: `k:${principal.kind}:${principal.id}`, spec: { ratePerMin: q.key_requests_per_minute ?? q.requests_per_minute, burst: q.key_burst ?? q.burst } }];
    // Platform callers are held to their key's bucket only: reading a tenant for support must not spend its quota.
    if (tenant && principal.access !== 'platform') buckets.push({ key: `t:${tenant.id}`, spec: { ratePerMin: q.requests_per_minute, burst: q.burst } });
    try {
      const decisions = this.buckets.takeAll(buckets);
      return decisions instanceof Promise ? decisions.then((d) => this.afterRate(d, principal, tenant, q, options)) : this.afterRate(decisions, principal, tenant, q, options);
    } catch (err) {
      // A refusal is always a rejected promise, never a throw at the call.
      return Promise.reject(err);
    }
  }

  private afterRate(decisions: Decision[], principal: Principal, tenant: Tenant | null, q: Quotas, options: { slot: boolean }): Permit | Promise<Permit> {
    const refused = decisions.find((d) => !d.allowed);
    const shown = refused ?? decisions.reduce((a, b) => (b.remaining < a.remaining ? b : a));
    const headers = { 'ratelimit-limit': String(shown.limit), 'ratelimit-remaining': String(shown.remaining), 'ratelimit-reset': String(shown.resetS) };
    if (tenant) this.note(tenant.id, 'rate', shown.limit - shown.remaining, shown.limit, q.warn_at);
    if (refused) {
      const h = { ...headers, 'retry-after': String(refused.retryAfterS) };
      if (refused.unavailable) throw new TenantGateError('QUOTA_UNAVAILABLE', 'the quota store cannot be reached; retry shortly', { headers: h });
      throw new TenantGateError('RATE_LIMITED', 'too many requests for this tenant or key', { headers: h });
    }
    if (!options.slot) return { headers, release: () => {} };
    const key = tenant ? `t:${tenant.id}` : `p:${principal.id}`;
    // Never more of the pool than the tenant's share, whatever concurrent_queries says.
    const limit = Math.max(1, Math.min(q.concurrent_queries, Math.floor(this.config.effective.server.pool_size * this.config.effective.server.tenant_pool_share)));
    const slot = this.slots.acquire(key, limit, q.queue_timeout_ms);
    const granted = (release: (() => void) | null): Permit => {
      if (!release) throw new TenantGateError('CONCURRENCY_LIMITED', `more than ${limit} queries in flight for this tenant`, { headers: { ...headers, 'retry-after': '1' } });
      if (tenant) this.note(tenant.id, 'concurrency', this.slots.inUse(key), limit, q.warn_at);
      return { headers, release };
    };
    return slot instanceof Promise ? slot.then(granted) : granted(slot);
  }

  /** Writes over the storage quota are refused; reads keep working. */
  checkStorage(tenant: Tenant | null): void {
    if (!tenant || !this.storage) return;
    const used = this.storage.used(tenant.id);
    if (used === undefined) return;
    const q = this.quotasFor(tenant);
    this.note(tenant.id, 'storage', used, q.storage_bytes, q.warn_at);
    if (used >= q.storage_bytes) throw new TenantGateError('QUOTA_EXCEEDED', `the tenant's storage (${used} bytes) is at its quota (${q.storage_bytes} bytes): writes are refused until data is removed or the quota raised`);
  }

  private note(tenant: string, quota: QuotaKind, used: number, limit: number, warnAt: number): void {
    const ratio = limit > 0 ? used / limit : 0;
    const seen = this.used.get(tenant) ?? (this.used.size < 10_000 ? this.used.set(tenant, {}).get(tenant) : undefined);
    if (seen) seen[quota] = ratio;
    if (ratio < warnAt) return;
    // One warning per tenant and quota a minute.
    const k = `${tenant}\u0000${quota}`;
    const now = Date.now();
    if (now - (this.warned.get(k) ?? 0) < 60_000) return;
    this.warned.set(k, now);
    if (this.warned.size > 50_000) this.warned.clear();
    const w: QuotaWarning = { at: new Date(now).toISOString(), tenant, quota, used, limit, ratio: Math.round(ratio * 1000) / 1000 };
    this.log.warn({ quota_warning: w }, `tenant ${tenant} is at ${Math.round(ratio * 100)}% of its ${quota} quota`);
    this.onWarning(w);
    this.webhook?.push(w);
  }

  /** Wait for warnings queued for the webhook. */
  async flush(): Promise<void> {
    await this.webhook?.flush();
  }

  async close(): Promise<void> {
    await this.flush();
    await this.buckets.close();
  }
}

export { RedisBuckets };
