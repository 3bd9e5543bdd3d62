import { createPrivateKey, createPublicKey, generateKeyPairSync, sign, verify, type KeyObject } from 'node:crypto';
import type { Config } from '../config/types.ts';
import { isEmbeddedUrl } from '../db/url.ts';
import { TenantGateError } from '../errors/index.ts';
import { embeddedSecretFile } from './secret.ts';

/**
 * The signing key: Ed25519, PEM PKCS#8, in the variable named by `security.signing_key_env`. It
 * signs what tenantgate hands out as proof (export manifests, erasure certificates), so a reader
 * can check them with the public key alone, years later, without tenantgate. Only the embedded
 * database may fall back to a generated key kept beside its data directory (mode 0600), like the
 * server secret, so the demo works on a fresh clone.
 */
export interface SigningKey {
  privateKey: KeyObject;
  publicKey: KeyObject;
  /** The public key as PEM (SPKI): what a verifier needs. */
  publicPem: string;
}

export function loadSigningKey(config: Config, env: Record<string, string | undefined> = process.env): SigningKey {
  const name = config.effective.security.signing_key_env;
  const hint =
    `Make one and keep it: \`openssl genpkey -algorithm ed25519 -out signing.pem && export ${name}="$(cat signing.pem)"\` ` +
    `(security.signing_key_env names the variable). Publish its public key (\`openssl pkey -in signing.pem -pubout\`) to whoever checks what it signs.`;
  const value = env[name];
  let pem: string;
  if (value) {
    pem = value;
  } else {
    const url = config.effective.database.url;
    if (!isEmbeddedUrl(url)) throw new TenantGateError('SIGNING_KEY_MISSING', `${name} is not set`, { hint });
    pem = embeddedSecretFile(config, url, 'signing.pem', newKeyPem);
  }
  let privateKey: KeyObject;
  try {
    privateKey = createPrivateKey(pem.includes('BEGIN') ? pem : pem.replace(/\\n/g, '\n'));
  } catch {
    throw new TenantGateError('SIGNING_KEY_MISSING', `${name} does not hold a PEM private key`, { hint });
  }
  if (privateKey.asymmetricKeyType !== 'ed25519') throw new TenantGateError('SIGNING_KEY_MISSING', `${name} holds a ${privateKey.asymmetricKeyType} key, not Ed25519`, { hint });
  const publicKey = createPublicKey(privateKey);
  return { privateKey, publicKey, publicPem: publicKey.export({ type: 'spki', format: 'pem' }).toString() };
}

function newKeyPem(): string {
  return generateKeyPairSync('ed25519').privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
}

/**
 * JSON with keys sorted at every level and no spaces: the exact bytes that are signed, so any
 * reader can rebuild them (e.g. `jq -cS 'del(.signature)'` gives the same text for plain values).
 */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(sortKeys(value));
}

function sortKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortKeys);
  if (value && typeof value === 'object') {
    return Object.fromEntries(
      Object.keys(value)
        .sort()
        .map((k) => [k, sortKeys((value as Record<string, unknown>)[k])]),
    );
  }
  return value;
}

/** What a signed document carries: the algorithm, the signer's public key, and the signature of the rest. */
export interface Signature {
  algorithm: 'Ed25519';
  public_key: string;
  value: string;
}

/** `doc` with a `signature` over the canonical JSON of everything else in it. */
export function signDocument<T extends Record<string, unknown>>(doc: T, key: SigningKey): T & { signature: Signature } {
  const { signature: _drop, ...body } = doc as T & { signature?: unknown };
  const value = sign(null, Buffer.from(canonicalJson(body), 'utf8'), key.privateKey).toString('base64');
  return { ...(body as T), signature: { algorithm: 'Ed25519', public_key: key.publicPem, value } };
}

export type SignatureCheck = { ok: true; signer: 'configured' | 'embedded' } | { ok: false; problem: string };

/**
 * Check a signed document. With `trusted` (the configured key's public half), the document must be
 * signed by that key; without it, only that the signature matches the public key the document
 * carries, which proves it unchanged since signing but not who signed it.
 */
export function verifyDocument(doc: Record<string, unknown>, trusted?: KeyObject): SignatureCheck {
  const sig = doc['signature'] as Partial<Signature> | undefined;
  if (!sig || sig.algorithm !== 'Ed25519' || typeof sig.value !== 'string' || typeof sig.public_key !== 'string') return { ok: false, problem: 'no Ed25519 signature' };
  let carried: KeyObject;
  try {
    carried = createPublicKey(sig.public_key);
  } catch {
    return { ok: false, problem: 'the signature carries no readable public key' };
  }
  if (trusted && !carried.equals(trusted)) return { ok: false, problem: 'signed by another key than the configured one' };
  const { signature: _drop, ...body } = doc;
  const good = verify(null, Buffer.from(canonicalJson(body), 'utf8'), carried, Buffer.from(sig.value, 'base64'));
  if (!good) return { ok: false, problem: 'the signature does not match the content (edited after signing)' };
  return { ok: true, signer: trusted ? 'configured' : 'embedded' };
}
