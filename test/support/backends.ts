/**
 * Real databases for tests: PGlite in-process always, and a PostgreSQL server when
 * DATABASE_URL is set. Each fixture gets its own database (a PGlite clone of a cached
 * snapshot, or a fresh server database) and its own role prefix, because roles are global
 * to a server and test files run side by side.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import pg from 'pg';
import { parseConfig } from '../../src/config/load.ts';
import type { Config } from '../../src/config/types.ts';
import { openDatabase, type Database } from '../../src/db/database.ts';
import { createTenantGate, type TenantGate } from '../../src/gate.ts';
import { applyProvision } from '../../src/provision/apply.ts';
import type { Names } from '../../src/provision/names.ts';

export type BackendKind = 'pglite' | 'postgres';

export const SERVER_URL = process.env['DATABASE_URL'];
/** Every backend the suite runs on here: `describe.each(BACKENDS)`. */
export const BACKENDS: BackendKind[] = SERVER_URL ? ['pglite', 'postgres'] : ['pglite'];
/**
 * Why hostile-SQL probes that change the role or session user are skipped on PGlite: its one
 * session's session user is the superuser `postgres` (the `username` option only sets the role).
 */
export const PGLITE_HOSTILE_SQL_GAP =
  "PGlite has a single superuser session; the database wall against hostile SQL needs a PostgreSQL server; the gateway's SQL allowlist blocks these statements";

const FIXTURES = join(import.meta.dirname, '..', 'fixtures');
export const fixture = (name: string) => readFileSync(join(FIXTURES, name), 'utf8');
export const TEST_SECRET = Buffer.from('tenantgate-test-secret-0123456789abcdef');

let baseSnapshot: Promise<Blob> | undefined;
/** A fresh PGlite takes ~4 s; a clone of a snapshot well under one. Cached on disk per version. */
async function pgliteSnapshot(): Promise<Blob> {
  baseSnapshot ??= (async () => {
    const { version } = JSON.parse(readFileSync(join(import.meta.dirname, '..', '..', 'node_modules', '@electric-sql', 'pglite', 'package.json'), 'utf8')) as { version: string };
    const dir = join(tmpdir(), 'tenantgate-test');
    const file = join(dir, `pglite-${version}.tar.gz`);
    if (existsSync(file)) return new Blob([readFileSync(file)]);
    const db = new PGlite();
    await db.waitReady;
    const blob = await db.dumpDataDir('gzip');
    await db.close();
    mkdirSync(dir, { recursive: true });
    const tmp = `${file}.${process.pid}.${randomBytes(4).toString('hex')}`;
    writeFileSync(tmp, Buffer.from(await blob.arrayBuffer()));
    renameSync(tmp, file);
    return blob;
  })();
  return baseSnapshot;
}

/** Tenant databases on the embedded database, made from the cached snapshot (well under a second each). */
export const pgliteFactory = () => newPglite();

export async function newPglite(options: { loadDataDir?: Blob; username?: string } = {}): Promise<PGlite> {
  const db = new PGlite({ loadDataDir: options.loadDataDir ?? (await pgliteSnapshot()), ...(options.username ? { username: options.username } : {}) });
  await db.waitReady;
  return db;
}

function serverUrlFor(database: string, user?: string, password?: string): string {
  const u = new URL(SERVER_URL as string);
  u.pathname = `/${database}`;
  if (user) {
    u.username = encodeURIComponent(user);
    u.password = password ? encodeURIComponent(password) : '';
  }
  return u.toString();
}

async function serverAdmin<T>(fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const c = new pg.Client({ connectionString: SERVER_URL });
  await c.connect();
  try {
    return await fn(c);
  } finally {
    await c.end();
  }
}

export interface Fixture {
  kind: BackendKind;
  /** Owner connection (database.url). */
  db: Database;
  url: string;
  prefix: string;
  config: Config;
  names: Names;
  secret: Buffer;
  /** The library engine as the gateway login (on PGlite, the shared embedded session). */
  gate(): Promise<TenantGate>;
  /** A second connection logged in as `user` (server) or a clone running as `user` (PGlite). */
  connectAs(user: string, password?: string): Promise<Database>;
  /** Re-read the config (after editing `yaml`). */
  reload(yaml: string): Promise<Config>;
  cleanup(): Promise<void>;
}

