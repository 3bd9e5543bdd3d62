import { deparseSync } from 'pgsql-deparser';
import type { Tenant } from '../../config/types.ts';
import { ident } from '../../db/sql.ts';
import { TenantGateError } from '../../errors/index.ts';
import { slotValue, tenantPredicate, type DatasetView } from '../dataset-view.ts';
import type { QueryPlan } from '../types.ts';
import { checkStatement, MASK_FUNCTIONS, nameToken, type CheckResult } from './allowlist.ts';
import { parseSql, sqlFingerprint } from './parser.ts';

/** Everything about the caller that changes the checked, rewritten text (the tenant id does not: it is a parameter). */
export interface SqlScope {
  views: ReadonlyMap<string, DatasetView>;
  /** null: a platform admin reading all tenants. */
  tenant: Tenant | null;
  write: boolean;
  maxRows: number;
  /** Distinguishes scopes whose rewritten text differs (access, per-tenant column overrides, all tenants). */
  cacheKey: string;
}

interface Template {
  sql: string;
  /** Number of caller parameters ($1..$n). */
  userParams: number;
  /** Names of the slots after them: `tenant`, tenant attributes. */
  slots: string[];
  kind: CheckResult['kind'];
  datasets: string[];
  /** The caller's statement without its literal values, and its libpg_query fingerprint (audit trail). */
  normalized: string;
  fingerprint: string;
}

export const MAX_SQL_LENGTH = 100_000;
const MAX_PARAMS = 1000;

function syntax(message: string): TenantGateError {
  return new TenantGateError('SQL_SYNTAX', message);
}

/**
 * The SQL endpoint's planner: parse with the PostgreSQL parser, check the allowlist, wrap
 * every dataset reference in a subquery that carries the tenant predicate and only the
 * columns the tenant may read (masks applied), cap the rows. Checked plans are cached by
 * scope and SQL text, with the tenant as a parameter; a cache hit does no parsing.
 */
export class SqlPlanner {
  private readonly cache = new Map<string, Template>();

  constructor(private readonly capacity = 2000) {}

  plan(request: { sql: string; params?: unknown[] }, scope: SqlScope): QueryPlan {
    const params = request.params ?? [];
    if (typeof request.sql !== 'string' || request.sql.trim() === '') throw new TenantGateError('QUERY_INVALID', 'sql must be a non-empty string');
    // The parser stops at a NUL while the server would see the rest: refuse it outright.
    if (request.sql.includes('\u0000')) throw new TenantGateError('SQL_SYNTAX', 'the SQL contains a NUL character');
    if (request.sql.length > MAX_SQL_LENGTH) throw new TenantGateError('QUERY_INVALID', `sql is longer than ${MAX_SQL_LENGTH} characters`);
    if (!Array.isArray(params) || params.length > MAX_PARAMS) throw new TenantGateError('QUERY_INVALID', `params must be a list of at most ${MAX_PARAMS} values`);
    const key = `${scope.cacheKey}\u0000${request.sql}`;
    let template = this.cache.get(key);
    if (template) {
      // Refresh recency for the LRU.
      this.cache.delete(key);
      this.cache.set(key, template);
    } else {
      template = this.compile(request.sql, scope);
      this.cache.set(key, template);
      if (this.cache.size > this.capacity) this.cache.delete(this.cache.keys().next().value as string);
    }
    if (params.length !== template.userParams) {
      throw new TenantGateError('QUERY_INVALID', `the statement uses ${template.userParams} parameter(s); ${params.length} given`);
    }
    for (const p of params) {
      if (p !== null && !['string', 'number', 'boolean'].includes(typeof p)) throw new TenantGateError('QUERY_INVALID', 'params must be strings, numbers, booleans or null');
    }
    const values = [...params, ...template.slots.map((s) => slotValue(scope.tenant as Tenant, s))];
    const write = template.kind !== 'select';
    values.push(scope.maxRows + 1);
    return {
      sql: template.sql,
      params: write ? values.slice(0, -1) : values,
      fetchRows: scope.maxRows + 1,
      maxRows: scope.maxRows,
      write,
      datasets: template.datasets,
      tenantPredicate: scope.tenant !== null,
      normalized: template.normalized,
      fingerprint: template.fingerprint,
    };
  }

  get size(): number {
    return this.cache.size;
  }

  private readonly verifiedSubqueries = new Set<string>();

  /** Check a generated dataset subquery once per scope (its text differs only in parameter numbers). */
  private verifySubquery(scope: SqlScope, dataset: string): void {
    const key = `${scope.cacheKey}\u0000${dataset}`;
    if (this.verifiedSubqueries.has(key)) return;
    const view = scope.views.get(dataset) as DatasetView;
    verifyRewritten(`SELECT * FROM ${subquery(view, scope, (n) => `$${n.length}`)} AS x`, scope, 1);
    this.verifiedSubqueries.add(key);
  }

