import type { SourceLocation } from '../errors/index.ts';
import type { AccessLevel, Quotas, RawConfig } from './schema.ts';
import type { MetricExpression, RowExpression } from './expressions.ts';

export type { AccessLevel, Quotas } from './schema.ts';

export interface ColumnRule {
  access: 'read' | 'restricted';
  mask?: 'redact' | 'hash' | 'partial';
}

/** A dataset with everything resolved: the tenant column, parsed filters, locations. */
export interface Dataset {
  name: string;
  schema: string;
  table: string;
  tenantColumn: string;
  /** `additional_filters`, each parsed; they narrow reads, never writes. */
  filters: RowExpression[];
  /** `rls.expression`, parsed; it narrows reads and checks writes. */
  expression?: RowExpression;
  dimensions: string[];
  metrics: Record<string, MetricExpression>;
  columns: Record<string, ColumnRule>;
  source: SourceLocation;
}

export interface Tenant {
  id: string;
  name: string;
  tier: 'pooled' | 'schema' | 'database';
  placement: string;
  status: 'active' | 'suspended';
  attributes: Record<string, string | number | boolean>;
  /** Config roles this tenant's keys may be issued with. */
  roles: string[];
  quotas: Quotas;
  features: Record<string, boolean>;
  accessOverrides: Record<string, Record<string, 'read' | 'restricted'>>;
  source: SourceLocation;
}

export interface Config {
  /** The effective configuration after defaults (what `config dump` prints). */
  effective: RawConfig;
  file: string;
  dir: string;
  datasets: Dataset[];
  tenants: Map<string, Tenant>;
  /**
   * The defaults' quotas with every key filled in (DEFAULTS under `defaults.quotas`): what
   * platform callers, which name no single tenant, are held to. Never partial.
   */
  defaultQuotas: Quotas;
  roles: Record<string, { access: AccessLevel }>;
  /** Where a config path (e.g. `datasets.0.table`) is written; walks up to the nearest known key. */
  locate(path: string): SourceLocation;
}