/**
 * The gateway login's URL for a server fixture (the same URL `fx.gate()` uses; no password:
 * the test server trusts local logins), e.g. to build a gate with its own pool size.
 */
export function gatewayUrl(fx: Fixture): string {
  if (fx.kind !== 'postgres') throw new Error('gatewayUrl: only server fixtures have a gateway URL');
  return serverUrlFor(decodeURIComponent(new URL(fx.url).pathname.slice(1)), fx.names.gateway);
}

export interface FixtureOptions {
  /** SQL run as the owner before apply. */
  sql?: string;
  /** tenantgate.yaml text; `${TG_TEST_DB}` and `${TG_TEST_PREFIX}` are filled in. */
  yaml?: string;
  /** Run apply (default true). */
  apply?: boolean;
  /** Path the config pretends to live at (its tenants/ folder is read from beside it). */
  configFile?: string;
  /**
   * PGlite only: a data directory (from the cached snapshot) opened by its URL, so a worker thread
   * serves it as for `serve` and `npm start` (src/db/embedded.ts), instead of an in-process clone.
   */
  pgliteDir?: boolean;
}

export async function createFixture(kind: BackendKind, options: FixtureOptions = {}): Promise<Fixture> {
  const tag = randomBytes(4).toString('hex');
  const prefix = `tg${tag}`;
  let url: string;
  let db: Database;
  let dbName = '';
  let dataDir: string | undefined;
  if (kind === 'pglite' && options.pgliteDir) {
    dataDir = join(mkdtempSync(join(tmpdir(), 'tg-pgdir-')), 'pgdata');
    await seedPgliteDir(dataDir);
    url = `pglite://${dataDir}`;
    db = await openDatabase(url);
  } else if (kind === 'pglite') {
    url = 'pglite://memory';
    db = await openDatabase(url, { pglite: await newPglite() });
  } else {
    if (!SERVER_URL) throw new Error('DATABASE_URL is not set');
    dbName = `tg_test_${tag}`;
    await serverAdmin((c) => c.query(`CREATE DATABASE ${dbName}`));
    url = serverUrlFor(dbName);
    db = await openDatabase(url, { max: 4 });
  }
  const env = { TG_TEST_DB: url, TG_TEST_PREFIX: prefix };
  const configFile = options.configFile ?? join(FIXTURES, 'virtual', 'tenantgate.yaml');
  const parse = (yaml: string) => parseConfig(yaml, configFile, { env });
  const extra: Database[] = [];
  const gates: TenantGate[] = [];
  const fx: Fixture = {
    kind,
    db,
    url,
    prefix,
    secret: TEST_SECRET,
    config: undefined as unknown as Config,
    names: undefined as unknown as Names,
    async gate() {
      if (kind === 'pglite') {
        const g = await createTenantGate({ config: fx.config, database: db, secret: TEST_SECRET, env });
        gates.push(g);
        return g;
      }
      const g = await createTenantGate({ config: fx.config, gatewayUrl: serverUrlFor(dbName, fx.names.gateway), secret: TEST_SECRET, env, poolSize: 4 });
      gates.push(g);
      return g;
    },
    async connectAs(user: string, password?: string) {
      let other: Database;
      if (dataDir) throw new Error('connectAs: not on a pgliteDir fixture');
      if (kind === 'pglite') {
        const clone = await newPglite({ loadDataDir: await (db.pglite as PGlite).dumpDataDir('none'), username: user });
        other = await openDatabase('pglite://memory', { pglite: clone });
        const close = other.close;
        other = { ...other, close: async () => { await close(); await clone.close(); } };
      } else {
        other = await openDatabase(serverUrlFor(dbName, user, password), { max: 2 });
      }
      extra.push(other);
      return other;
    },
    async reload(yaml: string) {
      fx.config = await parse(yaml);
      return fx.config;
    },
    async cleanup() {
      for (const g of gates) await g.close().catch(() => {});
      for (const e of extra) await e.close().catch(() => {});
      await db.close().catch(() => {});
      if (kind === 'pglite') {
        await db.pglite?.close().catch(() => {});
        if (dataDir) rmSync(dirname(dataDir), { recursive: true, force: true });
        return;
      }
      await serverAdmin(async (c) => {
        await c.query(`DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`);
        // Database-tier tenants' databases are named with the prefix.
        const dbs = await c.query(`SELECT datname FROM pg_database WHERE datname LIKE $1`, [`${prefix}\\_%`]);
        for (const d of dbs.rows) await c.query(`DROP DATABASE IF EXISTS "${d.datname}" WITH (FORCE)`);
        const roles = await c.query(`SELECT rolname FROM pg_roles WHERE rolname LIKE $1`, [`${prefix}\\_%`]);
        for (const r of roles.rows) await c.query(`DROP ROLE IF EXISTS "${r.rolname}"`);
      });
    },
  };
  if (options.sql) await db.query(options.sql);
  await fx.reload(options.yaml ?? fixture('seed003.yaml'));
  const { resolveNames } = await import('../../src/provision/apply.ts');
  fx.names = resolveNames(fx.config, env);
  if (options.apply !== false) await applyProvision(fx.config, db, TEST_SECRET, { env });
  return fx;
}

