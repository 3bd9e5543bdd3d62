import { ident } from '../../db/sql.ts';
import { type Check, type Finding, listRoles, prefixRolePattern, tableNames } from '../finding.ts';

/** A role that bypasses row level security (superuser or BYPASSRLS) and reaches a dataset table. */
interface Bypasser {
  oid: string;
  rolname: string;
  rolsuper: boolean;
  rolcanlogin: boolean;
  /** Dataset tables it holds a data privilege on (its own, inherited, PUBLIC's, as owner); every one for a superuser. */
  tables: string[];
}

/** A login role that can SET ROLE to a bypasser, and the chain of memberships that lets it. */
interface Reacher {
  target: string;
  login: string;
  /** Role names from the login to the bypasser, both included. */
  path: string[];
  /** Under the tenantgate prefix, or the gateway login: a tenant-facing login. */
  ours: boolean;
  /** The login the doctor runs as (the owner that runs apply). */
  me: boolean;
}

/** Where a bypasser's privilege on a table comes from (for the statement that takes it away). */
interface Source {
  role: string;
  /** The table, schema-qualified and quoted where needed. */
  tbl: string;
  bypasser: string;
  /** PUBLIC holds the privilege, the role owns the table, holds a grant itself, or inherits it from `parent`. */
  via: 'public' | 'owner' | 'grant' | 'member';
  parent: string | null;
}

/**
 * Roles that read or write tenant data while bypassing row level security. A login with BYPASSRLS
 * and a privilege on a dataset table reads every tenant (high); so does a login that can SET ROLE
 * to such a role, directly or through nested memberships (high; critical when the login is one of
 * tenantgate's own: the gateway login or a tenant's direct login). A BYPASSRLS role nobody can
 * become yet is one `GRANT role TO login` away from it (medium). Privileges count however the role
 * holds them: granted to it, to PUBLIC, to a role it inherits (pg_read_all_data included), or as
 * owner. Superusers bypass everything by definition (a DBA login is normal): noted as info, unless
 * a tenantgate login can become one. The login running the doctor (the owner that runs apply) is
 * not a finding, nor are the roles only it can become (noted as info), and superuser logins do not
 * count as reaching a role: they can do all of this already.
 */
