import type pg from 'pg';
import { loadConfig } from './config/load.ts';
import { ACCESS_LEVELS } from './config/schema.ts';
import type { AccessLevel, Config, Tenant } from './config/types.ts';
import { isEmbeddedUrl, openDatabase, type Database } from './db/database.ts';
import { TenantGateError } from './errors/index.ts';
import { runTenantTransaction, type TenantClient, type TenantContext } from './execute/tenant-transaction.ts';
import { runTenantStatement } from './execute/tenant-statement.ts';
import { resolveNames } from './provision/apply.ts';
import { ALL_TENANTS_CONTEXT, type Names } from './provision/names.ts';
import { contextMac, deriveKey, loadServerSecret } from './security/secret.ts';
import { gatewayDatabases, type DatabaseSet, type PgliteFactory } from './tiers/databases.ts';
import { tenantDatabase, tenantSchema } from './tiers/location.ts';
import { Routes } from './tiers/routes.ts';
import { ALL_TENANTS, isValidTenantId } from './tenancy/tenant-id.ts';

export interface TenantGateOptions {
  /** A loaded config, or the path of tenantgate.yaml. */
  config: Config | string;
  /** Gateway connection: defaults to the URL in `database.gateway_url_env`, or the embedded database. */
  gatewayUrl?: string;
  /** An already open database to use (e.g. the embedded one shared with apply). */
  database?: Database;
  /** Server secret; defaults to the variable named by `security.secret_env`. */
  secret?: Buffer;
  /** Pool size on a server (default server.pool_size, 10). */
  poolSize?: number;
  env?: Record<string, string | undefined>;
  /** How often tenants' locations are re-read (a move's cut-over); default 1 s. */
  routesIntervalMs?: number;
  /** Embedded database tier: how new tenant database instances are made (tests). */
  pglite?: PgliteFactory;
}

export interface TenantGate {
  readonly config: Config;
  readonly names: Names;
  /** The main database (pooled and schema tiers; the catalog, keys and audit trail). */
  readonly database: Database;
  /** Where each tenant's rows are (re-read every routesIntervalMs). */
  readonly routes: Routes;
  /** Database-tier tenants' databases, opened on demand. */
  readonly databases: DatabaseSet;
  /** The database a tenant's rows are in. */
  databaseOf(tenant: string): Promise<Database>;
  /**
   * Run `fn` in a transaction scoped to one tenant at one access level. Reads see only that
   * tenant's rows; writes must stay in it; read access is READ ONLY. Outside `withTenant`
   * the gateway login can read no tenant table at all. A suspended tenant is refused
   * (TENANT_SUSPENDED) unless the scope says `allowSuspended: true` (lifecycle jobs: export, erase);
   * the status is this process's last look at the catalog, at most `routesIntervalMs` old.
   */
  withTenant<T>(scope: TenantScope, fn: (db: TenantClient) => Promise<T>): Promise<T>;
  /**
   * Run one statement as one tenant: on a server, context and statement under one Sync (one
   * round trip, an implicit transaction); on the embedded database, a withTenant transaction.
   * Only for statements tenantgate itself planned (the gateway's checked plans): arbitrary SQL
   * belongs in withTenant, which scrubs the connection afterwards. With `after`, a second statement
   * built from the first one's result runs in the same transaction (read-write: the durable audit
   * record), two round trips instead of one.
   */
  statement(
    scope: TenantScope,
    query: { text: string; values: unknown[]; rowMode?: 'array' },
    options?: { after?: (result: pg.QueryResult) => { text: string; values: unknown[] } },
  ): Promise<pg.QueryResult>;
  close(): Promise<void>;
}

/** Who a unit of work runs as: one tenant (or `all`, platform only) at one access level. */
export interface TenantScope {
  tenant: string;
  access: AccessLevel;
  /**
   * Run even though the tenant is suspended: for lifecycle work that must reach a suspended tenant's
   * rows (export, erase), never for the tenant's own requests. The HTTP gateway never sets it.
   */
  allowSuspended?: boolean;
}

