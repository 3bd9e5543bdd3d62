import { existsSync, mkdirSync, readFileSync, writeFileSync, renameSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { isMap, parseDocument, stringify } from 'yaml';
import type { Config, Tenant } from '../config/types.ts';
import type { TenantLocation } from '../tiers/location.ts';
import type { Database } from '../db/database.ts';
import { TenantGateError } from '../errors/index.ts';
import type { Names } from '../provision/names.ts';
import { tenantIdProblem } from '../tenancy/tenant-id.ts';

export interface TenantSpec {
  id: string;
  name?: string;
  tier?: string;
  placement?: string;
  attributes?: Record<string, string>;
  roles?: string[];
}

/**
 * Onboarding is one file: write `tenants/<id>.yaml` (atomically) beside the config. The caller
 * reloads the config and applies it, so a bad file is rejected before anything is provisioned.
 */
export function writeTenantFile(config: Config, spec: TenantSpec): string {
  const problem = tenantIdProblem(spec.id);
  if (problem) throw new TenantGateError('TENANT_ID_INVALID', `invalid tenant id: ${problem}`);
  if (config.tenants.has(spec.id)) throw new TenantGateError('TENANT_EXISTS', `tenant "${spec.id}" already exists (${config.tenants.get(spec.id)?.source.file})`);
  const dir = join(config.dir, 'tenants');
  const file = join(dir, `${spec.id}.yaml`);
  if (existsSync(file)) throw new TenantGateError('TENANT_EXISTS', `${file} already exists`);
  mkdirSync(dir, { recursive: true });
  const body: Record<string, unknown> = { id: spec.id };
  for (const k of ['name', 'tier', 'placement', 'attributes', 'roles'] as const) if (spec[k] !== undefined) body[k] = spec[k];
  writeFileSync(`${file}.tmp`, stringify(body));
  renameSync(`${file}.tmp`, file);
  return file;
}

/**
 * After a move, say the tenant's new place in the file that declares it (tenants/<id>.yaml, or its
 * entry in tenantgate.yaml), comments and layout kept, so the next plan agrees with the database.
 * Returns the file written, or undefined when the entry could not be found.
 */
export function recordTenantPlace(t: Tenant, to: TenantLocation): string | undefined {
  const file = t.source.file;
  if (!existsSync(file)) return undefined;
  const doc = parseDocument(readFileSync(file, 'utf8'));
  const own = basename(dirname(file)) === 'tenants';
  const index = Number(t.source.key?.split('.')[1]);
  const node = own ? doc.contents : doc.getIn(['tenants', index]);
  if (!isMap(node) || node.get('id') !== t.id) return undefined;
  node.set('tier', to.tier);
  if (to.placement === 'default') node.delete('placement');
  else node.set('placement', to.placement);
  writeFileSync(`${file}.tmp`, doc.toString());
  renameSync(`${file}.tmp`, file);
  return file;
}

export interface TenantView {
  id: string;
  name: string;
  tier: string;
  placement: string;
  /** `suspended` when the config says so or it was suspended at runtime (`tenant suspend`), else `active`. */
  status: string;
  /**
   * Why it is suspended: `source` runtime (with the reason given, who and since when), config
   * (`status: suspended` in its file), or both. null while active.
   */
  suspension: { source: 'runtime' | 'config' | 'both'; reason: string | null; by: string | null; since: string | null } | null;
  /** Whether the catalog row matches the config (false until apply ran). */
  provisioned: boolean;
  roles: { read: string; write: string; admin: string; direct: string; gateway: string };
  key_roles: string[];
  usage: { api_keys: number; db_logins: number };
}

export async function describeTenants(db: Database, config: Config, n: Names, only?: string): Promise<TenantView[]> {
  const ids = only ? [only] : [...config.tenants.keys()].sort();
  if (only && !config.tenants.has(only)) throw new TenantGateError('TENANT_UNKNOWN', `tenant "${only}" is not in the configuration`);
  const catalog = await db
    .query<{ id: string; status: string; tier: string; placement: string; keys: string; logins: string }>(
      `SELECT t.id, t.status, t.tier, t.placement,
              (SELECT count(*) FROM tenantgate.api_keys k WHERE k.tenant_id = t.id AND k.revoked_at IS NULL) AS keys,
              (SELECT count(*) FROM tenantgate.api_keys k WHERE k.tenant_id = t.id AND k.revoked_at IS NULL AND k.db_login IS NOT NULL) AS logins
         FROM tenantgate.tenants t WHERE t.id = ANY($1)`,
      [ids],
    )
    .catch((err: { code?: string }) => {
      if (err.code === '42P01' || err.code === '3F000') return { rows: [] };
      throw err;
    });
  const rows = new Map(catalog.rows.map((r) => [r.id, r]));
  // Runtime suspensions (a catalog from before them has none).
  const held = await db
    .query<{ tenant: string; reason: string | null; suspended_by: string; suspended_at: Date }>(`SELECT tenant, reason, suspended_by, suspended_at FROM tenantgate.suspensions WHERE tenant = ANY($1)`, [ids])
    .catch((err: { code?: string }) => {
      if (err.code === '42P01' || err.code === '3F000') return { rows: [] };
      throw err;
    });
  const suspensions = new Map(held.rows.map((r) => [r.tenant, r]));
  return ids.map((id) => {
    const t = config.tenants.get(id)!;
    const row = rows.get(id);
    const runtime = suspensions.get(id);
    // The file's status as apply wrote it, or as it says now (not applied yet): suspended if either says so.
    const byConfig = row?.status === 'suspended' || t.status === 'suspended';
    return {
      id,
      name: t.name,
      // Where its rows are: the database's word once provisioned (a move changes it).
      tier: row?.tier ?? t.tier,
      placement: row?.placement ?? t.placement,
      status: runtime || byConfig ? 'suspended' : 'active',
      suspension: runtime
        ? { source: byConfig ? 'both' : 'runtime', reason: runtime.reason, by: runtime.suspended_by, since: new Date(runtime.suspended_at).toISOString() }
        : byConfig
          ? { source: 'config', reason: null, by: null, since: null }
          : null,
      provisioned: row !== undefined,
      roles: { read: n.access.read, write: n.access.write, admin: n.access.admin, direct: n.tenant(id), gateway: n.gateway },
      key_roles: t.roles,
      usage: { api_keys: Number(row?.keys ?? 0), db_logins: Number(row?.logins ?? 0) },
    };
  });
}
