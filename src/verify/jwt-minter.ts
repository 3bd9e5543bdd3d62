import { SignJWT } from 'jose';
import type { Config } from '../config/types.ts';
import type { JwtMinter } from './probes/probe.ts';

/**
 * Tokens for the JWT probes, signed like the identity provider would sign them: only possible
 * when identity.jwt verifies with an HS secret from the environment (a JWKS provider's private
 * key is not ours to hold). Undefined otherwise, and those probes are skipped with the reason.
 */
export function jwtMinter(config: Config, env: Record<string, string | undefined>): JwtMinter | undefined {
  const jwt = config.effective.identity.jwt;
  const secret = jwt?.secret_env ? env[jwt.secret_env] : undefined;
  if (!jwt || !secret) return undefined;
  const alg = jwt.algorithms.find((a) => a.startsWith('HS')) ?? 'HS256';
  const readRole = Object.entries(config.roles).find(([, r]) => r.access === 'read')?.[0];
  return {
    claims: jwt.claims,
    readRole,
    async sign(claims, options = {}) {
      const now = Math.floor(Date.now() / 1000);
      let t = new SignJWT(claims).setProtectedHeader({ alg }).setIssuedAt(now - 60).setExpirationTime(now + (options.expiresIn ?? 300));
      if (jwt.issuer) t = t.setIssuer(jwt.issuer);
      if (jwt.audience) t = t.setAudience(jwt.audience);
      return t.sign(options.key ?? new TextEncoder().encode(secret));
    },
  };
}
