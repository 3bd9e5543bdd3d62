import { deparseSync } from 'pgsql-deparser';
import { TenantGateError } from '../errors/index.ts';
import { loadParser, parseSql } from '../plan/sql/parser.ts';

type Node = Record<string, unknown>;
interface RawStmt {
  stmt: Node;
  stmt_location?: number;
  stmt_len?: number;
}

/** Loads the PostgreSQL parser; await once before `checkStatements` / `rewriteForSchema`. */
export async function prepareRewrite(): Promise<void> {
  await loadParser();
}

const isNode = (v: unknown): v is Node => typeof v === 'object' && v !== null && !Array.isArray(v);
const kindOf = (stmt: Node): string => Object.keys(stmt)[0] ?? '';
const bodyOf = (stmt: Node): Node => (stmt[kindOf(stmt)] ?? {}) as Node;

/** Where a statement sits, for messages: its number, line and first words (leading comments skipped). */
function where(sql: string, s: RawStmt, i: number): string {
  const at = s.stmt_location ?? 0;
  const lead = /^(?:\s+|--[^\n]*(?:\n|$)|\/\*[\s\S]*?\*\/)*/.exec(sql.slice(at))?.[0].length ?? 0;
  const start = at + lead;
  const line = sql.slice(0, start).split('\n').length;
  const text = sql.slice(start, s.stmt_len === undefined ? undefined : at + s.stmt_len).replace(/\s+/g, ' ').trim();
  return `statement ${i + 1} at line ${line} (${text.length > 60 ? `${text.slice(0, 57)}...` : text})`;
}

function parse(sql: string, label: string): RawStmt[] {
  // The parser stops at a NUL while the server would see the rest.
  if (sql.includes('\u0000')) throw new TenantGateError('MIGRATION_INVALID', `${label}: the SQL contains a NUL character`);
  const r = parseSql(sql);
  if (!r.ok) {
    const pos = r.error.position;
    const at = pos === undefined ? '' : ` at line ${sql.slice(0, pos).split('\n').length}, column ${pos - sql.lastIndexOf('\n', pos - 1)}`;
    throw new TenantGateError('MIGRATION_INVALID', `${label}: the SQL does not parse${at}: ${r.error.message}`);
  }
  return r.tree.stmts as RawStmt[];
}

// Statements PostgreSQL refuses inside a transaction block; the runner wraps each target in one.
const NO_TRANSACTION: Record<string, string> = {
  CreatedbStmt: 'CREATE DATABASE',
  DropdbStmt: 'DROP DATABASE',
  AlterSystemStmt: 'ALTER SYSTEM',
  CreateTableSpaceStmt: 'CREATE TABLESPACE',
  DropTableSpaceStmt: 'DROP TABLESPACE',
  CreateSubscriptionStmt: 'CREATE SUBSCRIPTION',
};

/** Why a statement can run on no target, or null. */
function refusal(stmt: Node): string | null {
  const kind = kindOf(stmt);
  const b = bodyOf(stmt);
  if (kind === 'TransactionStmt') return 'transaction control: tenantgate runs each migration in its own transaction per target';
  if (NO_TRANSACTION[kind]) return `${NO_TRANSACTION[kind]} cannot run inside a transaction`;
  if (kind === 'VacuumStmt' && b['is_vacuumcmd']) return 'VACUUM cannot run inside a transaction';
  const concurrently =
    (kind === 'IndexStmt' && b['concurrent']) ||
    (kind === 'DropStmt' && b['concurrent']) ||
    (kind === 'ReindexStmt' && JSON.stringify(b['params'] ?? []).includes('"defname":"concurrently"')) ||
    (kind === 'AlterTableStmt' && JSON.stringify(b['cmds'] ?? []).includes('"concurrent":true'));
  if (concurrently) return 'CONCURRENTLY cannot run inside a transaction';
  // The runner pins search_path (tenant schema first): moving it would send unqualified names to the shared tables.
  if (kind === 'VariableSetStmt' && (b['name'] === 'search_path' || b['kind'] === 'VAR_RESET_ALL')) return 'search_path is set by tenantgate for each target';
  if (kind === 'DiscardStmt') return 'DISCARD cannot run inside a transaction';
  return null;
}

