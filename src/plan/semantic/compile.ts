import { createHash } from 'node:crypto';
import { ident } from '../../db/sql.ts';
import { TenantGateError } from '../../errors/index.ts';
import { slotValue, tenantPredicate, type DatasetView } from '../dataset-view.ts';
import type { QueryPlan } from '../types.ts';
import type { SemanticQuery } from './request.ts';
import type { Tenant } from '../../config/types.ts';

const COMPARE: Record<string, string> = { '=': '=', '!=': '<>', '>': '>', '>=': '>=', '<': '<', '<=': '<=', like: 'LIKE' };

function invalid(message: string): TenantGateError {
  return new TenantGateError('QUERY_INVALID', message);
}

/**
 * Compile a semantic query to parameterised SQL. Pure: no I/O, same input, same output.
 * Identifiers come only from the dataset definition; every value is a parameter; the tenant
 * predicate is always ANDed in (a client filter on the tenant column narrows, never widens).
 */
export function compileSemantic(q: SemanticQuery, view: DatasetView, tenant: Tenant | null, maxRows: number): QueryPlan {
  const d = view.dataset;
  if (q.dimensions.length === 0 && q.metrics.length === 0) throw invalid('ask for at least one dimension or metric');
  const select: string[] = [];
  const names = new Set<string>();
  for (const dim of q.dimensions) {
    if (!view.dimensions.includes(dim)) throw invalid(`unknown dimension "${dim}" in dataset ${d.name}`);
    if (names.has(dim)) throw invalid(`"${dim}" is asked for twice`);
    names.add(dim);
    select.push(`${view.columns.get(dim)} AS ${ident(dim)}`);
  }
  for (const m of q.metrics) {
    const sql = view.metrics.get(m);
    if (!sql) throw invalid(`unknown metric "${m}" in dataset ${d.name}`);
    if (names.has(m)) throw invalid(`"${m}" is asked for twice`);
    names.add(m);
    select.push(`${sql} AS ${ident(m)}`);
  }

  const params: unknown[] = [];
  const param = (v: unknown) => {
    params.push(v);
    return `$${params.length}`;
  };
  const slots = new Map<string, string>();
  const slot = (name: string) => {
    let p = slots.get(name);
    if (!p) slots.set(name, (p = param(slotValue(tenant as Tenant, name))));
    return p;
  };
  const where: string[] = [tenantPredicate(d, tenant !== null, slot)];
  for (const f of q.filters) {
    if (!view.filterable.has(f.field)) throw invalid(`cannot filter on "${f.field}" in dataset ${d.name}`);
    // A masked column is filtered through its mask: a tenant filters by what it can see.
    const col = f.field === d.tenantColumn ? ident(d.tenantColumn) : (view.columns.get(f.field) as string);
    const v = f.value;
    switch (f.op) {
      case 'is_null':
      case 'is_not_null':
        if (v !== undefined && v !== null) throw invalid(`${f.op} takes no value`);
        where.push(`${col} IS ${f.op === 'is_null' ? '' : 'NOT '}NULL`);
        break;
      case 'in':
      case 'not_in':
        if (!Array.isArray(v) || v.length === 0) throw invalid(`${f.op} takes a non-empty list`);
        where.push(f.op === 'in' ? `${col} = ANY(${param(v.map(String))})` : `NOT (${col} = ANY(${param(v.map(String))}))`);
        break;
      case 'between':
        if (!Array.isArray(v) || v.length !== 2) throw invalid('between takes a list of two values');
        where.push(`${col} BETWEEN ${param(v[0])} AND ${param(v[1])}`);
        break;
      default:
        if (v === undefined || v === null || Array.isArray(v)) throw invalid(`${f.op} takes one value (use is_null for NULL)`);
        where.push(`${col} ${COMPARE[f.op]} ${param(v)}`);
    }
  }

  const order = q.order.map((o) => {
    if (!names.has(o.field)) throw invalid(`order by "${o.field}": order only by requested dimensions or metrics`);
    return `${ident(o.field)} ${o.dir === 'desc' ? 'DESC' : 'ASC'}`;
  });
  const capped = q.limit === undefined || q.limit > maxRows;
  const fetchRows = capped ? maxRows + 1 : (q.limit as number);
  const lines = [`SELECT ${select.join(', ')}`, `FROM ${ident(d.schema)}.${ident(d.table)}`, `WHERE ${where.join(' AND ')}`];
  if (q.metrics.length > 0 && q.dimensions.length > 0) lines.push(`GROUP BY ${q.dimensions.map((_, i) => i + 1).join(', ')}`);
  if (q.metrics.length === 0) lines[0] = `SELECT DISTINCT ${select.join(', ')}`;
  // Without an order, order by the dimensions: answers (and pagination) stay stable between calls.
  if (order.length === 0 && q.dimensions.length > 0) order.push(...q.dimensions.map((dim) => `${ident(dim)} ASC`));
  if (order.length) lines.push(`ORDER BY ${order.join(', ')}`);
  lines.push(`LIMIT ${param(fetchRows)}`);
  if (q.offset) lines.push(`OFFSET ${param(q.offset)}`);
  const sql = lines.join('\n');
  // For the audit trail: the request's shape without its values (the compiled text is derived from it).
  const normalized = `${d.name}: ${q.dimensions.join(',')} | ${q.metrics.join(',')}${q.filters.length ? ` | where ${q.filters.map((f) => `${f.field} ${f.op}`).join(', ')}` : ''}${q.order.length ? ` | order ${q.order.map((o) => `${o.field} ${o.dir}`).join(', ')}` : ''}`;
  return { sql, params, fetchRows, maxRows: capped ? maxRows : fetchRows, write: false, datasets: [d.name], tenantPredicate: tenant !== null, normalized, fingerprint: textFingerprint(sql) };
}

const fingerprints = new Map<string, string>();
/** A short, stable fingerprint of a compiled text (computed once per text). */
function textFingerprint(sql: string): string {
  let f = fingerprints.get(sql);
  if (!f) {
    f = createHash('sha1').update(sql).digest('hex').slice(0, 16);
    if (fingerprints.size >= 10_000) fingerprints.clear();
    fingerprints.set(sql, f);
  }
  return f;
}
