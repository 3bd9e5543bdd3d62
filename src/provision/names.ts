import type { AccessLevel } from '../config/types.ts';

/** The settings the gateway path sets per transaction (always transaction-local). */
export const SETTING_TENANT = 'tenantgate.tenant';
export const SETTING_MAC = 'tenantgate.mac';
/** The value a platform admin's context carries to read every tenant. */
export const ALL_TENANTS_CONTEXT = '*';

/** Every role and policy name tenantgate makes, derived from `database.role_prefix`. */
export interface Names {
  prefix: string;
  gateway: string;
  access: Record<AccessLevel, string>;
  /** Platform access naming every tenant: its own role, so per-tenant policies stay index-friendly. */
  platformAll: string;
  /** Group every direct login belongs to; direct-login policies are attached to it. */
  direct: string;
  /** Holds the default column grants of direct logins (tenants without access_overrides). */
  directDefault: string;
  tenant(id: string): string;
  login(keyId: string): string;
  policy(kind: 'gw_select' | 'gw_insert' | 'gw_update' | 'gw_delete' | 'platform_all' | 'direct_select' | 'audit_own' | 'audit_all'): string;
}

export function names(prefix: string, gatewayRole?: string): Names {
  return {
    prefix,
    gateway: gatewayRole ?? `${prefix}_gateway`,
    access: { read: `${prefix}_read`, write: `${prefix}_write`, admin: `${prefix}_admin`, platform: `${prefix}_platform` },
    platformAll: `${prefix}_platform_all`,
    direct: `${prefix}_direct`,
    directDefault: `${prefix}_direct_default`,
    tenant: (id) => `${prefix}_t_${id}`,
    login: (keyId) => `${prefix}_l_${keyId}`,
    policy: (kind) => `${prefix}_${kind}`,
  };
}

/** Every role a gateway transaction may run as, with the data privileges it holds. */
export function gatewayRoles(n: Names): Array<{ role: string; privileges: string[] }> {
  return [
    { role: n.access.read, privileges: ['SELECT'] },
    { role: n.access.write, privileges: ['SELECT', 'INSERT', 'UPDATE', 'DELETE'] },
    { role: n.access.admin, privileges: ['SELECT', 'INSERT', 'UPDATE', 'DELETE'] },
    { role: n.access.platform, privileges: ['SELECT'] },
    { role: n.platformAll, privileges: ['SELECT'] },
  ];
}
