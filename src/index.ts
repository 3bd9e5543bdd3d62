/** tenantgate as a library: the same engine the CLI and gateway use. */
export { createTenantGate, type TenantGate, type TenantGateOptions, type TenantScope } from './gate.ts';
export type { TenantClient } from './execute/tenant-transaction.ts';
export { loadConfig, parseConfig } from './config/load.ts';
export type { Config, Dataset, Tenant, AccessLevel } from './config/types.ts';
export { openDatabase, type Database } from './db/database.ts';
export { applyProvision, planProvision } from './provision/apply.ts';
export { ERROR_CODES, TenantGateError, isTenantGateError, type ErrorCode } from './errors/index.ts';
