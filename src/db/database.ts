import { mkdirSync } from 'node:fs';
import { resolve } from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import { createPgConfig } from '@electric-sql/pglite/node-postgres';
import pg from 'pg';
import { EmbeddedServer } from './embedded.ts';
import { isEmbeddedUrl } from './url.ts';

export { isEmbeddedUrl, maskUrl } from './url.ts';

/** Numeric and bigint arrive as strings from pg by default; keep that (no silent precision loss). */

export type DatabaseKind = 'pglite' | 'postgres';

/**
 * One interface over the embedded database (PGlite) and a PostgreSQL server: a `pg.Pool`, so
 * every caller speaks `pg` and the conformance suite runs the same code on both. PGlite is one
 * session: its pool has size 1. A `pglite://DIR` database runs in a worker thread that the pool
 * reaches over the wire protocol (src/db/embedded.ts: the gateway's thread never runs a statement,
 * and the statement timeout is enforced); `pglite://memory` and an instance passed in run in this
 * thread through PGlite's node-postgres shim.
 */
export interface Database {
  readonly kind: DatabaseKind;
  readonly pool: pg.Pool;
  /** The in-process PGlite instance behind the pool (`pglite://memory`, or one passed in): snapshots and clones. */
  readonly pglite?: PGlite;
  /** Embedded only: the data directory (absolute), or undefined in memory. */
  readonly dataDir?: string;
  /** The login this pool connects as. */
  readonly user: string;
  /** Another pool on the same login (a server), or this one (PGlite has one session). */
  sibling(max: number): Promise<Database>;
  query<R extends pg.QueryResultRow = Record<string, unknown>>(text: string, params?: unknown[]): Promise<pg.QueryResult<R>>;
  close(): Promise<void>;
}

export interface OpenOptions {
  /** Directory that relative `pglite://` paths are resolved against (the config's folder). */
  baseDir?: string;
  /** Pool size for a server (default 10). */
  max?: number;
  /** Send queued statements without waiting for each answer (server only; pg >= 8.23). */
  pipeline?: boolean;
  /** An existing PGlite instance to wrap (tests, or sharing one embedded database). */
  pglite?: PGlite;
  /** Embedded only: run the session as this role (not a security boundary; see docs/security.md). */
  pgliteUser?: string;
}

/** Open `pglite://DIR`, `pglite://memory` or `postgres://…`. */
export async function openDatabase(url: string, options: OpenOptions = {}): Promise<Database> {
  if (isEmbeddedUrl(url) || options.pglite) {
    let instance = options.pglite;
    if (!instance) {
      const target = url.replace(/^pglite:\/\//, '').replace(/^memory:\/\//, 'memory');
      const pgliteOptions = options.pgliteUser ? { username: options.pgliteUser } : {};
      if (target === 'memory' || target === '') {
        instance = new PGlite(pgliteOptions);
      } else {
        const dir = resolve(options.baseDir ?? process.cwd(), target);
        mkdirSync(dir, { recursive: true });
        return openEmbedded(dir, pgliteOptions);
      }
    }
    await instance.waitReady;
    const owned = !options.pglite;
    const pglite = instance;
    const pool = new pg.Pool({ ...createPgConfig(pglite), max: 1 });
    const user = ((await pglite.query<{ u: string }>('select current_user as u')).rows[0] as { u: string }).u;
    const dataDir = pglite.dataDir && !pglite.dataDir.startsWith('memory') ? resolve(pglite.dataDir) : undefined;
    const db: Database = {
      kind: 'pglite',
      pool,
      pglite,
      ...(dataDir ? { dataDir } : {}),
      user,
      sibling: async () => ({ ...db, close: async () => {} }),
      query: (text, params) => pool.query(text, params as unknown[]),
      close: async () => {
        await pool.end();
        if (owned && !pglite.closed) await pglite.close();
      },
    };
    return db;
  }
  if (!/^postgres(ql)?:\/\//.test(url)) {
    throw new Error(`unsupported database url scheme: ${url.split(':')[0]}: (use pglite://DIR or postgres://…)`);
  }
  const pool = new pg.Pool({
    connectionString: url,
    max: options.max ?? 10,
    ...(options.pipeline ? { pipeline: true } : {}),
  } as pg.PoolConfig);
  // An idle client that errors (server restart) must not crash the process; nor one checked out
  // between two statements when its connection is ended (a tenant database dropped after a move, an
  // administrator's pg_terminate_backend): its next statement fails, and the pool drops it.
  pool.on('error', () => {});
  pool.on('connect', (client) => client.on('error', () => {}));
  const user = new URL(url).username || process.env['PGUSER'] || 'postgres';
  return {
    kind: 'postgres',
    pool,
    user: decodeURIComponent(user),
    sibling: (max) => openDatabase(url, { max }),
    query: (text, params) => pool.query(text, params as unknown[]),
    close: () => pool.end(),
  };
}

/**
 * A data directory served by a worker thread (src/db/embedded.ts). The pool reaches it like a
 * server, one connection at a time (PGlite is one session); a connection the pool drops is
 * replaced by a fresh session, so idle ones are kept rather than closed and reopened. It pipelines
 * like the gateway's server pools (a tenant transaction's BEGIN, context and first statement make
 * one trip to the worker instead of three), so COPY streams and cursors are not for it: on the
 * embedded database nothing uses them.
 */
async function openEmbedded(dir: string, options: { username?: string }): Promise<Database> {
  const server = await EmbeddedServer.open(dir, options);
  const pool = new pg.Pool({ max: 1, idleTimeoutMillis: 0, user: server.user, database: 'postgres', stream: () => server.connection(), pipeline: true } as pg.PoolConfig);
  // A connection the watchdog ended errors while checked out: its query fails, the pool drops it.
  pool.on('error', () => {});
  pool.on('connect', (client) => client.on('error', () => {}));
  const db: Database = {
    kind: 'pglite',
    pool,
    dataDir: dir,
    user: server.user,
    sibling: async () => ({ ...db, close: async () => {} }),
    query: (text, params) => pool.query(text, params as unknown[]),
    close: async () => {
      await pool.end();
      await server.close();
    },
  };
  return db;
}

/** Run `fn` in one transaction on one connection: committed if it returns, rolled back (the connection released clean) if it throws. */
export async function inTransaction<T>(db: Database, fn: (c: pg.PoolClient) => Promise<T>, begin = 'BEGIN'): Promise<T> {
  const c = await db.pool.connect();
  try {
    await c.query(begin);
    const out = await fn(c);
    await c.query('COMMIT');
    return out;
  } catch (err) {
    await c.query('ROLLBACK').catch(() => {});
    throw err;
  } finally {
    c.release();
  }
}
