import { z } from 'zod';
import { DEFAULTS } from './defaults.ts';

/** SQL identifiers we splice into DDL are restricted to plain lower-case names, so quoting is never the only guard. */
const ident = z
  .string()
  .regex(/^[a-z_][a-z0-9_]{0,62}$/, 'must be a lower-case SQL identifier ([a-z_][a-z0-9_]*, at most 63 characters)');
const tableName = z
  .string()
  .regex(/^([a-z_][a-z0-9_]{0,62}\.)?[a-z_][a-z0-9_]{0,62}$/, 'must be `table` or `schema.table` in lower case');

export const ACCESS_LEVELS = ['read', 'write', 'admin', 'platform'] as const;
export type AccessLevel = (typeof ACCESS_LEVELS)[number];
export const TIERS = ['pooled', 'schema', 'database'] as const;
export type Tier = (typeof TIERS)[number];

export const quotaSchema = z.strictObject({
  requests_per_minute: z.number().int().positive(),
  burst: z.number().int().positive(),
  /** Per API key or JWT subject (default: the tenant's own rate and burst). */
  key_requests_per_minute: z.number().int().positive().optional(),
  key_burst: z.number().int().positive().optional(),
  concurrent_queries: z.number().int().positive(),
  /** How long a request waits for a concurrency slot before CONCURRENCY_LIMITED. */
  queue_timeout_ms: z.number().int().min(0).max(60_000),
  max_rows: z.number().int().positive(),
  statement_timeout_ms: z.number().int().positive(),
  storage_bytes: z.number().int().positive(),
  /** Share of any quota at which a warning is raised. */
  warn_at: z.number().gt(0).max(1),
});
const quotas = quotaSchema;

const filter = z.strictObject({ column: ident, condition: z.string().min(1) });

const column = z.strictObject({
  access: z.enum(['read', 'restricted']).default('read'),
  mask: z.enum(['redact', 'hash', 'partial']).optional(),
});

const dataset = z.strictObject({
  name: ident,
  table: tableName,
  tenant_column: ident.optional(),
  rls: z
    .strictObject({
      additional_filters: z.array(filter).default([]),
      expression: z.string().min(1).optional(),
    })
    .default({ additional_filters: [] }),
  dimensions: z.array(ident).default([]),
  metrics: z.record(ident, z.string().min(1)).default({}),
  columns: z.record(ident, column).default({}),
});

export const tenantSchema = z.strictObject({
  id: z.string().min(1),
  name: z.string().min(1).optional(),
  tier: z.enum(TIERS).optional(),
  placement: z.string().min(1).default('default'),
  status: z.enum(['active', 'suspended']).default('active'),
  attributes: z.record(ident, z.union([z.string(), z.number(), z.boolean()])).default({}),
  roles: z.array(ident).optional(),
  quotas: quotas.partial().default({}),
  features: z.record(ident, z.boolean()).default({}),
  access_overrides: z.record(ident, z.record(ident, z.enum(['read', 'restricted']))).default({}),
});

const jwt = z.strictObject({
  jwks_url: z.string().url().optional(),
  secret_env: z.string().optional(),
  issuer: z.string().optional(),
  audience: z.string().optional(),
  algorithms: z.array(z.string()).default(['RS256']),
  claims: z
    .strictObject({ tenant: z.string().default('tenant_id'), tenants: z.string().default('tenants'), role: z.string().default('role') })
    .default({ tenant: 'tenant_id', tenants: 'tenants', role: 'role' }),
});

/** A webhook: the URL comes from an environment variable; POSTs are retried with backoff. */
const webhook = z.strictObject({
  url_env: z.string().min(1),
  retries: z.number().int().min(0).max(20).default(DEFAULTS.webhook.retries),
  timeout_ms: z.number().int().min(100).max(60_000).default(DEFAULTS.webhook.timeout_ms),
});

