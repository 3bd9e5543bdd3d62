/** What `plan` hands to `execute`: parameterised SQL and how to shape the answer. Pure data. */
export interface QueryPlan {
  sql: string;
  params: unknown[];
  /** Rows to fetch at most; one more than `maxRows` tells `truncated`. */
  fetchRows: number;
  /** Cap on returned rows (the tenant's max_rows). */
  maxRows: number;
  /** INSERT/UPDATE/DELETE: needs write access and a read-write transaction. */
  write: boolean;
  /** Datasets the plan reads or writes (audit, metrics). */
  datasets: string[];
  /** Whether the gateway added the tenant predicate (false only for platform `all`). */
  tenantPredicate: boolean;
  /** For the audit trail: the statement (SQL API) or the request's shape (semantic) with no value, and a fingerprint of the statement's shape. */
  normalized: string;
  fingerprint: string;
}

export interface QueryAnswer {
  columns: string[];
  rows: unknown[][];
  row_count: number;
  truncated: boolean;
}
