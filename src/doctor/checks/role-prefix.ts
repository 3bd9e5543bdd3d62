import { prefixUsedElsewhere } from '../../provision/role-prefix.ts';
import { listRoles, type Check } from '../finding.ts';

/**
 * Another database on this server (not this project's own, nor one of its database-tier tenants'
 * `<prefix>_<id>`) holds objects owned by, granted to or governed by policies naming this prefix's
 * roles: two projects share one role_prefix. Roles are global to a server, so they share the
 * gateway login (one project's apply cannot show its password to the other), the access roles and
 * the tenant groups, and a direct login of tenant `acme` in one is a member of the group that tenant
 * `acme` of the other reads through. The same test apply refuses with (ROLE_PREFIX_IN_USE), on
 * pg_shdepend (src/provision/role-prefix.ts says why).
 */
export const rolePrefix: Check = {
  id: 'TG022',
  server: true,
  title: 'role_prefix shared with another database on the server',
  async run({ db, config, names }) {
    const catalog = await db.query<{ e: boolean }>(`SELECT to_regclass('tenantgate.tenants') IS NOT NULL AS e`);
    const catalogTenants = catalog.rows[0]?.e ? (await db.query<{ id: string }>(`SELECT id FROM tenantgate.tenants`)).rows.map((r) => r.id) : [];
    const uses = await prefixUsedElsewhere(db, names, [...config.tenants.keys(), ...catalogTenants]);
    return uses.map((u) => ({
      id: this.id,
      severity: 'high' as const,
      object: `database ${u.database}`,
      message: `role_prefix "${names.prefix}" is in use by database ${u.database} too: it holds objects owned by or granted to ${listRoles(u.roles)}. Every database on the server shares these roles: the gateway login, the access roles, and the tenant groups of tenants with the same id`,
      fix: `-- give one of the two databases its own database.role_prefix in its tenantgate.yaml and run tenantgate apply there; then drop the old prefix's grants in it (DROP OWNED BY <role> in that database)`,
    }));
  },
};
