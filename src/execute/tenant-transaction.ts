import type pg from 'pg';
import type { AccessLevel } from '../config/types.ts';
import { setStatementBudget } from '../db/embedded.ts';
import { TenantGateError } from '../errors/index.ts';
import { SETTING_MAC, SETTING_TENANT } from '../provision/names.ts';

/** The tenant context of one transaction, with everything resolved up front (no work per request). */
export interface TenantContext {
  tenant: string;
  access: AccessLevel;
  /** Database role the transaction runs as (shared per access level, so plans stay cached). */
  role: string;
  /** HMAC of the tenant: the policy function accepts the tenant only with it. */
  mac: string;
  statementTimeoutMs: number;
  /** Schemas searched before the session's search_path (a schema-tier tenant's own); null keeps it as it is. */
  searchPath: string | null;
}

/** A pg-compatible client valid only inside one tenant transaction (fail closed afterwards). */
export interface TenantClient {
  query<R extends pg.QueryResultRow = Record<string, unknown>>(text: string | pg.QueryConfig, values?: unknown[]): Promise<pg.QueryResult<R>>;
  escapeIdentifier(s: string): string;
  escapeLiteral(s: string): string;
  /** No-op: the transaction owns the connection (lets Kysely and Drizzle treat this as a pool client). */
  release(): void;
}

/**
 * The context statement in its two prepared forms, made once: most tenants are pooled and keep the
 * session's search_path, so they send no search_path at all (and pgbench can replay it: no NULL);
 * a schema-tier tenant's puts its own schema first.
 */
export interface ContextForms {
  plain: { name: string; text: string };
  schema: { name: string; text: string };
}

export function contextForms(name: string, text: string, params: number): ContextForms {
  return {
    plain: { name, text },
    schema: { name: `${name}_s`, text: `${text}, set_config('search_path', $${params + 1} || ', ' || current_setting('search_path'), true)` },
  };
}

/** The context statement for one transaction, with its values. */
export function contextStatement(forms: ContextForms, values: unknown[], searchPath: string | null): { name: string; text: string; values: unknown[] } {
  return searchPath === null ? { ...forms.plain, values } : { ...forms.schema, values: [...values, searchPath] };
}

/** The tenant context every transaction sets ($1 role, $2 tenant, $3 its MAC, $4 statement timeout), all transaction-local. */
export const CONTEXT_SETTINGS = `SELECT set_config('role', $1, true), set_config('${SETTING_TENANT}', $2, true), set_config('${SETTING_MAC}', $3, true), set_config('statement_timeout', $4, true)`;

const CONTEXT_SQL = contextForms('tenantgate_context', CONTEXT_SETTINGS, 4);

/**
 * Sent at the end of every transaction (pipelined with COMMIT: no extra round trip). Session-
 * level state the callback may have left (SET ROLE, SET tenantgate.*, temp tables, which
 * pg_temp would let shadow a dataset, WITH HOLD cursors holding its rows, LISTENs, advisory
 * locks, sequence caches) must reach neither the next tenant's transaction on this connection
 * nor anything using the pool outside withTenant. The last statement counts the prepared
 * statements: SQL can DEALLOCATE the driver's named statements (tenantgate_context among
 * them) and PREPARE its own under the same name, which the driver would then run blindly in
 * the next tenant's transaction. Statements made by SQL (`from_sql`), or a count that differs
 * from what the driver prepared, mean the connection is destroyed instead of reused.
 */
const SCRUB =
  // CLOSE ALL first: a WITH HOLD cursor is materialised at COMMIT, as whatever role is current then.
  'CLOSE ALL; RESET ALL; RESET ROLE; RESET SESSION AUTHORIZATION; DISCARD TEMP; DISCARD SEQUENCES; UNLISTEN *; ' +
  'SELECT pg_advisory_unlock_all(); SELECT count(*) FILTER (WHERE from_sql)::int AS by_sql, count(*)::int AS total FROM pg_prepared_statements';

/** Named statements the driver believes this connection has prepared. */
function driverPrepared(client: pg.PoolClient): number | undefined {
  const parsed = (client as unknown as { connection?: { parsedStatements?: Record<string, string> } }).connection?.parsedStatements;
  return parsed ? Object.keys(parsed).length : undefined;
}

/** Whether the prepared statements on the connection are exactly the driver's own. */
function preparedIntact(client: pg.PoolClient, results: unknown): boolean {
  const list = Array.isArray(results) ? (results as pg.QueryResult[]) : [results as pg.QueryResult];
  const row = list.find((r) => r?.fields?.some((f) => f.name === 'by_sql'))?.rows[0] as { by_sql: number; total: number } | undefined;
  if (!row) return false;
  const expected = driverPrepared(client);
  return row.by_sql === 0 && (expected === undefined || row.total === expected);
}

/**
 * Drop every prepared statement on the connection and make the driver forget its own, so each
 * is parsed afresh. PGlite has one session that no pool can replace: it must be repaired.
 */
async function forgetPrepared(client: pg.PoolClient): Promise<boolean> {
  const connection = (client as unknown as { connection?: { parsedStatements?: Record<string, string> } }).connection;
  if (!connection?.parsedStatements) return false;
  try {
    await client.query('DEALLOCATE ALL');
  } catch {
    return false;
  }
  connection.parsedStatements = {};
  return true;
}