  private compile(source: string, scope: SqlScope): Template {
    let sql = source;
    const parsed = parseSql(sql);
    if (!parsed.ok) throw syntax(parsed.error.message);
    const stmts = parsed.tree.stmts;
    if (stmts.length !== 1) throw new TenantGateError('SQL_FORBIDDEN', stmts.length === 0 ? 'no statement given' : 'send exactly one statement');
    const first = stmts[0] as { stmt: Record<string, unknown>; stmt_location?: number; stmt_len?: number };
    const stmt = first.stmt;
    const check = checkStatement(stmt, sql, new Set(scope.views.keys()), scope.write);
    if (check.kind !== 'select') forbidWriteReads(stmt, scope.views.get(check.target as string) as DatasetView);
    // Keep the statement's own extent: a trailing ';' or comment must not swallow what is appended.
    const end = first.stmt_len ? (first.stmt_location ?? 0) + first.stmt_len : undefined;
    if (end !== undefined) sql = Buffer.from(sql, 'utf8').subarray(0, end).toString('utf8');
    const slots: string[] = [];
    const slot = (name: string) => {
      let i = slots.indexOf(name);
      if (i < 0) i = slots.push(name) - 1;
      return `$${check.maxParam + 1 + i}`;
    };
    const datasets = [...new Set([...check.reads.map((r) => r.name), ...(check.target ? [check.target] : [])])];
    let text = wrapReads(sql, check, scope, slot);
    // Defence in depth, cheaply: the caller's statement with every dataset reference replaced by a
    // stub must still pass the allowlist with no dataset left bare, and each generated subquery is
    // checked once per scope. Together they cover the exact text that will run.
    if (check.kind === 'select') {
      verifyRewritten(wrapReads(sql, check, scope, slot, true), scope, 0);
      for (const name of new Set(check.reads.map((r) => r.name))) this.verifySubquery(scope, name);
      // The row cap is the parameter after the tenant slots.
      const limit = `$${check.maxParam + slots.length + 1}`;
      text = `SELECT * FROM (${text}\n) AS tg_result LIMIT ${limit}`;
      return { sql: text, userParams: check.maxParam, slots, kind: 'select', datasets, ...sqlFingerprint(sql) };
    }
    text = rewriteWrite(text, check, scope, slot);
    verifyRewritten(text, scope, check.reads.length + 1);
    return { sql: text, userParams: check.maxParam, slots, kind: check.kind, datasets, ...sqlFingerprint(sql) };
  }
}

/**
 * Check the exact text that will run, not only the caller's: it must parse as one statement,
 * pass the allowlist again (mask functions allowed), and reach the dataset tables only through
 * the subqueries tenantgate wrote (`expected` qualified references, no bare dataset name left).
 */
function verifyRewritten(text: string, scope: SqlScope, expected: number): void {
  const parsed = parseSql(text);
  const stmt = parsed.ok && parsed.tree.stmts.length === 1 ? parsed.tree.stmts[0]!.stmt : undefined;
  const qualified = new Map([...scope.views.values()].map((v) => [`${v.dataset.schema}.${v.dataset.table}`, v.dataset.name]));
  let refs = -1;
  try {
    if (stmt) refs = checkStatement(stmt, text, new Set(), true, { qualified, extraFunctions: MASK_FUNCTIONS }).qualifiedRefs;
  } catch {
    refs = -1;
  }
  if (refs !== expected) throw new TenantGateError('SQL_FORBIDDEN', 'the statement could not be rewritten safely; simplify it');
}

/**
 * A write runs against the real table, so it must not read a masked or restricted column
 * (`WHERE email = …`, `SET region = email` would test or copy raw values).
 */
function forbidWriteReads(stmt: Record<string, unknown>, view: DatasetView): void {
  const d = view.dataset;
  for (const c of columnNames(stmt)) {
    if (!view.columns.has(c) || d.columns[c]?.mask) throw new TenantGateError('SQL_FORBIDDEN', `a write may not read column "${c}"`);
  }
}

/** Replace each dataset reference by a tenant-filtered subquery, splicing at the parser's byte offsets. */
function subquery(view: DatasetView, scope: SqlScope, slot: (name: string) => string): string {
  const d = view.dataset;
  const columns = [...view.columns].map(([c, expr]) => `${expr} AS ${ident(c)}`).join(', ');
  return `(SELECT ${columns} FROM ${ident(d.schema)}.${ident(d.table)} WHERE ${tenantPredicate(d, scope.tenant !== null, slot)})`;
}

function wrapReads(sql: string, check: CheckResult, scope: SqlScope, slot: (name: string) => string, stub = false): string {
  if (check.reads.length === 0) return sql;
  const bytes = Buffer.from(sql, 'utf8');
  const latin = bytes.toString('latin1'); // one char per byte, so parser offsets index it directly
  const parts: string[] = [];
  let cursor = 0;
  for (const ref of [...check.reads].sort((a, b) => a.location - b.location)) {
    const view = scope.views.get(ref.name) as DatasetView;
    const tok = nameToken(latin, ref);
    const sub = stub ? '(SELECT 1)' : subquery(view, scope, slot);
    parts.push(bytes.subarray(cursor, tok.start).toString('utf8'), sub + (ref.hasAlias ? '' : ` AS ${ident(ref.name)}`));
    cursor = tok.start + tok.length;
  }
  parts.push(bytes.subarray(cursor).toString('utf8'));
  return parts.join('');
}

