export { ERROR_CODES, type ErrorCode, type ErrorSpec } from './codes.ts';
export { TenantGateError, isTenantGateError, type SourceLocation } from './tenantgate-error.ts';