export const privilegedRoles: Check = {
  id: 'TG001',
  title: 'roles that bypass row level security and can reach tenant data',
  async run({ db, config, names, gatewayRole }) {
    const tables = tableNames(config);
    const found = await db.query<Bypasser>(
      `SELECT r.oid::text AS oid, r.rolname::text AS rolname, r.rolsuper, r.rolcanlogin,
              array_agg(t.tbl ORDER BY t.tbl)::text[] AS tables
         FROM pg_roles r
         CROSS JOIN (SELECT t AS tbl, to_regclass(t) AS rel FROM unnest($1::text[]) AS t) t
        WHERE (r.rolbypassrls OR r.rolsuper) AND r.rolname <> current_user AND t.rel IS NOT NULL
          AND (r.rolsuper
               OR has_table_privilege(r.oid, t.rel, 'SELECT, INSERT, UPDATE, DELETE')
               OR has_any_column_privilege(r.oid, t.rel, 'SELECT, INSERT, UPDATE'))
        GROUP BY r.oid, r.rolname, r.rolsuper, r.rolcanlogin
        ORDER BY 2`,
      [tables],
    );
    if (found.rows.length === 0) return [];
    const oids = found.rows.map((b) => b.oid);
    // Who can become each of them: members, directly or through other roles, that can log in.
    // PostgreSQL 16 made SET ROLE a per-grant option; before it, any membership allows SET ROLE.
    const version = Number((await db.query<{ v: string }>(`SELECT current_setting('server_version_num') AS v`)).rows[0]?.v ?? 0);
    const reach = await db.query<Reacher>(
      `WITH RECURSIVE up(target, member, path) AS (
         SELECT b, b, ARRAY[b] FROM unnest($1::oid[]) AS b
         UNION ALL
         SELECT up.target, m.member, up.path || m.member
           FROM up JOIN pg_auth_members m ON m.roleid = up.member
          WHERE m.member <> ALL (up.path)
       )
       SELECT DISTINCT ON (up.target, l.rolname) up.target::text AS target, l.rolname::text AS login,
              ARRAY(SELECT p.rolname::text FROM unnest(up.path) WITH ORDINALITY AS x(oid, i) JOIN pg_roles p ON p.oid = x.oid ORDER BY x.i DESC) AS path,
              (l.rolname = $3 OR l.rolname LIKE $4) AS ours, l.rolname = current_user AS me
         FROM up JOIN pg_roles l ON l.oid = up.member
        WHERE up.member <> up.target AND (l.rolname = current_user OR (l.rolcanlogin AND NOT l.rolsuper))
          AND pg_has_role(l.oid, up.target, $2)
        ORDER BY up.target, l.rolname, cardinality(up.path)`,
      [oids, version >= 160000 ? 'SET' : 'MEMBER', gatewayRole, prefixRolePattern(names)],
    );
    const reachers = new Map<string, Reacher[]>();
    const mine = new Set<string>();
    for (const r of reach.rows) {
      if (r.me) mine.add(r.target);
      else reachers.set(r.target, [...(reachers.get(r.target) ?? []), r]);
    }
    // For the fix: what gives each BYPASSRLS role its privileges, as the statement that removes it.
    const sources = await db.query<Source>(
      `WITH RECURSIVE inh(b, r, first) AS (
         SELECT b, b, NULL::oid FROM unnest($1::oid[]) AS b
         UNION
         SELECT inh.b, m.roleid, coalesce(inh.first, m.roleid) FROM inh JOIN pg_auth_members m ON m.member = inh.r
       ), tbl AS (
         SELECT c.oid, format('%I.%I', n.nspname, c.relname) AS name, c.relowner, c.relacl
           FROM unnest($2::text[]) AS t JOIN pg_class c ON c.oid = to_regclass(t) JOIN pg_namespace n ON n.oid = c.relnamespace
       ), holder(tbl, grantee, kind) AS (
         SELECT t.name, a.grantee, 'grant' FROM tbl t, aclexplode(t.relacl) a WHERE a.privilege_type IN ('SELECT', 'INSERT', 'UPDATE', 'DELETE')
         UNION SELECT t.name, a.grantee, 'grant' FROM tbl t JOIN pg_attribute at ON at.attrelid = t.oid, aclexplode(at.attacl) a WHERE a.privilege_type IN ('SELECT', 'INSERT', 'UPDATE')
         UNION SELECT t.name, t.relowner, 'owner' FROM tbl t
         UNION SELECT t.name, p.oid, 'predefined' FROM tbl t, pg_roles p WHERE p.rolname IN ('pg_read_all_data', 'pg_write_all_data')
       )
       SELECT DISTINCT inh.b::text AS role, h.tbl, pg_get_userbyid(inh.b) AS bypasser,
              CASE WHEN h.grantee = 0 THEN 'public' WHEN h.kind = 'owner' AND inh.first IS NULL THEN 'owner'
                   WHEN inh.first IS NULL THEN 'grant' ELSE 'member' END AS via,
              CASE WHEN inh.first IS NOT NULL THEN pg_get_userbyid(inh.first) END AS parent
         FROM holder h JOIN inh ON inh.r = h.grantee OR h.grantee = 0
        WHERE (h.grantee = 0 AND inh.first IS NULL) OR (h.grantee <> 0 AND (inh.first IS NULL OR pg_has_role(inh.b, inh.r, 'USAGE')))
        ORDER BY 1, 4, 2, 5`,
      [found.rows.filter((b) => !b.rolsuper).map((b) => b.oid), tables],
    );
    const me = (await db.query<{ u: string }>('SELECT current_user::text AS u')).rows[0]?.u ?? 'CURRENT_USER';
    const fixes = new Map<string, string[]>();
    for (const s of sources.rows) {
      const list = fixes.get(s.role) ?? [];
      const revoke = {
        public: `REVOKE ALL ON ${s.tbl} FROM PUBLIC;`,
        owner: `ALTER TABLE ${s.tbl} OWNER TO ${ident(me)};`,
        grant: `REVOKE ALL ON ${s.tbl} FROM ${ident(s.bypasser)};`,
        member: `REVOKE ${ident(s.parent ?? '')} FROM ${ident(s.bypasser)};`,
      }[s.via];
      if (!list.includes(revoke)) list.push(revoke);
      fixes.set(s.role, list);
    }

    const out: Finding[] = [];
    for (const b of found.rows) {
      const who = reachers.get(b.oid) ?? [];
      const ours = who.filter((r) => r.ours);
      const what = b.rolsuper ? 'superuser' : 'BYPASSRLS';
      const on = b.rolsuper ? 'every table' : listRoles(b.tables);
      const chain = (r: Reacher) => (r.path.length > 2 ? ` (through ${r.path.slice(1, -1).join(' → ')})` : '');
      const cut = who.slice(0, 20).map((r) => `REVOKE ${ident(r.path[1]!)} FROM ${ident(r.login)};`);
      if (who.length > 20) cut.push(`-- and ${who.length - 20} more logins: see pg_auth_members`);
      const attr = b.rolsuper ? `ALTER ROLE ${ident(b.rolname)} NOSUPERUSER;` : `ALTER ROLE ${ident(b.rolname)} NOBYPASSRLS;`;
      const keep = b.rolsuper ? [] : (fixes.get(b.oid) ?? []);
      let severity: Finding['severity'];
      let message: string;
      let fix: string;
      if (ours.length > 0) {
        // A login the gateway or a tenant's BI tool uses can leave the wall with one SET ROLE.
        severity = 'critical';
        message = `tenantgate login${ours.length > 1 ? 's' : ''} ${listRoles(ours.map((r) => r.login))} can SET ROLE ${b.rolname}${chain(ours[0]!)}, which is ${what} and can reach ${on}: row level security does not apply to it, so ${ours.length > 1 ? 'they read' : 'it reads'} every tenant's rows`;
        fix = [...cut, `-- or: ${attr}`].join('\n');
      } else if (b.rolcanlogin) {
        severity = b.rolsuper ? 'info' : 'high';
        message = `${b.rolname} can log in, is ${what} and can reach ${on}: row level security does not apply to it, so it reads every tenant's rows`;
        if (who.length) message += `; ${listRoles(who.map((r) => r.login))} can SET ROLE to it too`;
        fix = [attr, ...keep.map((k) => `-- or, to keep ${what}: ${k}`)].join('\n');
      } else if (who.length > 0) {
        severity = b.rolsuper ? 'info' : 'high';
        message = `${b.rolname} cannot log in, but ${listRoles(who.map((r) => r.login))} can SET ROLE to it${chain(who[0]!)}; it is ${what} and can reach ${on}: row level security does not apply to it, so ${who.length > 1 ? 'they read' : 'that login reads'} every tenant's rows`;
        fix = b.rolsuper ? [...cut, `-- or: ${attr}`].join('\n') : [attr, ...cut.map((c) => `-- or cut the membership: ${c}`), ...keep.map((k) => `-- or take the privilege: ${k}`)].join('\n');
      } else if (mine.has(b.oid)) {
        // The owner's own way to bypass row level security (moves need one): nothing another login can use.
        severity = 'info';
        message = `${b.rolname} is ${what} and can reach ${on}; only the login the doctor runs as (the owner that runs apply) can become it`;
        fix = [attr, ...keep.map((k) => `-- or take the privilege: ${k}`)].join('\n');
      } else {
        severity = b.rolsuper ? 'info' : 'medium';
        message = `${b.rolname} is ${what} and can reach ${on}; no login can become it yet, but it is one GRANT ${b.rolname} TO <a login> away from reading every tenant's rows`;
        fix = [attr, ...keep.map((k) => `-- or take the privilege: ${k}`)].join('\n');
      }
      out.push({ id: this.id, severity, object: `role ${b.rolname}`, message, fix });
    }
    return out;
  },
};
