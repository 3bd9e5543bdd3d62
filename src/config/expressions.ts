import { parseSql } from '../plan/sql/parser.ts';

/**
 * Row filters from the config (`rls.additional_filters`, `rls.expression`) end up inside
 * policies and gateway predicates. They are parsed with the real PostgreSQL parser and only
 * a small expression grammar is accepted: columns, constants, placeholders, comparisons,
 * AND/OR/NOT, IS [NOT] NULL, IS [NOT] TRUE/FALSE, IN lists, LIKE and casts to simple types.
 * No functions, no subqueries: nothing that could read another table or change a setting.
 */
export interface RowExpression {
  /** SQL text with each placeholder replaced by `\u0000<n>\u0000` (index into `placeholders`). */
  template: string;
  /** Placeholder names in order: `tenant` or a tenant attribute name. */
  placeholders: string[];
  /** Column names the expression reads. */
  columns: string[];
}

const OPERATORS = new Set(['=', '<>', '!=', '<', '>', '<=', '>=', '~~', '!~~', '~~*', '!~~*']);
const ARITHMETIC = new Set(['+', '-', '*', '/', '%']);
const CAST_TYPES = new Set(['text', 'varchar', 'int4', 'int8', 'int2', 'numeric', 'bool', 'date', 'timestamp', 'timestamptz', 'float8', 'float4', 'uuid']);
const PLACEHOLDER = /'\{([a-z_][a-z0-9_]*)\}'|\{([a-z_][a-z0-9_]*)\}/g;

export class ExpressionError extends Error {}

/** Parse and check one filter expression. Throws ExpressionError naming what is not allowed. */
export function compileRowExpression(source: string): RowExpression {
  const placeholders: string[] = [];
  const withParams = source.replace(PLACEHOLDER, (_m, quoted?: string, bare?: string) => {
    placeholders.push((quoted ?? bare) as string);
    return `$${placeholders.length}`;
  });
  if (/[{}]/.test(withParams)) throw new ExpressionError('placeholders look like {name} with a lower-case name');
  if (withParams.includes(';')) throw new ExpressionError('must be one expression, without ";"');
  const prefix = 'SELECT 1 WHERE ';
  const parsed = parseSql(prefix + withParams);
  if (!parsed.ok) throw new ExpressionError(`is not valid SQL: ${parsed.error.message}`);
  const stmts = parsed.tree.stmts;
  const select = stmts.length === 1 ? (stmts[0]?.stmt['SelectStmt'] as Record<string, unknown> | undefined) : undefined;
  const where = select?.['whereClause'];
  if (!select || !where || Object.keys(select).some((k) => !['whereClause', 'targetList', 'limitOption', 'op'].includes(k))) {
    throw new ExpressionError('must be a single boolean expression');
  }
  const columns = new Set<string>();
  const params: Array<{ location: number; number: number }> = [];
  checkNode(where, columns, params, ROW_RULES);
  // Rebuild the text with placeholder markers at the parser's own offsets, never by a second regex.
  let template = '';
  let cursor = 0;
  for (const p of params.sort((a, b) => a.location - b.location)) {
    const at = p.location - prefix.length;
    const len = `$${p.number}`.length;
    template += withParams.slice(cursor, at) + `\u0000${p.number - 1}\u0000`;
    cursor = at + len;
  }
  template += withParams.slice(cursor);
  return { template, placeholders, columns: [...columns] };
}

/** Fill a compiled expression's placeholders with SQL fragments. */
export function renderRowExpression(expr: RowExpression, fill: (name: string) => string): string {
  return expr.template.replace(/\u0000(\d+)\u0000/g, (_m, i: string) => fill(expr.placeholders[Number(i)] as string));
}

interface Rules {
  /** Function names allowed (lower case); none in row filters. */
  functions: Set<string>;
}
const ROW_RULES: Rules = { functions: new Set() };
/** Metric functions: aggregates and a little arithmetic, nothing that reads outside the row set. */
export const METRIC_FUNCTIONS = new Set(['sum', 'count', 'avg', 'min', 'max', 'round', 'abs', 'coalesce', 'nullif', 'stddev', 'variance', 'bool_and', 'bool_or']);
const METRIC_RULES: Rules = { functions: METRIC_FUNCTIONS };

export interface MetricExpression {
  /** The checked SQL text (an aggregate expression over the dataset's columns). */
  sql: string;
  columns: string[];
}

