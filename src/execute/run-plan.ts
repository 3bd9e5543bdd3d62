import pg from 'pg';
import type { AccessLevel } from '../config/types.ts';
import { TenantGateError } from '../errors/index.ts';
import type { TenantGate } from '../gate.ts';
import type { QueryAnswer, QueryPlan } from '../plan/types.ts';
import { ALL_TENANTS } from '../tenancy/tenant-id.ts';

const NUMERIC = 1700;
const INT8 = 20;
/** Up to 15 significant digits a decimal string survives the trip through a double exactly. */
const SAFE_DECIMAL = /^-?(?=(?:\D*\d){1,15}\D*$)\d+(\.\d+)?$/;

/**
 * numeric and bigint as JSON numbers when that loses nothing, as strings otherwise. Done on
 * the rows, not with a per-query `types` option (PGlite's node-postgres shim never answers
 * a query that carries one).
 */
function numbersWhereExact(rows: unknown[][], fields: pg.FieldDef[]): void {
  const cols = fields.flatMap((f, i) => (f.dataTypeID === NUMERIC || f.dataTypeID === INT8 ? [i] : []));
  if (cols.length === 0) return;
  for (const row of rows) {
    for (const i of cols) {
      const v = row[i];
      if (typeof v === 'string' && SAFE_DECIMAL.test(v)) row[i] = Number(v);
    }
  }
}

/** SQLSTATEs whose message only echoes the caller's own SQL or values. */
const ECHO_MESSAGE = new Set(['42703', '42883', '42804', '42803', '42702', '42725', '22P02', '22007', '22008', '22003', '22012', '2201W', '2201X', '42P10', '42P18', '42601']);

/**
 * execute(plan, ctx): one tenant transaction, the plan's SQL with its parameters, rows as
 * arrays, capped at max_rows. Database errors become stable codes; their text is passed on
 * only when it can only echo the caller's own input (a unique violation's detail could name
 * another tenant's key, so it never is).
 */
export async function runPlan(
  gate: TenantGate,
  scope: { tenant: string | null; access: AccessLevel },
  plan: QueryPlan,
  options: { durable?: (answer: QueryAnswer) => { text: string; values: unknown[] } } = {},
): Promise<QueryAnswer> {
  const access: AccessLevel = scope.tenant === null ? 'platform' : plan.write ? (scope.access === 'admin' ? 'admin' : 'write') : scope.access;
  const { durable } = options;
  try {
    const result = await gate.statement(
      { tenant: scope.tenant ?? ALL_TENANTS, access },
      { text: plan.sql, values: plan.params, rowMode: 'array' },
      // Durable audit: the record goes into the request's own transaction, so no answer (and no
      // write) exists without it.
      durable ? { after: (r) => durable(toAnswer(plan, r)) } : {},
    );
    return toAnswer(plan, result);
  } catch (err) {
    throw toGatewayError(err);
  }
}

/** Rows as arrays, numbers where exact, capped at max_rows (one more was fetched to tell `truncated`). Idempotent. */
function toAnswer(plan: QueryPlan, result: pg.QueryResult): QueryAnswer {
  const rows = (result.rows as unknown as unknown[][]) ?? [];
  numbersWhereExact(rows, result.fields ?? []);
  const truncated = !plan.write && rows.length > plan.maxRows;
  const kept = truncated ? rows.slice(0, plan.maxRows) : rows;
  return {
    columns: (result.fields ?? []).map((f) => f.name),
    rows: kept,
    row_count: plan.write && result.fields?.length === 0 ? (result.rowCount ?? 0) : kept.length,
    truncated,
  };
}

export function toGatewayError(err: unknown): unknown {
  if (err instanceof TenantGateError) {
    const cause = err.cause as { code?: string } | undefined;
    if (err.code === 'POLICY_DENIED' && cause?.code === '42501') return new TenantGateError('POLICY_DENIED', 'not allowed by the database: a restricted column or another tenant\'s rows', { cause });
    return err;
  }
  const e = err as { code?: string; message?: string };
  const code = e?.code;
  if (typeof code !== 'string' || !/^[0-9A-Z]{5}$/.test(code)) return err;
  if (code === '42501') return new TenantGateError('POLICY_DENIED', 'not allowed by the database', { cause: err });
  if (code === '25006') return new TenantGateError('POLICY_DENIED', 'read access cannot write', { cause: err });
  if (code === '57014') return new TenantGateError('QUERY_TIMEOUT', 'the statement ran past the statement timeout', { cause: err });
  if (/^(08|57P)/.test(code)) return new TenantGateError('DB_UNAVAILABLE', 'the database connection failed', { cause: err });
  if (code.startsWith('54')) return new TenantGateError('QUERY_INVALID', 'the statement exceeds a database limit', { cause: err });
  if (code.startsWith('21')) return new TenantGateError('QUERY_INVALID', 'a subquery returned more than one row, or a cardinality rule was broken', { cause: err });
  if (code.startsWith('23')) return new TenantGateError('QUERY_INVALID', 'the write violates a constraint', { cause: err });
  if (ECHO_MESSAGE.has(code)) return new TenantGateError('QUERY_INVALID', e.message ?? 'invalid query', { cause: err });
  if (/^(22|42)/.test(code)) return new TenantGateError('QUERY_INVALID', 'the query is not valid for this dataset', { cause: err });
  return new TenantGateError('INTERNAL', 'the database failed the query', { cause: err });
}
