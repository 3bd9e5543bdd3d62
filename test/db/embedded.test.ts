/**
 * The embedded database on a data directory runs in a worker thread (src/db/embedded.ts): the
 * event loop never waits on a statement, a round trip past its budget (the tenant's statement
 * timeout) ends the worker with 57014, and a new worker on the same directory serves the next
 * connection with everything committed before (PGlite recovers like after a crash).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDatabase, type Database } from '../../src/db/database.ts';
import { setStatementBudget } from '../../src/db/embedded.ts';
import { seedPgliteDir } from '../support/backends.ts';

const RUNAWAY = 'WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n+1 FROM r) SELECT count(*) FROM r';
const BUDGET_MS = 300;

describe('the embedded database in a worker thread', () => {
  let root: string;
  let dir: string;
  let db: Database;
  beforeAll(async () => {
    root = mkdtempSync(join(tmpdir(), 'tg-embedded-'));
    dir = join(root, 'pgdata');
    await seedPgliteDir(dir, 'CREATE TABLE kept (id int PRIMARY KEY, note text)');
    db = await openDatabase(`pglite://${dir}`);
  });
  afterAll(async () => {
    await db?.close();
    rmSync(root, { recursive: true, force: true });
  });

  it('is the embedded kind, on its data directory, with no instance in this thread', () => {
    expect(db.kind).toBe('pglite');
    expect(db.dataDir).toBe(dir);
    expect(db.pglite).toBeUndefined();
    expect(db.user).toBe('postgres');
  });

  it('a runaway statement ends with 57014 at its budget while the event loop keeps running; committed rows survive, uncommitted ones do not', async () => {
    await db.query(`INSERT INTO kept VALUES (1, 'committed before')`);
    const c = await db.pool.connect();
    let ticks = 0;
    const ticker = setInterval(() => ticks++, 20);
    const started = performance.now();
    let failure: unknown;
    try {
      setStatementBudget(c, BUDGET_MS);
      await c.query('BEGIN');
      await c.query(`INSERT INTO kept VALUES (2, 'in the killed transaction')`);
      await c.query(RUNAWAY);
    } catch (err) {
      failure = err;
    } finally {
      clearInterval(ticker);
      c.release(failure as Error);
    }
    const ms = performance.now() - started;
    expect(failure).toMatchObject({ code: '57014' });
    expect(ms).toBeGreaterThanOrEqual(BUDGET_MS - 5);
    expect(ms).toBeLessThan(BUDGET_MS + 1000);
    // The event loop ran all along (a statement on this thread would have stopped it).
    expect(ticks).toBeGreaterThanOrEqual(Math.floor(BUDGET_MS / 20 / 3));
    // The next connection waits for the new worker and finds what was committed, and only that.
    const rows = await db.query<{ id: number; note: string }>('SELECT id, note FROM kept ORDER BY id');
    expect(rows.rows).toEqual([{ id: 1, note: 'committed before' }]);
  });

  it('a budget limits round trips, not a connection: quick statements under it pass, and without one nothing is cut', async () => {
    const c = await db.pool.connect();
    try {
      setStatementBudget(c, BUDGET_MS);
      for (let i = 0; i < 5; i++) expect((await c.query('SELECT $1::int AS i', [i])).rows[0]).toEqual({ i });
      setStatementBudget(c, undefined);
      // Longer than the budget above, and no budget: it runs to its end.
      const r = await c.query(`SELECT count(*)::int AS n FROM generate_series(1, 3000000)`);
      expect(r.rows[0]).toEqual({ n: 3000000 });
    } finally {
      c.release();
    }
  });

  it('a connection the pool dropped leaves nothing to the next one (a fresh session, as on a server)', async () => {
    const a = await db.pool.connect();
    await a.query({ name: 'tg_named', text: 'SELECT 1 AS one' });
    await a.query('CREATE TEMP TABLE scratch (x int)');
    await a.query('BEGIN');
    await a.query(`INSERT INTO kept VALUES (3, 'never committed')`);
    a.release(new Error('dropped mid-transaction'));
    const b = await db.pool.connect();
    try {
      // The same statement name parses again (the old one is gone), the temp table and the open transaction too.
      expect((await b.query({ name: 'tg_named', text: 'SELECT 2 AS two' })).rows[0]).toEqual({ two: 2 });
      expect((await b.query(`SELECT to_regclass('pg_temp.scratch') AS t`)).rows[0]).toEqual({ t: null });
      expect((await b.query('SELECT count(*)::int AS n FROM kept WHERE id = 3')).rows[0]).toEqual({ n: 0 });
    } finally {
      b.release();
    }
  });

  it('closes cleanly and opens again with its data', async () => {
    await db.close();
    db = await openDatabase(`pglite://${dir}`);
    expect((await db.query('SELECT count(*)::int AS n FROM kept')).rows[0]).toEqual({ n: 1 });
  });
});