export const configSchema = z.strictObject({
  version: z.literal(1),
  database: z
    .strictObject({
      url: z.string().min(1).default(DEFAULTS.database.url),
      gateway_url_env: z.string().default(DEFAULTS.database.gateway_url_env),
      role_prefix: z
        .string()
        .regex(/^[a-z][a-z0-9_]{0,19}$/, 'must be a lower-case name of at most 20 characters')
        .default(DEFAULTS.database.role_prefix),
      /** Extra servers for database-tier tenants: the owner URL, and the gateway login's there (for serve). */
      placements: z.record(z.string(), z.strictObject({ url_env: z.string(), gateway_url_env: z.string().optional() })).default({}),
      migrations_dir: z.string().min(1).default(DEFAULTS.database.migrations_dir),
    })
    .default({ ...DEFAULTS.database }),
  server: z
    .strictObject({
      host: z.string().default(DEFAULTS.server.host),
      port: z.number().int().min(0).max(65535).default(DEFAULTS.server.port),
      body_limit_bytes: z.number().int().positive().default(DEFAULTS.server.body_limit_bytes),
      pool_size: z.number().int().min(1).max(1_000).default(DEFAULTS.server.pool_size),
      /** Most of the pool one tenant may hold at once (with its concurrent_queries, whichever is lower). */
      tenant_pool_share: z.number().gt(0).max(1).default(DEFAULTS.server.tenant_pool_share),
    })
    .default({ ...DEFAULTS.server }),
  security: z
    .strictObject({
      secret_env: z.string().default(DEFAULTS.security.secret_env),
      signing_key_env: z.string().default(DEFAULTS.security.signing_key_env),
    })
    .default({ ...DEFAULTS.security }),
  identity: z
    .strictObject({
      api_keys: z.boolean().default(true),
      jwt: jwt.optional(),
      tenant_from: z.array(z.enum(['credential', 'header', 'path', 'subdomain'])).default([...DEFAULTS.identity.tenant_from]),
      tenant_header: z.string().default(DEFAULTS.identity.tenant_header),
      subdomain_base: z.string().optional(),
    })
    .default({ api_keys: true, tenant_from: [...DEFAULTS.identity.tenant_from], tenant_header: DEFAULTS.identity.tenant_header }),
  roles: z.record(ident, z.strictObject({ access: z.enum(ACCESS_LEVELS) })).default({ ...DEFAULTS.roles }),
  defaults: z
    .strictObject({
      tier: z.enum(TIERS).default(DEFAULTS.defaults.tier),
      tenant_column: ident.default(DEFAULTS.defaults.tenant_column),
      quotas: quotas.partial().default({}),
      /** Quotas by tier, between the defaults and a tenant's own. */
      tier_quotas: z.partialRecord(z.enum(TIERS), quotas.partial()).default({}),
    })
    .default({ tier: DEFAULTS.defaults.tier, tenant_column: DEFAULTS.defaults.tenant_column, quotas: {}, tier_quotas: {} }),
  datasets: z.array(dataset).default([]),
  tenants: z.array(tenantSchema).default([]),
  quota_store: z.string().default(DEFAULTS.quota_store),
  /** When the shared quota store cannot be reached: `open` decides with a limiter in each process, `closed` refuses. */
  quota_store_failure: z.enum(['open', 'closed']).default(DEFAULTS.quota_store_failure),
  quota_refresh: z
    .strictObject({
      overrides_ms: z.number().int().min(100).max(3_600_000).default(DEFAULTS.quota_refresh.overrides_ms),
      storage_ms: z.number().int().min(1_000).max(86_400_000).default(DEFAULTS.quota_refresh.storage_ms),
    })
    .default({ ...DEFAULTS.quota_refresh }),
  quota_webhook: webhook.optional(),
  audit: z
    .strictObject({
      retention_days: z.number().int().positive().default(DEFAULTS.audit.retention_days),
      mode: z.enum(['batched', 'durable']).default(DEFAULTS.audit.mode),
      flush_interval_ms: z.number().int().min(10).max(60_000).default(DEFAULTS.audit.flush_interval_ms),
      batch_size: z.number().int().min(1).max(5_000).default(DEFAULTS.audit.batch_size),
      buffer_limit: z.number().int().min(1).max(1_000_000).default(DEFAULTS.audit.buffer_limit),
      on_erase: z.enum(['keep', 'pseudonymise', 'delete']).default(DEFAULTS.audit.on_erase),
      security_webhook: webhook.optional(),
    })
    .default({ ...DEFAULTS.audit }),
  metrics: z
    .strictObject({
      top_tenants: z.number().int().min(0).max(1_000).default(DEFAULTS.metrics.top_tenants),
      series_budget: z.number().int().min(100).max(1_000_000).default(DEFAULTS.metrics.series_budget),
      public: z.boolean().default(DEFAULTS.metrics.public),
    })
    .default({ ...DEFAULTS.metrics }),
});

export type RawConfig = z.infer<typeof configSchema>;
export type RawTenant = z.infer<typeof tenantSchema>;
export type RawDataset = z.infer<typeof dataset>;
export type Quotas = z.infer<typeof quotas>;
