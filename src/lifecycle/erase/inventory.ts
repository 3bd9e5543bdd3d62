import type { Config } from '../../config/types.ts';
import type { Database } from '../../db/database.ts';
import { TenantGateError } from '../../errors/index.ts';
import { resolveNames } from '../../provision/apply.ts';
import { serverAccess } from '../../provision/tenant-databases.ts';
import { ownerDatabases, type DatabaseSet, type PgliteFactory } from '../../tiers/databases.ts';
import { tenantDatabase, tenantSchema } from '../../tiers/location.ts';
import { countRows, datasetTables, type EraseTable } from './pooled.ts';

/** What an erasure needs besides the job: the config, the environment (secrets, placements' URLs), how to reach tenant databases. */
export interface EraseEnvironment {
  config: Config;
  env: Record<string, string | undefined>;
  /** Embedded tenant databases (tests hand in their factory). */
  pglite?: PgliteFactory;
}

/** Everything of the tenant's, as found before anything is removed (kept in the job's checkpoint and in the certificate). */
export interface EraseInventory {
  tenant: string;
  tier: 'pooled' | 'schema' | 'database';
  placement: string;
  role_prefix: string;
  /** Rows per dataset table: in the shared tables (every tier: a stray row counts too) and at the tenant's own place. */
  tables: Array<{ table: string; place: string; rows_before: number }>;
  schemas: string[];
  databases: Array<{ name: string; placement: string }>;
  keys: string[];
  logins: string[];
  /** The tenant's direct-login group role. */
  roles: string[];
  quota_overrides: boolean;
  /** tenants/<id>.yaml, or the config file whose `tenants:` lists it. */
  files: string[];
  /** The tenant's audit records at the start. */
  audit_records: number;
}

export const ownerSet = (e: EraseEnvironment, main: Database): DatabaseSet => ownerDatabases(e.config, main, e.env, e.pglite);

/** Whether the tenant's own database is there. */
export async function databaseExists(e: EraseEnvironment, main: Database, dbs: DatabaseSet, placement: string, name: string): Promise<boolean> {
  const access = serverAccess(e.config, main, e.env, dbs);
  try {
    const server = await access.server(placement);
    return server ? ((await server.query(`SELECT 1 FROM pg_database WHERE datname = $1`, [name])).rowCount ?? 0) > 0 : dbs.embeddedExists(placement, name);
  } finally {
    await access.close();
  }
}

export async function schemaExists(main: Database, schema: string): Promise<boolean> {
  return (await main.query<{ e: boolean }>(`SELECT to_regnamespace($1) IS NOT NULL AS e`, [schema])).rows[0]?.e === true;
}

/** Read what the tenant has: its catalog row decides where its rows are. TENANT_UNKNOWN when it has none. */
export async function takeInventory(e: EraseEnvironment, main: Database, tenant: string): Promise<EraseInventory> {
  const row = (await main.query<{ tier: EraseInventory['tier']; placement: string }>(`SELECT tier, placement FROM tenantgate.tenants WHERE id = $1`, [tenant])).rows[0];
  if (!row) throw new TenantGateError('TENANT_UNKNOWN', `tenant "${tenant}" is not provisioned (no row in tenantgate.tenants)`);
  const n = resolveNames(e.config, e.env);
  const tables = datasetTables(e.config);
  const inv: EraseInventory = {
    tenant,
    tier: row.tier,
    placement: row.placement,
    role_prefix: n.prefix,
    tables: [],
    schemas: [],
    databases: [],
    keys: [],
    logins: [],
    roles: [],
    quota_overrides: false,
    files: [],
    audit_records: 0,
  };
  for (const t of tables) inv.tables.push({ table: t.name, place: 'shared', rows_before: await countRows(main, t, tenant) });
  if (row.tier === 'schema') {
    const schema = tenantSchema(tenant);
    if (await schemaExists(main, schema)) {
      inv.schemas.push(schema);
      for (const t of tables) inv.tables.push({ table: t.name, place: `schema ${schema}`, rows_before: await countOr0(main, t, tenant, schema) });
    }
  }
  if (row.tier === 'database') {
    const name = tenantDatabase(n.prefix, tenant);
    const dbs = ownerSet(e, main);
    try {
      if (await databaseExists(e, main, dbs, row.placement, name)) {
        inv.databases.push({ name, placement: row.placement });
        const own = await dbs.get(row.placement, name);
        for (const t of tables) inv.tables.push({ table: t.name, place: `database ${name}`, rows_before: await countOr0(own, t, tenant) });
      }
    } finally {
      await dbs.close();
    }
  }
  const keys = await main.query<{ key_id: string; db_login: string | null }>(`SELECT key_id, db_login FROM tenantgate.api_keys WHERE tenant_id = $1 ORDER BY key_id`, [tenant]);
  inv.keys = keys.rows.map((k) => k.key_id);
  const logins = new Set(keys.rows.map((k) => k.db_login).filter((l): l is string => !!l));
  for (const r of (await main.query<{ role_name: string; kind: string }>(`SELECT role_name, kind FROM tenantgate.db_roles WHERE tenant_id = $1`, [tenant])).rows) {
    if (r.kind === 'login') logins.add(r.role_name);
  }
  inv.logins = [...logins].sort();
  inv.roles = [n.tenant(tenant)];
  inv.quota_overrides = ((await main.query(`SELECT 1 FROM tenantgate.tenant_quotas WHERE tenant = $1`, [tenant])).rowCount ?? 0) > 0;
  const t = e.config.tenants.get(tenant);
  if (t) inv.files.push(t.source.file);
  inv.audit_records = Number((await main.query<{ n: string }>(`SELECT count(*)::bigint AS n FROM tenantgate.audit_log WHERE tenant = $1`, [tenant])).rows[0]?.n ?? 0);
  return inv;
}

async function countOr0(db: Pick<Database, 'query'>, t: EraseTable, tenant: string, schema?: string): Promise<number> {
  try {
    return await countRows(db, t, tenant, schema);
  } catch (err) {
    if ((err as { code?: string }).code === '42P01') return 0; // the table is not at that place
    throw err;
  }
}
