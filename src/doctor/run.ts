import type { Config } from '../config/types.ts';
import type { Database } from '../db/database.ts';
import { configFor } from '../provision/tenant-databases.ts';
import { ownerDatabases } from '../tiers/databases.ts';
import { tenantDatabase, tenantSchema } from '../tiers/location.ts';
import type { Check, DoctorContext, Finding } from './finding.ts';
import { tierWalls } from './checks/tier-walls.ts';
import { crossTenantKeys } from './checks/cross-tenant-keys.ts';
import { gatewayLogin } from './checks/gateway-login.ts';
import { policies } from './checks/policies.ts';
import { privilegedRoles } from './checks/privileged-roles.ts';
import { publicGrants } from './checks/public-grants.ts';
import { restrictedColumns } from './checks/restricted-columns.ts';
import { securityDefiner } from './checks/security-definer.ts';
import { tenantIndex } from './checks/tenant-index.ts';
import { tenantTablesRls } from './checks/tenant-tables-rls.ts';
import { unknownRoles } from './checks/unknown-roles.ts';
import { viewsSecurityInvoker } from './checks/views-security-invoker.ts';
import { reachableRelations } from './checks/reachable-relations.ts';
import { serverCve } from './checks/server-cve.ts';
import { extendedStatistics } from './checks/extended-statistics.ts';
import { missingRoles } from './checks/missing-roles.ts';
import { largeObjects } from './checks/large-objects.ts';
import { plainStatistics } from './checks/plain-statistics.ts';
import { rolePrefix } from './checks/role-prefix.ts';
import { copyDrift } from './checks/copy-drift.ts';

/** Every check, in report order. One file each under checks/. */
export const CHECKS: Check[] = [
  privilegedRoles,
  gatewayLogin,
  tenantTablesRls,
  policies,
  tenantIndex,
  crossTenantKeys,
  viewsSecurityInvoker,
  securityDefiner,
  publicGrants,
  restrictedColumns,
  unknownRoles,
  reachableRelations,
  serverCve,
  extendedStatistics,
  missingRoles,
  largeObjects,
  plainStatistics,
  tierWalls,
  rolePrefix,
  copyDrift,
];

/**
 * Every check over the main database, with each schema-tier tenant's copies counted as dataset
 * tables; then (given `main`) the per-database checks inside each database-tier tenant's own
 * database, their findings named `database <name>: …`.
 */
export async function runDoctor(ctx: DoctorContext): Promise<Finding[]> {
  const located = await tenantPlaces(ctx.db);
  const inSchemas = located.filter((t) => t.tier === 'schema' && ctx.config.tenants.has(t.id));
  const config: Config = inSchemas.length
    ? { ...ctx.config, datasets: [...ctx.config.datasets, ...inSchemas.flatMap((t) => ctx.config.datasets.map((d) => ({ ...d, schema: tenantSchema(t.id) })))] }
    : ctx.config;
  const out: Finding[] = [];
  for (const check of CHECKS) out.push(...(await check.run({ ...ctx, config })));
  const own = located.filter((t) => t.tier === 'database' && ctx.config.tenants.has(t.id));
  if (!ctx.main || own.length === 0) return out;
  const dbs = ownerDatabases(ctx.config, ctx.main, ctx.env ?? process.env);
  try {
    for (const t of own) {
      const name = tenantDatabase(ctx.names.prefix, t.id);
      let db: Database;
      try {
        db = await dbs.get(t.placement, name);
        await db.query('SELECT 1');
      } catch (err) {
        out.push({ id: 'TG021', severity: 'high', object: `database ${name}`, message: `tenant ${t.id}'s own database cannot be examined: ${(err as Error).message}`, fix: '-- run tenantgate apply, or set the placement URL' });
        continue;
      }
      const there = { ...ctx, db, config: configFor(ctx.config, ctx.config.tenants.get(t.id)!) };
      for (const check of CHECKS.filter((c) => !c.server)) out.push(...(await check.run(there)).map((f) => ({ ...f, object: `database ${name}: ${f.object}` })));
    }
  } finally {
    await dbs.close();
  }
  return out;
}

async function tenantPlaces(db: DoctorContext['db']): Promise<Array<{ id: string; tier: string; placement: string }>> {
  const exists = await db.query<{ e: boolean }>(`SELECT to_regclass('tenantgate.tenants') IS NOT NULL AS e`);
  if (!exists.rows[0]?.e) return [];
  return (await db.query<{ id: string; tier: string; placement: string }>(`SELECT id, tier, placement FROM tenantgate.tenants WHERE tier <> 'pooled'`)).rows;
}
