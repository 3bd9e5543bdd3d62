import type pg from 'pg';
import { CATALOG_SCHEMA } from './catalog.ts';
import type { Names } from './names.ts';
import type { TableShape } from './table-ddl.ts';

export interface RoleInfo {
  superuser: boolean;
  bypassrls: boolean;
  login: boolean;
  inherit: boolean;
}

export interface PolicyInfo {
  cmd: string;
  permissive: boolean;
  /** Role names; `public` for PUBLIC. */
  roles: string[];
  qual: string | null;
  check: string | null;
}

export interface TableInfo {
  oid: number;
  schema: string;
  name: string;
  kind: string;
  owner: string;
  rls: boolean;
  force: boolean;
  columns: Map<string, { type: string; typname: string }>;
  policies: Map<string, PolicyInfo>;
  /** role → privileges: `SELECT` (table level) or `SELECT(col)` (column level). */
  privileges: Map<string, Set<string>>;
  /** Sequences owned by serial columns: qualified name → roles with USAGE. */
  sequences: Map<string, Set<string>>;
}

/** What the database holds now, read in a handful of catalog queries (fast with thousands of tenants). */
export interface Snapshot {
  currentUser: string;
  currentUserSuper: boolean;
  roles: Map<string, RoleInfo>;
  /** `member>role` pairs among tenantgate's roles. */
  memberships: Set<string>;
  catalogTables: Set<string>;
  functions: Map<string, { src: string; executors: Set<string> | 'public' }>;
  schemaUsage: Map<string, Set<string>>;
  contextKey?: { ipad: Buffer; opad: Buffer };
  tenantRows: Map<string, { name: string; tier: string; placement: string; status: string; attributes: Record<string, unknown> }>;
  dbRoles: Map<string, { tenant: string; kind: string }>;
  applied: Map<string, { specHash: string; observed: string | null }>;
  /** tenantgate.meta: settings apply recorded (audit retention). */
  meta: Map<string, string>;
  tables: Map<string, TableInfo>;
  /** Each dataset table's shape (keyed `schema.table`), to make copies of it for schema and database tiers. */
  shapes: Map<string, TableShape>;
}

type Q = Pick<pg.Pool, 'query'> | Pick<pg.PoolClient, 'query'>;

