import type { Check, DoctorContext, Finding } from './finding.ts';
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
];

export async function runDoctor(ctx: DoctorContext): Promise<Finding[]> {
  const out: Finding[] = [];
  for (const check of CHECKS) out.push(...(await check.run(ctx)));
  return out;
}
