import { createRemoteJWKSet, customFetch, jwtVerify, type JWTPayload, type JWTVerifyGetKey } from 'jose';
import type { Config } from '../config/types.ts';
import { TenantGateError } from '../errors/index.ts';
import { isValidTenantId } from '../tenancy/tenant-id.ts';
import type { Principal } from './principal.ts';

/** Seconds of clock skew tolerated on exp/nbf/iat. */
export const JWT_CLOCK_TOLERANCE_S = 30;

export type JwtVerifier = (token: string) => Promise<Principal>;

/**
 * A verifier for `identity.jwt`: HS keys from an environment variable or a JWKS URL (cached,
 * refetched on an unknown `kid` with a cool-down), issuer/audience/exp/nbf checked, and only
 * the configured algorithms accepted (so `none` and HS256-signed-with-the-RSA-public-key fail).
 */
export function createJwtVerifier(config: Config, env: Record<string, string | undefined>, fetchJwks?: typeof fetch): JwtVerifier | undefined {
  const jwt = config.effective.identity.jwt;
  if (!jwt) return undefined;
  let key: Uint8Array | JWTVerifyGetKey;
  if (jwt.secret_env) {
    const secret = env[jwt.secret_env];
    if (!secret || secret.length < 32) {
      throw new TenantGateError('SECRET_MISSING', `${jwt.secret_env} must hold the JWT secret (32+ characters)${secret ? '' : '; it is not set'}`, {
        hint: `Set ${jwt.secret_env} (identity.jwt.secret_env) to the HS secret your identity provider signs its tokens with, 32+ characters; or verify tokens with identity.jwt.jwks_url instead.`,
      });
    }
    key = new TextEncoder().encode(secret);
    if (jwt.algorithms.some((a) => !a.startsWith('HS'))) throw new TenantGateError('CONFIG_INVALID', 'identity.jwt.secret_env takes HS algorithms only');
  } else if (jwt.jwks_url) {
    key = createRemoteJWKSet(new URL(jwt.jwks_url), { cacheMaxAge: 600_000, cooldownDuration: 30_000, timeoutDuration: 5_000, ...(fetchJwks ? { [customFetch]: fetchJwks } : {}) });
    if (jwt.algorithms.some((a) => a.startsWith('HS') || a === 'none')) throw new TenantGateError('CONFIG_INVALID', 'identity.jwt.jwks_url takes asymmetric algorithms only');
  } else {
    throw new TenantGateError('CONFIG_INVALID', 'identity.jwt needs jwks_url or secret_env');
  }
  const claims = jwt.claims;
  return async (token) => {
    let payload: JWTPayload;
    try {
      const verified = await jwtVerify(token, key as never, {
        algorithms: jwt.algorithms,
        clockTolerance: JWT_CLOCK_TOLERANCE_S,
        ...(jwt.issuer ? { issuer: jwt.issuer } : {}),
        ...(jwt.audience ? { audience: jwt.audience } : {}),
        requiredClaims: ['exp'],
      });
      payload = verified.payload;
    } catch (err) {
      throw new TenantGateError('AUTH_INVALID', 'the token is invalid or expired', { cause: err });
    }
    const roleName = payload[claims.role];
    // Own keys only: "constructor" or "__proto__" must not resolve to something on Object.prototype.
    const role = typeof roleName === 'string' && Object.hasOwn(config.roles, roleName) ? config.roles[roleName] : undefined;
    if (!role || typeof roleName !== 'string') throw new TenantGateError('AUTH_INVALID', 'the token names no known role');
    const listed = payload[claims.tenants];
    const single = payload[claims.tenant];
    const tenants = role.access === 'platform' ? [] : Array.isArray(listed) ? listed : single !== undefined ? [single] : [];
    if (tenants.some((t) => !isValidTenantId(t))) throw new TenantGateError('AUTH_INVALID', 'the token names an invalid tenant id');
    if (role.access !== 'platform' && tenants.length === 0) throw new TenantGateError('AUTH_INVALID', 'the token names no tenant');
    return { kind: 'jwt', id: String(payload.sub ?? 'unknown'), role: roleName, access: role.access, tenants: tenants as string[] };
  };
}
