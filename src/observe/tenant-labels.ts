/** The label of requests that name no tenant (unauthenticated, platform-wide). */
export const NO_TENANT_LABEL = 'none';
/** The label every tenant outside the top N shares. */
export const OTHER_LABEL = 'other';

/**
 * Bounded tenant cardinality for metrics (the idea of Citus's citus_stat_tenants): at most `top`
 * tenants get a label of their own, everyone else is `other`. Slots are handed out first come while
 * free; every `windowMs` the top N by traffic in the last window take the slots, and the tenants
 * that lost theirs are returned so their series can be removed (they fold into `other` from then).
 */
export class TenantLabels {
  private slots = new Set<string>();
  private counts = new Map<string, number>();
  private windowStart = Date.now();

  constructor(
    private readonly top: number,
    private readonly windowMs = 60_000,
    private readonly onEvict: (tenants: string[]) => void = () => {},
  ) {}

  /** The label for `tenant`, counting its traffic. */
  label(tenant: string | null): string {
    if (tenant === null) return NO_TENANT_LABEL;
    this.count(tenant);
    if (Date.now() - this.windowStart >= this.windowMs) this.rebalance();
    if (this.slots.has(tenant)) return tenant;
    if (this.slots.size < this.top) {
      this.slots.add(tenant);
      return tenant;
    }
    return OTHER_LABEL;
  }

  /**
   * Misra-Gries heavy hitters: at most `cap` counters whatever the number of tenants; a tenant with
   * more than 1/cap of the window's traffic is always among them. A miss on a full table takes one
   * from every counter (amortised O(1): decrements never exceed increments).
   */
  private count(tenant: string): void {
    const c = this.counts.get(tenant);
    if (c !== undefined) this.counts.set(tenant, c + 1);
    else if (this.counts.size < Math.max(1_000, this.top * 20)) this.counts.set(tenant, 1);
    else {
      for (const [k, v] of this.counts) {
        if (v <= 1) this.counts.delete(k);
        else this.counts.set(k, v - 1);
      }
    }
  }

  /** Give the slots to the busiest tenants of the window that ended; evicted tenants are reported. */
  rebalance(): string[] {
    const ranked = [...this.counts].sort((a, b) => b[1] - a[1]).slice(0, this.top).map(([t]) => t);
    const next = new Set(ranked);
    const evicted = [...this.slots].filter((t) => !next.has(t));
    this.slots = next;
    this.counts = new Map();
    this.windowStart = Date.now();
    if (evicted.length) this.onEvict(evicted);
    return evicted;
  }

  get labelled(): string[] {
    return [...this.slots];
  }
}
