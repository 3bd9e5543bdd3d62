import type { AccessLevel, Tenant } from '../config/types.ts';
import { TenantGateError } from '../errors/index.ts';

export type Action = 'query' | 'sql_read' | 'sql_write' | 'describe' | 'audit_read';

/** Features a tenant has unless its config says `false`. */
const DEFAULT_FEATURES: Record<string, boolean> = { sql_api: true };

/** authorize(ctx, action): suspension, features and access level. Runs after the tenant is known to be the caller's. */
export function authorize(tenant: Tenant | null, access: AccessLevel, action: Action): void {
  if (tenant?.status === 'suspended') throw new TenantGateError('TENANT_SUSPENDED', 'the tenant is suspended');
  if ((action === 'sql_read' || action === 'sql_write') && tenant && (tenant.features['sql_api'] ?? DEFAULT_FEATURES['sql_api']) === false) {
    throw new TenantGateError('POLICY_DENIED', 'the SQL API is not enabled for this tenant');
  }
  if (action === 'sql_write' && access !== 'write' && access !== 'admin') throw new TenantGateError('POLICY_DENIED', 'writing needs write access');
  if (action === 'audit_read' && access !== 'admin' && access !== 'platform') throw new TenantGateError('POLICY_DENIED', 'reading the audit trail needs tenant admin access');
}
