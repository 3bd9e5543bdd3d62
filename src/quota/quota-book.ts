import { z } from 'zod';
import { quotaSchema } from '../config/schema.ts';
import type { Quotas, Tenant } from '../config/types.ts';
import { TenantGateError } from '../errors/index.ts';

type Queryable = { query(text: string, params?: unknown[]): Promise<{ rows: Array<Record<string, unknown>> }> };

/** A runtime change: any quota, or null to drop that override (back to the config's value). */
export const quotaChangeSchema = z.strictObject(
  Object.fromEntries(Object.entries(quotaSchema.shape).map(([k, v]) => [k, (v as z.ZodType).nullable().optional()])) as {
    [K in keyof typeof quotaSchema.shape]: z.ZodOptional<z.ZodNullable<(typeof quotaSchema.shape)[K]>>;
  },
);
export type QuotaChange = z.infer<typeof quotaChangeSchema>;

/**
 * The quotas in force: the config's (defaults, tier, tenant) with the runtime changes on top.
 * Changes live in tenantgate.tenant_quotas; every gateway process re-reads the ones made since its
 * last look every quota_refresh.overrides_ms, so a change is in force everywhere within that.
 */
export class QuotaBook {
  private readonly overrides = new Map<string, Partial<Quotas>>();
  private since = '1970-01-01T00:00:00Z';
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly db: Queryable) {}

  quotas(tenant: Tenant): Quotas {
    const o = this.overrides.get(tenant.id);
    return o ? { ...tenant.quotas, ...o } : tenant.quotas;
  }

  override(tenant: string): Partial<Quotas> {
    return this.overrides.get(tenant) ?? {};
  }

  /** Read the changes made since the last look; returns the tenants whose quotas changed. */
  async refresh(): Promise<string[]> {
    const r = await this.db.query(`SELECT tenant, quotas, updated_at FROM tenantgate.quota_overrides($1::timestamptz)`, [this.since]);
    const changed: string[] = [];
    for (const row of r.rows) {
      const parsed = quotaSchema.partial().safeParse(row['quotas']);
      // A row edited by hand into something invalid is ignored (and the config's quotas stay), never fatal.
      this.overrides.set(row['tenant'] as string, parsed.success ? parsed.data : {});
      this.since = new Date(row['updated_at'] as string).toISOString();
      changed.push(row['tenant'] as string);
    }
    return changed;
  }

  start(intervalMs: number, onError: (err: unknown) => void): void {
    this.timer = setInterval(() => void this.refresh().catch(onError), intervalMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
  }
}

/** Validate and store a runtime change (admin API and CLI); returns the tenant's overrides after it. */
export async function setQuotas(db: Queryable, tenant: string, change: unknown, by: string): Promise<Partial<Quotas>> {
  const parsed = quotaChangeSchema.safeParse(change);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new TenantGateError('QUERY_INVALID', `${issue?.path.join('.') || 'quotas'}: ${issue?.code === 'unrecognized_keys' ? `unknown quota ${issue.keys.join(', ')}` : issue?.message}`);
  }
  if (Object.keys(parsed.data).length === 0) throw new TenantGateError('QUERY_INVALID', 'name at least one quota to change');
  const r = await db.query(`SELECT tenantgate.set_quotas($1, $2::jsonb, $3) AS q`, [tenant, JSON.stringify(parsed.data), by]);
  return r.rows[0]?.['q'] as Partial<Quotas>;
}
