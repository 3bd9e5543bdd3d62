import { TenantGateError } from '../../errors/index.ts';

/**
 * The SQL endpoint's allowlist, checked on the AST of the real PostgreSQL parser. Default
 * deny: a node type, function, type or operator not listed here is SQL_FORBIDDEN. Nothing
 * that reads settings or catalogs, runs SQL from a string, sleeps, locks or touches
 * sequences can pass, because none of it is listed.
 */

export const FUNCTIONS = new Set([
  // aggregates
  'count', 'sum', 'avg', 'min', 'max', 'bool_and', 'bool_or', 'every', 'string_agg', 'array_agg', 'stddev', 'stddev_pop',
  'stddev_samp', 'variance', 'var_pop', 'var_samp', 'percentile_cont', 'percentile_disc', 'mode', 'corr', 'covar_pop', 'covar_samp',
  'json_agg', 'jsonb_agg', 'json_object_agg', 'jsonb_object_agg',
  // window
  'row_number', 'rank', 'dense_rank', 'percent_rank', 'cume_dist', 'ntile', 'lag', 'lead', 'first_value', 'last_value', 'nth_value',
  // arithmetic
  'abs', 'ceil', 'ceiling', 'floor', 'round', 'trunc', 'mod', 'power', 'sqrt', 'cbrt', 'exp', 'ln', 'log', 'log10', 'sign', 'div',
  'width_bucket', 'greatest', 'least',
  // strings
  'lower', 'upper', 'initcap', 'length', 'char_length', 'character_length', 'octet_length', 'substr', 'substring', 'trim', 'btrim',
  'ltrim', 'rtrim', 'replace', 'concat', 'concat_ws', 'left', 'right', 'position', 'strpos', 'split_part', 'starts_with', 'lpad',
  'rpad', 'reverse', 'repeat', 'translate', 'md5', 'regexp_replace', 'regexp_match', 'regexp_matches', 'regexp_like', 'format',
  // date and time
  'now', 'date_trunc', 'date_part', 'extract', 'to_char', 'to_date', 'to_timestamp', 'to_number', 'age', 'make_date', 'make_time',
  'make_timestamp', 'make_timestamptz', 'make_interval', 'date_bin', 'justify_days', 'justify_hours', 'justify_interval', 'isfinite',
  // json building and reading
  'to_json', 'to_jsonb', 'json_build_object', 'jsonb_build_object', 'json_build_array', 'jsonb_build_array',
  'jsonb_extract_path_text', 'json_extract_path_text', 'jsonb_typeof', 'json_typeof', 'jsonb_array_length', 'json_array_length',
  // arrays
  'array_length', 'cardinality', 'array_position', 'array_to_string', 'unnest',
]);

export const CAST_TYPES = new Set([
  'text', 'varchar', 'bpchar', 'char', 'int2', 'int4', 'int8', 'smallint', 'integer', 'int', 'bigint', 'numeric', 'decimal', 'float4',
  'float8', 'real', 'bool', 'boolean', 'date', 'time', 'timetz', 'timestamp', 'timestamptz', 'interval', 'uuid', 'json', 'jsonb',
]);

const OPERATORS = new Set(['=', '<>', '!=', '<', '>', '<=', '>=', '+', '-', '*', '/', '%', '^', '||', '~~', '!~~', '~~*', '!~~*', '~', '!~', '~*', '!~*', '->', '->>', '#>', '#>>', '@>', '<@', '?', '&&']);
const SQL_VALUE_FUNCTIONS = new Set(['SVFOP_CURRENT_DATE', 'SVFOP_CURRENT_TIME', 'SVFOP_CURRENT_TIME_N', 'SVFOP_CURRENT_TIMESTAMP', 'SVFOP_CURRENT_TIMESTAMP_N', 'SVFOP_LOCALTIME', 'SVFOP_LOCALTIME_N', 'SVFOP_LOCALTIMESTAMP', 'SVFOP_LOCALTIMESTAMP_N']);

