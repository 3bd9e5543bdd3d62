/**
 * The signing key and signed documents (export manifests, erasure certificates): a round trip,
 * every edit caught, another key refused, the clear error when the key is missing, and a
 * signature that openssl checks on its own (readable without tenantgate).
 */
import { execFileSync } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/load.ts';
import { TenantGateError } from '../../src/errors/index.ts';
import { canonicalJson, loadSigningKey, signDocument, verifyDocument } from '../../src/security/signing.ts';

const dir = mkdtempSync(join(tmpdir(), 'tg-signing-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const pem = () => generateKeyPairSync('ed25519').privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
const serverConfig = () => parseConfig(`version: 1\ndatabase: { url: 'postgres://x@127.0.0.1:1/db' }\n`, join(dir, 'tenantgate.yaml'), { env: {} });

describe('signed documents', () => {
  it('verify what was signed, and catch any edit, a removed signature or another signer', async () => {
    const config = await serverConfig();
    const key = loadSigningKey(config, { TENANTGATE_SIGNING_KEY: pem() });
    const doc = signDocument({ tenant: 'acme_corp', files: [{ name: 'orders.ndjson', rows: 3, sha256: 'ab' }], at: '2026-12-04T00:00:00Z' }, key);
    expect(verifyDocument(doc, key.publicKey)).toEqual({ ok: true, signer: 'configured' });
    expect(verifyDocument(doc)).toEqual({ ok: true, signer: 'embedded' });
    // Key order does not matter: the canonical form is signed.
    const reordered = JSON.parse(JSON.stringify({ at: doc.at, signature: doc.signature, files: doc.files, tenant: doc.tenant }));
    expect(verifyDocument(reordered, key.publicKey).ok).toBe(true);
    const edited = structuredClone(doc);
    edited.files[0]!.rows = 4;
    expect(verifyDocument(edited, key.publicKey)).toMatchObject({ ok: false, problem: expect.stringContaining('edited') });
    const { signature: _s, ...unsigned } = doc;
    expect(verifyDocument(unsigned).ok).toBe(false);
    const other = loadSigningKey(config, { TENANTGATE_SIGNING_KEY: pem() });
    expect(verifyDocument(doc, other.publicKey)).toMatchObject({ ok: false, problem: expect.stringContaining('another key') });
    // A forger who re-signs with its own key is caught by the configured key.
    expect(verifyDocument(signDocument({ ...edited }, other), key.publicKey).ok).toBe(false);
  });

  it('openssl checks the signature on its own: the document is readable without tenantgate', async () => {
    const config = await serverConfig();
    const key = loadSigningKey(config, { TENANTGATE_SIGNING_KEY: pem() });
    const doc = signDocument({ b: 1, a: { y: [1, 'x'], x: null }, note: 'é ✓' }, key);
    const { signature, ...body } = doc;
    writeFileSync(join(dir, 'body.json'), canonicalJson(body));
    writeFileSync(join(dir, 'pub.pem'), signature.public_key);
    writeFileSync(join(dir, 'sig.bin'), Buffer.from(signature.value, 'base64'));
    const out = execFileSync('openssl', ['pkeyutl', '-verify', '-pubin', '-inkey', join(dir, 'pub.pem'), '-rawin', '-in', join(dir, 'body.json'), '-sigfile', join(dir, 'sig.bin')], { encoding: 'utf8' });
    expect(out).toMatch(/Signature Verified Successfully/);
  });

  it('a missing or wrong key on a server is SIGNING_KEY_MISSING with a hint that says how to make one', async () => {
    const config = await serverConfig();
    for (const env of [{}, { TENANTGATE_SIGNING_KEY: 'not a key' }, { TENANTGATE_SIGNING_KEY: generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ type: 'pkcs8', format: 'pem' }).toString() }]) {
      let e: unknown;
      try {
        loadSigningKey(config, env);
      } catch (err) {
        e = err;
      }
      expect(e).toBeInstanceOf(TenantGateError);
      expect((e as TenantGateError).code).toBe('SIGNING_KEY_MISSING');
      expect((e as TenantGateError).hint).toMatch(/openssl genpkey -algorithm ed25519.*TENANTGATE_SIGNING_KEY/);
    }
  });

  it('the embedded database keeps a generated key beside its data directory (0600), the same on every load', async () => {
    const config = await parseConfig(`version: 1\ndatabase: { url: 'pglite://./data/pgdata' }\n`, join(dir, 'tenantgate.yaml'), { env: {} });
    const a = loadSigningKey(config, {});
    const b = loadSigningKey(config, {});
    expect(a.publicPem).toBe(b.publicPem);
    const file = join(dir, 'data', 'signing.pem');
    expect(existsSync(file)).toBe(true);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(readFileSync(file, 'utf8')).toMatch(/BEGIN PRIVATE KEY/);
  });
});