/** Scrub the session after a failed or foreign-ended transaction; false when it cannot be trusted again. */
async function scrub(client: pg.PoolClient): Promise<boolean> {
  return client.query(SCRUB).then(
    async (r) => preparedIntact(client, r) || forgetPrepared(client),
    () => false,
  );
}

/**
 * Run `fn` in one transaction as one tenant. Settings are transaction-local (`set_config(…, true)`),
 * so a pooled connection cannot carry them into the next transaction. BEGIN, the context and the
 * callback's first statement go out together when the pool pipelines (one round trip), then COMMIT.
 */
export async function runTenantTransaction<T>(pool: pg.Pool, ctx: TenantContext, fn: (client: TenantClient) => Promise<T>, options: { writable?: boolean } = {}): Promise<T> {
  let client: pg.PoolClient;
  try {
    client = await pool.connect();
  } catch (err) {
    throw new TenantGateError('DB_UNAVAILABLE', 'could not get a database connection', { cause: err });
  }
  // The embedded database has no timer of its own: its watchdog holds each round trip to the
  // tenant's timeout (57014 past it, as on a server). Nothing on a server.
  setStatementBudget(client, ctx.statementTimeoutMs);
  let open = true;
  let broken: unknown;
  // Readers run READ ONLY, unless the caller must write beside them (the durable audit record; the
  // read roles still hold no write grant or policy on any dataset).
  const beginSql = (ctx.access === 'read' || ctx.access === 'platform') && !options.writable ? 'BEGIN READ ONLY' : 'BEGIN';
  const contextQuery = contextStatement(CONTEXT_SQL, [ctx.role, ctx.tenant, ctx.mac, String(ctx.statementTimeoutMs)], ctx.searchPath);
  // With a pipelining pool BEGIN, the context and fn's first statement share one round trip;
  // without one (the embedded database) they are awaited in turn.
  const pipelined = (client as unknown as { pipeline?: boolean }).pipeline === true;
  // Corked, BEGIN, the context and a first statement fn issues synchronously leave in one
  // socket write (each write is a syscall; docs/benchmarks.md measured this).
  const stream = pipelined ? (client as unknown as { connection?: { stream?: { cork?(): void; uncork?(): void } } }).connection?.stream : undefined;
  let corked = Boolean(stream?.cork);
  if (corked) stream?.cork?.();
  const uncork = () => {
    if (corked) stream?.uncork?.();
    corked = false;
  };
  const setup = pipelined
    ? Promise.all([client.query(beginSql), client.query(contextQuery)])
    : client.query(beginSql).then(() => client.query(contextQuery));
  if (!pipelined) await setup.catch(() => undefined);
  // Observe setup failures now so they are never unhandled; they are rethrown below as the root cause.
  const ready = setup.then(
    () => undefined,
    (err: unknown) => {
      broken = err;
    },
  );
  const tx: TenantClient = {
    query(text: string | pg.QueryConfig, values?: unknown[]) {
      if (!open) return Promise.reject(new TenantGateError('TENANT_CONTEXT_REQUIRED', 'this client belongs to a finished tenant transaction'));
      return client.query(text as string, values) as Promise<never>;
    },
    escapeIdentifier: (s) => client.escapeIdentifier(s),
    escapeLiteral: (s) => client.escapeLiteral(s),
    release() {},
  };
  try {
    let result: T;
    try {
      let pending: Promise<T>;
      try {
        pending = fn(tx);
      } finally {
        uncork();
      }
      result = await pending;
    } catch (err) {
      await ready;
      throw broken ?? err;
    }
    await ready;
    if (broken) throw broken;
    open = false;
    const ended = await client.query(`${SCRUB}; COMMIT`);
    setStatementBudget(client, undefined);
    // Committed: the result stands either way; a tampered connection is repaired or closed, never reused as it is.
    client.release(preparedIntact(client, ended) || (await forgetPrepared(client)) ? undefined : new Error('tenantgate: prepared statements changed by SQL; connection closed'));
    return result;
  } catch (err) {
    open = false;
    const rolledBack = await client.query('ROLLBACK').then(
      () => true,
      () => false,
    );
    // The callback may have committed on its own and changed the session after that.
    const clean = rolledBack && (await scrub(client));
    setStatementBudget(client, undefined);
    // A connection that could not be rolled back and scrubbed is destroyed, never reused by another tenant.
    client.release(clean ? undefined : (err as Error));
    throw mapDatabaseError(err);
  }
}

/** Turn driver errors into stable codes; anything unknown stays as it is for the caller. */
export function mapDatabaseError(err: unknown): unknown {
  const code = (err as { code?: string })?.code;
  if (code === '57014') return new TenantGateError('QUERY_TIMEOUT', 'the statement ran past the statement timeout', { cause: err });
  if (code === '42501') return new TenantGateError('POLICY_DENIED', 'permission denied by the database', { cause: err });
  // Raised by tenantgate.move_capture at a moving tenant's old place while its writes pause.
  if (code === 'TGMOV') return new TenantGateError('TENANT_MOVING', 'the tenant is being moved: writes pause briefly, retry', { cause: err, headers: { 'retry-after': '1' } });
  if (code && /^(08|57P0)/.test(code)) return new TenantGateError('DB_UNAVAILABLE', 'the database connection failed', { cause: err });
  return err;
}
