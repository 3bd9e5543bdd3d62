/** The one definition of a valid tenant id (SPEC §1). Anything else is rejected, never normalised. */
export const TENANT_ID_PATTERN = /^[a-z][a-z0-9_-]{1,39}$/;

/** The tenant "all" is a platform admin's way to name every tenant; it is never a real tenant id. */
export const ALL_TENANTS = 'all';

export function isValidTenantId(id: unknown): id is string {
  return typeof id === 'string' && TENANT_ID_PATTERN.test(id) && id !== ALL_TENANTS;
}

/** Why an id is rejected, for error messages (never echoes the id itself back unescaped). */
export function tenantIdProblem(id: unknown): string | undefined {
  if (typeof id !== 'string') return 'must be a string';
  if (id === ALL_TENANTS) return '"all" is reserved for platform admins';
  if (id.length < 2) return 'must be at least 2 characters';
  if (id.length > 40) return `must be at most 40 characters (has ${id.length})`;
  if (/[^\x20-\x7e]/.test(id)) return 'must be ASCII (no unicode or control characters)';
  if (/[A-Z]/.test(id)) return 'must be lower-case';
  if (!/^[a-z]/.test(id)) return 'must start with a letter a-z';
  if (!TENANT_ID_PATTERN.test(id)) return 'may contain only a-z, 0-9, "_" and "-"';
  return undefined;
}
