/**
 * Every default in one table, so `config dump` and the docs can show where a value came from.
 * Resolution order for each field: command-line flag, file, environment (via ${VAR}), this table.
 */
export const DEFAULTS = {
  database: {
    url: 'pglite://./.tenantgate/pgdata',
    gateway_url_env: 'TENANTGATE_GATEWAY_URL',
    role_prefix: 'tenantgate',
    placements: {},
    /** Schema migrations (`tenantgate migrate`), relative to the config file's folder. */
    migrations_dir: 'migrations',
  },
  server: { host: '127.0.0.1', port: 8080, body_limit_bytes: 1048576, pool_size: 10, tenant_pool_share: 0.5 },
  /** signing_key_env: an Ed25519 private key (PEM, PKCS#8) that signs export manifests and erasure certificates. */
  security: { secret_env: 'TENANTGATE_SECRET', signing_key_env: 'TENANTGATE_SIGNING_KEY' },
  identity: {
    api_keys: true,
    tenant_from: ['credential', 'header', 'path', 'subdomain'],
    tenant_header: 'X-Tenant-ID',
  },
  roles: {
    analyst: { access: 'read' },
    writer: { access: 'write' },
    owner: { access: 'admin' },
    ops: { access: 'platform' },
  },
  defaults: {
    tier: 'pooled',
    tenant_column: 'tenant_id',
    quotas: {
      requests_per_minute: 600,
      burst: 60,
      concurrent_queries: 4,
      queue_timeout_ms: 1000,
      max_rows: 10000,
      statement_timeout_ms: 5000,
      storage_bytes: 10737418240,
      warn_at: 0.8,
    },
  },
  quota_store: 'memory',
  quota_store_failure: 'open',
  /** How often each gateway process re-reads quota changes made at runtime, and measures storage. */
  quota_refresh: { overrides_ms: 2_000, storage_ms: 300_000 },
  audit: {
    retention_days: 400,
    /** batched: written off the hot path; durable: in the request's own transaction. */
    mode: 'batched',
    flush_interval_ms: 200,
    batch_size: 500,
    buffer_limit: 20_000,
    /** What `erase` does to the erased tenant's audit chain: keep, pseudonymise (principal and client replaced) or delete. */
    on_erase: 'pseudonymise',
  },
  /** audit.security_webhook and quota_webhook, when set: POSTs retried with backoff. */
  webhook: { retries: 5, timeout_ms: 5_000 },
  /** Per-tenant series for the top N tenants by traffic, the rest as `other`; startup refuses a config over the budget. */
  /** `public`: /metrics without a platform credential (tenant ids are labels there; only on a private interface). */
  metrics: { top_tenants: 20, series_budget: 5_000, public: false },
} as const;
