/**
 * Prototypes of changes to the tenant transaction, measured beside the real `withTenant` so the
 * report can say what each would buy. None of this is library code: it sends the same
 * statements with the same context (role, tenant, HMAC, statement timeout, read only), only
 * packed differently on the wire.
 */
import pg from 'pg';
// pg has no public API for several statements under one Sync; its Query class does the encoding.
// @ts-expect-error pg/lib/query.js has no type declarations
import Query from 'pg/lib/query.js';
import { SETTING_MAC, SETTING_TENANT } from '../src/provision/names.ts';

export interface Statement {
  name: string;
  text: string;
  values: unknown[];
}

interface WireConnection {
  parsedStatements: Record<string, string>;
  parse(msg: { text: string; name: string }): void;
  bind(msg: { statement: string; values: unknown[]; valueMapper: (v: unknown) => unknown }): void;
  describe(msg: { type: 'P'; name: string }): void;
  execute(msg: Record<string, never>): void;
  sync(): void;
}

const QueryBase = Query as unknown as new (config: pg.QueryConfig) => { prepare(connection: WireConnection): void; callback?: (err: Error | null, res: unknown) => void };

/**
 * Parse (first time only)/Bind/Describe/Execute for every statement, then a single Sync: one
 * socket write, one implicit transaction on the server, one flush back. pg's pipeline mode sends
 * a Sync (and so gets a ReadyForQuery and a server-side flush) after every statement.
 */
class Batch extends QueryBase {
  constructor(private readonly statements: Statement[]) {
    super({ text: 'batch', name: 'tg_bench_batch', values: [] });
  }
  override prepare(connection: WireConnection): void {
    for (const st of this.statements) {
      if (connection.parsedStatements[st.name] === undefined) {
        connection.parse({ text: st.text, name: st.name });
        connection.parsedStatements[st.name] = st.text;
      }
      connection.bind({ statement: st.name, values: st.values, valueMapper: (v) => (v == null ? null : String(v)) });
      connection.describe({ type: 'P', name: '' });
      connection.execute({});
    }
    connection.sync();
  }
}

/** Run statements as one batch; resolves to one result per statement. */
export function runBatch(client: pg.PoolClient, statements: Statement[]): Promise<pg.QueryResult[]> {
  return new Promise((resolve, reject) => {
    const q = new Batch(statements);
    q.callback = (err, res) => (err ? reject(err) : resolve(Array.isArray(res) ? (res as pg.QueryResult[]) : [res as pg.QueryResult]));
    client.query(q as unknown as pg.QueryConfig);
  });
}

/**
 * The context statement of the one-Sync path: the same settings as the library's, plus read only
 * (there is no BEGIN READ ONLY in an implicit transaction; setting it read-only is always allowed).
 */
export const CONTEXT_READ_ONLY_SQL = `SELECT set_config('role', $1, true), set_config('${SETTING_TENANT}', $2, true), set_config('${SETTING_MAC}', $3, true), set_config('statement_timeout', $4, true), set_config('transaction_read_only', 'on', true)`;

/** The library's context statement, verbatim. */
export const CONTEXT_SQL = `SELECT set_config('role', $1, true), set_config('${SETTING_TENANT}', $2, true), set_config('${SETTING_MAC}', $3, true), set_config('statement_timeout', $4, true)`;

export interface Context {
  role: string;
  tenant: string;
  mac: string;
  timeoutMs: number;
}

/**
 * One statement as one tenant in one batch: context + statement, one Sync (implicit transaction:
 * the settings end with it, an error rolls all of it back, nothing stays open on the connection).
 */
export async function oneSync(pool: pg.Pool, ctx: Context, statement: Statement): Promise<pg.QueryResult> {
  const client = await pool.connect();
  try {
    const results = await runBatch(client, [{ name: 'tg_ctx_ro', text: CONTEXT_READ_ONLY_SQL, values: [ctx.role, ctx.tenant, ctx.mac, String(ctx.timeoutMs)] }, statement]);
    client.release();
    return results[results.length - 1] as pg.QueryResult;
  } catch (err) {
    client.release(err as Error);
    throw err;
  }
}

/**
 * One statement as one tenant in one round trip with pg's public API: BEGIN, context, statement
 * and COMMIT queued on a pipelining client with the socket corked, so they leave in one write.
 */
export async function oneRoundTrip(pool: pg.Pool, ctx: Context, statement: Statement): Promise<pg.QueryResult> {
  const client = await pool.connect();
  const stream = (client as unknown as { connection: { stream: { cork(): void; uncork(): void } } }).connection.stream;
  try {
    stream.cork();
    const all = Promise.all([
      client.query('BEGIN READ ONLY'),
      client.query({ name: 'tg_ctx', text: CONTEXT_SQL, values: [ctx.role, ctx.tenant, ctx.mac, String(ctx.timeoutMs)] }),
      client.query({ name: statement.name, text: statement.text, values: statement.values }),
      client.query('COMMIT'),
    ]);
    stream.uncork();
    const [, , result] = await all;
    client.release();
    return result;
  } catch (err) {
    await client.query('ROLLBACK').catch(() => {});
    client.release(err as Error);
    throw err;
  }
}

/**
 * `withTenant` as it is (explicit transaction, any callback, COMMIT after it), except that BEGIN,
 * the context and the callback's first statement leave in one socket write instead of three:
 * the socket is corked while they are queued and uncorked once the callback has started.
 */
export async function corkedTransaction<T>(pool: pg.Pool, ctx: Context, fn: (client: pg.PoolClient) => Promise<T>): Promise<T> {
  const client = await pool.connect();
  const stream = (client as unknown as { connection: { stream: { cork(): void; uncork(): void } } }).connection.stream;
  try {
    stream.cork();
    let setup: Promise<unknown>;
    let work: Promise<T>;
    try {
      setup = Promise.all([client.query('BEGIN READ ONLY'), client.query({ name: 'tg_ctx', text: CONTEXT_SQL, values: [ctx.role, ctx.tenant, ctx.mac, String(ctx.timeoutMs)] })]);
      work = fn(client);
    } finally {
      stream.uncork();
    }
    await setup;
    const result = await work;
    await client.query('COMMIT');
    client.release();
    return result;
  } catch (err) {
    await client.query('ROLLBACK').catch(() => {});
    client.release(err as Error);
    throw err;
  }
}
