import { createHash } from 'node:crypto';
import type pg from 'pg';
// pg has no public API for several statements under one Sync; its Query class does the encoding
// (pinned: pg ^8.23). Used only on a PostgreSQL server; PGlite takes the transaction path.
// @ts-expect-error pg/lib/query.js has no type declarations
import Query from 'pg/lib/query.js';
// @ts-expect-error pg/lib/result.js has no type declarations
import Result from 'pg/lib/result.js';
// @ts-expect-error pg/lib/utils.js has no type declarations
import pgUtils from 'pg/lib/utils.js';
import { TenantGateError } from '../errors/index.ts';
import { CONTEXT_SETTINGS, contextForms, contextStatement, mapDatabaseError, type TenantContext } from './tenant-transaction.ts';

interface WireConnection {
  parsedStatements: Record<string, string>;
  parse(msg: { text: string; name: string }): void;
  close(msg: { type: 'S'; name: string }): void;
  bind(msg: { statement: string; values: unknown[]; valueMapper: (v: unknown) => unknown }): void;
  describe(msg: { type: 'P'; name: string }): void;
  execute(msg: Record<string, never>): void;
  sync(): void;
}

interface Statement {
  name: string;
  text: string;
  values: unknown[];
}

const QueryBase = Query as unknown as new (text: string) => {
  prepare(connection: WireConnection): void;
  callback?: (err: Error | null, res: unknown) => void;
  queryMode?: string;
  _rowMode?: string;
  _result: unknown;
  _results: unknown;
};
const ResultClass = Result as new (rowMode?: string, types?: unknown) => unknown;

/**
 * Parse (first time per connection)/Bind/Describe/Execute for each statement, then ONE Sync:
 * one socket write, one implicit transaction on the server, one answer. Settings made with
 * `set_config(…, true)` end at that Sync, and an error anywhere rolls all of it back.
 */
class Batch extends QueryBase {
  constructor(
    private readonly statements: Statement[],
    rowMode?: 'array',
  ) {
    // A text, not a config object: pg copies a config through its property descriptors, a few µs on
    // every request. What a config would have set is set here instead.
    super('tenantgate batch');
    // queryMode 'extended' makes pg call prepare(); a name would be recorded as a prepared statement that never exists.
    this.queryMode = 'extended';
    if (rowMode) {
      this._rowMode = rowMode;
      this._result = this._results = new ResultClass(rowMode);
    }
  }

  /** Named statements this batch parses: recorded as prepared only once the server accepted the batch. */
  readonly parsed: Statement[] = [];

  override prepare(connection: WireConnection): void {
    for (const st of this.statements) {
      if (!st.name || connection.parsedStatements[st.name] === undefined) {
        // Close first: a Parse that failed earlier leaves nothing, one that worked unrecorded would clash.
        if (st.name) connection.close({ type: 'S', name: st.name });
        connection.parse({ text: st.text, name: st.name });
        if (st.name) this.parsed.push(st);
      }
      connection.bind({ statement: st.name, values: st.values, valueMapper: pgUtils.prepareValue });
      connection.describe({ type: 'P', name: '' });
      connection.execute({});
    }
    connection.sync();
  }
}

/** The context of a one-statement unit: the transaction's settings plus read-only (no BEGIN to carry it). */
const CONTEXT = contextForms('tenantgate_context_1', `${CONTEXT_SETTINGS}, set_config('transaction_read_only', $5, true)`, 5);

/** Prepared statements kept per connection for repeated plan texts; past this, statements go unnamed. */
const MAX_NAMED_PER_CONNECTION = 256;

const names = new Map<string, string>();
/** A stable prepared-statement name per SQL text (hashed once per text, not per request). */
function statementName(text: string): string {
  let n = names.get(text);
  if (!n) {
    n = `tg_${createHash('sha1').update(text).digest('base64url').slice(0, 20)}`;
    if (names.size >= 10_000) names.delete(names.keys().next().value as string);
    names.set(text, n);
  }
  return n;
}

/**
 * Run ONE statement as one tenant, context and statement under a single Sync: the cheapest
 * tenant-scoped unit PostgreSQL offers (one write, one round trip, one implicit transaction;
 * nothing session-level can survive it because the statement is the gateway's own checked plan).
 * For the gateway's execute stage; callbacks with several statements use runTenantTransaction.
 */
export async function runTenantStatement(pool: pg.Pool, ctx: TenantContext, statement: { text: string; values: unknown[]; rowMode?: 'array' }): Promise<pg.QueryResult> {
  let client: pg.PoolClient;
  try {
    client = await pool.connect();
  } catch (err) {
    throw new TenantGateError('DB_UNAVAILABLE', 'could not get a database connection', { cause: err });
  }
  const connection = (client as unknown as { connection: WireConnection }).connection;
  const named = statementName(statement.text);
  const reuse = connection.parsedStatements[named] !== undefined || Object.keys(connection.parsedStatements).length < MAX_NAMED_PER_CONNECTION;
  const readOnly = ctx.access === 'read' || ctx.access === 'platform' ? 'on' : 'off';
  try {
    const results = await new Promise<pg.QueryResult[]>((resolve, reject) => {
      const q = new Batch(
        [
          contextStatement(CONTEXT, [ctx.role, ctx.tenant, ctx.mac, String(ctx.statementTimeoutMs), readOnly], ctx.searchPath),
          { name: reuse ? named : '', text: statement.text, values: statement.values },
        ],
        statement.rowMode,
      );
      q.callback = (err, res) => {
        if (err) return reject(err);
        for (const st of q.parsed) connection.parsedStatements[st.name] = st.text;
        resolve(Array.isArray(res) ? (res as pg.QueryResult[]) : [res as pg.QueryResult]);
      };
      client.query(q as unknown as pg.QueryConfig);
    });
    client.release();
    return results[results.length - 1] as pg.QueryResult;
  } catch (err) {
    // A server error leaves the connection clean (the implicit transaction is gone at Sync);
    // anything else (a broken socket) must not return it to the pool.
    const serverError = typeof (err as { code?: unknown })?.code === 'string' && /^[0-9A-Z]{5}$/.test((err as { code: string }).code);
    client.release(serverError ? undefined : (err as Error));
    throw mapDatabaseError(err);
  }
}
