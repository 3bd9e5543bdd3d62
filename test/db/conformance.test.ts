/**
 * One conformance suite for the database interface: the same expectations on the embedded
 * database and on a PostgreSQL server. Known gaps are listed here, not hidden.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDatabase, type Database } from '../../src/db/database.ts';
import { BACKENDS, createFixture, type BackendKind, type Fixture } from '../support/backends.ts';

/** What PGlite cannot do, and why. */
const KNOWN_GAPS: Record<BackendKind, Record<string, string>> = {
  pglite: {
    'concurrent sessions': 'PGlite is a single session: its pool has one connection',
    'statement timeout':
      'PGlite runs the backend single-threaded in WASM with no timer signal: a statement_timeout set in SQL is accepted but never fires ' +
      "(a data directory's watchdog holds tenant transactions to the tenant's timeout instead: test/db/embedded.test.ts)",
  },
  postgres: {},
};
const gap = (kind: BackendKind, name: string) => Boolean(KNOWN_GAPS[kind][name]);

/** Each backend, and the embedded database as `serve` opens it: a data directory served by a worker thread. */
const TARGETS = [...BACKENDS.map((kind) => ({ name: kind, kind, pgliteDir: false })), { name: 'pglite (data directory, worker thread)', kind: 'pglite' as const, pgliteDir: true }];

describe.each(TARGETS)('database interface on $name', ({ kind, pgliteDir }) => {
  let fx: Fixture;
  let db: Database;
  beforeAll(async () => {
    fx = await createFixture(kind, { apply: false, pgliteDir });
    db = fx.db;
    await db.query(`CREATE TABLE conf (id int PRIMARY KEY, t text, n numeric, j jsonb, b bytea, ts timestamptz)`);
  });
  afterAll(async () => fx?.cleanup());

  it('reports its kind and login', () => {
    expect(db.kind).toBe(kind);
    expect(typeof db.user).toBe('string');
  });

  it('binds parameters and keeps numeric precision (numeric arrives as a string)', async () => {
    await db.query(`INSERT INTO conf VALUES ($1, $2, $3, $4, $5, $6)`, [1, "it's", '12345678901234567890.123', { a: [1, 2] }, Buffer.from([0, 255]), '2026-01-02T03:04:05Z']);
    const r = await db.query(`SELECT id, t, n, j, b, ts FROM conf WHERE id = $1`, [1]);
    expect(r.rows[0]).toMatchObject({ id: 1, t: "it's", n: '12345678901234567890.123', j: { a: [1, 2] } });
    expect(Buffer.from(r.rows[0]?.['b'] as Uint8Array)).toEqual(Buffer.from([0, 255]));
    expect(new Date(r.rows[0]?.['ts'] as string).toISOString()).toBe('2026-01-02T03:04:05.000Z');
  });

  it('runs several statements in one simple query', async () => {
    await db.query(`INSERT INTO conf (id) VALUES (2); INSERT INTO conf (id) VALUES (3)`);
    expect((await db.query(`SELECT count(*)::int AS c FROM conf WHERE id IN (2, 3)`)).rows[0]).toEqual({ c: 2 });
  });

  it('reports errors with their SQLSTATE', async () => {
    await expect(db.query(`SELECT * FROM no_such_table`)).rejects.toMatchObject({ code: '42P01' });
    await expect(db.query(`INSERT INTO conf (id) VALUES (1)`)).rejects.toMatchObject({ code: '23505' });
    // The connection is still usable after an error.
    expect((await db.query(`SELECT 1 AS one`)).rows[0]).toEqual({ one: 1 });
  });

  it('rolls a transaction back on a dedicated client', async () => {
    const c = await db.pool.connect();
    try {
      await c.query('BEGIN');
      await c.query(`INSERT INTO conf (id) VALUES (10)`);
      await c.query('ROLLBACK');
    } finally {
      c.release();
    }
    expect((await db.query(`SELECT count(*)::int AS c FROM conf WHERE id = 10`)).rows[0]).toEqual({ c: 0 });
  });

  it('transaction-local settings do not outlive their transaction', async () => {
    const c = await db.pool.connect();
    try {
      await c.query('BEGIN');
      await c.query(`SELECT set_config('tenantgate.tenant', 'acme_corp', true)`);
      expect((await c.query(`SELECT current_setting('tenantgate.tenant', true) AS v`)).rows[0]).toEqual({ v: 'acme_corp' });
      await c.query('COMMIT');
      const after = (await c.query(`SELECT current_setting('tenantgate.tenant', true) AS v`)).rows[0]?.['v'];
      expect(after === null || after === '').toBe(true);
    } finally {
      c.release();
    }
  });

  it.skipIf(gap(kind, 'statement timeout'))('a statement timeout cancels with 57014', async () => {
    const c = await db.pool.connect();
    try {
      await c.query('BEGIN');
      await c.query(`SELECT set_config('statement_timeout', '50', true)`);
      await expect(c.query(`SELECT pg_sleep(2)`)).rejects.toMatchObject({ code: '57014' });
      await c.query('ROLLBACK');
    } finally {
      c.release();
    }
  });

  it.skipIf(gap(kind, 'concurrent sessions'))('concurrent sessions see each other only after commit', async () => {
    const a = await db.pool.connect();
    const b = await db.pool.connect();
    try {
      await a.query('BEGIN');
      await a.query(`INSERT INTO conf (id) VALUES (20)`);
      expect((await b.query(`SELECT count(*)::int AS c FROM conf WHERE id = 20`)).rows[0]).toEqual({ c: 0 });
      await a.query('COMMIT');
      expect((await b.query(`SELECT count(*)::int AS c FROM conf WHERE id = 20`)).rows[0]).toEqual({ c: 1 });
    } finally {
      a.release();
      b.release();
    }
  });

  it('rejects an unknown URL scheme with a clear message', async () => {
    await expect(openDatabase('mysql://x')).rejects.toThrow(/pglite:\/\/DIR or postgres/);
  });
});
