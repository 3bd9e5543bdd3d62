import type { Config } from '../config/types.ts';
import type { Tier } from '../config/schema.ts';
import { tenantSchema } from '../tiers/location.ts';
import { ident, qualified } from '../db/sql.ts';

type Statement = (text: string, values: unknown[]) => Promise<{ rows: unknown[][] }>;

/** Where tenants outside the pooled tables are, and a way into a database-tier tenant's own database. */
export interface TierPlaces {
  placed(): Array<{ tenant: string; tier: Tier }>;
  inOwnDatabase(tenant: string, text: string, values: unknown[]): Promise<{ rows: unknown[][] }>;
}

/**
 * Storage per tenant, measured in the background. Pooled tenants share tables, so their bytes are
 * estimated: rows of the tenant in each dataset table × that table's bytes per row (its whole size,
 * heap, indexes and TOAST, over its rows). Schema- and database-tier tenants have tables of their
 * own: their bytes are those tables' whole sizes. Read through the all-tenants platform context
 * (in a tenant's own database, its platform context): sizes and counts are all it reads here.
 */
export class StorageMeter {
  private bytes = new Map<string, number>();
  measuredAt: Date | undefined;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly config: Config,
    private readonly allTenants: Statement,
    private readonly places?: TierPlaces,
  ) {}

  used(tenant: string): number | undefined {
    return this.measuredAt ? (this.bytes.get(tenant) ?? 0) : undefined;
  }

  async refresh(): Promise<void> {
    const next = new Map<string, number>();
    for (const d of this.config.datasets) {
      const table = qualified(d.schema, d.table);
      // Bytes per row from the table's whole size (heap, indexes, TOAST) over the rows just counted.
      const size = await this.allTenants(`SELECT pg_total_relation_size(to_regclass($1))`, [`${d.schema}.${d.table}`]);
      const counts = (await this.allTenants(`SELECT ${ident(d.tenantColumn)}::text, count(*) FROM ${table} GROUP BY 1`, [])).rows as Array<[string, string]>;
      const rows = counts.reduce((n, [, c]) => n + Number(c), 0);
      const rowBytes = rows > 0 ? Number(size.rows[0]?.[0] ?? 0) / rows : 0;
      for (const [tenant, n] of counts) next.set(tenant, (next.get(tenant) ?? 0) + Number(n) * rowBytes);
    }
    const tables = [...new Set(this.config.datasets.map((d) => d.table))];
    const size = `SELECT coalesce(sum(pg_total_relation_size(to_regclass(s || '.' || t))), 0)::text FROM unnest($1::text[]) s, unnest($2::text[]) t WHERE to_regclass(s || '.' || t) IS NOT NULL`;
    for (const { tenant, tier } of this.places?.placed() ?? []) {
      const r =
        tier === 'schema'
          ? await this.allTenants(size, [[tenantSchema(tenant)], tables])
          : await this.places!.inOwnDatabase(tenant, size, [[...new Set(this.config.datasets.map((d) => d.schema))], tables]);
      next.set(tenant, Number(r.rows[0]?.[0] ?? 0));
    }
    this.bytes = next;
    this.measuredAt = new Date();
  }

  start(intervalMs: number, onError: (err: unknown) => void): void {
    const run = () => void this.refresh().catch(onError);
    this.timer = setInterval(run, intervalMs);
    this.timer.unref();
    run();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
  }
}