/**
 * Refuses, for every target, a migration that does not parse or holds a statement the runner
 * cannot run in its per-target transaction. Returns the number of statements.
 */
export function checkStatements(sql: string, label = 'migration'): number {
  const stmts = parse(sql, label);
  stmts.forEach((s, i) => {
    const why = refusal(s.stmt);
    if (why) throw new TenantGateError('MIGRATION_INVALID', `${label}: ${where(sql, s, i)}: ${why}`);
  });
  return stmts.length;
}

const escapeRe = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** Relations this migration creates in `from` (they live in the tenant's schema on a schema target). */
function createdIn(stmts: RawStmt[], from: string): Set<string> {
  const out = new Set<string>();
  for (const s of stmts) {
    const kind = kindOf(s.stmt);
    const b = bodyOf(s.stmt);
    const rel = (kind === 'CreateStmt' ? b['relation'] : kind === 'CreateTableAsStmt' ? (b['into'] as Node | undefined)?.['rel'] : kind === 'ViewStmt' ? b['view'] : kind === 'CreateSeqStmt' ? b['sequence'] : undefined) as
      | Node
      | undefined;
    if (rel && rel['schemaname'] === from && typeof rel['relname'] === 'string') out.add(rel['relname']);
  }
  return out;
}

/** The tables a migration creates in `from`: a runner adds them to `tables` for later migrations' schema rewrites. */
export function createdTables(sql: string, from: string): Set<string> {
  return createdIn(parse(sql, 'migration'), from);
}

// Objects named by [schema, relation] lists, and those named by [schema, relation, sub-object].
const RELATION_OBJECTS = new Set(['OBJECT_TABLE', 'OBJECT_VIEW', 'OBJECT_MATVIEW', 'OBJECT_SEQUENCE', 'OBJECT_FOREIGN_TABLE', 'OBJECT_INDEX']);
const SUB_OBJECTS = new Set(['OBJECT_COLUMN', 'OBJECT_TABCONSTRAINT', 'OBJECT_TRIGGER', 'OBJECT_POLICY', 'OBJECT_RULE']);

function stripLocations(n: unknown): unknown {
  if (Array.isArray(n)) return n.map(stripLocations);
  if (!isNode(n)) return n;
  const out: Node = {};
  for (const [k, v] of Object.entries(n)) if (k !== 'location' && k !== 'stmt_location' && k !== 'stmt_len') out[k] = stripLocations(v);
  return out;
}

/**
 * Rewrites a migration written against the pooled tables for a schema-tier tenant: every
 * schema-qualified reference `from.<t>`, where t is a dataset table or a relation this migration
 * creates in `from`, is pointed at `to.<t>`. Unqualified names are left alone: the runner pins
 * search_path to the tenant's schema first. Call `prepareRewrite()` first.
 */
export function rewriteForSchema(sql: string, o: { from: string; to: string; tables: Set<string> }, label = 'migration'): { sql: string; statements: number } {
  const stmts = parse(sql, label);
  const names = new Set([...o.tables, ...createdIn(stmts, o.from)]);
  const moved = (schema: unknown, rel: unknown) => schema === o.from && typeof rel === 'string' && names.has(rel);
  // Prefix match, so `public.orders_id_seq` counts too.
  const inString =
    names.size === 0
      ? null
      : new RegExp(`(?:^|[^\\w$."])("?${escapeRe(o.from)}"?\\s*\\.\\s*"?(?:${[...names].map(escapeRe).join('|')})[\\w$]*"?)`, 'i');
  const out: string[] = [];

  stmts.forEach((s, i) => {
    const fail = (why: string): never => {
      throw new TenantGateError('MIGRATION_INVALID', `${label}: ${where(sql, s, i)}: ${why}`);
    };
    const why = refusal(s.stmt);
    if (why) fail(why);
    const kind = kindOf(s.stmt);
    const b = bodyOf(s.stmt);

    // Index names are per schema, and a schema tenant's copies keep their indexes in its schema:
    // a qualified index name in `from` always means the copy's index there.
    const indexStmt =
      (kind === 'DropStmt' && b['removeType'] === 'OBJECT_INDEX') ||
      (kind === 'CommentStmt' && b['objtype'] === 'OBJECT_INDEX') ||
      (kind === 'AlterTableStmt' && b['objtype'] === 'OBJECT_INDEX') ||
      (kind === 'RenameStmt' && b['renameType'] === 'OBJECT_INDEX') ||
      (kind === 'ReindexStmt' && b['kind'] === 'REINDEX_OBJECT_INDEX');

    // Moving a copy to another schema cannot be mapped onto a tenant's schema.
    if (kind === 'AlterObjectSchemaStmt' && moved((b['relation'] as Node | undefined)?.['schemaname'], (b['relation'] as Node | undefined)?.['relname'])) {
      fail(`SET SCHEMA of ${o.from}.${String((b['relation'] as Node)['relname'])} cannot be applied to a schema-tier tenant's copy`);
    }

    // Qualified-name lists of String nodes: DROP, COMMENT ON.
    const lists: unknown[] =
      kind === 'DropStmt' ? ((b['objects'] as unknown[] | undefined) ?? []) : kind === 'CommentStmt' ? [b['object']] : [];
    const objtype = (kind === 'DropStmt' ? b['removeType'] : b['objtype']) as string | undefined;
    for (const l of lists) {
      const items = (isNode(l) && isNode(l['List']) ? (l['List']['items'] as unknown[]) : undefined) ?? [];
      const parts = items.map((it) => (isNode(it) && isNode(it['String']) ? it['String']['sval'] : undefined));
      const qualified = (objtype && RELATION_OBJECTS.has(objtype) && parts.length === 2) || (objtype && SUB_OBJECTS.has(objtype) && parts.length === 3);
      if (qualified && parts[0] === o.from && (indexStmt || moved(parts[0], parts[1]))) ((items[0] as Node)['String'] as Node)['sval'] = o.to;
    }

    const walk = (n: unknown): void => {
      if (Array.isArray(n)) return n.forEach(walk);
      if (!isNode(n)) return;
      // RangeVar, wrapped or not: relation, pktable, FROM/USING items, GRANT and TRUNCATE lists, …
      if (typeof n['relname'] === 'string' && (moved(n['schemaname'], n['relname']) || (indexStmt && n['schemaname'] === o.from))) n['schemaname'] = o.to;
      // public.orders.id in an expression must follow its FROM item.
      if (Array.isArray(n['fields']) && n['fields'].length >= 3) {
        const [a, r] = (n['fields'] as unknown[]).map((f) => (isNode(f) && isNode(f['String']) ? f['String']['sval'] : undefined));
        if (moved(a, r)) ((n['fields'][0] as Node)['String'] as Node)['sval'] = o.to;
      }
      // The row type of a moved table (TypeName: names + typemod).
      if (Array.isArray(n['names']) && 'typemod' in n && n['names'].length === 2) {
        const [a, r] = (n['names'] as unknown[]).map((f) => (isNode(f) && isNode(f['String']) ? f['String']['sval'] : undefined));
        if (moved(a, r)) ((n['names'][0] as Node)['String'] as Node)['sval'] = o.to;
      }
      // String and A_Const literals, and DO / function bodies (String nodes too).
      if (typeof n['sval'] === 'string' && inString) {
        const m = inString.exec(n['sval']);
        // The server resolves a name in a string when it runs, past any rewrite: it would reach the shared table.
        if (m) fail(`a string names ${m[1]}, which cannot be pointed at a schema-tier tenant's copy; name the relation directly (e.g. a serial column's default, not nextval('…'))`);
      }
      for (const v of Object.values(n)) walk(v);
    };
    walk(s.stmt);

    const text = (deparseSync(s.stmt as never) as string).trim().replace(/;+$/, '');
    // The deparser's text must mean what was rewritten: a schema target must not run a paraphrase.
    const back = parseSql(text);
    if (!back.ok || back.tree.stmts.length !== 1 || JSON.stringify(stripLocations(back.tree.stmts[0]?.stmt)) !== JSON.stringify(stripLocations(s.stmt))) {
      fail('the rewritten statement could not be reproduced faithfully; write it with plainer syntax');
    }
    out.push(text);
  });
  return { sql: out.length === 0 ? sql : `${out.join(';\n')};\n`, statements: stmts.length };
}