/* ------------------------------------------------------------------------------------------
 * Databases the CLI opens itself (it reads database.url): a PGlite data directory, or a
 * fresh database on the server. Used by tests that run `main([...])` in-process.
 * ---------------------------------------------------------------------------------------- */

/**
 * Make `dir` a PGlite data directory (from the cached snapshot, so no ~5 s first boot), run
 * `sql` in it as the owner, and close it again: only one instance may hold a directory.
 */
export async function seedPgliteDir(dir: string, sql?: string): Promise<void> {
  mkdirSync(dir, { recursive: true });
  const db = new PGlite(dir, { loadDataDir: await pgliteSnapshot() });
  await db.waitReady;
  try {
    if (sql) await db.exec(sql);
  } finally {
    await db.close();
  }
}

/** Open a PGlite data directory as the owner for the duration of `fn` (nobody else may have it open). */
export async function withPgliteDir<T>(dir: string, fn: (db: Database) => Promise<T>): Promise<T> {
  const db = await openDatabase(`pglite://${dir}`);
  try {
    return await fn(db);
  } finally {
    await db.close();
  }
}

export interface ServerDatabase {
  name: string;
  /** Owner connection URL of the new database. */
  url: string;
  /** Role prefix reserved for this database; `drop()` removes every role under it. */
  prefix: string;
  drop(): Promise<void>;
}

/** A fresh database on the DATABASE_URL server, with `sql` run in it, and a unique role prefix. */
export async function createServerDatabase(sql?: string): Promise<ServerDatabase> {
  if (!SERVER_URL) throw new Error('DATABASE_URL is not set');
  const tag = randomBytes(4).toString('hex');
  const name = `tg_test_${tag}`;
  const prefix = `tg${tag}`;
  await serverAdmin((c) => c.query(`CREATE DATABASE ${name}`));
  const url = serverUrlFor(name);
  if (sql) {
    const c = new pg.Client({ connectionString: url });
    await c.connect();
    try {
      await c.query(sql);
    } finally {
      await c.end();
    }
  }
  return {
    name,
    url,
    prefix,
    async drop() {
      await serverAdmin(async (c) => {
        await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
        const dbs = await c.query(`SELECT datname FROM pg_database WHERE datname LIKE $1`, [`${prefix}\\_%`]);
        for (const d of dbs.rows) await c.query(`DROP DATABASE IF EXISTS "${d.datname}" WITH (FORCE)`);
        const roles = await c.query(`SELECT rolname FROM pg_roles WHERE rolname LIKE $1`, [`${prefix}\\_%`]);
        for (const r of roles.rows) await c.query(`DROP ROLE IF EXISTS "${r.rolname}"`);
      });
    },
  };
}
