import type { Dataset, Tenant } from '../config/types.ts';
import { ident, literal } from '../db/sql.ts';
import { renderRowExpression } from '../config/expressions.ts';

/**
 * A dataset as one tenant may see it: which columns exist for it (restricted and overridden
 * ones do not), which are masked and how, and the tenant predicate with its parameters.
 * `tenant` null means a platform admin reading all tenants.
 */
export interface DatasetView {
  dataset: Dataset;
  /** Column → SQL expression that reads it (the column itself, or its mask). */
  columns: Map<string, string>;
  dimensions: string[];
  metrics: Map<string, string>;
  /** Columns in a unique index without the tenant column: writes may not set them. */
  globalKeys: Set<string>;
  /** What a semantic query may filter on: the dimensions and the tenant column (made once per view, not per request). */
  filterable: Set<string>;
}

export function restrictedColumns(d: Dataset, tenant: Tenant | null): Set<string> {
  const out = new Set<string>();
  for (const [c, rule] of Object.entries(d.columns)) if (rule.access === 'restricted') out.add(c);
  if (tenant) for (const [c, a] of Object.entries(tenant.accessOverrides[d.name] ?? {})) if (a === 'restricted') out.add(c);
  return out;
}

/** The SQL a mask reads a column through. Hashes are salted with the row's tenant, so equal values in two tenants never match. */
export function maskExpression(d: Dataset, column: string, mask: 'redact' | 'hash' | 'partial'): string {
  const c = ident(column);
  switch (mask) {
    case 'hash':
      return `encode(sha256(convert_to(${ident(d.tenantColumn)} || ':' || ${c}::text, 'UTF8')), 'hex')`;
    case 'redact':
      return `CASE WHEN ${c} IS NULL THEN NULL ELSE ${literal('[redacted]')} END`;
    case 'partial':
      return `CASE WHEN ${c} IS NULL THEN NULL ELSE left(${c}::text, 2) || ${literal('***')} END`;
  }
}

export function datasetView(d: Dataset, tableColumns: readonly string[], tenant: Tenant | null, globalKeys: readonly string[] = []): DatasetView {
  const restricted = restrictedColumns(d, tenant);
  const masked = new Set(Object.entries(d.columns).filter(([, r]) => r.mask).map(([c]) => c));
  const columns = new Map<string, string>();
  for (const c of tableColumns) {
    if (restricted.has(c)) continue;
    const mask = d.columns[c]?.mask;
    columns.set(c, mask ? maskExpression(d, c, mask) : ident(c));
  }
  const metrics = new Map<string, string>();
  for (const [name, m] of Object.entries(d.metrics)) {
    // A metric over a restricted column is unusable; over a masked one it could reveal raw values (max(email)).
    if (m.columns.some((c) => restricted.has(c) || masked.has(c) || !columns.has(c))) continue;
    metrics.set(name, m.sql);
  }
  const dimensions = d.dimensions.filter((c) => columns.has(c));
  return { dataset: d, columns, dimensions, metrics, globalKeys: new Set(globalKeys), filterable: new Set([...dimensions, d.tenantColumn]) };
}

/**
 * The gateway's own tenant predicate (the second wall): tenant column, additional filters,
 * expression. `slot(name)` returns the parameter (`$n`) that will carry `tenant` or a tenant
 * attribute; nothing from the tenant is spliced into the text, so the text is the same for
 * every tenant and can be cached.
 */
export function tenantPredicate(d: Dataset, perTenant: boolean, slot: (name: string) => string): string {
  const parts: string[] = [];
  if (perTenant) parts.push(`${ident(d.tenantColumn)} = ${slot('tenant')}`);
  for (const f of d.filters) parts.push(`(${renderRowExpression(f, () => 'NULL')})`);
  if (perTenant && d.expression) parts.push(`(${renderRowExpression(d.expression, slot)})`);
  return parts.length ? parts.join(' AND ') : 'TRUE';
}

/** The value of a predicate slot for one tenant. */
export function slotValue(tenant: Tenant, name: string): string {
  return name === 'tenant' ? tenant.id : String(tenant.attributes[name]);
}