/** Node types that may appear anywhere in an allowed statement (beyond those checked specially below). */
const PLAIN_NODES = new Set([
  'ResTarget', 'BoolExpr', 'NullTest', 'BooleanTest', 'CaseExpr', 'CaseWhen', 'CoalesceExpr', 'MinMaxExpr', 'JoinExpr', 'SortBy',
  'A_Indirection', 'A_Indices', 'A_ArrayExpr', 'RowExpr', 'List', 'GroupingSet', 'MultiAssignRef', 'ReturningClause',
]);
/** Nodes with nothing below them worth checking. */
const LEAF_NODES = new Set(['A_Const', 'String', 'Integer', 'Float', 'Boolean', 'A_Star', 'SetToDefault', 'ColumnRef']);
const isWrapped = (v: unknown): boolean => {
  if (!v || typeof v !== 'object' || Array.isArray(v)) return false;
  const keys = Object.keys(v);
  return keys.length === 1 && /^[A-Z]/.test(keys[0] as string);
};

/** Fields whose value is a node body without the `{Type: …}` wrapper, and the type it is. */
const UNWRAPPED: Record<string, string> = {
  larg: 'SelectStmt',
  rarg: 'SelectStmt',
  withClause: 'WithClause',
  alias: 'Alias',
  typeName: 'TypeName',
  over: 'WindowDef',
  onConflictClause: 'OnConflictClause',
  returningClause: 'ReturningClause',
  intoClause: 'IntoClause',
  relation: 'RangeVar',
};

export interface RelationRef {
  name: string;
  /** Offset of the name in the SQL text, and its length there (quotes included). */
  location: number;
  hasAlias: boolean;
}

/** For checking tenantgate's own rewritten text: the generated subqueries and mask functions are allowed. */
export interface CheckOptions {
  /** `schema.table` → dataset name, allowed only here, qualified. */
  qualified?: ReadonlyMap<string, string>;
  extraFunctions?: ReadonlySet<string>;
}

/** Functions the generated column masks use (never allowed in callers' SQL). */
export const MASK_FUNCTIONS: ReadonlySet<string> = new Set(['encode', 'sha256', 'convert_to']);

export interface CheckResult {
  kind: 'select' | 'insert' | 'update' | 'delete';
  /** Dataset references in FROM/JOIN/subqueries: each is wrapped in a tenant-filtered subquery. */
  reads: RelationRef[];
  /** The write target (INSERT/UPDATE/DELETE). */
  target?: string;
  /** Highest $n the statement uses. */
  maxParam: number;
  /** Qualified dataset tables met (only with CheckOptions.qualified). */
  qualifiedRefs: number;
}

function forbidden(message: string): TenantGateError {
  return new TenantGateError('SQL_FORBIDDEN', message);
}

type Body = Record<string, unknown>;

/**
 * Check one parsed statement. `datasets` are the names a tenant may use; `write` whether
 * INSERT/UPDATE/DELETE may be the statement. Throws SQL_FORBIDDEN naming what is not allowed.
 */
