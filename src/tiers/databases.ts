import { existsSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { PGlite } from '@electric-sql/pglite';
import type { Config } from '../config/types.ts';
import { isEmbeddedUrl, openDatabase, type Database } from '../db/database.ts';
import { TenantGateError } from '../errors/index.ts';

/** How the embedded database makes a new instance for a tenant database (tests inject a snapshot-based one). */
export type PgliteFactory = (dataDir: string | undefined) => Promise<PGlite>;

interface Embedded {
  db: Promise<Database>;
  used: number;
  /** In memory: closing it would lose it, so it never closes on its own. */
  memory: boolean;
}

/**
 * Embedded tenant databases, shared by everything in this process that opens them (apply, the gate,
 * a move): keyed by data directory, or by the main instance for in-memory ones. At most
 * EMBEDDED_CAP directories stay open (least recently used closed first), idle ones close.
 */
const byKey = new Map<string, Embedded>();
const memoryKeys = new WeakMap<object, string>();
let memorySeq = 0;
export const EMBEDDED_CAP = 8;
const EMBEDDED_IDLE_MS = 60_000;
const sweeper = setInterval(() => {
  for (const [k, e] of byKey) if (!e.memory && Date.now() - e.used > EMBEDDED_IDLE_MS) void closeEmbedded(k);
}, 15_000);
sweeper.unref();

async function closeEmbedded(key: string): Promise<void> {
  const e = byKey.get(key);
  byKey.delete(key);
  const db = await e?.db.catch(() => undefined);
  await db?.close().catch(() => {});
  await db?.pglite?.close().catch(() => {});
}

export interface DatabaseSetOptions {
  config: Config;
  /** The main database (of the same login). */
  main: Database;
  /** The main database's URL for this login (server), to reach its sibling databases. */
  mainUrl?: string | undefined;
  /** A placement's URL for this login (owner: url_env; gateway: gateway_url_env). */
  placementUrl: (placement: string) => string | undefined;
  /** Which key of a placement names that URL's variable, for the error when it is not set. */
  placementKey: 'url_env' | 'gateway_url_env';
  /** Pool size per database (server). */
  max?: number;
  /** Pipelined pools (the gateway's); the owner's are not (COPY streams need a plain connection). */
  pipeline?: boolean;
  pglite?: PgliteFactory;
}

/**
 * The databases of database-tier tenants, opened on demand: one pool per database (PostgreSQL
 * takes a connection per database, so that is as shared as it gets), on the default server (the
 * main database's server) or a named placement. On the embedded database, a data directory of its
 * own per tenant database, beside the main one (`<dir>.tenants/<placement>/<database>`).
 */
export class DatabaseSet {
  private readonly servers = new Map<string, Promise<Database>>();

  constructor(private readonly o: DatabaseSetOptions) {}

  /** The database `name` on `placement`. */
  get(placement: string, name: string): Promise<Database> {
    const base = placement === 'default' ? this.o.mainUrl : this.o.placementUrl(placement);
    if (this.o.main.kind === 'pglite' && (placement === 'default' || base === undefined || isEmbeddedUrl(base))) return this.embedded(placement, name);
    if (!base) throw placementUrlMissing(this.o.config, placement, this.o.placementKey);
    const key = `${placement}\u0000${name}`;
    let db = this.servers.get(key);
    if (!db) {
      const u = new URL(base);
      u.pathname = `/${encodeURIComponent(name)}`;
      db = openDatabase(u.toString(), { max: this.o.max ?? 4, pipeline: this.o.pipeline ?? false });
      db.catch(() => this.servers.delete(key));
      this.servers.set(key, db);
    }
    return db;
  }

  /** Where an embedded tenant database lives: a directory beside the main one, or (main in memory) in memory. */
  private embeddedKey(placement: string, name: string): { key: string; dir: string | undefined } {
    const main = this.o.main;
    const mainDir = main.dataDir;
    if (mainDir) {
      const dir = join(`${mainDir}.tenants`, placement, name);
      return { key: dir, dir };
    }
    const instance = main.pglite ?? main;
    let m = memoryKeys.get(instance);
    if (!m) memoryKeys.set(instance, (m = `memory#${++memorySeq}`));
    return { key: `${m}/${placement}/${name}`, dir: undefined };
  }

  private embedded(placement: string, name: string): Promise<Database> {
    const { key, dir } = this.embeddedKey(placement, name);
    const hit = byKey.get(key);
    if (hit) {
      hit.used = Date.now();
      return hit.db;
    }
    // A directory is served by a worker thread like the main database (src/db/embedded.ts); a tenant
    // database in memory (the main one is) and instances made by an injected factory run here.
    const make = this.o.pglite;
    const db = make ? make(dir).then((instance) => openDatabase('pglite://memory', { pglite: instance })) : dir ? openDatabase(`pglite://${dir}`) : openDatabase('pglite://memory');
    byKey.set(key, { db, used: Date.now(), memory: dir === undefined });
    db.catch(() => byKey.delete(key));
    const open = [...byKey].filter(([, e]) => !e.memory);
    if (open.length > EMBEDDED_CAP) void closeEmbedded(open.sort((a, b) => a[1].used - b[1].used)[0]![0]);
    return db;
  }

  /** Whether an embedded tenant database was ever made (its directory, or an open in-memory one). */
  embeddedExists(placement: string, name: string): boolean {
    if (this.o.main.kind !== 'pglite') return false;
    const { key, dir } = this.embeddedKey(placement, name);
    return byKey.has(key) || (dir !== undefined && existsSync(dir));
  }

  /** Close one database (it is being dropped, or was). */
  async forget(placement: string, name: string): Promise<void> {
    const key = `${placement}\u0000${name}`;
    const server = this.servers.get(key);
    this.servers.delete(key);
    await (await server?.catch(() => undefined))?.close().catch(() => {});
    if (this.o.main.kind === 'pglite') await closeEmbedded(this.embeddedKey(placement, name).key);
  }

  /** Remove an embedded tenant database for good: closed, and its data directory deleted. */
  async dropEmbedded(placement: string, name: string): Promise<void> {
    const { key, dir } = this.embeddedKey(placement, name);
    await closeEmbedded(key);
    if (dir) rmSync(dir, { recursive: true, force: true });
  }

  /** Close the server pools this set opened (embedded instances are shared: they close when idle or capped). */
  async close(): Promise<void> {
    for (const key of [...this.servers.keys()]) {
      const db = this.servers.get(key);
      this.servers.delete(key);
      await (await db?.catch(() => undefined))?.close().catch(() => {});
    }
  }
}

function placementUrlMissing(config: Config, placement: string, key: 'url_env' | 'gateway_url_env'): TenantGateError {
  const path = `database.placements.${placement}.${key}`;
  const variable = config.effective.database.placements[placement]?.[key];
  const login = key === 'url_env' ? 'the owner' : 'the gateway login';
  return new TenantGateError('CONFIG_ENV_MISSING', variable ? `${variable} (${path}) is not set: no URL for placement ${placement}` : `${path} is not configured: no URL for placement ${placement}`, {
    hint: variable
      ? `Set ${variable} to ${login}'s URL on placement ${placement}'s server.`
      : `Add ${path}: the name of a variable holding ${login}'s URL on placement ${placement}'s server${key === 'gateway_url_env' ? ' (serve needs it; apply creates the login there)' : ''}.`,
  });
}

/** The owner's view: database.url and each placement's url_env. */
export function ownerDatabases(config: Config, main: Database, env: Record<string, string | undefined>, pglite?: PgliteFactory): DatabaseSet {
  const url = config.effective.database.url;
  const placements = config.effective.database.placements;
  return new DatabaseSet({
    config,
    main,
    mainUrl: isEmbeddedUrl(url) ? undefined : url,
    placementUrl: (p) => {
      const e = placements[p]?.url_env;
      return e ? env[e] : undefined;
    },
    placementKey: 'url_env',
    ...(pglite ? { pglite } : {}),
  });
}

/** The gateway's view: the gateway login's URL, and each placement's gateway_url_env. */
export function gatewayDatabases(config: Config, main: Database, mainUrl: string | undefined, env: Record<string, string | undefined>, pglite?: PgliteFactory): DatabaseSet {
  const placements = config.effective.database.placements;
  return new DatabaseSet({
    config,
    main,
    mainUrl: mainUrl && !isEmbeddedUrl(mainUrl) ? mainUrl : undefined,
    placementUrl: (p) => {
      const e = placements[p]?.gateway_url_env;
      return e ? env[e] : undefined;
    },
    placementKey: 'gateway_url_env',
    max: config.effective.server.pool_size,
    pipeline: true,
    ...(pglite ? { pglite } : {}),
  });
}
