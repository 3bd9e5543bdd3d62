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
  /** The main database as a whole (to reach database-tier tenants' databases too); without it only the main one is examined. */
  main?: Database;
  /** Environment (placements' URLs). */
  env?: Record<string, string | undefined>;
}

/** One check, one file under checks/: a pure reader of the catalogs that returns findings. */
export interface Check {
  id: string;
  title: string;
  /** Looks at the server as a whole (roles, version, the tier walls): run once, not again in each tenant database. */
  server?: boolean;
  run(ctx: DoctorContext): Promise<Finding[]>;
}

export function atLeast(s: Severity, min: Severity): boolean {
  return SEVERITIES.indexOf(s) >= SEVERITIES.indexOf(min);
}


/** `schema.table` of every dataset table (as text, for `to_regclass`). */
export function tableNames(config: Config): string[] {
  return config.datasets.map((d) => `${d.schema}.${d.table}`);
}

/** A LIKE pattern for every role under the tenantgate prefix. */
export function prefixRolePattern(names: Names): string {
  return `${names.prefix.replace(/[\\%_]/g, '\\$&')}\\_%`;
}

/** "a, b, c, d, e and 3 more": role lists in messages stay short. */
export function listRoles(roles: string[]): string {
  return `${roles.slice(0, 5).join(', ')}${roles.length > 5 ? ` and ${roles.length - 5} more` : ''}`;
}

/**
 * SQL (the start of a WITH RECURSIVE) naming `over(oid, base)`: the dataset tables ($1, text[])
 * and every relation whose rewrite rule reads one of them, directly or through other views.
 */
export const OVER_DATASETS_CTE = `WITH RECURSIVE base AS (
         SELECT to_regclass(t)::oid AS oid, t AS base FROM unnest($1::text[]) AS t WHERE to_regclass(t) IS NOT NULL
       ), over(oid, base) AS (
         SELECT oid, base FROM base
         UNION
         SELECT rw.ev_class, o.base
           FROM over o
           JOIN pg_depend d ON d.refclassid = 'pg_class'::regclass AND d.refobjid = o.oid AND d.classid = 'pg_rewrite'::regclass
           JOIN pg_rewrite rw ON rw.oid = d.objid AND rw.ev_class <> o.oid
       )`;
