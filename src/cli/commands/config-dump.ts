import { stringify } from 'yaml';
import type { Config } from '../../config/types.ts';
import { maskUrl } from '../../db/database.ts';

/**
 * The effective configuration: defaults filled in, tenants/*.yaml merged, interpolation done,
 * secrets masked. Variables named by `*_env` keys are listed as set or unset, never printed.
 */
export function dumpConfig(config: Config, env: Record<string, string | undefined>): string {
  const effective = structuredClone(config.effective);
  effective.database.url = maskUrl(effective.database.url);
  const envNames = new Set<string>([effective.database.gateway_url_env, effective.security.secret_env]);
  for (const p of Object.values(effective.database.placements)) envNames.add(p.url_env);
  if (effective.identity.jwt?.secret_env) envNames.add(effective.identity.jwt.secret_env);
  effective.quota_store = maskUrl(effective.quota_store);
  const environment = Object.fromEntries([...envNames].sort().map((name) => [name, env[name] ? 'set (hidden)' : 'unset']));
  return stringify({ ...effective, environment }, { sortMapEntries: false });
}
