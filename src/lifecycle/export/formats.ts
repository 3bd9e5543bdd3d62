import type { Dataset, Tenant } from '../../config/types.ts';
import { ident, literal } from '../../db/sql.ts';
import { datasetView, tenantPredicate, slotValue } from '../../plan/dataset-view.ts';

/** The file formats an export writes. */
export const EXPORT_FORMATS = ['ndjson', 'csv', 'parquet'] as const;
export type ExportFormat = (typeof EXPORT_FORMATS)[number];
export const EXPORT_VIEWS = ['tenant', 'full'] as const;
export type ExportView = (typeof EXPORT_VIEWS)[number];

export const extensionOf = (f: ExportFormat): string => f;

/** A column of the table as the catalog says: name and PostgreSQL type (format_type). */
export interface TableColumn {
  name: string;
  type: string;
}

/** What one dataset's file holds: the columns (with the type a reader gets) and the SELECT that reads them. */
export interface DatasetQuery {
  columns: TableColumn[];
  /** The SELECT over the tenant's rows, every value already as the file wants it (see `valueSql`). */
  select: string;
  /** NDJSON: the same rows, each one JSON text in one column `line`. */
  jsonSelect: string;
}

/** Types whose JSON number would lose digits in most readers: written as strings. */
const AS_STRING = /^(bigint|numeric|money)(\(|$)/;

/**
 * The expression one value is written through: bytea as base64 (one line), numeric and bigint as
 * text in NDJSON (every digit kept), the rest as PostgreSQL writes it (CSV: its text form, NULL
 * as an unquoted empty field, '' as `""`; NDJSON: row_to_json, timestamps with their offset).
 */
function valueSql(expr: string, type: string, format: ExportFormat): string {
  if (type === 'bytea') return `translate(encode(${expr}, 'base64'), E'\\n', '')`;
  if (format === 'ndjson' && AS_STRING.test(type)) return `(${expr})::text`;
  return expr;
}

/**
 * The SELECT of one dataset for one tenant. `tenant` view: exactly the columns the tenant's read
 * role sees (restricted and access_overrides absent, masks applied) and its row filters, the same
 * projection the SQL planner rewrites a dataset into. `full` view: every column raw, every row of
 * the tenant. Both carry the tenant predicate (every tier keeps the tenant column).
 */
export function datasetQuery(d: Dataset, rel: string, tableColumns: TableColumn[], tenant: Tenant, view: ExportView, format: ExportFormat): DatasetQuery {
  const types = new Map(tableColumns.map((c) => [c.name, c.type]));
  let projected: Array<{ name: string; expr: string; type: string }>;
  let where: string;
  if (view === 'full') {
    projected = tableColumns.map((c) => ({ name: c.name, expr: ident(c.name), type: c.type }));
    where = `${ident(d.tenantColumn)} = ${literal(tenant.id)}`;
  } else {
    const v = datasetView(d, tableColumns.map((c) => c.name), tenant);
    projected = [...v.columns].map(([name, expr]) => ({ name, expr, type: d.columns[name]?.mask ? 'text' : (types.get(name) ?? 'text') }));
    where = tenantPredicate(d, true, (slot) => literal(slotValue(tenant, slot)));
  }
  const list = projected.map((c) => `${valueSql(c.expr, c.type, format)} AS ${ident(c.name)}`).join(', ');
  const select = `SELECT ${list} FROM ${rel} WHERE ${where}`;
  return { columns: projected.map((c) => ({ name: c.name, type: c.type })), select, jsonSelect: `SELECT row_to_json(r.*)::text AS line FROM (${select}) r` };
}

/** One CSV field as PostgreSQL's COPY … (FORMAT csv) writes it: NULL unquoted and empty, '' quoted. */
export function csvField(v: string | null): string {
  if (v === null) return '';
  if (v === '' || v === '\\.' || /[",\r\n]/.test(v)) return `"${v.replace(/"/g, '""')}"`;
  return v;
}

export const csvHeader = (columns: TableColumn[]) => `${columns.map((c) => csvField(c.name)).join(',')}\n`;

/**
 * Count the records of a CSV text stream (newlines outside quotes). Fed chunk by chunk; quotes are
 * tracked across chunks.
 */
export class CsvCounter {
  private quoted = false;
  records = 0;
  feed(chunk: Buffer): void {
    for (let i = 0; i < chunk.length; i++) {
      const b = chunk[i];
      if (b === 0x22) this.quoted = !this.quoted;
      else if (b === 0x0a && !this.quoted) this.records++;
    }
  }
}
