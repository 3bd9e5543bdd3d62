import { createHmac, randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import type { Config } from '../config/types.ts';
import { isEmbeddedUrl } from '../db/url.ts';
import { TenantGateError } from '../errors/index.ts';

/**
 * The server secret: the root of API-key hashes and of the signed tenant context.
 * It comes from the variable named by `security.secret_env`. Only the embedded database
 * may fall back to a generated one, kept beside its data directory (mode 0600), so
 * `npm start` works on a fresh clone without leaving a guessable default anywhere.
 */
export function loadServerSecret(config: Config, env: Record<string, string | undefined> = process.env): Buffer {
  const name = config.effective.security.secret_env;
  const value = env[name];
  const hint = serverSecretHint(name);
  if (value) {
    if (value.length < 32) throw new TenantGateError('SECRET_MISSING', `${name} must hold at least 32 characters`, { hint });
    return Buffer.from(value, 'utf8');
  }
  const url = config.effective.database.url;
  if (!isEmbeddedUrl(url)) throw new TenantGateError('SECRET_MISSING', `${name} is not set`, { hint });
  return Buffer.from(embeddedSecretFile(config, url, 'secret', () => randomBytes(32).toString('base64url')).trim(), 'utf8');
}

const memorySecrets = new Map<string, string>();

/**
 * A secret the embedded database keeps beside its data directory (`<dir>/../<name>`, mode 0600),
 * made by `make` the first time; an in-memory database gets one per process.
 */
export function embeddedSecretFile(config: Config, url: string, name: string, make: () => string): string {
  const target = url.replace(/^(pglite|memory):\/\//, '');
  if (target === 'memory' || target === '') {
    if (!memorySecrets.has(name)) memorySecrets.set(name, make());
    return memorySecrets.get(name)!;
  }
  const file = resolve(config.dir, dirname(target), name);
  if (!existsSync(file)) {
    mkdirSync(dirname(file), { recursive: true });
    writeFileSync(file, make(), { mode: 0o600 });
  }
  chmodSync(file, 0o600);
  return readFileSync(file, 'utf8');
}

/** What to run when the server secret is missing: make one, and keep it (keys and policies depend on it). */
function serverSecretHint(name: string): string {
  const key = name === 'TENANTGATE_SECRET' ? 'security.secret_env, default TENANTGATE_SECRET' : 'security.secret_env';
  return (
    `Set ${name} (${key}) to 32+ random characters, e.g. \`export ${name}=$(openssl rand -base64 48)\`, and keep it: ` +
    `every process that provisions or serves this database needs the same value (API keys and tenant policies are derived from it).`
  );
}

/** Independent keys for independent purposes, derived from the one secret. */
export function deriveKey(secret: Buffer, purpose: 'context' | 'api-key'): Buffer {
  return createHmac('sha256', secret).update(`tenantgate/${purpose}`).digest();
}

/**
 * HMAC-SHA256 pads for the database: the policy function computes
 * sha256(k_opad || sha256(k_ipad || tenant)), which is standard HMAC, with built-in sha256()
 * only (no pgcrypto needed on the server or in PGlite).
 */
export function hmacPads(key: Buffer): { ipad: Buffer; opad: Buffer } {
  if (key.length > 64) throw new Error('HMAC key longer than the SHA-256 block');
  const ipad = Buffer.alloc(64, 0x36);
  const opad = Buffer.alloc(64, 0x5c);
  for (let i = 0; i < key.length; i++) {
    ipad[i] = (ipad[i] as number) ^ (key[i] as number);
    opad[i] = (opad[i] as number) ^ (key[i] as number);
  }
  return { ipad, opad };
}

/** The signature that makes a tenant context valid; without it the policies see no tenant. */
export function contextMac(contextKey: Buffer, tenant: string): string {
  return createHmac('sha256', contextKey).update(tenant, 'utf8').digest('hex');
}