type Node = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

/**
 * Writes: the target is the real table (qualified, aliased by the dataset name), UPDATE and
 * DELETE get the tenant predicate ANDed into WHERE, INSERT gets the tenant column. The tenant
 * column can never be set by the caller. Done on the AST and printed back (writes are rare).
 */
function rewriteWrite(sql: string, check: CheckResult, scope: SqlScope, slot: (name: string) => string): string {
  const parsed = parseSql(sql);
  if (!parsed.ok) throw syntax(parsed.error.message);
  const stmt = parsed.tree.stmts[0]!.stmt as Node;
  const type = Object.keys(stmt)[0] as string;
  const body = stmt[type] as Node;
  const view = scope.views.get(check.target as string) as DatasetView;
  const d = view.dataset;
  const alias = (body['relation']['alias']?.aliasname as string | undefined) ?? d.name;
  body['relation'] = { relname: d.table, schemaname: d.schema, inh: true, relpersistence: 'p', alias: { aliasname: alias } };
  // Writable: every column the tenant may see. Returnable: not masked either (RETURNING would show raw values).
  const allowed = new Set(view.columns.keys());
  const returnable = new Set([...allowed].filter((c) => !d.columns[c]?.mask));
  const returning = (body['returningClause']?.exprs as Node[] | undefined) ?? [];
  for (const r of returning) {
    for (const c of columnNames(r)) if (!returnable.has(c)) throw new TenantGateError('SQL_FORBIDDEN', `RETURNING may not read column "${c}"`);
  }
  if (type === 'InsertStmt') {
    const cols = (body['cols'] as Node[] | undefined) ?? [];
    if (cols.length === 0) throw new TenantGateError('SQL_FORBIDDEN', 'INSERT must list its columns');
    for (const c of cols) {
      const name = c['ResTarget']?.name as string;
      if (name === d.tenantColumn) throw new TenantGateError('SQL_FORBIDDEN', `the tenant column ${d.tenantColumn} is set by tenantgate; leave it out`);
      if (!allowed.has(name)) throw new TenantGateError('SQL_FORBIDDEN', `column "${name}" may not be written`);
      if (view.globalKeys.has(name)) throw new TenantGateError('SQL_FORBIDDEN', `column "${name}" is unique across tenants and is set by the database`);
    }
    const values = body['selectStmt']?.SelectStmt?.valuesLists as Node[] | undefined;
    if (!values) throw new TenantGateError('SQL_FORBIDDEN', 'INSERT takes VALUES (INSERT … SELECT is not supported)');
    cols.push({ ResTarget: { name: d.tenantColumn } });
    const tenantParam = Number(slot('tenant').slice(1));
    for (const row of values) row['List'].items.push({ ParamRef: { number: tenantParam } });
  } else {
    if (type === 'UpdateStmt') {
      for (const t of body['targetList'] as Node[]) {
        const name = t['ResTarget']?.name as string;
        if (name === d.tenantColumn) throw new TenantGateError('SQL_FORBIDDEN', `the tenant column ${d.tenantColumn} cannot be changed`);
        if (!allowed.has(name)) throw new TenantGateError('SQL_FORBIDDEN', `column "${name}" may not be written`);
        if (view.globalKeys.has(name)) throw new TenantGateError('SQL_FORBIDDEN', `column "${name}" is unique across tenants and cannot be changed`);
      }
    }
    // Only the tenant column here: filter columns are unqualified and could be ambiguous after
    // UPDATE … FROM; the database's policies apply the filters and the expression to writes.
    const predicate = parseSql(`SELECT 1 WHERE ${ident(alias)}.${ident(d.tenantColumn)} = ${slot('tenant')}`);
    if (!predicate.ok) throw new TenantGateError('INTERNAL', 'could not build the tenant predicate');
    const where = (predicate.tree.stmts[0]!.stmt as Node)['SelectStmt']['whereClause'];
    body['whereClause'] = body['whereClause'] ? { BoolExpr: { boolop: 'AND_EXPR', args: [where, body['whereClause']] } } : where;
  }
  return deparseSync(parsed.tree as never) as string;
}

function columnNames(node: unknown): string[] {
  const out: string[] = [];
  const walk = (n: unknown) => {
    if (Array.isArray(n)) return n.forEach(walk);
    if (!n || typeof n !== 'object') return;
    const cr = (n as Node)['ColumnRef'];
    if (cr) {
      const last = (cr.fields as Node[]).at(-1);
      if (last?.['String']) out.push(last['String'].sval as string);
      return;
    }
    Object.values(n).forEach(walk);
  };
  walk(node);
  return out;
}
