import type { AccessLevel } from '../config/types.ts';
import { ERROR_CODES, type ErrorCode } from '../errors/index.ts';

/** The chain of requests that belong to no single tenant: platform-wide reads, unauthenticated calls. */
export const NO_TENANT = '*';

/**
 * One request, as the audit trail keeps it. Never a secret: the principal is a key id or a JWT
 * subject; SQL is normalised (literals replaced by $n), so values do not reach the trail.
 */
export interface AuditEvent {
  /** When the request arrived (ISO 8601). */
  at: string;
  request_id: string;
  /** The chain it belongs to: the tenant acted for, else the credential's only tenant, else `*`. */
  tenant: string;
  /** `key:<key id>` or `jwt:<subject>`; null when no credential was given or it was unreadable. */
  principal: string | null;
  role: string | null;
  access: AccessLevel | null;
  /** Method and route, e.g. `POST /v1/query` (a `/v1/tenants/{tenant}` prefix is folded into `tenant_from`). */
  endpoint: string;
  /** Where the tenant was named: credential, header, path or subdomain. */
  tenant_from: string | null;
  /** A tenant the request named that is not the one it acted for (a refused one), echoed from the request. */
  named_tenant: string | null;
  datasets: string[];
  tables: string[];
  /** Normalised SQL of the plan (no literal values). */
  sql: string | null;
  fingerprint: string | null;
  rows: number | null;
  status: number;
  decision: 'allow' | 'deny' | 'error';
  code: ErrorCode | null;
  duration_ms: number;
  /** Stage timings in ms (identify, resolve, authorize, plan, execute, …). */
  stages: Record<string, number>;
  /** Whether the gateway wrote the tenant predicate into the plan (null: nothing was planned). */
  tenant_predicate: boolean | null;
  /** Whether the statement ran under row level security (null: nothing ran). */
  rls: boolean | null;
  client: string | null;
  /**
   * A lifecycle change it made (only on those records): suspend or resume, the reason given, and
   * whether it changed anything (a second suspend does not).
   */
  lifecycle?: LifecycleChange | undefined;
}

/** What a lifecycle request changed, as its audit record keeps it. */
export interface LifecycleChange {
  action: 'suspend' | 'resume' | 'erase';
  reason: string | null;
  changed: boolean;
}

/** Denials are refusals of who or what (credential, tenant, policy, SQL, quota); other failures are errors. */
export function decisionOf(status: number, code: ErrorCode | null): AuditEvent['decision'] {
  if (status < 400 || !code) return 'allow';
  if (status === 401 || status === 403 || status === 429 || code === 'SQL_FORBIDDEN') return 'deny';
  return 'error';
}

/** Codes that are security events (SPEC: every tenant mismatch, forbidden SQL and denied write). */
export function isSecurityEvent(code: ErrorCode | null, write: boolean): boolean {
  return code === 'TENANT_MISMATCH' || code === 'SQL_FORBIDDEN' || (code === 'POLICY_DENIED' && write);
}

export function statusOf(code: ErrorCode): number {
  return ERROR_CODES[code].status;
}
