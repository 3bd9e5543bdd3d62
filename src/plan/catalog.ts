import type { Config, Tenant } from '../config/types.ts';
import type { AccessLevel } from '../config/types.ts';
import { datasetView, type DatasetView } from './dataset-view.ts';
import type { Tier } from '../config/schema.ts';
import { tenantSchema } from '../tiers/location.ts';

type Queryable = { query(text: string, params?: unknown[]): Promise<{ rows: Array<Record<string, unknown>> }> };

/**
 * The datasets as the query planners see them: the config plus each table's live columns,
 * read once at startup (the gateway login may read pg_attribute, never the tables).
 * Per-tenant views are built once and reused.
 */
export class QueryCatalog {
  private readonly viewsByScope = new Map<string, Map<string, DatasetView>>();

  /** Where a tenant's rows are; a schema-tier tenant's plans name its own schema's tables. */
  tierOf: (tenant: string) => Tier = (t) => this.config.tenants.get(t)?.tier ?? 'pooled';

  private constructor(
    readonly config: Config,
    private readonly tableColumns: Map<string, string[]>,
    private readonly globalKeys: Map<string, string[]> = new Map(),
  ) {}

  static async load(config: Config, db: Queryable): Promise<QueryCatalog> {
    const columns = new Map<string, string[]>();
    for (const d of config.datasets) {
      const r = await db.query(
        `SELECT a.attname::text AS name FROM pg_attribute a
          WHERE a.attrelid = to_regclass($1) AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum`,
        [`${d.schema}.${d.table}`],
      );
      columns.set(d.name, r.rows.map((row) => row['name'] as string));
    }
    // Columns of unique indexes that leave out the tenant column: a write that sets them could learn
    // from a conflict that another tenant holds the value, so writes may not set them.
    const keys = new Map<string, string[]>();
    for (const d of config.datasets) {
      const r = await db.query(
        `SELECT DISTINCT a.attname::text AS name
           FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)
          WHERE i.indrelid = to_regclass($1) AND i.indisunique
            AND NOT EXISTS (SELECT 1 FROM pg_attribute t WHERE t.attrelid = i.indrelid AND t.attnum = ANY(i.indkey) AND t.attname = $2)`,
        [`${d.schema}.${d.table}`, d.tenantColumn],
      );
      keys.set(d.name, r.rows.map((row) => row['name'] as string));
    }
    return new QueryCatalog(config, columns, keys);
  }

  /** For tests and tools that already know the columns. */
  static fromColumns(config: Config, columns: Record<string, string[]>, globalKeys: Record<string, string[]> = {}): QueryCatalog {
    return new QueryCatalog(config, new Map(Object.entries(columns)), new Map(Object.entries(globalKeys)));
  }

  /** Datasets as `tenant` sees them (null: a platform admin reading all tenants). */
  views(tenant: Tenant | null): Map<string, DatasetView> {
    const key = this.viewKey(tenant);
    let views = this.viewsByScope.get(key);
    if (!views) {
      const inSchema = tenant && this.tierOf(tenant.id) === 'schema' ? tenantSchema(tenant.id) : undefined;
      views = new Map(
        this.config.datasets.map((d) => [d.name, datasetView(inSchema ? { ...d, schema: inSchema } : d, this.tableColumns.get(d.name) ?? [], tenant, this.globalKeys.get(d.name) ?? [])]),
      );
      this.viewsByScope.set(key, views);
    }
    return views;
  }

  /** A tenant moved: its views (and SQL plans, keyed by them) are made again. */
  forget(tenant: string): void {
    for (const k of [...this.viewsByScope.keys()]) if (k.endsWith(`:${tenant}`)) this.viewsByScope.delete(k);
  }

  /**
   * Tenants without column overrides share one view (and one SQL-plan cache scope); a schema-tier
   * tenant has its own (its plans name its schema), as has a tenant with overrides.
   */
  private viewKey(tenant: Tenant | null): string {
    if (!tenant) return '*';
    const overridden = Object.values(tenant.accessOverrides).some((cols) => Object.values(cols).includes('restricted'));
    const schema = this.tierOf(tenant.id) === 'schema';
    return schema ? `s${overridden ? 'o' : ''}:${tenant.id}` : overridden ? `t:${tenant.id}` : '-';
  }

  sqlCacheKey(tenant: Tenant | null, access: AccessLevel): string {
    return `${access}|${this.viewKey(tenant)}`;
  }
}
