import type { Config, Tenant } from '../config/types.ts';
import { TenantGateError } from '../errors/index.ts';
import type { Principal } from '../identify/principal.ts';
import { ALL_TENANTS } from './tenant-id.ts';

export interface TenantNames {
  header?: string | undefined;
  path?: string | undefined;
  host?: string | undefined;
}

export interface ResolvedTenant {
  /** null: a platform admin acting for all tenants. */
  tenant: Tenant | null;
  /** Where the tenant came from, for the audit trail. */
  source: 'credential' | 'header' | 'path' | 'subdomain';
}

/** The one answer for "not yours" and "does not exist", so no one learns which tenants exist. */
function mismatch(): TenantGateError {
  return new TenantGateError('TENANT_MISMATCH', 'the credential may not act for the tenant named');
}

/**
 * resolveTenant(request, principal): every tenant the request names (header, path, subdomain,
 * as `identity.tenant_from` allows) must agree with each other and with what the credential
 * may act for. An unknown tenant answers like a mismatch to anyone but a platform admin.
 */
export function resolveTenant(config: Config, principal: Principal, names: TenantNames, erased?: (id: string) => boolean): ResolvedTenant {
  const allowed = new Set(config.effective.identity.tenant_from);
  // A tenant erased while this process runs is still in its config: it is met exactly as an unknown id.
  const find = (id: string) => (erased?.(id) ? undefined : config.tenants.get(id));
  const named: Array<{ id: string; source: ResolvedTenant['source'] }> = [];
  if (names.header !== undefined) {
    if (!allowed.has('header')) throw new TenantGateError('QUERY_INVALID', `${config.effective.identity.tenant_header} is not accepted by this gateway`);
    named.push({ id: names.header, source: 'header' });
  }
  if (names.path !== undefined) {
    if (!allowed.has('path')) throw new TenantGateError('QUERY_INVALID', '/v1/tenants/{tenant}/… is not accepted by this gateway');
    named.push({ id: names.path, source: 'path' });
  }
  const base = config.effective.identity.subdomain_base;
  if (base && names.host && allowed.has('subdomain')) {
    const host = names.host.replace(/:\d+$/, '').toLowerCase();
    if (host.endsWith(`.${base}`)) named.push({ id: host.slice(0, -(base.length + 1)), source: 'subdomain' });
  }
  const ids = new Set(named.map((n) => n.id));
  if (ids.size > 1) throw mismatch();
  const platform = principal.access === 'platform';
  if (ids.size === 0) {
    if (platform) throw new TenantGateError('TENANT_REQUIRED', `a platform credential must name the tenant it acts for (or ${ALL_TENANTS})`);
    if (principal.tenants.length !== 1 || !allowed.has('credential')) throw new TenantGateError('TENANT_REQUIRED', 'name the tenant to act for');
    const tenant = find(principal.tenants[0] as string);
    if (!tenant) throw mismatch();
    return { tenant, source: 'credential' };
  }
  const { id, source } = named[0]!;
  if (platform) {
    if (id === ALL_TENANTS) return { tenant: null, source };
    const tenant = find(id);
    if (!tenant) throw new TenantGateError('TENANT_UNKNOWN', 'no such tenant');
    return { tenant, source };
  }
  if (!principal.tenants.includes(id)) throw mismatch();
  const tenant = find(id);
  if (!tenant) throw mismatch();
  return { tenant, source };
}
