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
import { readTableShape } from './table-ddl.ts';
import { tenantSchema, type TenantLocation } from '../tiers/location.ts';

export interface ProvisionResult {
  changes: Change[];
  applied: boolean;
  /** Shown once when apply created the gateway login. */
  gatewayPassword?: string;
  names: Names;
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
  env?: Record<string, string | undefined>;
  onProgress?: (done: number, total: number) => void;
  /** The owner's view of database-tier tenants' databases (default: made from the config, closed after). */
  databases?: DatabaseSet;
}

/** What apply would change (drift included). Validates first: a bad config never reaches DDL. */
export async function planProvision(config: Config, db: Database, secret: Buffer, env?: Record<string, string | undefined>, options: Pick<ProvisionOptions, 'databases'> = {}): Promise<ProvisionResult> {
  const n = resolveNames(config, env);
  const client = await db.pool.connect();
  let snap: Snapshot;
  let changes: Change[];
  try {
    snap = await snapshotFor(client, config, n);
    validateAgainstDatabase(config, snap, n);
    changes = computeChanges(config, snap, n, hmacPads(deriveKey(secret, 'context')));
  } finally {
    client.release();
  }
  changes.push(...(await eachTenantDatabase(config, db, snap, n, env ?? process.env, options.databases, true, (cfg, tdb) => planProvision(cfg, tdb, secret, env))).changes);
  return { changes, applied: false, names: n };
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
): Promise<{ changes: Change[]; gatewayPassword?: string }> {
  const tenants = [...config.tenants.values()].filter((t) => (places[t.id]?.tier ?? tierOf(t, snap)) === 'database');
  if (tenants.length === 0) return { changes: [] };
  const dbs = given ?? ownerDatabases(config, main, env);
  const access = serverAccess(config, main, env, dbs);
  const out: Change[] = [];
  let gatewayPassword: string | undefined;
  try {
    for (const t of tenants) {
      const row = snap.tenantRows.get(t.id);
      const located = { ...t, tier: 'database' as const, placement: places[t.id]?.placement ?? row?.placement ?? t.placement };
      const r = await provisionTenantDatabase(config, located, n, snap.shapes, access, provision, dryRun);
      out.push(...r.changes);
      gatewayPassword ??= r.gatewayPassword;
    }
  } finally {
    await access.close();
    if (!given) await dbs.close();
  }
  return { changes: out, ...(gatewayPassword ? { gatewayPassword } : {}) };
}

const STATEMENTS_PER_BATCH = 400;

/**
 * Make the database match the config, in one transaction (DDL and roles included), under an
 * advisory lock so two applies never interleave. A second apply finds nothing to do.
 */
export async function applyProvision(config: Config, db: Database, secret: Buffer, options: ProvisionOptions = {}): Promise<ProvisionResult> {
  if (options.dryRun) return planProvision(config, db, secret, options.env, options);
  const main = await applyMain(config, db, secret, options);
  // Then each database-tier tenant's own database, each in its own transaction.
  const own = await eachTenantDatabase(config, db, main.snap, main.names, options.env ?? process.env, options.databases, false, (cfg, tdb) =>
    applyMain(cfg, tdb, secret, { ...(options.env ? { env: options.env } : {}) }),
  );
  const gatewayPassword = main.gatewayPassword ?? own.gatewayPassword;
  return { changes: [...main.changes, ...own.changes], applied: true, names: main.names, ...(gatewayPassword ? { gatewayPassword } : {}) };
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
    options.dryRun ? planProvision(cfg, tdb, secret, options.env) : applyMain(cfg, tdb, secret, { ...(options.env ? { env: options.env } : {}) }),
    { [tenant.id]: located },
  );
  return one.changes;
}

async function applyMain(
  config: Config,
  db: Database,
  secret: Buffer,
  options: ProvisionOptions,
  scope: { alsoSchemas?: string[]; only?: (snap: Snapshot, n: Names) => Change[] } = {},
): Promise<ProvisionResult & { snap: Snapshot }> {
  const n = resolveNames(config, options.env);
  const client = await db.pool.connect();
  try {
    await client.query('BEGIN');
    await client.query(`SELECT pg_advisory_xact_lock(hashtext('tenantgate.apply'))`);
    const snap = await snapshotFor(client, config, n, scope.alsoSchemas);
    validateAgainstDatabase(config, snap, n);
    const changes = scope.only ? scope.only(snap, n) : computeChanges(config, snap, n, hmacPads(deriveKey(secret, 'context')));
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
