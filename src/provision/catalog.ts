import { SETTING_MAC, SETTING_TENANT } from './names.ts';

/**
 * The `tenantgate` schema: what apply made, tenants, keys, and the functions the policies call.
 * No role but the owner reads these tables; the functions are SECURITY DEFINER with a pinned
 * search_path and return only the caller's own tenant (or nothing).
 */
export const CATALOG_SCHEMA = 'tenantgate';

export const CATALOG_TABLES: Record<string, string> = {
  meta: `CREATE TABLE tenantgate.meta (key text PRIMARY KEY, value text NOT NULL)`,
  tenants: `CREATE TABLE tenantgate.tenants (
  id text PRIMARY KEY CHECK (id ~ '^[a-z][a-z0-9_-]{1,39}$'),
  name text NOT NULL,
  tier text NOT NULL,
  placement text NOT NULL,
  status text NOT NULL DEFAULT 'active',
  attributes jsonb NOT NULL DEFAULT '{}',
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now())`,
  api_keys: `CREATE TABLE tenantgate.api_keys (
  key_id text PRIMARY KEY,
  tenant_id text REFERENCES tenantgate.tenants(id),
  role text NOT NULL,
  access text NOT NULL,
  hash bytea NOT NULL,
  db_login text,
  created_at timestamptz NOT NULL DEFAULT now(),
  revoked_at timestamptz)`,
  db_roles: `CREATE TABLE tenantgate.db_roles (
  role_name text PRIMARY KEY,
  tenant_id text NOT NULL REFERENCES tenantgate.tenants(id),
  kind text NOT NULL CHECK (kind IN ('tenant', 'login')))`,
  applied: `CREATE TABLE tenantgate.applied (
  object text PRIMARY KEY,
  spec_hash text NOT NULL,
  observed text,
  applied_at timestamptz NOT NULL DEFAULT now())`,
  context_key: `CREATE TABLE tenantgate.context_key (
  id int PRIMARY KEY CHECK (id = 1),
  k_ipad bytea NOT NULL,
  k_opad bytea NOT NULL)`,
};

const definer = `LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp`;
const invoker = `LANGUAGE plpgsql STABLE SECURITY INVOKER SET search_path = pg_catalog, pg_temp`;
const INVOKER_FUNCTIONS = new Set(['login_tenant', 'login_attr']);

/** Function name → full CREATE OR REPLACE statement. The body is compared with prosrc for drift. */
export const CATALOG_FUNCTIONS: Record<string, { args: string; create: string; body: string }> = (() => {
  const fns: Array<[string, string, string, string]> = [
    [
      'gateway_tenant',
      '',
      'text',
      // The gateway path: a tenant counts only with a valid HMAC of it. SQL that changes the
      // setting cannot forge the signature, so it sees no tenant at all (fail closed).
      `
DECLARE
  t text := current_setting('${SETTING_TENANT}', true);
  m text := current_setting('${SETTING_MAC}', true);
  ki bytea;
  ko bytea;
BEGIN
  IF t IS NULL OR t = '' OR m IS NULL OR m = '' THEN
    RETURN NULL;
  END IF;
  SELECT k_ipad, k_opad INTO ki, ko FROM tenantgate.context_key WHERE id = 1;
  IF encode(sha256(ko || sha256(ki || convert_to(t, 'UTF8'))), 'hex') = m THEN
    RETURN t;
  END IF;
  RETURN NULL;
END`,
    ],
    [
      'gateway_attr',
      'attr text',
      'text',
      `
BEGIN
  RETURN (SELECT attributes ->> attr FROM tenantgate.tenants WHERE id = tenantgate.gateway_tenant());
END`,
    ],
    [
      'role_tenant',
      'r text',
      'text',
      // Answers only for roles the session's login is (or belongs to), so no login can ask
      // which tenant another role serves.
      `
BEGIN
  RETURN (SELECT d.tenant_id FROM tenantgate.db_roles d JOIN tenantgate.tenants t ON t.id = d.tenant_id
          WHERE d.role_name = r AND t.status = 'active' AND pg_has_role(session_user, r, 'MEMBER'));
END`,
    ],
    [
      'role_attr',
      'r text, attr text',
      'text',
      `
BEGIN
  RETURN (SELECT attributes ->> attr FROM tenantgate.tenants WHERE id = tenantgate.role_tenant(r));
END`,
    ],
    [
      'login_tenant',
      '',
      'text',
      // The direct path: keyed on the login role itself (current_user), never on a setting.
      // SECURITY INVOKER so current_user is the caller; zero arguments so the result has the
      // default collation and the tenant index stays usable (DESIGN.md, collation trap).
      `
BEGIN
  RETURN tenantgate.role_tenant(current_user::text);
END`,
    ],
    [
      'login_attr',
      'attr text',
      'text',
      `
BEGIN
  RETURN tenantgate.role_attr(current_user::text, attr);
END`,
    ],
    [
      'lookup_key',
      'wanted_key text',
      'TABLE(hash bytea, tenant_id text, role text, access text, revoked boolean)',
      // The gateway login verifies API keys through this and nothing else: it can read one
      // key's hash by id, never list keys or tenants.
      `
BEGIN
  RETURN QUERY SELECT k.hash, k.tenant_id, k.role, k.access, k.revoked_at IS NOT NULL FROM tenantgate.api_keys k WHERE k.key_id = wanted_key;
END`,
    ],
  ];
  return Object.fromEntries(
    fns.map(([name, args, returns, body]) => [
      name,
      {
        args,
        body,
        create: `CREATE OR REPLACE FUNCTION tenantgate.${name}(${args}) RETURNS ${returns} ${INVOKER_FUNCTIONS.has(name) ? invoker : definer} AS $fn$${body}$fn$`,
      },
    ]),
  );
})();
