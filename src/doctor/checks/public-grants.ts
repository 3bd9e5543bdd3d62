import { ident } from '../../db/sql.ts';
import { type Check, type Finding, listRoles, prefixRolePattern, tableNames } from '../finding.ts';

/**
 * CREATE on a schema that holds a dataset table lets a role plant objects beside it (functions and
 * operators that shadow the ones policies call, tables that capture writes); PUBLIC privileges on a
 * dataset table reach every role, including ones tenantgate never made.
 */
export const publicGrants: Check = {
  id: 'TG012',
  title: 'PUBLIC grants on dataset tables and CREATE on their schemas',
  async run({ db, config, names }) {
    const tables = tableNames(config);
    const like = prefixRolePattern(names);
    const schemas = await db.query<{ schema: string; public_create: boolean; roles: string[] }>(
      `SELECT n.nspname AS schema,
              EXISTS (SELECT 1 FROM aclexplode(coalesce(n.nspacl, acldefault('n', n.nspowner))) a
                       WHERE a.grantee = 0 AND a.privilege_type = 'CREATE') AS public_create,
              ARRAY(SELECT r.rolname::text FROM pg_roles r
                     WHERE (r.rolname LIKE $2 OR r.rolname = $3) AND has_schema_privilege(r.oid, n.oid, 'CREATE')
                     ORDER BY 1) AS roles
         FROM pg_namespace n
        WHERE n.oid IN (SELECT c.relnamespace FROM pg_class c WHERE c.oid = ANY (SELECT to_regclass(t) FROM unnest($1::text[]) t))
        ORDER BY 1`,
      [tables, like, names.gateway],
    );
    const out: Finding[] = [];
    for (const row of schemas.rows) {
      const object = `schema ${row.schema}`;
      if (row.public_create) {
        out.push({ id: this.id, severity: 'high', object, message: `PUBLIC has CREATE on schema ${row.schema}, which holds dataset tables: any role can plant objects beside them (shadowing functions and operators their policies use)`, fix: `REVOKE CREATE ON SCHEMA ${ident(row.schema)} FROM PUBLIC;` });
      } else if (row.roles.length > 0) {
        out.push({ id: this.id, severity: 'high', object, message: `tenantgate roles have CREATE on schema ${row.schema}, which holds dataset tables: ${listRoles(row.roles)}`, fix: `REVOKE CREATE ON SCHEMA ${ident(row.schema)} FROM ${row.roles.slice(0, 20).map(ident).join(', ')};` });
      }
    }
    const grants = await db.query<{ tbl: string; privs: string[] }>(
      `SELECT c.oid::regclass::text AS tbl, array_agg(DISTINCT a.privilege_type ORDER BY a.privilege_type) AS privs
         FROM pg_class c CROSS JOIN LATERAL aclexplode(c.relacl) a
        WHERE c.oid = ANY (SELECT to_regclass(t) FROM unnest($1::text[]) t) AND a.grantee = 0
        GROUP BY c.oid ORDER BY 1`,
      [tables],
    );
    for (const row of grants.rows) {
      out.push({ id: this.id, severity: 'medium', object: `table ${row.tbl}`, message: `PUBLIC holds ${row.privs.join(', ')} on dataset table ${row.tbl}: every role has it, including roles tenantgate does not know`, fix: `REVOKE ALL ON TABLE ${row.tbl} FROM PUBLIC;` });
    }
    return out;
  },
};