/** Parse and check a metric (`sum(amount)`, `count(*)`, `sum(a) / nullif(count(*), 0)`). */
export function compileMetric(source: string): MetricExpression {
  if (source.includes(';')) throw new ExpressionError('must be one expression, without ";"');
  const parsed = parseSql(`SELECT ${source}`);
  if (!parsed.ok) throw new ExpressionError(`is not valid SQL: ${parsed.error.message}`);
  const stmts = parsed.tree.stmts;
  const select = stmts.length === 1 ? (stmts[0]?.stmt['SelectStmt'] as Record<string, unknown> | undefined) : undefined;
  const targets = select?.['targetList'] as Array<{ ResTarget?: { val?: unknown; name?: string } }> | undefined;
  if (!select || !targets || targets.length !== 1 || targets[0]?.ResTarget?.name || Object.keys(select).some((k) => !['targetList', 'limitOption', 'op'].includes(k))) {
    throw new ExpressionError('must be a single expression');
  }
  const columns = new Set<string>();
  checkNode(targets[0]?.ResTarget?.val, columns, [], METRIC_RULES);
  if (!/\b(sum|count|avg|min|max|stddev|variance|bool_and|bool_or)\s*\(/i.test(source)) throw new ExpressionError('must aggregate (sum, count, avg, min, max, ...)');
  return { sql: source.trim(), columns: [...columns] };
}

function checkNode(node: unknown, columns: Set<string>, params: Array<{ location: number; number: number }>, rules: Rules): void {
  if (Array.isArray(node)) {
    for (const n of node) checkNode(n, columns, params, rules);
    return;
  }
  if (!node || typeof node !== 'object') throw new ExpressionError('has an unexpected element');
  const entries = Object.entries(node as Record<string, unknown>);
  if (entries.length !== 1) throw new ExpressionError('has an unexpected element');
  const [kind, body] = entries[0] as [string, Record<string, unknown>];
  switch (kind) {
    case 'ColumnRef': {
      const fields = body['fields'] as Array<Record<string, { sval?: string }>>;
      const name = fields.length === 1 ? fields[0]?.['String']?.sval : undefined;
      if (!name || !/^[a-z_][a-z0-9_]*$/.test(name)) throw new ExpressionError('may name only plain columns of the table');
      columns.add(name);
      return;
    }
    case 'A_Const':
      return;
    case 'ParamRef':
      params.push({ location: body['location'] as number, number: body['number'] as number });
      return;
    case 'A_Expr': {
      const name = (body['name'] as Array<{ String?: { sval?: string } }>)?.[0]?.String?.sval;
      const k = body['kind'] as string;
      const metric = rules === METRIC_RULES;
      const okKind = ['AEXPR_OP', 'AEXPR_IN', 'AEXPR_LIKE', 'AEXPR_ILIKE', 'AEXPR_BETWEEN', 'AEXPR_NOT_BETWEEN'].includes(k) || (metric && k === 'AEXPR_NULLIF');
      const okOp = OPERATORS.has(name ?? '') || (metric && ARITHMETIC.has(name ?? ''));
      if (!okKind || (k === 'AEXPR_OP' && !okOp)) throw new ExpressionError(`may not use operator ${name ?? k}`);
      if (body['lexpr']) checkNode(body['lexpr'], columns, params, rules);
      if (body['rexpr']) checkNode(body['rexpr'], columns, params, rules);
      return;
    }
    case 'List':
      checkNode(body['items'] ?? [], columns, params, rules);
      return;
    case 'BoolExpr':
      checkNode(body['args'], columns, params, rules);
      return;
    case 'NullTest':
    case 'BooleanTest':
      checkNode(body['arg'], columns, params, rules);
      return;
    case 'TypeCast': {
      const names = (body['typeName'] as { names?: Array<{ String?: { sval?: string } }> })?.names ?? [];
      const type = names[names.length - 1]?.String?.sval ?? '';
      if (!CAST_TYPES.has(type)) throw new ExpressionError(`may not cast to ${type}`);
      checkNode(body['arg'], columns, params, rules);
      return;
    }
    case 'FuncCall': {
      const names = (body['funcname'] as Array<{ String?: { sval?: string } }>) ?? [];
      const fn = names.length === 1 ? names[0]?.String?.sval : undefined;
      if (!fn || !rules.functions.has(fn) || body['over'] || body['agg_filter'] || body['agg_order'] || body['func_variadic']) {
        throw new ExpressionError(`may not call ${names.map((n) => n.String?.sval).join('.') || 'that function'}`);
      }
      if (body['agg_star']) return;
      checkNode(body['args'] ?? [], columns, params, rules);
      return;
    }
    case 'CoalesceExpr':
    case 'MinMaxExpr':
      if (!rules.functions.has('coalesce')) throw new ExpressionError('may not contain function calls');
      checkNode(body['args'], columns, params, rules);
      return;
    default:
      throw new ExpressionError(`may not contain ${kind === 'FuncCall' ? 'function calls' : kind === 'SubLink' ? 'subqueries' : kind}`);
  }
}
