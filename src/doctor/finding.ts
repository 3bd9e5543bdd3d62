import type { Config } from '../config/types.ts';
import type { Database } from '../db/database.ts';
import type { Names } from '../provision/names.ts';

export const SEVERITIES = ['info', 'low', 'medium', 'high', 'critical'] as const;
export type Severity = (typeof SEVERITIES)[number];

/** One thing the doctor found: what, how bad, where, why it matters, and the SQL that fixes it. */
export interface Finding {
  id: string;
  severity: Severity;
  object: string;
  message: string;
  fix: string;
}

export interface DoctorContext {
  /** Owner connection: the doctor only reads catalogs. */
  db: Pick<Database, 'query'>;
  config: Config;
  names: Names;
  /** The login the gateway uses. */
  gatewayRole: string;
}

/** One check, one file under checks/: a pure reader of the catalogs that returns findings. */
export interface Check {
  id: string;
  title: string;
  run(ctx: DoctorContext): Promise<Finding[]>;
}

export function atLeast(s: Severity, min: Severity): boolean {
  return SEVERITIES.indexOf(s) >= SEVERITIES.indexOf(min);
}

/** `schema.table` of every dataset, and the tenant column each uses. */
export function datasetTables(config: Config): Array<{ schema: string; table: string; tenantColumn: string; name: string }> {
  return config.datasets.map((d) => ({ schema: d.schema, table: d.table, tenantColumn: d.tenantColumn, name: d.name }));
}
