import { ident } from '../../db/sql.ts';
import type { Check } from '../finding.ts';

/**
 * Roles under tenantgate's prefix that the config does not account for: a tenant group of a tenant
 * no longer in the config, a direct login not recorded in tenantgate.db_roles, or anything else
 * someone made by hand. They may still hold grants or memberships nobody reviews.
 */
export const unknownRoles: Check = {
  id: 'TG014',
  server: true,
  title: 'roles under the tenantgate prefix that the config does not know',
  async run({ db, config, names }) {
    const known = [
      names.gateway,
      ...Object.values(names.access),
      names.platformAll,
      names.direct,
      names.directDefault,
      ...[...config.tenants.keys()].map((id) => names.tenant(id)),
    ];
    const esc = names.prefix.replace(/[\\%_]/g, '\\$&');
    const r = await db.query<{ rolname: string; login_kind: boolean }>(
      `SELECT r.rolname::text AS rolname, r.rolname LIKE $3 AS login_kind
         FROM pg_roles r
        WHERE r.rolname LIKE $1 AND r.rolname <> ALL ($2::text[])
        ORDER BY 1`,
      [`${esc}\\_%`, known, `${esc}\\_l\\_%`],
    );
    if (r.rows.length === 0) return [];
    let logins = new Set<string>();
    if (r.rows.some((row) => row.login_kind)) {
      const has = await db.query<{ ok: boolean }>(`SELECT to_regclass('tenantgate.db_roles') IS NOT NULL AS ok`);
      if (has.rows[0]?.ok) {
        const l = await db.query<{ role_name: string }>(`SELECT role_name FROM tenantgate.db_roles WHERE kind = 'login'`);
        logins = new Set(l.rows.map((x) => x.role_name));
      }
    }
    return r.rows
      .filter((row) => !(row.login_kind && logins.has(row.rolname)))
      .map((row) => ({
        id: this.id,
        severity: 'low' as const,
        object: `role ${row.rolname}`,
        message: row.login_kind
          ? `${row.rolname} is named like a tenantgate direct login but is not recorded in tenantgate.db_roles`
          : `${row.rolname} is under the tenantgate role prefix but the config does not make it (a removed tenant, or a role made by hand)`,
        fix: `REASSIGN OWNED BY ${ident(row.rolname)} TO CURRENT_USER; DROP OWNED BY ${ident(row.rolname)}; DROP ROLE ${ident(row.rolname)}; -- after checking nothing uses it`,
      }));
  },
};
