import { ident } from '../../db/sql.ts';
import type { Check } from '../finding.ts';

/**
 * The reverse of TG014: roles the config needs that the database lacks (access roles, the gateway
 * login, the direct-login groups, each configured tenant's group). Usually `tenantgate apply` has
 * not run since the config changed; until it does, that tenant or path is not walled as configured.
 */
export const missingRoles: Check = {
  id: 'TG018',
  server: true,
  title: 'roles the config needs that the database lacks',
  async run({ db, config, names }) {
    const needed = [
      ...Object.values(names.access),
      names.platformAll,
      names.gateway,
      names.direct,
      names.directDefault,
      ...[...config.tenants.keys()].map((id) => names.tenant(id)),
    ];
    const r = await db.query<{ role: string }>(
      `SELECT x.role FROM unnest($1::text[]) AS x(role)
        WHERE NOT EXISTS (SELECT 1 FROM pg_roles r WHERE r.rolname = x.role)
        ORDER BY 1`,
      [needed],
    );
    return r.rows.map((row) => ({
      id: this.id,
      severity: 'medium' as const,
      object: `role ${row.role}`,
      message: `the config needs role ${row.role} but the database has none: run tenantgate apply (the config changed since the last apply, or the role was dropped by hand)`,
      fix: `-- tenantgate apply (creates ${ident(row.role)} with its grants and policies)`,
    }));
  },
};
