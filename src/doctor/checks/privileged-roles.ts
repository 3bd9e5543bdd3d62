import { ident } from '../../db/sql.ts';
import { type Check, tableNames } from '../finding.ts';

/** Roles that can reach tenant data while bypassing RLS: superusers and BYPASSRLS roles that hold a privilege on a dataset table. */
export const privilegedRoles: Check = {
  id: 'TG001',
  title: 'roles that bypass row level security and can reach tenant data',
  async run({ db, config }) {
    const tables = tableNames(config);
    const r = await db.query<{ rolname: string; rolsuper: boolean; rolbypassrls: boolean; tbl: string }>(
      `SELECT r.rolname, r.rolsuper, r.rolbypassrls, t.tbl
         FROM pg_roles r CROSS JOIN unnest($1::text[]) AS t(tbl)
        WHERE (r.rolbypassrls OR r.rolsuper) AND r.rolcanlogin AND to_regclass(t.tbl) IS NOT NULL
          AND r.rolname <> current_user
          AND (r.rolsuper OR has_table_privilege(r.oid, to_regclass(t.tbl), 'SELECT'))
        ORDER BY 1, 4`,
      [tables],
    );
    const seen = new Set<string>();
    return r.rows.flatMap((row) => {
      if (seen.has(row.rolname)) return [];
      seen.add(row.rolname);
      const what = row.rolsuper ? 'superuser' : 'BYPASSRLS';
      return [
        {
          id: this.id,
          // Superusers bypass everything by definition (a DBA login is normal): noted, not alarmed.
          // A BYPASSRLS role granted a dataset table is a deliberate hole in the wall.
          severity: row.rolsuper ? ('info' as const) : ('high' as const),
          object: `role ${row.rolname}`,
          message: `${row.rolname} can log in, is ${what} and can read ${row.tbl}: row level security does not apply to it, so it reads every tenant's rows`,
          fix: row.rolsuper ? `ALTER ROLE ${ident(row.rolname)} NOSUPERUSER;` : `ALTER ROLE ${ident(row.rolname)} NOBYPASSRLS;`,
        },
      ];
    });
  },
};
