import { ident } from '../../db/sql.ts';
import { gatewayRoles } from '../../provision/names.ts';
import { tenantDatabase, tenantSchema } from '../../tiers/location.ts';
import type { Check, Finding } from '../finding.ts';

/**
 * The walls of the schema and database tiers: a schema-tier tenant's schema `t_<id>` usable only by
 * the gateway's access roles and that tenant's own group; a database-tier tenant's database (on this
 * server) open only to the gateway login and that tenant's group. Anyone else with USAGE or CONNECT
 * (PUBLIC, another tenant's group) reaches the tenant's tables by a path RLS alone then guards.
 */
export const tierWalls: Check = {
  id: 'TG021',
  server: true,
  title: 'who may use a schema-tier schema or connect to a database-tier database',
  async run({ db, names, main }) {
    const exists = await db.query<{ e: boolean }>(`SELECT to_regclass('tenantgate.tenants') IS NOT NULL AS e`);
    if (!exists.rows[0]?.e) return [];
    const tenants = (await db.query<{ id: string; tier: string; placement: string }>(`SELECT id, tier, placement FROM tenantgate.tenants WHERE tier <> 'pooled' ORDER BY id`)).rows;
    const out: Finding[] = [];
    const access = gatewayRoles(names).map((g) => g.role);
    for (const t of tenants) {
      const group = names.tenant(t.id);
      if (t.tier === 'schema') {
        const schema = tenantSchema(t.id);
        const r = await db.query<{ present: boolean; others: string[]; public: boolean }>(
          `SELECT to_regnamespace($1) IS NOT NULL AS present,
                  ARRAY(SELECT r.rolname::text FROM pg_roles r
                         WHERE to_regnamespace($1) IS NOT NULL AND has_schema_privilege(r.oid, to_regnamespace($1), 'USAGE')
                           AND NOT r.rolsuper AND r.rolname <> ALL ($2::text[]) AND r.oid <> (SELECT nspowner FROM pg_namespace WHERE oid = to_regnamespace($1))
                           AND r.rolname NOT LIKE 'pg\\_%' ORDER BY 1) AS others,
                  EXISTS (SELECT 1 FROM pg_namespace n CROSS JOIN LATERAL aclexplode(coalesce(n.nspacl, acldefault('n', n.nspowner))) a
                           WHERE n.oid = to_regnamespace($1) AND a.grantee = 0) AS public`,
          [schema, [...access, group]],
        );
        const row = r.rows[0]!;
        if (!row.present) {
          out.push({ id: this.id, severity: 'high', object: `schema ${schema}`, message: `tenant ${t.id} is in tier schema but its schema ${schema} is missing: its requests fail`, fix: '-- run tenantgate apply' });
        } else if (row.public) {
          out.push({ id: this.id, severity: 'critical', object: `schema ${schema}`, message: `PUBLIC may use ${schema}, tenant ${t.id}'s own schema: every role reaches its tables`, fix: `REVOKE ALL ON SCHEMA ${ident(schema)} FROM PUBLIC;` });
        } else if (row.others.length) {
          // Logins of the tenant's own group inherit USAGE through it: only roles outside it count.
          const foreign = (await db.query<{ r: string }>(`SELECT x AS r FROM unnest($1::text[]) x WHERE NOT pg_has_role(x, $2, 'MEMBER')`, [row.others, group])).rows.map((x) => x.r);
          if (foreign.length) out.push({ id: this.id, severity: 'critical', object: `schema ${schema}`, message: `roles other than the gateway's and ${group} may use ${schema}, tenant ${t.id}'s own schema: ${foreign.slice(0, 5).join(', ')}${foreign.length > 5 ? ` and ${foreign.length - 5} more` : ''}`, fix: foreign.slice(0, 20).map((x) => `REVOKE ALL ON SCHEMA ${ident(schema)} FROM ${ident(x)};`).join(' ') });
        }
      } else if (t.tier === 'database' && t.placement === 'default' && main?.kind !== 'pglite') {
        // (Embedded: each tenant database is an instance of its own, with nothing to grant.)
        const name = tenantDatabase(names.prefix, t.id);
        const r = await db.query<{ present: boolean; public: boolean; others: string[] }>(
          `SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1) AS present,
                  EXISTS (SELECT 1 FROM pg_database d CROSS JOIN LATERAL aclexplode(coalesce(d.datacl, acldefault('d', d.datdba))) a
                           WHERE d.datname = $1 AND a.grantee = 0 AND a.privilege_type = 'CONNECT') AS public,
                  ARRAY(SELECT r.rolname::text FROM pg_roles r JOIN pg_database d ON d.datname = $1
                         WHERE has_database_privilege(r.oid, d.oid, 'CONNECT') AND r.rolcanlogin AND NOT r.rolsuper AND r.oid <> d.datdba
                           AND r.rolname <> $2 AND NOT pg_has_role(r.oid, $3, 'MEMBER') ORDER BY 1) AS others`,
          [name, names.gateway, group],
        );
        const row = r.rows[0]!;
        if (!row.present) out.push({ id: this.id, severity: 'high', object: `database ${name}`, message: `tenant ${t.id} is in tier database but its database ${name} is missing: its requests fail`, fix: '-- run tenantgate apply' });
        else if (row.public) out.push({ id: this.id, severity: 'critical', object: `database ${name}`, message: `PUBLIC may connect to ${name}, tenant ${t.id}'s own database: every login reaches it, guarded by RLS alone`, fix: `REVOKE CONNECT ON DATABASE ${ident(name)} FROM PUBLIC;` });
        else if (row.others.length) out.push({ id: this.id, severity: 'critical', object: `database ${name}`, message: `logins other than the gateway's and ${group}'s may connect to ${name}, tenant ${t.id}'s own database: ${row.others.slice(0, 5).join(', ')}`, fix: row.others.slice(0, 20).map((x) => `REVOKE CONNECT ON DATABASE ${ident(name)} FROM ${ident(x)};`).join(' ') });
      }
    }
    return out;
  },
};
