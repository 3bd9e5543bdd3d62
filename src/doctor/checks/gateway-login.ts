import { ident } from '../../db/sql.ts';
import type { Check, Finding } from '../finding.ts';

/** The gateway login must hold nothing of its own: not superuser, no BYPASSRLS, NOINHERIT, owner of nothing. */
export const gatewayLogin: Check = {
  id: 'TG002',
  server: true,
  title: "the gateway login's attributes",
  async run({ db, gatewayRole }) {
    const r = await db.query<{ rolsuper: boolean; rolbypassrls: boolean; rolinherit: boolean; owns: string[] }>(
      `SELECT rolsuper, rolbypassrls, rolinherit,
              ARRAY(SELECT c.oid::regclass::text FROM pg_class c WHERE c.relowner = r.oid AND c.relkind IN ('r', 'p', 'v', 'm'))::text[] AS owns
         FROM pg_roles r WHERE rolname = $1`,
      [gatewayRole],
    );
    const row = r.rows[0];
    if (!row) return [{ id: this.id, severity: 'medium', object: `role ${gatewayRole}`, message: `the gateway login ${gatewayRole} does not exist`, fix: 'tenantgate apply' }];
    const out: Finding[] = [];
    const add = (severity: Finding['severity'], message: string, fix: string) => out.push({ id: this.id, severity, object: `role ${gatewayRole}`, message, fix });
    if (row.rolsuper) add('critical', `the gateway login ${gatewayRole} is superuser: RLS does not apply to it`, `ALTER ROLE ${ident(gatewayRole)} NOSUPERUSER;`);
    if (row.rolbypassrls) add('critical', `the gateway login ${gatewayRole} has BYPASSRLS`, `ALTER ROLE ${ident(gatewayRole)} NOBYPASSRLS;`);
    if (row.rolinherit) add('medium', `the gateway login ${gatewayRole} inherits its roles' privileges outside a tenant transaction`, `ALTER ROLE ${ident(gatewayRole)} NOINHERIT;`);
    for (const t of row.owns) add('high', `the gateway login owns ${t}; an owner can turn row level security off`, `ALTER TABLE ${t} OWNER TO <the owner role>;`);
    return out;
  },
};