export async function createTenantGate(options: TenantGateOptions): Promise<TenantGate> {
  const env = options.env ?? process.env;
  const config = typeof options.config === 'string' ? await loadConfig(options.config, { env }) : options.config;
  const names = resolveNames(config, env);
  const secret = options.secret ?? loadServerSecret(config, env);
  const contextKey = deriveKey(secret, 'context');
  let database = options.database;
  const ownsDatabase = !database;
  const ownerUrl = config.effective.database.url;
  const url = options.gatewayUrl ?? env[config.effective.database.gateway_url_env] ?? (isEmbeddedUrl(ownerUrl) ? ownerUrl : undefined);
  if (!database) {
    if (!url) {
      const name = config.effective.database.gateway_url_env;
      throw new TenantGateError('CONFIG_ENV_MISSING', `${name} is not set: the gateway connects as its own low-privilege login, not as the owner`, {
        hint:
          `Run \`tenantgate apply\` as the owner (database.url): it creates the gateway login and prints \`export ${name}='postgres://…'\` once. ` +
          `Lost it? \`tenantgate apply --rotate-gateway-password\` prints a new one (database.gateway_url_env names the variable).`,
      });
    }
    database = await openDatabase(url, { baseDir: config.dir, max: options.poolSize ?? config.effective.server.pool_size, pipeline: true });
  }
  const db = database;
  const routes = new Routes(config, db.pool);
  const databases = gatewayDatabases(config, db, url, env, options.pglite);
  // A tenant moved out of its own database: this process's pool to it goes (the database will).
  routes.onChange = (tenants, before) => {
    for (const t of tenants) {
      const was = before.get(t);
      if (was?.tier === 'database') void databases.forget(was.placement, tenantDatabase(names.prefix, t));
    }
  };
  await routes.start(options.routesIntervalMs ?? 1_000);
  const databaseOf = async (tenant: string): Promise<Database> => {
    const at = tenant === ALL_TENANTS_CONTEXT ? undefined : routes.get(tenant);
    return at?.tier === 'database' ? databases.get(at.placement, tenantDatabase(names.prefix, tenant)) : db;
  };

  // Signatures are per tenant and never change for a secret: compute each once.
  const macs = new Map<string, string>();
  const macFor = (t: string) => {
    let m = macs.get(t);
    if (!m) macs.set(t, (m = contextMac(contextKey, t)));
    return m;
  };

  const resolveScope = (scope: TenantScope): TenantContext => {
    if (!scope || !ACCESS_LEVELS.includes(scope.access)) {
      throw new TenantGateError('TENANT_CONTEXT_REQUIRED', `access must be one of ${ACCESS_LEVELS.join(', ')}`);
    }
    if (scope.tenant === ALL_TENANTS) {
      if (scope.access !== 'platform') throw new TenantGateError('TENANT_MISMATCH', 'only platform access may act for all tenants');
      return { tenant: ALL_TENANTS_CONTEXT, access: 'platform', role: names.platformAll, mac: macFor(ALL_TENANTS_CONTEXT), statementTimeoutMs: defaultTimeout(config), searchPath: null };
    }
    if (!isValidTenantId(scope.tenant)) throw new TenantGateError('TENANT_CONTEXT_REQUIRED', 'a valid tenant id is required');
    const tenant: Tenant | undefined = routes.erased(scope.tenant) ? undefined : config.tenants.get(scope.tenant);
    if (!tenant) throw new TenantGateError('TENANT_UNKNOWN', 'unknown tenant');
    // The config's status or the catalog's (a runtime suspension), as of the last look at tenant_routes.
    if (routes.suspended(tenant.id) && scope.allowSuspended !== true) throw new TenantGateError('TENANT_SUSPENDED', 'the tenant is suspended');
    // A schema-tier tenant's unqualified names find its own tables first.
    const searchPath = routes.get(tenant.id).tier === 'schema' ? `"${tenantSchema(tenant.id).replace(/"/g, '""')}"` : null;
    return { tenant: tenant.id, access: scope.access, role: names.access[scope.access], mac: macFor(tenant.id), statementTimeoutMs: tenant.quotas.statement_timeout_ms, searchPath };
  };

  /**
   * Run at the tenant's place. A tenant moved out of its own database, which this process has not
   * heard of yet, meets a database that no longer exists (at connect, before anything ran): look
   * again and run once more where it lives now.
   */
  const atPlace = async <T>(scope: TenantScope, run: (ctx: TenantContext, on: Database) => Promise<T>): Promise<T> => {
    const ctx = resolveScope(scope);
    const on = await databaseOf(ctx.tenant);
    try {
      return await run(ctx, on);
    } catch (err) {
      const code = (err as { code?: string; cause?: { code?: string } }).cause?.code ?? (err as { code?: string }).code;
      if (on === db || code !== '3D000' || !(await routes.moved(ctx.tenant))) throw err;
      const again = resolveScope(scope);
      return run(again, await databaseOf(again.tenant));
    }
  };

  return {
    config,
    names,
    database: db,
    routes,
    databases,
    databaseOf,
    withTenant: (scope, fn) => atPlace(scope, (ctx, on) => runTenantTransaction(on.pool as pg.Pool, ctx, fn)),
    statement: (scope, query, options = {}) =>
      atPlace(scope, (ctx, on) => {
        const { after } = options;
        if (after) {
          return runTenantTransaction(
            on.pool,
            ctx,
            async (c) => {
              const r = await c.query(query as pg.QueryConfig);
              await c.query(after(r) as pg.QueryConfig);
              return r;
            },
            { writable: true },
          );
        }
        return on.kind === 'postgres' ? runTenantStatement(on.pool, ctx, query) : runTenantTransaction(on.pool, ctx, (c) => c.query(query as pg.QueryConfig));
      }),
    close: async () => {
      routes.stop();
      await databases.close();
      if (ownsDatabase) await db.close();
    },
  };
}

function defaultTimeout(config: Config): number {
  return config.defaultQuotas.statement_timeout_ms;
}
