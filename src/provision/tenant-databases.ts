import type { Config, Tenant } from '../config/types.ts';
import { isEmbeddedUrl, openDatabase, type Database } from '../db/database.ts';
import { ident, qualified } from '../db/sql.ts';
import type { DatabaseSet } from '../tiers/databases.ts';
import { tenantDatabase } from '../tiers/location.ts';
import type { Change } from './changes.ts';
import { introspect } from './introspect.ts';
import type { Names } from './names.ts';
import { tableDdl, type TableShape } from './table-ddl.ts';
import { inheritLedger, targetKey } from '../migrate/ledger.ts';

/**
 * The config as one database-tier tenant's own database sees it: the same datasets and that tenant
 * alone, as its one pooled tenant (inside its database it shares the tables with nobody).
 */
export function configFor(config: Config, tenant: Tenant): Config {
  return { ...config, tenants: new Map([[tenant.id, { ...tenant, tier: 'pooled', placement: 'default' }]]) };
}

/** CONNECT on a tenant's database: the gateway login and the tenant's own group (its direct logins), nobody else. */
export function connectGrants(name: string, n: Names, tenant: string): string[] {
  return [`REVOKE ALL ON DATABASE ${ident(name)} FROM PUBLIC`, `GRANT CONNECT ON DATABASE ${ident(name)} TO ${ident(n.gateway)}, ${ident(n.tenant(tenant))}`];
}

/** Where a database-tier tenant's database is and how to reach it as the owner. */
export interface TenantDatabaseAccess {
  dbs: DatabaseSet;
  /** The main database (its migration ledger is where a new tenant database's starts). */
  main: Database;
  /** A connection to the server the database is on (to create or drop it there), or undefined on the embedded database. */
  server(placement: string): Promise<Database | undefined>;
  close(): Promise<void>;
}

/** The owner's way to each placement's server: the main database for the default one, database.placements' url_env for the others. */
export function serverAccess(config: Config, main: Database, env: Record<string, string | undefined>, dbs: DatabaseSet): TenantDatabaseAccess {
  const servers = new Map<string, Database>();
  return {
    dbs,
    main,
    async server(placement: string) {
      if (placement === 'default') return main.kind === 'postgres' ? main : undefined;
      const url = env[config.effective.database.placements[placement]?.url_env ?? ''];
      if (!url || isEmbeddedUrl(url)) return undefined;
      let s = servers.get(placement);
      if (!s) servers.set(placement, (s = await openDatabase(url, { max: 1 })));
      return s;
    },
    async close() {
      for (const s of servers.values()) await s.close();
      servers.clear();
    },
  };
}

/** Remove a tenant's own database (its rows live elsewhere now, or a move into it was abandoned). */
export async function dropTenantDatabase(access: TenantDatabaseAccess, placement: string, name: string): Promise<void> {
  await access.dbs.forget(placement, name);
  const server = await access.server(placement);
  if (server) await server.query(`DROP DATABASE IF EXISTS ${ident(name)} WITH (FORCE)`);
  else await access.dbs.dropEmbedded(placement, name);
}

async function exists(access: TenantDatabaseAccess, placement: string, name: string): Promise<boolean> {
  const server = await access.server(placement);
  if (!server) return access.dbs.embeddedExists(placement, name);
  return ((await server.query(`SELECT 1 FROM pg_database WHERE datname = $1`, [name])).rowCount ?? 0) > 0;
}

