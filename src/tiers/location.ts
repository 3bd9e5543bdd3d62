import type { Dataset, Tenant } from '../config/types.ts';
import type { Tier } from '../config/schema.ts';

/**
 * Where a tenant's rows live. `pooled`: the dataset tables shared by every pooled tenant (tenant
 * column + RLS). `schema`: copies of the dataset tables in the tenant's own schema `t_<id>`, in the
 * main database. `database`: the dataset tables in a database of the tenant's own, on the default
 * server or a named placement. Every tier keeps the tenant column and the same policies, so the
 * same plans and the same database wall hold everywhere.
 */
export interface TenantLocation {
  tier: Tier;
  placement: string;
}

/** The schema of a schema-tier tenant. */
export function tenantSchema(id: string): string {
  return `t_${id}`;
}

/** The database of a database-tier tenant: named with the role prefix, so two deployments on one server never meet. */
export function tenantDatabase(prefix: string, id: string): string {
  return `${prefix}_${id}`;
}

/** The table a dataset lives in for a tenant at a location (inside the location's database). */
export function physicalTable(d: Dataset, tenant: string, tier: Tier): { schema: string; table: string } {
  return tier === 'schema' ? { schema: tenantSchema(tenant), table: d.table } : { schema: d.schema, table: d.table };
}

/** The transaction-local search_path of a tenant's transactions: unqualified names find its own tables. */
export function searchPathFor(tenant: string | null, tier: Tier, datasetSchemas: string[]): string {
  const own = tier === 'schema' && tenant ? [tenantSchema(tenant)] : [];
  // pg_temp last: a temp table can never shadow a dataset for unqualified names.
  return [...own, ...datasetSchemas, 'pg_catalog', 'pg_temp'].map((s) => `"${s.replace(/"/g, '""')}"`).join(', ');
}

export function locationOf(t: Pick<Tenant, 'tier' | 'placement'>): TenantLocation {
  return { tier: t.tier, placement: t.placement };
}
