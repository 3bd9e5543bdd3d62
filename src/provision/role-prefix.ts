import type pg from 'pg';
import type { Config } from '../config/types.ts';
import { TenantGateError } from '../errors/index.ts';
import { tenantDatabase } from '../tiers/location.ts';
import { gatewayRoles, type Names } from './names.ts';

/** A pool, a client or a Database: anything that runs a query with parameters. */
type Q = { query<R extends pg.QueryResultRow = Record<string, unknown>>(text: string, params?: unknown[]): Promise<pg.QueryResult<R>> };

/** Another database on this server that holds objects depending on this project's roles. */
export interface PrefixUse {
  database: string;
  /** Which of the prefix's roles it uses (owner, grants, policies). */
  roles: string[];
}

/**
 * The roles every project under `n.prefix` makes, whatever its tenants: the access roles, the
 * direct-login groups and the default gateway login. Only these exact names are looked at, never
 * `<prefix>_%`: a project whose prefix extends this one (`tenantgate_b` next to `tenantgate`) makes
 * roles that match that pattern without being ours.
 */
export function fixedRoles(n: Names): string[] {
  return [...gatewayRoles(n).map((g) => g.role), n.direct, n.directDefault, `${n.prefix}_gateway`];
}

/**
 * Databases on this server, other than this one and this project's own database-tier tenants'
 * (`<prefix>_<id>` for a tenant of the config or of this database's catalog), whose objects are
 * owned by, granted to or governed by policies naming the prefix's roles: `role_prefix` is in use by
 * another project there. Roles are global to a server and a database is per project, so two
 * projects with one prefix would share the gateway login, the access roles and the tenant groups
 * (a direct login of tenant `acme` in one would be tenant `acme` in the other).
 *
 * Why pg_shdepend and not a marker (a comment on the roles naming the database that made them):
 * PostgreSQL itself keeps pg_shdepend, for every database, in step with every grant, policy and
 * owner; it is readable by any login without connecting to the other database; it says exactly
 * what matters (the roles reach objects elsewhere), and it empties when that database is dropped.
 * A marker would name a database by name or oid, which goes stale when a database is renamed or
 * restored from a dump (and would then refuse a project's own apply), is missing on roles made
 * before it existed, and can be edited by anyone who can COMMENT on the roles. Every project's
 * apply grants these roles something in its database (dataset columns, the catalog's functions),
 * so an applied project always shows.
 */
export async function prefixUsedElsewhere(db: Q, n: Names, ownTenants: Iterable<string>): Promise<PrefixUse[]> {
  const own = [...new Set(ownTenants)].map((id) => tenantDatabase(n.prefix, id));
  const r = await db.query<{ database: string; roles: string[] }>(
    `SELECT d.datname::text AS database, array_agg(DISTINCT r.rolname::text ORDER BY r.rolname::text) AS roles
       FROM pg_shdepend s
       JOIN pg_database d ON d.oid = s.dbid
       JOIN pg_roles r ON r.oid = s.refobjid
      WHERE s.refclassid = 'pg_authid'::regclass
        AND r.rolname = ANY ($1::text[])
        AND d.datname <> current_database()
        AND d.datname <> ALL ($2::text[])
      GROUP BY d.datname
      ORDER BY d.datname`,
    [fixedRoles(n), own],
  );
  // Another project's main database first: its tenants' databases (named `<prefix>_<id>`) follow it.
  const tenantLike = (d: string) => (d.startsWith(`${n.prefix}_`) ? 1 : 0);
  return r.rows.sort((a, b) => tenantLike(a.database) - tenantLike(b.database));
}

/** A prefix for this database that no role on the server uses yet: from the database's name. */
export async function suggestPrefix(db: Q): Promise<string> {
  const name = (await db.query<{ d: string }>(`SELECT current_database()::text AS d`)).rows[0]?.d ?? '';
  let base = name.toLowerCase().replace(/[^a-z0-9_]+/g, '_').replace(/^_+|_+$/g, '');
  if (!/^[a-z]/.test(base)) base = `tg_${base}`;
  base = base.slice(0, 17).replace(/_+$/, '') || 'tg';
  for (let i = 0; i < 100; i++) {
    const candidate = i === 0 ? base : `${base.slice(0, 17)}_${i}`.slice(0, 20);
    const taken = await db.query(`SELECT 1 FROM pg_roles WHERE rolname = ANY ($1::text[]) LIMIT 1`, [[`${candidate}_read`, `${candidate}_gateway`, `${candidate}_direct`]]);
    if ((taken.rowCount ?? 0) === 0) return candidate;
  }
  return base;
}

/** "db_a (tg_read, tg_write, …); db_b (…) and 2 more": which databases use which of the roles, kept short. */
export function describeUses(uses: PrefixUse[]): string {
  const shown = uses.slice(0, 3).map((u) => `${u.database} (${u.roles.slice(0, 3).join(', ')}${u.roles.length > 3 ? ', …' : ''})`);
  return `${shown.join('; ')}${uses.length > 3 ? ` and ${uses.length - 3} more` : ''}`;
}

/**
 * Refuse (ROLE_PREFIX_IN_USE) when another project's database on this server uses the prefix's
 * roles; run before any DDL, on the main database only (a database-tier tenant's database is the
 * same project's).
 */
export async function assertPrefixFree(db: Q, config: Config, n: Names, catalogTenants: Iterable<string>): Promise<void> {
  const uses = await prefixUsedElsewhere(db, n, [...config.tenants.keys(), ...catalogTenants]);
  if (uses.length === 0) return;
  const suggestion = await suggestPrefix(db);
  const one = uses.length === 1;
  const where = one ? `database ${uses[0]!.database} on this server holds objects owned by or granted to its roles (${uses[0]!.roles.slice(0, 3).join(', ')}${uses[0]!.roles.length > 3 ? ', …' : ''})` : `databases ${describeUses(uses)} on this server hold objects owned by or granted to its roles`;
  throw new TenantGateError(
    'ROLE_PREFIX_IN_USE',
    `role_prefix "${n.prefix}" is in use by another project: ${where}. ` +
      `Roles are shared by every database on a server, so this database would share its gateway login, access roles and tenant groups with ${one ? 'that one' : 'those'}.`,
    {
      hint: `Give this database its own prefix: set database.role_prefix: ${suggestion} in tenantgate.yaml (unused on this server), then run apply again.`,
      location: config.locate('database.role_prefix'),
      details: { databases: uses.map((u) => u.database), suggested_prefix: suggestion },
    },
  );
}
