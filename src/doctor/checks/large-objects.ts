import { ident } from '../../db/sql.ts';
import { type Check, type Finding, prefixRolePattern } from '../finding.ts';

/** Findings for single large objects stop here; one more finding counts the rest (a database may hold millions). */
export const LARGE_OBJECT_FINDINGS_MAX = 50;

/** What PostgreSQL's parse_bool takes as true (unique prefixes of true/yes, on, 1), for stored settings. */
const TRUE_SETTING = /^\s*(t|tr|tru|true|y|ye|yes|on|1)\s*$/i;

/**
 * Large objects live outside every table, so row level security never applies to them: whoever holds
 * SELECT or UPDATE on one (or owns it) reads or overwrites it with lo_get/lo_put, whatever tenant it
 * belongs to. Flagged when that is PUBLIC or a tenantgate role (directly or through a role it inherits),
 * and when lo_compat_privileges turns the privilege checks off altogether for tenantgate sessions.
 * PostgreSQL 15 has no has_largeobject_privilege, so the ACL is read.
 */
export const largeObjects: Check = {
  id: 'TG019',
  title: 'large objects readable or writable by PUBLIC or tenantgate roles, and lo_compat_privileges',
  async run({ db, names }) {
    const like = prefixRolePattern(names);
    const out: Finding[] = [];

    // Only the few roles that own or hold a grant on some large object are tested for membership,
    // so the cost grows with distinct holders, not with the number of large objects.
    const los = await db.query<{ oid: string; owner: string | null; grantees: string[]; privs: string[]; total: number; me: string }>(
      `WITH tg AS (
         SELECT oid, rolsuper FROM pg_roles WHERE rolname LIKE $1 OR rolname = $2
       ), holders AS (
         SELECT lomowner AS oid FROM pg_largeobject_metadata
         UNION
         SELECT a.grantee FROM pg_largeobject_metadata m CROSS JOIN LATERAL aclexplode(m.lomacl) a
          WHERE a.privilege_type IN ('SELECT', 'UPDATE')
       ), reach AS (
         -- PUBLIC, a tenantgate role, or a role one inherits (superusers reach everything: TG001/TG002 report them)
         SELECT h.oid FROM holders h
          WHERE CASE WHEN h.oid = 0 THEN true
                     ELSE EXISTS (SELECT 1 FROM tg WHERE tg.oid = h.oid OR (NOT tg.rolsuper AND pg_has_role(tg.oid, h.oid, 'USAGE')))
                END
       ), hits AS (
         -- the owner's own ACL entry is left to ALTER … OWNER TO (which moves it to the new owner)
         SELECT m.oid,
                (SELECT r.rolname::text FROM pg_roles r WHERE r.oid = m.lomowner AND r.oid IN (SELECT oid FROM reach)) AS owner,
                ARRAY(SELECT DISTINCT coalesce(r.rolname::text, 'PUBLIC')
                        FROM aclexplode(m.lomacl) a LEFT JOIN pg_roles r ON r.oid = a.grantee
                       WHERE a.privilege_type IN ('SELECT', 'UPDATE') AND a.grantee IN (SELECT oid FROM reach) AND a.grantee <> m.lomowner
                       ORDER BY 1) AS grantees,
                ARRAY(SELECT DISTINCT a.privilege_type
                        FROM aclexplode(m.lomacl) a
                       WHERE a.privilege_type IN ('SELECT', 'UPDATE') AND a.grantee IN (SELECT oid FROM reach) AND a.grantee <> m.lomowner
                       ORDER BY 1) AS privs
           FROM pg_largeobject_metadata m
       )
       SELECT oid::text, owner, grantees, privs, (count(*) OVER ())::int AS total, current_user::text AS me
         FROM hits
        WHERE owner IS NOT NULL OR cardinality(grantees) > 0
        ORDER BY hits.oid
        LIMIT ${LARGE_OBJECT_FINDINGS_MAX}`,
      [like, names.gateway],
    );
    for (const row of los.rows) {
      const how = [
        ...(row.grantees.length > 0 ? [`${row.grantees.join(', ')} ${row.grantees.length > 1 ? 'hold' : 'holds'} ${row.privs.join(' and ')}`] : []),
        ...(row.owner ? [`it is owned by ${row.owner}`] : []),
      ].join(', and ');
      const revoke = row.grantees.map((g) => (g === 'PUBLIC' ? g : ident(g))).join(', ');
      out.push({
        id: this.id,
        severity: 'high',
        object: `large object ${row.oid}`,
        message: `large object ${row.oid} is reachable by tenant-facing roles (${how}): row level security does not apply to large objects, so they can read or overwrite it with lo_get/lo_put whatever tenant it belongs to`,
        fix: [...(revoke ? [`REVOKE ALL ON LARGE OBJECT ${row.oid} FROM ${revoke};`] : []), ...(row.owner ? [`ALTER LARGE OBJECT ${row.oid} OWNER TO ${ident(row.me)};`] : [])].join(' '),
      });
    }
    const total = los.rows[0]?.total ?? 0;
    if (total > los.rows.length) {
      out.push({
        id: this.id,
        severity: 'high',
        object: 'large objects',
        message: `${total - los.rows.length} more large objects (${total} in all; the first ${los.rows.length} by oid are listed) are reachable by PUBLIC or tenantgate roles the same way`,
        fix: `the same REVOKE ALL ON LARGE OBJECT … / ALTER LARGE OBJECT … OWNER TO … for each; list them with: SELECT oid, lomowner::regrole, lomacl FROM pg_largeobject_metadata ORDER BY oid;`,
      });
    }

    // lo_compat_privileges = on skips every large object privilege check. What a tenantgate session gets:
    // the server's value, then the database's, then its login role's (ALTER ROLE … SET); the role's only
    // counts for roles that log in. The value seen here is reported only when it does not come from those
    // catalog rows (read below), i.e. when it is server-wide or, on PGlite, the one shared session's.
    const current = await db.query<{ setting: string; source: string }>(`SELECT setting, source FROM pg_settings WHERE name = 'lo_compat_privileges'`);
    const cur = current.rows[0];
    if (cur && cur.setting === 'on' && !['database', 'user', 'database user'].includes(cur.source)) {
      out.push({
        id: this.id,
        severity: 'high',
        object: 'setting lo_compat_privileges',
        message: `lo_compat_privileges is on (source: ${cur.source}): large object privileges are not checked, so every role, tenant-facing ones included, can read and write every large object`,
        fix: cur.source === 'session' || cur.source === 'client'
          ? `RESET lo_compat_privileges; -- and remove what sets it for this session (connection options, startup SQL)`
          : `ALTER SYSTEM RESET lo_compat_privileges; SELECT pg_reload_conf(); -- and remove it from postgresql.conf or the server's command line`,
      });
    }
    const stored = await db.query<{ db: string | null; role: string | null; cfg: string }>(
      `SELECT d.datname::text AS db, r.rolname::text AS role, c.cfg
         FROM pg_db_role_setting s
         LEFT JOIN pg_database d ON d.oid = s.setdatabase
         LEFT JOIN pg_roles r ON r.oid = s.setrole
         CROSS JOIN LATERAL unnest(s.setconfig) AS c(cfg)
        WHERE (s.setdatabase = 0 OR d.datname = current_database())
          AND (s.setrole = 0 OR (r.rolcanlogin AND (r.rolname LIKE $1 OR r.rolname = $2)))
          AND c.cfg LIKE 'lo\\_compat\\_privileges=%'
        ORDER BY 1 NULLS FIRST, 2 NULLS FIRST`,
      [like, names.gateway],
    );
    for (const row of stored.rows) {
      if (!TRUE_SETTING.test(row.cfg.slice(row.cfg.indexOf('=') + 1))) continue;
      const where = row.role && row.db ? `role ${row.role} in database ${row.db}` : row.role ? `role ${row.role}` : row.db ? `database ${row.db}` : 'every role';
      const target = row.role && row.db ? `ROLE ${ident(row.role)} IN DATABASE ${ident(row.db)}` : row.role ? `ROLE ${ident(row.role)}` : row.db ? `DATABASE ${ident(row.db)}` : 'ROLE ALL';
      out.push({
        id: this.id,
        severity: 'high',
        object: `setting lo_compat_privileges (${where})`,
        message: `lo_compat_privileges is set on for ${where}: sessions there skip large object privilege checks, so ${row.role ?? 'every role, tenant-facing ones included,'} can read and write every large object`,
        fix: `ALTER ${target} RESET lo_compat_privileges;`,
      });
    }
    return out;
  },
};
