import type { Check, DoctorContext, Finding } from './finding.ts';
import { crossTenantKeys } from './checks/cross-tenant-keys.ts';
import { gatewayLogin } from './checks/gateway-login.ts';
import { policies } from './checks/policies.ts';
import { privilegedRoles } from './checks/privileged-roles.ts';
import { tenantIndex } from './checks/tenant-index.ts';
import { tenantTablesRls } from './checks/tenant-tables-rls.ts';

/** Every check, in report order. One file each under checks/. */
export const CHECKS: Check[] = [privilegedRoles, gatewayLogin, tenantTablesRls, policies, tenantIndex, crossTenantKeys];

export async function runDoctor(ctx: DoctorContext): Promise<Finding[]> {
  const out: Finding[] = [];
  for (const check of CHECKS) out.push(...(await check.run(ctx)));
  return out;
}
