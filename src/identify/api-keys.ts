import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { AccessLevel, Config } from '../config/types.ts';
import { inTransaction, type Database } from '../db/database.ts';
import { ident, literal } from '../db/sql.ts';
import { tenantDatabase, tenantSchema } from '../tiers/location.ts';
import { TenantGateError } from '../errors/index.ts';
import type { Names } from '../provision/names.ts';
import { deriveKey } from '../security/secret.ts';

/** `tg_<key id>_<secret>`: the key id is the lookup prefix, the whole key is what gets hashed. */
const KEY_PATTERN = /^tg_([a-z0-9]{12})_([A-Za-z0-9_-]{43})$/;

/** A direct database login: who, and where the tenant's rows are for it (a schema-tier tenant's tables are in `schema`). */
export interface DbLogin {
  user: string;
  password: string;
  database: string;
  schema?: string;
  placement?: string;
}

export interface CreatedKey {
  key_id: string;
  key: string;
  tenant: string | null;
  role: string;
  access: AccessLevel;
  db_login?: DbLogin;
}

export interface KeyRecord {
  key_id: string;
  tenant: string | null;
  role: string;
  access: AccessLevel;
  db_login: string | null;
  created_at: string;
  revoked_at: string | null;
}

function randomId(): string {
  const alphabet = 'abcdefghijklmnopqrstuvwxyz0123456789';
  const bytes = randomBytes(12);
  return [...bytes].map((b) => alphabet[b % 36]).join('');
}

const derivedKeys = new WeakMap<Buffer, Buffer>();

export function hashApiKey(secret: Buffer, key: string): Buffer {
  // The derived key is fixed per secret: derive it once, not on every request.
  let k = derivedKeys.get(secret);
  if (!k) derivedKeys.set(secret, (k = deriveKey(secret, 'api-key')));
  return createHmac('sha256', k).update(key, 'utf8').digest();
}

/**
 * Create an API key (shown once, stored as HMAC-SHA256 under the server secret) and, with
 * `dbLogin`, a PostgreSQL login for BI tools whose isolation is keyed on the login role itself.
 */
export async function createApiKey(
  db: Database,
  config: Config,
  n: Names,
  secret: Buffer,
  request: { tenant?: string; role: string; dbLogin?: boolean },
): Promise<CreatedKey> {
  const role = Object.hasOwn(config.roles, request.role) ? config.roles[request.role] : undefined;
  if (!role) throw new TenantGateError('ROLE_UNKNOWN', `role "${request.role}" is not defined under roles:`);
  if (role.access === 'platform') {
    if (request.tenant) throw new TenantGateError('USAGE', `role "${request.role}" is a platform role: create it without --tenant`);
    if (request.dbLogin) throw new TenantGateError('USAGE', 'platform keys cannot have a direct database login');
  } else {
    if (!request.tenant) throw new TenantGateError('USAGE', `role "${request.role}" belongs to a tenant: pass --tenant`);
    const tenant = config.tenants.get(request.tenant);
    if (!tenant) throw new TenantGateError('TENANT_UNKNOWN', `tenant "${request.tenant}" is not in the configuration`);
    if (!tenant.roles.includes(request.role)) {
      throw new TenantGateError('ROLE_UNKNOWN', `tenant "${tenant.id}" may not use role "${request.role}" (its roles: ${tenant.roles.join(', ')})`);
    }
  }
  const keyId = randomId();
  const key = `tg_${keyId}_${randomBytes(32).toString('base64url')}`;
  const tenant = request.tenant ?? null;
  return inTransaction(db, async (client) => {
    let place: { tier: string; placement: string; db: string } | undefined;
    if (tenant) {
      const known = await client.query<{ tier: string; placement: string; db: string }>(`SELECT tier, placement, current_database() AS db FROM tenantgate.tenants WHERE id = $1`, [tenant]);
      if (known.rowCount === 0) throw new TenantGateError('TENANT_UNKNOWN', `tenant "${tenant}" is not provisioned yet: run tenantgate apply`);
      place = known.rows[0];
    }
    let login: DbLogin | undefined;
    if (request.dbLogin && tenant) {
      // Where the login finds the tenant's rows: its own database (tier database), or its schema in the main one.
      const where = place?.tier === 'database' ? { database: tenantDatabase(n.prefix, tenant), ...(place.placement === 'default' ? {} : { placement: place.placement }) } : { database: place?.db ?? '', ...(place?.tier === 'schema' ? { schema: tenantSchema(tenant) } : {}) };
      login = { user: n.login(keyId), password: randomBytes(24).toString('base64url'), ...where };
      // Direct logins are read-only: they belong to the tenant's group and nothing else.
      await client.query(
        `CREATE ROLE ${ident(login.user)} LOGIN INHERIT CONNECTION LIMIT 20 PASSWORD ${literal(login.password)} IN ROLE ${ident(n.tenant(tenant))}`,
      );
      await client.query(`INSERT INTO tenantgate.db_roles (role_name, tenant_id, kind) VALUES ($1, $2, 'login')`, [login.user, tenant]);
      // A suspended tenant's new login starts NOLOGIN (resume gives it LOGIN); a catalog from before suspensions has no sync_logins.
      const sync = await client.query(`SELECT to_regprocedure('tenantgate.sync_logins(text)') IS NOT NULL AS ok`);
      if (sync.rows[0]?.ok) await client.query(`SELECT tenantgate.sync_logins($1)`, [tenant]);
    }
    await client.query(`INSERT INTO tenantgate.api_keys (key_id, tenant_id, role, access, hash, db_login) VALUES ($1, $2, $3, $4, $5, $6)`, [
      keyId,
      tenant,
      request.role,
      role.access,
      hashApiKey(secret, key),
      login?.user ?? null,
    ]);
    return { key_id: keyId, key, tenant, role: request.role, access: role.access, ...(login ? { db_login: login } : {}) };
  });
}

