import type { Config } from '../config/types.ts';
import type { Tier } from '../config/schema.ts';
import type { TenantLocation } from './location.ts';

type Queryable = { query(text: string, params?: unknown[]): Promise<{ rows: Array<Record<string, unknown>> }> };

/**
 * A row's updated_at is taken when its transaction writes it, not when it commits: each look goes
 * back this far past the newest one seen, so a change that committed late is not skipped.
 */
const LOOK_BACK_MS = 5_000;

/**
 * Where each tenant's rows are, as the main database says (tenantgate.tenants: set when a tenant is
 * made, changed by a move), falling back to the config for tenants not provisioned yet, and which
 * tenants are suspended. Every process re-reads the rows changed since its last look
 * (tenantgate.tenant_routes), so a move's cut-over, a suspension or a resume reaches every gateway
 * within `intervalMs`.
 */
export class Routes {
  private readonly known = new Map<string, TenantLocation>();
  /** Tenants the catalog says are suspended (its config status or a runtime suspension). */
  private readonly suspendedIds = new Set<string>();
  /** Tenants erased while this process runs (its config still names them until it restarts): answered as unknown ids. */
  private readonly erasedIds = new Set<string>();
  private since = '1970-01-01T00:00:00Z';
  private timer: NodeJS.Timeout | undefined;
  /** Called with the tenants whose location changed and where each was before (their plans and pools follow). */
  onChange: (tenants: string[], before: Map<string, TenantLocation | undefined>) => void = () => {};

  constructor(
    private readonly config: Config,
    private readonly db: Queryable,
  ) {}

  get(tenant: string): TenantLocation {
    const hit = this.known.get(tenant);
    if (hit) return hit;
    const t = this.config.tenants.get(tenant);
    return { tier: t?.tier ?? 'pooled', placement: t?.placement ?? 'default' };
  }

  /**
   * Whether the tenant is suspended: its config says `status: suspended`, or the catalog says so
   * (as of the last look, at most `intervalMs` ago). A set lookup: the request path asks it every time.
   */
  suspended(tenant: string): boolean {
    return this.suspendedIds.has(tenant) || this.config.tenants.get(tenant)?.status === 'suspended';
  }

  /** Whether the tenant was erased (as of the last look): requests naming it meet an unknown id. */
  erased(tenant: string): boolean {
    return this.erasedIds.size > 0 && this.erasedIds.has(tenant);
  }

  async refresh(): Promise<string[]> {
    const from = new Date(Date.parse(this.since) - LOOK_BACK_MS).toISOString();
    const r = await this.db.query(`SELECT id, tier, placement, status, updated_at FROM tenantgate.tenant_routes($1::timestamptz)`, [from]);
    const changed: string[] = [];
    const before = new Map<string, TenantLocation | undefined>();
    for (const row of r.rows) {
      const id = row['id'] as string;
      if (row['status'] === 'erased') {
        this.erasedIds.add(id);
        this.known.delete(id);
        this.suspendedIds.delete(id);
        const at = new Date(row['updated_at'] as string).toISOString();
        if (at > this.since) this.since = at;
        continue;
      }
      this.erasedIds.delete(id); // onboarded again (tenant add --reuse-erased-id)
      const next = { tier: row['tier'] as Tier, placement: row['placement'] as string };
      const prev = this.known.get(id);
      this.known.set(id, next);
      if (row['status'] === 'suspended') this.suspendedIds.add(id);
      else this.suspendedIds.delete(id);
      const at = new Date(row['updated_at'] as string).toISOString();
      if (at > this.since) this.since = at;
      if (!prev || prev.tier !== next.tier || prev.placement !== next.placement) {
        changed.push(id);
        before.set(id, prev);
      }
    }
    if (changed.length) this.onChange(changed, before);
    return changed;
  }

  /** Whether the tenant's place changed since this process last looked (reads the catalog now). */
  async moved(tenant: string): Promise<boolean> {
    const was = this.get(tenant);
    await this.refresh().catch(() => []);
    const now = this.get(tenant);
    return was.tier !== now.tier || was.placement !== now.placement;
  }

  /** Read now (tolerating a database without the catalog yet), then every `intervalMs`. */
  async start(intervalMs: number): Promise<void> {
    await this.refresh().catch(() => []);
    this.timer = setInterval(() => void this.refresh().catch(() => []), intervalMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
  }
}
