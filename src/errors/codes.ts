/**
 * The one registry of error codes. Every code tenantgate can answer with is defined here
 * once: its HTTP status, its CLI exit code and a hint. `docs/errors.md` lists the same
 * codes and a test keeps the two in step. Codes are stable; messages are not.
 */
export interface ErrorSpec {
  /** HTTP status when the error reaches the gateway's client. */
  status: number;
  /** Process exit code when the error ends a CLI command (2 usage/config, 1 failure). */
  exit: 1 | 2;
  /** What to do about it; never names another tenant. */
  hint: string;
}

export const ERROR_CODES = {
  // request stage: identify / resolve tenant / authorize
  AUTH_MISSING: { status: 401, exit: 2, hint: 'Send X-API-Key or Authorization: Bearer.' },
  AUTH_INVALID: { status: 401, exit: 2, hint: 'The credential is unknown, revoked, expired or malformed.' },
  TENANT_MISMATCH: { status: 403, exit: 2, hint: 'Name only a tenant your credential may act for.' },
  TENANT_UNKNOWN: { status: 404, exit: 2, hint: 'Check the tenant id (`tenantgate tenant list`).' },
  TENANT_REQUIRED: { status: 400, exit: 2, hint: 'Name the tenant with X-Tenant-ID, /v1/tenants/{tenant}/… or the subdomain.' },
  TENANT_SUSPENDED: { status: 403, exit: 1, hint: 'The tenant is suspended; a platform admin can resume it.' },
  TENANT_EXISTS: { status: 409, exit: 2, hint: 'Pick another id or edit the existing tenant.' },
  TENANT_ID_INVALID: {
    status: 400,
    exit: 2,
    hint: 'Tenant ids match ^[a-z][a-z0-9_-]{1,39}$: lower-case ASCII, 2 to 40 characters, starting with a letter.',
  },
  POLICY_DENIED: { status: 403, exit: 1, hint: 'Your role does not allow this action on this data.' },
  // plan stage
  SQL_SYNTAX: { status: 400, exit: 2, hint: 'Fix the SQL syntax.' },
  SQL_FORBIDDEN: { status: 400, exit: 2, hint: 'Only allowlisted statements, datasets and functions may be used.' },
  QUERY_INVALID: { status: 400, exit: 2, hint: 'Check the request against GET /v1/datasets.' },
  PAYLOAD_TOO_LARGE: { status: 413, exit: 2, hint: 'Send a smaller body (server.body_limit_bytes).' },
  UNSUPPORTED_MEDIA_TYPE: { status: 415, exit: 2, hint: 'Send Content-Type: application/json.' },
  NOT_FOUND: { status: 404, exit: 2, hint: 'See GET /openapi.json for the endpoints.' },
  // admit stage
  RATE_LIMITED: { status: 429, exit: 1, hint: 'Retry after the time in Retry-After.' },
  CONCURRENCY_LIMITED: { status: 429, exit: 1, hint: 'Too many queries in flight for this tenant; retry shortly.' },
  QUOTA_EXCEEDED: { status: 403, exit: 1, hint: "The tenant's storage is at its quota: remove data or ask a platform admin to raise storage_bytes." },
  QUOTA_UNAVAILABLE: { status: 503, exit: 1, hint: 'The shared quota store (Redis) is unreachable and quota_store_failure is closed; retry after Retry-After.' },
  // execute stage
  QUERY_TIMEOUT: { status: 504, exit: 1, hint: 'The statement ran past the tenant statement timeout.' },
  DB_UNAVAILABLE: { status: 503, exit: 1, hint: 'The database could not be reached; retry later.' },
  TENANT_MOVING: { status: 503, exit: 1, hint: "The tenant is being moved between tiers: its writes pause for under a second at the cut-over. Retry after Retry-After." },
  TENANT_CONTEXT_REQUIRED: {
    status: 400,
    exit: 2,
    hint: 'Call withTenant({tenant, access}) with a valid tenant id and access level.',
  },
  // configuration and provisioning (mostly CLI)
  CONFIG_NOT_FOUND: { status: 500, exit: 2, hint: 'Pass --config (or set TENANTGATE_CONFIG), or start from the example in docs/configuration.md; `npm start` writes a working demo configuration.' },
  CONFIG_INVALID: { status: 500, exit: 2, hint: 'Fix the file and line named in the message.' },
  CONFIG_ENV_MISSING: { status: 500, exit: 2, hint: 'Set the environment variable or give a default: ${VAR:-default}.' },
  SECRET_MISSING: {
    status: 500,
    exit: 2,
    hint: 'Set the server secret variable (security.secret_env, default TENANTGATE_SECRET) to 32+ random bytes.',
  },
  SIGNING_KEY_MISSING: {
    status: 500,
    exit: 2,
    hint: 'Set the signing key variable (security.signing_key_env, default TENANTGATE_SIGNING_KEY) to an Ed25519 private key in PEM: `openssl genpkey -algorithm ed25519`.',
  },
  ROLE_UNKNOWN: { status: 400, exit: 2, hint: 'Use a role defined under `roles:` in tenantgate.yaml.' },
  PLACEMENT_UNKNOWN: { status: 400, exit: 2, hint: 'Define the placement under database.placements.' },
  DATASET_TABLE_MISSING: { status: 500, exit: 2, hint: 'Create the table, or fix `table:` in the dataset.' },
  DATASET_COLUMN_MISSING: { status: 500, exit: 2, hint: 'Create the column, or fix the dataset definition.' },
  DATASET_COLUMN_TYPE: {
    status: 500,
    exit: 2,
    hint: 'The tenant column must be text, varchar or char so it can hold a tenant id.',
  },
  GATEWAY_ROLE_UNSAFE: {
    status: 500,
    exit: 2,
    hint: 'The gateway login must not be superuser, have BYPASSRLS, or own a dataset table.',
  },
  TIER_UNSUPPORTED: { status: 400, exit: 2, hint: 'Only tier database can live on a named placement; pooled and schema tenants live on the default one.' },
  CATALOG_OUTDATED: { status: 503, exit: 2, hint: "The database's tenantgate catalog predates this version of tenantgate: run `tenantgate apply`." },
  ROLE_PREFIX_IN_USE: { status: 409, exit: 2, hint: 'Roles are per server: give each database on it its own database.role_prefix in tenantgate.yaml.' },
  // tenant moves (tenantgate tenant move, POST /v1/admin/tenants/{id}/move)
  MOVE_CONFLICT: { status: 409, exit: 1, hint: 'Another move of this tenant is running or unfinished (rerun the same move to finish it, or --abort), or its rows collide with rows already at the new place.' },
  MOVE_UNSUPPORTED: { status: 400, exit: 2, hint: 'A move needs a different place, a primary key on every dataset table, an applied catalog and an owner that bypasses RLS.' },
  MOVE_VERIFY_FAILED: { status: 500, exit: 1, hint: 'The copy did not match the original: the tenant stays where it was. Rerun the move (it copies again) or --abort it.' },
  KEY_UNKNOWN: { status: 404, exit: 2, hint: 'Check the key id (`tenantgate key list`).' },
  // erasure (tenantgate erase, POST /v1/admin/tenants/{id}/erase)
  ERASE_CONFIRM_MISMATCH: { status: 400, exit: 2, hint: 'Pass --confirm (or "confirm" in the body) with exactly the id of the tenant to erase.' },
  TENANT_ERASED: { status: 409, exit: 2, hint: 'The id belonged to a tenant that was erased: pick another id, or onboard it again on purpose with `tenantgate tenant add ID --reuse-erased-id`.' },
  ERASE_INCOMPLETE: { status: 500, exit: 1, hint: 'The post-erasure check found something of the tenant left: rerun `tenantgate erase` (it resumes and removes it).' },
  CERTIFICATE_INVALID: { status: 400, exit: 1, hint: 'The certificate was edited after signing, signed by another key, or what it says was removed is back: see the problems listed.' },
  // lifecycle jobs (tenantgate jobs, /v1/admin/jobs)
  JOB_UNKNOWN: { status: 404, exit: 2, hint: 'Check the job id (`tenantgate jobs list`).' },
  JOB_FINISHED: { status: 409, exit: 1, hint: 'The job has already finished (done, failed or cancelled): there is nothing to cancel.' },
  JOB_CANCELLED: { status: 409, exit: 1, hint: 'The job was cancelled (`tenantgate jobs cancel`) before it finished; start it again to redo it.' },
  JOB_ABANDONED: { status: 500, exit: 1, hint: 'The runners that took the job kept stopping before it finished (a crash or kill each time): check their logs, then start it again.' },
  // export (tenantgate export, POST /v1/admin/tenants/{id}/export, /v1/exports)
  EXPORT_INVALID: { status: 400, exit: 2, hint: 'Use --format ndjson, csv or parquet, --view tenant or full, and dataset names from the configuration.' },
  EXPORT_TARGET_NOT_EMPTY: { status: 409, exit: 2, hint: 'Name an empty (or new) folder, or add --force to write over the export files in it.' },
  EXPORT_WRITE_FAILED: { status: 507, exit: 1, hint: 'The export folder could not be written (disk full, no permission): free space or pick another folder, then export again. Its partial files were removed.' },
  EXPORT_VERIFY_FAILED: { status: 422, exit: 1, hint: 'A file of the export differs from its signed manifest (edited, truncated or missing), or the manifest was edited: export again.' },
  EXPORT_NOT_READY: { status: 409, exit: 1, hint: 'The export has not finished (or failed): GET /v1/exports/{id} says its state; ask again when it is done.' },
  // schema migrations (tenantgate migrate, /v1/admin/migrations)
  MIGRATION_CHANGED: { status: 409, exit: 2, hint: 'An applied migration must not change: put its applied text back (git) and write the change as a new migration (`tenantgate migrate new NAME`).' },
  MIGRATION_GAP: { status: 409, exit: 2, hint: 'Migrations apply in order: a target has a later one without an earlier one. Apply the missing one by hand there and record it, or restore the target.' },
  MIGRATION_FAILED: { status: 500, exit: 1, hint: 'A migration failed on the target named (the SQL error and its position are given); fix the migration or the target, then rerun `tenantgate migrate up`: what committed stays, the rest runs.' },
  MIGRATION_PENDING: { status: 409, exit: 1, hint: "The tenant's place is not at the main database's migration version: run `tenantgate migrate up` first (`migrate status` shows each target's)." },
  MIGRATION_LOCKED: { status: 503, exit: 1, hint: 'The migration kept waiting for a lock held by live transactions (lock_timeout, then every retry): rerun later, or with a longer --lock-timeout or more --retries.' },
  MIGRATION_INVALID: { status: 400, exit: 2, hint: 'Fix the migration file named: NNNN_name.sql (lower-case snake_case), one file per number, SQL that parses, no BEGIN/COMMIT or CONCURRENTLY, and no table named in a string literal.' },
  USAGE: { status: 400, exit: 2, hint: 'See `tenantgate --help`.' },
  INTERNAL: { status: 500, exit: 1, hint: 'A bug: please report it with the request id.' },
} as const satisfies Record<string, ErrorSpec>;

export type ErrorCode = keyof typeof ERROR_CODES;
