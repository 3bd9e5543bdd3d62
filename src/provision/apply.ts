import { randomBytes } from 'node:crypto';
import type pg from 'pg';
import type { Config, Tenant } from '../config/types.ts';
import type { Database } from '../db/database.ts';
import { ownerDatabases, type DatabaseSet } from '../tiers/databases.ts';
import { provisionTenantDatabase, serverAccess } from './tenant-databases.ts';
import { deriveKey, hmacPads } from '../security/secret.ts';
import { computeChanges, observedText, schemaPlaceChanges, tierOf, type Change } from './changes.ts';
import { introspect, type Snapshot } from './introspect.ts';
import { names, type Names } from './names.ts';
import { validateAgainstDatabase } from './validate.ts';
import { assertNotErased } from './erased.ts';
import { readTableShape } from './table-ddl.ts';
import { tenantSchema, type TenantLocation } from '../tiers/location.ts';
import { ident, literal } from '../db/sql.ts';
import { isEmbeddedUrl, loginUrl } from '../db/url.ts';
import { assertPrefixFree } from './role-prefix.ts';
import { TenantGateError } from '../errors/index.ts';

export interface ProvisionResult {
  changes: Change[];
  applied: boolean;
  /** Shown once when apply created the gateway login (or gave it a new password) on the main database's server. */
  gatewayPassword?: string;
  names: Names;
  /** The gateway login as apply left it (apply on a server only: not plan, not a dry run, not the embedded database). */
  gateway?: GatewayLogin;
  /** Gateway logins apply made on named placements' servers (database-tier tenants there), each password shown once. */
  placementLogins?: PlacementLogin[];
}

/** The gateway login on the main database's server, for apply to print. */
export interface GatewayLogin {
  user: string;
  /** created: made by this apply; rotated: given a new password (--rotate-gateway-password); exists: made before, its password not shown again. */
  state: 'created' | 'rotated' | 'exists';
  /** Shown once: created or rotated. */
  password?: string;
  /** What `serve` connects with, as is: database.url's host, port, database and parameters with this login's user and password. */
  url?: string;
}

/** The gateway login apply made on a named placement's server. */
export interface PlacementLogin {
  placement: string;
  user: string;
  password: string;
  /** The placement's owner URL (url_env) with this login. */
  url?: string;
  /** database.placements.<placement>.gateway_url_env: the variable serve reads it from, when configured. */
  env?: string;
}

