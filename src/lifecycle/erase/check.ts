import { existsSync } from 'node:fs';
import type { Database } from '../../db/database.ts';
import { tenantDatabase, tenantSchema } from '../../tiers/location.ts';
import { databaseExists, ownerSet, schemaExists, type EraseEnvironment } from './inventory.ts';
import { countRows, datasetTables } from './pooled.ts';

/** The post-erasure check: what of the tenant is left (all zero and empty when the erasure is complete). */
export interface ErasureCheck {
  at: string;
  ok: boolean;
  /** Rows of the tenant in every dataset table, read by the owner (which bypasses RLS: it sees at least what platform-all sees). */
  tables: Array<{ table: string; rows: number }>;
  schema_left: string | null;
  database_left: string | null;
  roles_left: string[];
  keys_left: string[];
  /** Catalog rows of the tenant still there (tenants, db_roles, tenant_quotas, suspensions). */
  catalog_left: string[];
  files_left: string[];
  /** One line per thing found, empty when ok. */
  problems: string[];
}

export interface CheckSubject {
  tenant: string;
  role_prefix: string;
  placement: string;
  /** Logins and roles the tenant had (the certificate lists them). */
  logins: string[];
  roles: string[];
  files: string[];
}

export async function checkErased(e: EraseEnvironment, main: Database, s: CheckSubject): Promise<ErasureCheck> {
  const problems: string[] = [];
  const tables: ErasureCheck['tables'] = [];
  for (const t of datasetTables(e.config)) {
    const rows = await countRows(main, t, s.tenant);
    tables.push({ table: t.name, rows });
    if (rows > 0) problems.push(`${rows} row(s) of ${s.tenant} in ${t.name}`);
  }
  const schema = tenantSchema(s.tenant);
  const schemaLeft = (await schemaExists(main, schema)) ? schema : null;
  if (schemaLeft) problems.push(`schema ${schema} exists`);
  const dbName = tenantDatabase(s.role_prefix, s.tenant);
  const dbs = ownerSet(e, main);
  let databaseLeft: string | null = null;
  try {
    if (await databaseExists(e, main, dbs, s.placement, dbName)) databaseLeft = dbName;
  } finally {
    await dbs.close();
  }
  if (databaseLeft) problems.push(`database ${dbName} exists`);
  const roles = [...new Set([...s.logins, ...s.roles, `${s.role_prefix}_t_${s.tenant}`])];
  const rolesLeft = (await main.query<{ rolname: string }>(`SELECT rolname::text FROM pg_roles WHERE rolname = ANY($1) ORDER BY 1`, [roles])).rows.map((r) => r.rolname);
  for (const r of rolesLeft) problems.push(`role ${r} exists`);
  const keysLeft = (await main.query<{ key_id: string }>(`SELECT key_id FROM tenantgate.api_keys WHERE tenant_id = $1 ORDER BY 1`, [s.tenant])).rows.map((r) => r.key_id);
  for (const k of keysLeft) problems.push(`key ${k} exists`);
  const catalogLeft: string[] = [];
  for (const [table, col] of [
    ['tenants', 'id'],
    ['db_roles', 'tenant_id'],
    ['tenant_quotas', 'tenant'],
    ['suspensions', 'tenant'],
  ] as const) {
    if (((await main.query(`SELECT 1 FROM tenantgate.${table} WHERE ${col} = $1 LIMIT 1`, [s.tenant])).rowCount ?? 0) > 0) catalogLeft.push(`tenantgate.${table}`);
  }
  for (const c of catalogLeft) problems.push(`a row of ${s.tenant} in ${c}`);
  const filesLeft = s.files.filter((f) => f.endsWith(`${s.tenant}.yaml`) && existsSync(f));
  for (const f of filesLeft) problems.push(`file ${f} exists`);
  return {
    at: new Date().toISOString(),
    ok: problems.length === 0,
    tables,
    schema_left: schemaLeft,
    database_left: databaseLeft,
    roles_left: rolesLeft,
    keys_left: keysLeft,
    catalog_left: catalogLeft,
    files_left: filesLeft,
    problems,
  };
}