export function checkStatement(stmt: Record<string, unknown>, sql: string, datasets: ReadonlySet<string>, write: boolean, options: CheckOptions = {}): CheckResult {
  const [type, body] = Object.entries(stmt)[0] as [string, Body];
  const result: CheckResult = { kind: 'select', reads: [], maxParam: 0, qualifiedRefs: 0 };
  const qualifiedOk = (b: Body): string | undefined =>
    !b['catalogname'] && b['schemaname'] ? options.qualified?.get(`${b['schemaname'] as string}.${b['relname'] as string}`) : undefined;
  // WITH names are scoped per SELECT: a CTE is visible to later CTEs and its own SELECT only
  // (and to itself when RECURSIVE), never to its own query or to enclosing statements.
  const scopes: Array<Set<string>> = [];
  const isCte = (name: string) => scopes.some((sc) => sc.has(name));
  const walkNode = (node: unknown): void => {
    if (Array.isArray(node)) return node.forEach(walkNode);
    if (!node || typeof node !== 'object') return;
    const entries = Object.entries(node as Body);
    if (entries.length === 0) return; // empty placeholders the parser emits in some lists
    const [t, b] = entries[0] as [string, Body];
    if (entries.length !== 1 || !/^[A-Z]/.test(t)) throw forbidden('unexpected syntax');
    walkTyped(t, b);
  };
  const walkFields = (b: Body, skip: string[] = []) => {
    for (const [k, v] of Object.entries(b)) {
      if (skip.includes(k) || v === null || typeof v !== 'object') continue;
      const unwrapped = UNWRAPPED[k];
      if (unwrapped && !Array.isArray(v) && !isWrapped(v)) walkTyped(unwrapped, v as Body);
      else walkNode(v);
    }
  };
  const walkWith = (w: Body, scope: Set<string>) => {
    const recursive = Boolean(w['recursive']);
    for (const cte of (w['ctes'] as Array<{ CommonTableExpr?: Body }>) ?? []) {
      const c = cte.CommonTableExpr;
      if (!c) throw forbidden('unexpected syntax in WITH');
      const q = c['ctequery'] as Body;
      if (!q || !('SelectStmt' in q)) throw forbidden('data-modifying statements in WITH are not allowed');
      const name = c['ctename'] as string;
      // A CTE named like a dataset would hide the dataset from the rewrite: refuse it.
      if (datasets.has(name)) throw forbidden(`a WITH query may not be named like the dataset "${name}"`);
      if (recursive) scope.add(name);
      if (c['aliascolnames']) walkNode(c['aliascolnames']);
      walkNode(q);
      scope.add(name);
    }
  };
  const walkTyped = (t: string, b: Body): void => {
    switch (t) {
      case 'SelectStmt': {
        if (b['intoClause']) throw forbidden('SELECT INTO is not allowed');
        if (b['lockingClause']) throw forbidden('FOR UPDATE/SHARE is not allowed');
        const scope = new Set<string>();
        scopes.push(scope);
        try {
          if (b['withClause']) walkWith(b['withClause'] as Body, scope);
          walkFields(b, ['withClause']);
        } finally {
          scopes.pop();
        }
        return;
      }
      case 'WithClause':
        throw forbidden('unexpected WITH');
      case 'RangeVar': {
        if (qualifiedOk(b)) {
          result.qualifiedRefs++;
          if (b['alias']) walkTyped('Alias', b['alias'] as Body);
          return;
        }
        if (b['schemaname'] || b['catalogname']) throw forbidden('name datasets without a schema');
        const name = b['relname'] as string;
        if (isCte(name)) return;
        if (!datasets.has(name)) throw forbidden(`unknown relation "${name}": only datasets may be queried`);
        const location = b['location'] as number;
        result.reads.push({ name, location, hasAlias: Boolean(b['alias']) });
        if (b['alias']) walkTyped('Alias', b['alias'] as Body);
        return;
      }
      case 'RangeSubselect':
        return walkFields(b);
      case 'Alias':
        return;
      case 'FuncCall': {
        const names = ((b['funcname'] as Array<{ String?: { sval?: string } }>) ?? []).map((n) => n.String?.sval ?? '');
        const catalogOk = names.length === 2 && names[0] === 'pg_catalog' && FUNCTIONS.has(names[1] as string);
        const known = (n: string) => FUNCTIONS.has(n) || Boolean(options.extraFunctions?.has(n));
        if (!(names.length === 1 && known(names[0] as string)) && !catalogOk) throw forbidden(`function ${names.join('.')} is not allowed`);
        if (b['func_variadic']) throw forbidden('VARIADIC calls are not allowed');
        return walkFields(b, ['funcname']);
      }
      case 'WindowDef':
        if (b['refname'] || b['name']) walkFields(b, ['refname', 'name']);
        else walkFields(b);
        return;
      case 'TypeCast':
        walkTyped('TypeName', b['typeName'] as Body);
        return walkNode(b['arg']);
      case 'TypeName': {
        const names = ((b['names'] as Array<{ String?: { sval?: string } }>) ?? []).map((n) => n.String?.sval ?? '');
        const base = names.length === 2 && names[0] === 'pg_catalog' ? names[1] : names.length === 1 ? names[0] : undefined;
        if (!base || !CAST_TYPES.has(base) || b['setof'] || b['pct_type']) throw forbidden(`type ${names.join('.')} is not allowed`);
        return walkFields(b, ['names']);
      }
      case 'A_Expr': {
        const names = ((b['name'] as Array<{ String?: { sval?: string } }>) ?? []).map((n) => n.String?.sval ?? '');
        const keyword = /BETWEEN/.test(String(b['kind']));
        if (!keyword && (names.length !== 1 || !OPERATORS.has(names[0] as string))) throw forbidden(`operator ${names.join('.')} is not allowed`);
        return walkFields(b, ['name']);
      }
      case 'SubLink': {
        const op = ((b['operName'] as Array<{ String?: { sval?: string } }>) ?? []).map((n) => n.String?.sval ?? '');
        if (op.length > 0 && (op.length !== 1 || !OPERATORS.has(op[0] as string))) throw forbidden(`operator ${op.join('.')} is not allowed`);
        return walkFields(b, ['operName']);
      }
      case 'SQLValueFunction':
        if (!SQL_VALUE_FUNCTIONS.has(b['op'] as string)) throw forbidden(`${String(b['op']).replace('SVFOP_', '')} is not allowed`);
        return;
      case 'InsertStmt':
      case 'UpdateStmt':
      case 'DeleteStmt':
        throw forbidden('data-modifying statements are allowed only at the top level');
      case 'ParamRef': {
        const n = b['number'] as number;
        if (!n || n < 1) throw forbidden('positional parameters start at $1');
        result.maxParam = Math.max(result.maxParam, n);
        return;
      }
      default:
        if (LEAF_NODES.has(t)) return;
        if (!PLAIN_NODES.has(t)) throw forbidden(`${t.replace(/Stmt$/, '')} is not allowed`);
        return walkFields(b);
    }
  };

  switch (type) {
    case 'SelectStmt':
      walkTyped('SelectStmt', body);
      return result;
    case 'InsertStmt':
    case 'UpdateStmt':
    case 'DeleteStmt': {
      if (!write) throw new TenantGateError('POLICY_DENIED', 'read access may run SELECT only');
      const rel = body['relation'] as Body;
      const ownTarget = qualifiedOk(rel);
      if (ownTarget) result.qualifiedRefs++;
      else if (rel['schemaname'] || rel['catalogname']) throw forbidden('name datasets without a schema');
      const target = ownTarget ?? (rel['relname'] as string);
      if (!ownTarget && !datasets.has(target)) throw forbidden(`unknown relation "${target}": only datasets may be written`);
      if (body['withClause']) throw forbidden('WITH is not allowed on data-modifying statements');
      const conflict = body['onConflictClause'] as Body | undefined;
      if (conflict && conflict['action'] !== 'ONCONFLICT_NOTHING') throw forbidden('only ON CONFLICT DO NOTHING is allowed');
      const returning = (body['returningClause'] as Body | undefined)?.['exprs'] as unknown[] | undefined;
      if (returning?.some((r) => JSON.stringify(r).includes('"A_Star"'))) throw forbidden('RETURNING * is not allowed: name the columns');
      result.kind = type === 'InsertStmt' ? 'insert' : type === 'UpdateStmt' ? 'update' : 'delete';
      result.target = target;
      walkFields(body, ['relation', 'onConflictClause']);
      return result;
    }
    default:
      throw forbidden(`${type.replace(/Stmt$/, '').replace(/([a-z])([A-Z])/g, '$1 $2').toUpperCase()} is not allowed`);
  }
}

/** Offset and length of a relation name token at `location` (bare or double-quoted). */
export function nameToken(sql: string, ref: RelationRef): { start: number; length: number } {
  // Only the two plain spellings are rewritten: `orders` (any case) or `"orders"`. Anything else
  // (U&"…" escapes, ONLY, odd quoting) could make the splice land somewhere the parser did not
  // mean, so it is refused rather than guessed at.
  const quoted = `"${ref.name}"`;
  if (sql.startsWith(quoted, ref.location)) return { start: ref.location, length: quoted.length };
  const bare = sql.slice(ref.location, ref.location + ref.name.length);
  const after = sql[ref.location + ref.name.length] ?? '';
  if (bare.toLowerCase() === ref.name && !/[A-Za-z0-9_$\u0080-\uffff]/.test(after)) return { start: ref.location, length: ref.name.length };
  throw forbidden(`write the dataset name as ${ref.name} or "${ref.name}"`);
}