/** The names for this config: the gateway login is the user in the gateway URL when one is set. */
export function resolveNames(config: Config, env: Record<string, string | undefined> = process.env): Names {
  const url = env[config.effective.database.gateway_url_env];
  let gatewayRole: string | undefined;
  if (url && /^postgres(ql)?:\/\//.test(url)) gatewayRole = decodeURIComponent(new URL(url).username) || undefined;
  return names(config.effective.database.role_prefix, gatewayRole);
}

/** Tenants whose rows live in a schema of their own: as the database says (it holds the data), else as the config says. */
async function schemaTenants(db: Pick<pg.PoolClient, 'query'>, config: Config): Promise<string[]> {
  const rows = new Map<string, string>();
  const exists = await db.query(`SELECT to_regclass('tenantgate.tenants') IS NOT NULL AS e`);
  if (exists.rows[0]?.e) for (const r of (await db.query(`SELECT id, tier FROM tenantgate.tenants`)).rows) rows.set(r.id, r.tier);
  return [...config.tenants.values()].filter((t) => (rows.get(t.id) ?? t.tier) === 'schema').map((t) => t.id);
}

async function snapshotFor(db: Pick<pg.PoolClient, 'query'>, config: Config, n: Names, alsoSchemas: string[] = []) {
  const inSchemas = [...new Set([...(await schemaTenants(db, config)), ...alsoSchemas])];
  // The audit table too: its policies and grants are managed like a dataset's; and each schema-tier tenant's copies.
  const tables = [
    ...config.datasets.map((d) => ({ schema: d.schema, table: d.table })),
    { schema: 'tenantgate', table: 'audit_log' },
    ...inSchemas.flatMap((id) => config.datasets.map((d) => ({ schema: tenantSchema(id), table: d.table }))),
  ];
  const schemas = [...new Set(config.datasets.map((d) => d.schema)), ...inSchemas.map(tenantSchema)];
  const snap = await introspect(db, n, tables, schemas);
  for (const d of config.datasets) {
    const shape = await readTableShape(db, d.schema, d.table);
    if (shape) snap.shapes.set(`${d.schema}.${d.table}`, shape);
  }
  return snap;
}

export interface ProvisionOptions {
  dryRun?: boolean;
  /** Give the existing gateway login a new random password (shown once); the old one stops working for new connections. */
  rotateGatewayPassword?: boolean;
  env?: Record<string, string | undefined>;
  onProgress?: (done: number, total: number) => void;
  /** The owner's view of database-tier tenants' databases (default: made from the config, closed after). */
  databases?: DatabaseSet;
}

/** What apply would change (drift included). Validates first: a bad config never reaches DDL. */
export async function planProvision(
  config: Config,
  db: Database,
  secret: Buffer,
  env?: Record<string, string | undefined>,
  options: Pick<ProvisionOptions, 'databases' | 'rotateGatewayPassword'> & { tenantDatabase?: boolean } = {},
): Promise<ProvisionResult> {
  const n = resolveNames(config, env);
  const client = await db.pool.connect();
  let snap: Snapshot;
  let changes: Change[];
  try {
    snap = await snapshotFor(client, config, n);
    validateAgainstDatabase(config, snap, n);
    if (!options.tenantDatabase) await assertNotErased(client, config, snap.tenantRows);
    if (!options.tenantDatabase) await assertPrefixFree(client, config, n, snap.tenantRows.keys());
    changes = computeChanges(config, snap, n, hmacPads(deriveKey(secret, 'context')));
    if (options.rotateGatewayPassword) changes.push(...rotation(db, snap, n, changes, true));
  } finally {
    client.release();
  }
  changes.push(...(await eachTenantDatabase(config, db, snap, n, env ?? process.env, options.databases, true, (cfg, tdb) => planProvision(cfg, tdb, secret, env, { tenantDatabase: true }))).changes);
  return { changes, applied: false, names: n };
}

/**
 * --rotate-gateway-password: a new random password for the gateway login that exists already (one
 * this apply creates gets a new one anyway). In a dry run the SQL shows where the password goes,
 * and nothing is generated. The embedded database has no login to connect as: refused.
 */
function rotation(db: Database, snap: Snapshot, n: Names, changes: Change[], dryRun: boolean): Change[] {
  if (db.kind === 'pglite') {
    throw new TenantGateError('USAGE', '--rotate-gateway-password: the embedded database has no gateway login to connect as (serve uses the database directly)', {
      hint: 'Rotate the gateway login on a PostgreSQL server (database.url postgres://…).',
    });
  }
  if (!snap.roles.has(n.gateway) || changes.some((c) => c.reveal)) return [];
  const password = dryRun ? undefined : randomBytes(18).toString('base64url');
  return [
    {
      object: `role ${n.gateway}`,
      action: 'update',
      reason: `a new password (--rotate-gateway-password): the old one stops working for new connections; sessions already open stay`,
      sql: [`ALTER ROLE ${ident(n.gateway)} PASSWORD ${password ? literal(password) : "'<new random password, made when applied>'"}`],
      ...(password ? { reveal: { gatewayPassword: password } } : {}),
    },
  ];
}

/**
 * The databases of database-tier tenants (as the main database says where each tenant is), each
 * provisioned (or planned) by provisionTenantDatabase.
 */
async function eachTenantDatabase(
  config: Config,
  main: Database,
  snap: Snapshot,
  n: Names,
  env: Record<string, string | undefined>,
  given: DatabaseSet | undefined,
  dryRun: boolean,
  provision: (config: Config, db: Database) => Promise<{ changes: Change[]; gatewayPassword?: string }>,
  /** Tenants placed here whatever the main database says (a move's new place). */
  places: Record<string, TenantLocation> = {},
): Promise<{ changes: Change[]; placementLogins: PlacementLogin[] }> {
  const tenants = [...config.tenants.values()].filter((t) => (places[t.id]?.tier ?? tierOf(t, snap)) === 'database');
  if (tenants.length === 0) return { changes: [], placementLogins: [] };
  const dbs = given ?? ownerDatabases(config, main, env);
  const access = serverAccess(config, main, env, dbs);
  const out: Change[] = [];
  const placementLogins: PlacementLogin[] = [];
  try {
    for (const t of tenants) {
      const row = snap.tenantRows.get(t.id);
      const located = { ...t, tier: 'database' as const, placement: places[t.id]?.placement ?? row?.placement ?? t.placement };
      const r = await provisionTenantDatabase(config, located, n, snap.shapes, access, provision, dryRun);
      out.push(...r.changes);
      // A password made in a tenant database is the gateway login of that database's server: on the
      // default server the main apply made it already; on a named placement's server (not embedded,
      // where nobody logs in) it is new, and serve needs it there.
      if (r.gatewayPassword && located.placement !== 'default' && (await access.server(located.placement))) {
        const placement = config.effective.database.placements[located.placement];
        const ownerUrl = env[placement?.url_env ?? ''];
        const url = ownerUrl ? loginUrl(ownerUrl, n.gateway, r.gatewayPassword) : undefined;
        placementLogins.push({ placement: located.placement, user: n.gateway, password: r.gatewayPassword, ...(url ? { url } : {}), ...(placement?.gateway_url_env ? { env: placement.gateway_url_env } : {}) });
      }
    }
  } finally {
    await access.close();
    if (!given) await dbs.close();
  }
  return { changes: out, placementLogins };
}

const STATEMENTS_PER_BATCH = 400;

/**
 * Make the database match the config, in one transaction (DDL and roles included), under an
 * advisory lock so two applies never interleave. A second apply finds nothing to do.
 */
export async function applyProvision(config: Config, db: Database, secret: Buffer, options: ProvisionOptions = {}): Promise<ProvisionResult> {
  if (options.dryRun) return planProvision(config, db, secret, options.env, options);
  const main = await applyMain(config, db, secret, options, { main: true });
  // Then each database-tier tenant's own database, each in its own transaction.
  const own = await eachTenantDatabase(config, db, main.snap, main.names, options.env ?? process.env, options.databases, false, (cfg, tdb) =>
    applyMain(cfg, tdb, secret, { ...(options.env ? { env: options.env } : {}) }),
  );
  const gateway = db.kind === 'postgres' ? await gatewayLogin(config, db, main) : undefined;
  return {
    changes: [...main.changes, ...own.changes],
    applied: true,
    names: main.names,
    ...(main.gatewayPassword ? { gatewayPassword: main.gatewayPassword } : {}),
    ...(gateway ? { gateway } : {}),
    ...(own.placementLogins.length ? { placementLogins: own.placementLogins } : {}),
  };
}

/**
 * The gateway login after the main apply, with the URL that works as printed: database.url's host,
 * port, database and query parameters with the login's user and password (the database's own name
 * when the URL names none).
 */
async function gatewayLogin(config: Config, db: Database, main: ProvisionResult & { snap: Snapshot }): Promise<GatewayLogin> {
  const user = main.names.gateway;
  const password = main.gatewayPassword;
  if (!password) return { user, state: 'exists' };
  const state = main.snap.roles.has(user) ? 'rotated' : 'created';
  const ownerUrl = config.effective.database.url;
  let url: string | undefined;
  if (!isEmbeddedUrl(ownerUrl)) {
    const named = /^postgres(?:ql)?:\/\/[^/?#]*\/[^?#]+/i.test(ownerUrl);
    const database = named ? undefined : (await db.query<{ d: string }>(`SELECT current_database()::text AS d`)).rows[0]?.d;
    url = loginUrl(ownerUrl, user, password, database);
  }
  return { user, state, password, ...(url ? { url } : {}) };
}

/**
 * A tenant's new place, made before a move copies its rows there: its schema with copies of the
 * dataset tables (RLS, policies, grants as apply makes them), or its own database made whole; the
 * pooled tables exist already. Nothing else in the config is applied.
 */
export async function provisionPlace(config: Config, db: Database, secret: Buffer, tenant: Tenant, to: TenantLocation, options: ProvisionOptions = {}): Promise<Change[]> {
  if (to.tier === 'pooled') return [];
  if (to.tier === 'schema') {
    const only = (snap: Snapshot, n: Names) => schemaPlaceChanges(config, snap, n, [tenant.id]);
    return (await applyMain(config, db, secret, options, { alsoSchemas: [tenant.id], only })).changes;
  }
  const n = resolveNames(config, options.env);
  const client = await db.pool.connect();
  let snap: Snapshot;
  try {
    snap = await snapshotFor(client, config, n);
  } finally {
    client.release();
  }
  const located = { ...tenant, tier: 'database' as const, placement: to.placement };
  const one = await eachTenantDatabase({ ...config, tenants: new Map([[tenant.id, located]]) }, db, snap, n, options.env ?? process.env, options.databases, !!options.dryRun, (cfg, tdb) =>
    options.dryRun ? planProvision(cfg, tdb, secret, options.env, { tenantDatabase: true }) : applyMain(cfg, tdb, secret, { ...(options.env ? { env: options.env } : {}) }),
    { [tenant.id]: located },
  );
  return one.changes;
}

async function applyMain(
  config: Config,
  db: Database,
  secret: Buffer,
  options: ProvisionOptions,
  /** main: the project's main database (not a tenant's own): check the role prefix, rotate the gateway password. */
  scope: { alsoSchemas?: string[]; only?: (snap: Snapshot, n: Names) => Change[]; main?: boolean } = {},
): Promise<ProvisionResult & { snap: Snapshot }> {
  const n = resolveNames(config, options.env);
  const client = await db.pool.connect();
  try {
    await client.query('BEGIN');
    await client.query(`SELECT pg_advisory_xact_lock(hashtext('tenantgate.apply'))`);
    const snap = await snapshotFor(client, config, n, scope.alsoSchemas);
    validateAgainstDatabase(config, snap, n);
    if (scope.main) await assertNotErased(client, config, snap.tenantRows);
    if (scope.main) await assertPrefixFree(client, config, n, snap.tenantRows.keys());
    const changes = scope.only ? scope.only(snap, n) : computeChanges(config, snap, n, hmacPads(deriveKey(secret, 'context')));
    if (scope.main && options.rotateGatewayPassword) changes.push(...rotation(db, snap, n, changes, !!options.dryRun));
    if (options.dryRun) {
      await client.query('ROLLBACK');
      return { changes, applied: false, names: n, snap };
    }
    const statements = changes.flatMap((c) => c.sql);
    for (let i = 0; i < statements.length; i += STATEMENTS_PER_BATCH) {
      await client.query(statements.slice(i, i + STATEMENTS_PER_BATCH).join(';\n'));
      options.onProgress?.(Math.min(i + STATEMENTS_PER_BATCH, statements.length), statements.length);
    }
    const records = changes.flatMap((c) => (c.record ? [c.record] : []));
    if (records.length > 0) {
      // Remember how PostgreSQL itself printed each policy, so a later manual edit shows as drift.
      const observed = await client.query(
        `SELECT s.nspname || '.' || c.relname AS tbl, p.polname, pg_get_expr(p.polqual, p.polrelid) AS qual, pg_get_expr(p.polwithcheck, p.polrelid) AS chk
           FROM pg_policy p JOIN pg_class c ON c.oid = p.polrelid JOIN pg_namespace s ON s.oid = c.relnamespace
          WHERE (s.nspname || '.' || c.relname) = ANY($1)`,
        [[...new Set(records.map((r) => r.table))]],
      );
      const text = new Map(observed.rows.map((r) => [`${r.tbl} ${r.polname}`, observedText(r.qual, r.chk)]));
      await client.query(
        `INSERT INTO tenantgate.applied (object, spec_hash, observed)
         SELECT * FROM unnest($1::text[], $2::text[], $3::text[])
         ON CONFLICT (object) DO UPDATE SET spec_hash = EXCLUDED.spec_hash, observed = EXCLUDED.observed, applied_at = now()`,
        [records.map((r) => r.object), records.map((r) => r.specHash), records.map((r) => text.get(`${r.table} ${r.policy}`) ?? null)],
      );
    }
    await client.query('COMMIT');
    const reveal = changes.find((c) => c.reveal)?.reveal;
    return { changes, applied: true, names: n, snap, ...(reveal ? { gatewayPassword: reveal.gatewayPassword } : {}) };
  } catch (err) {
    await client.query('ROLLBACK').catch(() => {});
    throw err;
  } finally {
    client.release();
  }
}
