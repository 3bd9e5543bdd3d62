import { timingSafeEqual } from 'node:crypto';
import type { Config } from '../config/types.ts';
import { TenantGateError } from '../errors/index.ts';
import { hashApiKey } from './api-keys.ts';
import type { JwtVerifier } from './jwt.ts';
import type { Principal } from './principal.ts';

type Queryable = { query(text: string, params?: unknown[]): Promise<{ rows: Array<Record<string, unknown>> }> };

const KEY_PATTERN = /^tg_([a-z0-9]{12})_[A-Za-z0-9_-]{43}$/;
/** How long a verified key is trusted without asking the database again (revocation delay). */
export const KEY_CACHE_TTL_MS = 5_000;

export interface Credentials {
  apiKey?: string | undefined;
  authorization?: string | undefined;
}

/**
 * identify(request) → Principal: an API key (X-API-Key or Bearer) or a JWT (Bearer).
 * Nothing about tenants is decided here. Keys are looked up by id through a SECURITY DEFINER
 * function and compared by HMAC in constant time; verified keys are cached briefly.
 */
export class Identifier {
  /**
   * Keys verified in the last KEY_CACHE_TTL_MS, by key id, with the key's own bytes: a repeat is
   * compared in constant time against them instead of being hashed again (the HMAC was the single
   * largest cost of identify). The process holds each presented key in memory anyway while it reads it.
   */
  private readonly cache = new Map<string, { principal: Principal; key: Buffer; at: number }>();

  constructor(
    private readonly config: Config,
    private readonly secret: Buffer,
    private readonly db: Queryable,
    private readonly jwt?: JwtVerifier,
  ) {}

  /**
   * The caller's principal: at once for a key verified in the last few seconds (no promise on the
   * common path), else a promise. A refusal is always a rejected promise, never a throw at the call.
   */
  identify(creds: Credentials): Principal | Promise<Principal> {
    try {
      return this.principalOf(creds);
    } catch (err) {
      return Promise.reject(err);
    }
  }

  private principalOf(creds: Credentials): Principal | Promise<Principal> {
    let token = creds.apiKey;
    if (!token && creds.authorization) {
      const m = /^Bearer\s+(\S+)\s*$/i.exec(creds.authorization);
      if (!m) throw new TenantGateError('AUTH_INVALID', 'use Authorization: Bearer <token>');
      token = m[1];
    }
    if (!token) throw new TenantGateError('AUTH_MISSING', 'no credential given');
    if (token.startsWith('tg_')) return this.apiKey(token);
    if (token.split('.').length === 3) {
      if (!this.jwt) throw new TenantGateError('AUTH_INVALID', 'JWTs are not accepted by this gateway');
      return this.jwt(token);
    }
    throw new TenantGateError('AUTH_INVALID', 'the credential is not an API key or a JWT');
  }

  private apiKey(key: string): Principal | Promise<Principal> {
    if (!this.config.effective.identity.api_keys) throw new TenantGateError('AUTH_INVALID', 'API keys are not accepted by this gateway');
    const m = KEY_PATTERN.exec(key);
    if (!m) throw new TenantGateError('AUTH_INVALID', 'malformed API key');
    const keyId = m[1] as string;
    const presented = Buffer.from(key, 'latin1');
    const cached = this.cache.get(keyId);
    if (cached && Date.now() - cached.at < KEY_CACHE_TTL_MS) {
      // KEY_PATTERN fixes the length, so the comparison cannot throw. A key id names one key: another secret is wrong.
      if (timingSafeEqual(cached.key, presented)) return cached.principal;
      throw new TenantGateError('AUTH_INVALID', 'unknown or revoked API key');
    }
    return this.lookUp(key, keyId, presented);
  }

  /** A key not verified lately: its hash from the database, compared in constant time. */
  private async lookUp(key: string, keyId: string, presented: Buffer): Promise<Principal> {
    const expected = hashApiKey(this.secret, key);
    const r = await this.db.query(`SELECT hash, tenant_id, role, access, revoked FROM tenantgate.lookup_key($1)`, [keyId]);
    const row = r.rows[0];
    const stored = row ? Buffer.from(row['hash'] as Uint8Array) : Buffer.alloc(expected.length);
    const same = stored.length === expected.length && timingSafeEqual(stored, expected);
    if (!row || !same || row['revoked']) {
      this.cache.delete(keyId);
      throw new TenantGateError('AUTH_INVALID', 'unknown or revoked API key');
    }
    const role = Object.hasOwn(this.config.roles, row['role'] as string) ? this.config.roles[row['role'] as string] : undefined;
    if (!role) throw new TenantGateError('AUTH_INVALID', 'the key names a role that is no longer configured');
    const principal: Principal = { kind: 'api_key', id: keyId, role: row['role'] as string, access: role.access, tenants: row['tenant_id'] ? [row['tenant_id'] as string] : [] };
    this.cache.set(keyId, { principal, key: presented, at: Date.now() });
    if (this.cache.size > 10_000) this.cache.delete(this.cache.keys().next().value as string);
    return principal;
  }
}