export async function introspect(db: Q, n: Names, datasetTables: Array<{ schema: string; table: string }>, schemas: string[]): Promise<Snapshot> {
  const like = `${n.prefix}\\_%`;
  const me = (await db.query(`SELECT current_user AS u, (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) AS s`)).rows[0] as { u: string; s: boolean };
  const roles = new Map<string, RoleInfo>();
  for (const r of (
    await db.query(
      `SELECT rolname, rolsuper, rolbypassrls, rolcanlogin, rolinherit FROM pg_roles WHERE rolname LIKE $1 OR rolname = $2`,
      [like, n.gateway],
    )
  ).rows) {
    roles.set(r.rolname, { superuser: r.rolsuper, bypassrls: r.rolbypassrls, login: r.rolcanlogin, inherit: r.rolinherit });
  }
  const memberships = new Set<string>();
  for (const r of (
    await db.query(
      `SELECT m.rolname AS member, g.rolname AS role FROM pg_auth_members a
         JOIN pg_roles g ON g.oid = a.roleid JOIN pg_roles m ON m.oid = a.member
        WHERE g.rolname LIKE $1 OR m.rolname LIKE $1 OR m.rolname = $2 OR g.rolname = $2`,
      [like, n.gateway],
    )
  ).rows) {
    memberships.add(`${r.member}>${r.role}`);
  }
  const catalogTables = new Set<string>(
    (
      await db.query(
        `SELECT c.relname FROM pg_class c JOIN pg_namespace s ON s.oid = c.relnamespace WHERE s.nspname = $1 AND c.relkind = 'r'`,
        [CATALOG_SCHEMA],
      )
    ).rows.map((r) => r.relname as string),
  );
  const functions = new Map<string, { src: string; executors: Set<string> | 'public' }>();
  for (const r of (
    await db.query(
      `SELECT p.proname, p.prosrc,
              (SELECT array_agg(CASE WHEN x.grantee = 0 THEN 'public' ELSE pg_get_userbyid(x.grantee)::text END)
                 FROM aclexplode(p.proacl) x WHERE x.privilege_type = 'EXECUTE')::text[] AS executors,
              p.proacl IS NULL AS default_acl
         FROM pg_proc p JOIN pg_namespace s ON s.oid = p.pronamespace WHERE s.nspname = $1`,
      [CATALOG_SCHEMA],
    )
  ).rows) {
    const execs: string[] = r.executors ?? [];
    functions.set(r.proname, { src: r.prosrc, executors: r.default_acl || execs.includes('public') ? 'public' : new Set(execs) });
  }
  const schemaUsage = new Map<string, Set<string>>();
  for (const r of (
    await db.query(
      `SELECT s.nspname, array_remove(array_agg(CASE WHEN x.grantee = 0 THEN 'public' ELSE pg_get_userbyid(x.grantee)::text END), NULL)::text[] AS users
         FROM pg_namespace s LEFT JOIN LATERAL aclexplode(s.nspacl) x ON x.privilege_type = 'USAGE'
        WHERE s.nspname = ANY($1) GROUP BY s.nspname`,
      [[...schemas, CATALOG_SCHEMA]],
    )
  ).rows) {
    schemaUsage.set(r.nspname, new Set(r.users ?? []));
  }

  const snapshot: Snapshot = {
    currentUser: me.u,
    currentUserSuper: me.s,
    roles,
    memberships,
    catalogTables,
    functions,
    schemaUsage,
    tenantRows: new Map(),
    dbRoles: new Map(),
    applied: new Map(),
    meta: new Map(),
    tables: new Map(),
    shapes: new Map(),
  };
  if (catalogTables.has('context_key')) {
    const k = (await db.query(`SELECT k_ipad, k_opad FROM tenantgate.context_key WHERE id = 1`)).rows[0];
    if (k) snapshot.contextKey = { ipad: Buffer.from(k.k_ipad), opad: Buffer.from(k.k_opad) };
  }
  if (catalogTables.has('tenants')) {
    for (const r of (await db.query(`SELECT id, name, tier, placement, status, attributes FROM tenantgate.tenants`)).rows) {
      snapshot.tenantRows.set(r.id, { name: r.name, tier: r.tier, placement: r.placement, status: r.status, attributes: r.attributes });
    }
  }
  if (catalogTables.has('db_roles')) {
    for (const r of (await db.query(`SELECT role_name, tenant_id, kind FROM tenantgate.db_roles`)).rows) {
      snapshot.dbRoles.set(r.role_name, { tenant: r.tenant_id, kind: r.kind });
    }
  }
  if (catalogTables.has('meta')) {
    for (const r of (await db.query(`SELECT key, value FROM tenantgate.meta`)).rows) snapshot.meta.set(r.key, r.value);
  }
  if (catalogTables.has('applied')) {
    for (const r of (await db.query(`SELECT object, spec_hash, observed FROM tenantgate.applied`)).rows) {
      snapshot.applied.set(r.object, { specHash: r.spec_hash, observed: r.observed });
    }
  }

  const rels = (
    await db.query(
      `SELECT c.oid, s.nspname, c.relname, c.relkind, c.relrowsecurity, c.relforcerowsecurity, pg_get_userbyid(c.relowner) AS owner
         FROM pg_class c JOIN pg_namespace s ON s.oid = c.relnamespace
         JOIN unnest($1::text[], $2::text[]) AS want(sch, tab) ON want.sch = s.nspname AND want.tab = c.relname`,
      [datasetTables.map((t) => t.schema), datasetTables.map((t) => t.table)],
    )
  ).rows;
  const byOid = new Map<number, TableInfo>();
  for (const r of rels) {
    const info: TableInfo = {
      oid: r.oid,
      schema: r.nspname,
      name: r.relname,
      kind: r.relkind,
      owner: r.owner,
      rls: r.relrowsecurity,
      force: r.relforcerowsecurity,
      columns: new Map(),
      policies: new Map(),
      privileges: new Map(),
      sequences: new Map(),
    };
    byOid.set(r.oid, info);
    snapshot.tables.set(`${r.nspname}.${r.relname}`, info);
  }
  const oids = [...byOid.keys()];
  if (oids.length === 0) return snapshot;
  const priv = (t: TableInfo, role: string, p: string) => {
    let set = t.privileges.get(role);
    if (!set) t.privileges.set(role, (set = new Set()));
    set.add(p);
  };
  for (const r of (
    await db.query(
      `SELECT a.attrelid, a.attname, format_type(a.atttypid, a.atttypmod) AS type, t.typname
         FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid
        WHERE a.attrelid = ANY($1) AND a.attnum > 0 AND NOT a.attisdropped`,
      [oids],
    )
  ).rows) {
    byOid.get(r.attrelid)?.columns.set(r.attname, { type: r.type, typname: r.typname });
  }
  for (const r of (
    await db.query(
      `SELECT a.attrelid, a.attname, CASE WHEN x.grantee = 0 THEN 'public' ELSE pg_get_userbyid(x.grantee) END AS grantee, x.privilege_type
         FROM pg_attribute a, aclexplode(a.attacl) x WHERE a.attrelid = ANY($1) AND a.attacl IS NOT NULL`,
      [oids],
    )
  ).rows) {
    const t = byOid.get(r.attrelid);
    if (t) priv(t, r.grantee, `${r.privilege_type}(${r.attname})`);
  }
  for (const r of (
    await db.query(
      `SELECT c.oid, CASE WHEN x.grantee = 0 THEN 'public' ELSE pg_get_userbyid(x.grantee) END AS grantee, x.privilege_type
         FROM pg_class c, aclexplode(c.relacl) x WHERE c.oid = ANY($1) AND c.relacl IS NOT NULL`,
      [oids],
    )
  ).rows) {
    const t = byOid.get(r.oid);
    if (t && r.grantee !== t.owner) priv(t, r.grantee, r.privilege_type);
  }
  for (const r of (
    await db.query(
      `SELECT polrelid, polname, polcmd, polpermissive,
              ARRAY(SELECT CASE WHEN o = 0 THEN 'public' ELSE pg_get_userbyid(o)::text END FROM unnest(polroles) o)::text[] AS roles,
              pg_get_expr(polqual, polrelid) AS qual, pg_get_expr(polwithcheck, polrelid) AS chk
         FROM pg_policy WHERE polrelid = ANY($1)`,
      [oids],
    )
  ).rows) {
    byOid.get(r.polrelid)?.policies.set(r.polname, { cmd: r.polcmd, permissive: r.polpermissive, roles: r.roles, qual: r.qual, check: r.chk });
  }
  for (const r of (
    await db.query(
      `SELECT d.refobjid AS table_oid, s.nspname || '.' || q.relname AS seq,
              ARRAY(SELECT pg_get_userbyid(x.grantee)::text FROM aclexplode(q.relacl) x WHERE x.privilege_type = 'USAGE' AND x.grantee <> 0)::text[] AS users
         FROM pg_depend d JOIN pg_class q ON q.oid = d.objid AND q.relkind = 'S'
         JOIN pg_namespace s ON s.oid = q.relnamespace
        WHERE d.refobjid = ANY($1) AND d.deptype = 'a' AND d.classid = 'pg_class'::regclass`,
      [oids],
    )
  ).rows) {
    byOid.get(r.table_oid)?.sequences.set(r.seq, new Set(r.users));
  }
  return snapshot;
}