export async function listApiKeys(db: Database, filter: { tenant?: string } = {}): Promise<KeyRecord[]> {
  const rows = await db.query<KeyRecord>(
    `SELECT key_id, tenant_id AS tenant, role, access, db_login, created_at::text, revoked_at::text
       FROM tenantgate.api_keys WHERE ($1::text IS NULL OR tenant_id = $1) ORDER BY created_at, key_id`,
    [filter.tenant ?? null],
  );
  return rows.rows;
}

/** Revoke a key; its direct login (if any) is dropped and its open sessions ended. */
export async function revokeApiKey(db: Database, keyId: string): Promise<KeyRecord> {
  return inTransaction(db, async (client) => {
    const found = await client.query<KeyRecord>(
      `UPDATE tenantgate.api_keys SET revoked_at = coalesce(revoked_at, now()) WHERE key_id = $1
       RETURNING key_id, tenant_id AS tenant, role, access, db_login, created_at::text, revoked_at::text`,
      [keyId],
    );
    const record = found.rows[0];
    if (!record) throw new TenantGateError('KEY_UNKNOWN', `no key with id ${keyId}`);
    if (record.db_login) {
      const exists = await client.query(`SELECT 1 FROM pg_roles WHERE rolname = $1`, [record.db_login]);
      await client.query(`DELETE FROM tenantgate.db_roles WHERE role_name = $1`, [record.db_login]);
      if (exists.rowCount) {
        await client.query(`ALTER ROLE ${ident(record.db_login)} NOLOGIN`);
        // Ending open sessions needs pg_signal_backend; without it the login is still gone for new ones.
        await client.query('SAVEPOINT terminate_sessions');
        await client
          .query(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1`, [record.db_login])
          .catch(() => client.query('ROLLBACK TO SAVEPOINT terminate_sessions'));
        await client.query(`DROP OWNED BY ${ident(record.db_login)}; DROP ROLE ${ident(record.db_login)}`);
      }
    }
    return record;
  });
}

/** Look a presented key up and compare its hash in constant time. Undefined for anything not valid. */
export async function verifyApiKey(db: Pick<Database, 'query'>, secret: Buffer, presented: string): Promise<KeyRecord | undefined> {
  const m = KEY_PATTERN.exec(presented);
  if (!m) return undefined;
  const rows = await db.query<KeyRecord & { hash: Buffer }>(
    `SELECT key_id, tenant_id AS tenant, role, access, db_login, hash, created_at::text, revoked_at::text FROM tenantgate.api_keys WHERE key_id = $1`,
    [m[1]],
  );
  const row = rows.rows[0];
  const expected = hashApiKey(secret, presented);
  // Compare even when no row matched, so timing does not tell which key ids exist.
  const stored = row ? Buffer.from(row.hash) : Buffer.alloc(expected.length);
  const same = stored.length === expected.length && timingSafeEqual(stored, expected);
  if (!row || !same || row.revoked_at) return undefined;
  const { hash: _hash, ...record } = row;
  return record;
}
