import { stringify } from 'yaml';
import type { Config } from '../../config/types.ts';
import { maskUrl } from '../../db/url.ts';

/**
 * The effective configuration: defaults filled in, tenants/*.yaml merged, interpolation done,
 * secrets masked. Variables named by `*_env` keys are listed as set or unset, never printed.
 */
export function dumpConfig(config: Config, env: Record<string, string | undefined>): string {
  return stringify(maskedEffective(config, env), { sortMapEntries: false });
}

/** The effective configuration as data: every default resolved, secrets masked (what --json prints). */
export function maskedEffective(config: Config, env: Record<string, string | undefined>): Record<string, unknown> {
  const effective = structuredClone(config.effective);
  effective.defaults.quotas = { ...config.defaultQuotas };
  effective.datasets = effective.datasets.map((d) => ({ ...d, tenant_column: d.tenant_column ?? effective.defaults.tenant_column }));
  effective.tenants = effective.tenants.map((t) => {
    const resolved = config.tenants.get(t.id);
    return { ...t, tier: t.tier ?? effective.defaults.tier, roles: resolved?.roles ?? t.roles, quotas: resolved?.quotas ?? t.quotas };
  });
  effective.database.url = maskUrl(effective.database.url);
  const envNames = new Set<string>([effective.database.gateway_url_env, effective.security.secret_env, effective.security.signing_key_env]);
  for (const p of Object.values(effective.database.placements)) envNames.add(p.url_env);
  if (effective.identity.jwt?.secret_env) envNames.add(effective.identity.jwt.secret_env);
  effective.quota_store = maskUrl(effective.quota_store);
  const environment = Object.fromEntries([...envNames].sort().map((name) => [name, env[name] ? 'set (hidden)' : 'unset']));
  return { ...effective, environment };
}