/** The dataset tables the tenant's database lacks, as changes (copies of the main database's tables). */
async function missingTables(config: Config, shapes: Map<string, TableShape>, db: Database | undefined, n: Names): Promise<Change[]> {
  const tables = config.datasets.map((d) => ({ schema: d.schema, table: d.table }));
  const snap = db ? await introspect(db.pool, n, tables, []) : undefined;
  const out: Change[] = [];
  for (const d of config.datasets) {
    if (snap?.tables.has(`${d.schema}.${d.table}`)) continue;
    const shape = shapes.get(`${d.schema}.${d.table}`);
    if (!shape) continue;
    const ddl = tableDdl(shape, d.schema);
    out.push({
      object: `table ${d.schema}.${d.table}`,
      action: 'create',
      reason: `the tenant's copy of ${qualified(d.schema, d.table)}${ddl.notes.length ? ` (${ddl.notes.join('; ')})` : ''}`,
      sql: [...(d.schema === 'public' ? [] : [`CREATE SCHEMA IF NOT EXISTS ${ident(d.schema)}`]), ...ddl.statements],
    });
  }
  return out;
}

type Provision = (config: Config, db: Database) => Promise<{ changes: Change[]; gatewayPassword?: string }>;

/**
 * One database-tier tenant's database, made to match the config: created when missing (CREATE
 * DATABASE runs outside any transaction), the dataset tables copied from the main database's, then
 * everything apply makes in a pooled database (`provision`: roles, catalog, RLS, policies, grants,
 * the signed-context key, the tenant's row) in one transaction there, and CONNECT for the gateway
 * login and the tenant's own group only. With `dryRun`, only says what it would do.
 */
export async function provisionTenantDatabase(
  config: Config,
  tenant: Tenant,
  n: Names,
  shapes: Map<string, TableShape>,
  access: TenantDatabaseAccess,
  provision: Provision,
  dryRun: boolean,
): Promise<{ changes: Change[]; gatewayPassword?: string }> {
  const name = tenantDatabase(n.prefix, tenant.id);
  const at = (c: Change): Change => ({ ...c, object: `database ${name}: ${c.object}` });
  const out: Change[] = [];
  const there = await exists(access, tenant.placement, name);
  if (!there) {
    out.push({ object: `database ${name}`, action: 'create', reason: `tenant ${tenant.id} is in tier database${tenant.placement === 'default' ? '' : ` on ${tenant.placement}`}`, sql: [`CREATE DATABASE ${ident(name)}`] });
    if (dryRun) {
      out.push(...(await missingTables(config, shapes, undefined, n)).map(at));
      out.push({ object: `database ${name}: catalog, roles, RLS, policies, grants`, action: 'create', reason: 'everything apply makes, for this tenant alone', sql: [] });
      return { changes: out };
    }
    const server = await access.server(tenant.placement);
    if (server) await server.query(`CREATE DATABASE ${ident(name)}`);
  }
  const db = await access.dbs.get(tenant.placement, name);
  const tables = await missingTables(config, shapes, db, n);
  if (!dryRun && tables.length) await db.query(tables.flatMap((c) => c.sql).join(';\n'));
  // A new database's copies are made from the pooled tables as they are: it has every migration main has.
  if (!dryRun && !there) await inheritLedger(access.main, db, targetKey('database', tenant.id));
  out.push(...tables.map(at));
  if (dryRun && tables.length) {
    out.push({ object: `database ${name}: RLS, policies, grants of the new tables`, action: 'create', reason: 'made once the tables exist', sql: [] });
    return { changes: out };
  }
  const own = await provision(configFor(config, tenant), db);
  out.push(...own.changes.map(at));
  if (db.kind === 'postgres') {
    const ok = await db.query<{ ok: boolean }>(
      `SELECT NOT has_database_privilege('public', current_database(), 'CONNECT') AND has_database_privilege($1, current_database(), 'CONNECT')
              AND has_database_privilege($2, current_database(), 'CONNECT') AS ok`,
      [n.gateway, n.tenant(tenant.id)],
    );
    if (!ok.rows[0]?.ok) {
      const grants = connectGrants(name, n, tenant.id);
      if (!dryRun) await db.query(grants.join(';\n'));
      out.push({ object: `database ${name} connect`, action: 'grant', reason: `only the gateway login and ${n.tenant(tenant.id)} may connect`, sql: grants });
    }
  }
  return { changes: out, ...(own.gatewayPassword ? { gatewayPassword: own.gatewayPassword } : {}) };
}
