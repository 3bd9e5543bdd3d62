/**
 * Credentials over HTTP: JWTs (HS secret and a local JWKS server) and API keys. Every forged,
 * expired, misaddressed or malformed credential answers 401 AUTH_INVALID; nothing answers 500.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { SignJWT, exportJWK, exportSPKI, generateKeyPair, type CryptoKey, type JWK, type JWTPayload } from 'jose';
import { createApiKey, revokeApiKey } from '../../src/identify/api-keys.ts';
import { KEY_CACHE_TTL_MS } from '../../src/identify/identify.ts';
import { JWT_CLOCK_TOLERANCE_S } from '../../src/identify/jwt.ts';
import { BACKENDS, createFixture, fixture, type Fixture } from '../support/backends.ts';
import { serve, type Served } from './support.ts';

const ISSUER = 'https://idp.example.test/';
const AUDIENCE = 'tenantgate';
const JWT_SECRET = 'a-jwt-secret-of-at-least-32-characters!!';
const Q = { dataset: 'orders', dimensions: ['region'], metrics: ['revenue'] };
const ACME_ROWS = [['North', 100], ['South', 200]];

const withIdentity = (jwt: string) => fixture('seed003.yaml').replace('datasets:', `identity:\n  jwt:\n${jwt}\ndatasets:`);
const HS_YAML = withIdentity(`    secret_env: TG_JWT_SECRET\n    algorithms: [HS256]\n    issuer: ${ISSUER}\n    audience: ${AUDIENCE}`);
const jwksYaml = (url: string) => withIdentity(`    jwks_url: ${url}\n    algorithms: [RS256]\n    issuer: ${ISSUER}\n    audience: ${AUDIENCE}`);

const b64 = (v: unknown) => Buffer.from(typeof v === 'string' ? v : JSON.stringify(v)).toString('base64url');
const now = () => Math.floor(Date.now() / 1000);

/** A JWKS endpoint on 127.0.0.1: serves whatever key set it is given, and records every request path. */
interface JwksServer {
  url: string;
  paths: string[];
  set(keys: JWK[]): void;
  close(): Promise<void>;
}
async function jwksServer(): Promise<JwksServer> {
  let keys: JWK[] = [];
  const paths: string[] = [];
  const server: Server = createServer((req, res) => {
    paths.push(req.url ?? '');
    if (req.url !== '/jwks.json') {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ keys }));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/jwks.json`,
    paths,
    set: (k) => {
      keys = k;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

interface RsaKey {
  kid: string;
  privateKey: CryptoKey;
  publicKey: CryptoKey;
  jwk: JWK;
}
async function rsaKey(kid: string): Promise<RsaKey> {
  const { privateKey, publicKey } = await generateKeyPair('RS256', { extractable: true });
  return { kid, privateKey, publicKey, jwk: { ...(await exportJWK(publicKey)), kid, alg: 'RS256', use: 'sig' } };
}

/** A token with the defaults every valid one has (iss, aud, sub, exp in 5 minutes), overridable. */
function claims(extra: JWTPayload = {}): JWTPayload {
  return { iss: ISSUER, aud: AUDIENCE, sub: 'user-1', iat: now(), exp: now() + 300, tenant_id: 'acme_corp', role: 'analyst', ...extra };
}
const signRs = (key: RsaKey, payload: JWTPayload, header: Record<string, unknown> = {}) =>
  new SignJWT(payload).setProtectedHeader({ alg: 'RS256', kid: key.kid, ...header }).sign(key.privateKey);
const signHs = (payload: JWTPayload, secret: string | Uint8Array = JWT_SECRET, header: Record<string, unknown> = {}) =>
  new SignJWT(payload).setProtectedHeader({ alg: 'HS256', ...header }).sign(typeof secret === 'string' ? new TextEncoder().encode(secret) : secret);
/** An unsigned token: `alg: none` and an empty signature. */
const unsigned = (payload: JWTPayload, header: Record<string, unknown> = {}) => `${b64({ alg: 'none', typ: 'JWT', ...header })}.${b64(payload)}.`;

describe.each(BACKENDS)('JWT and API key verification over HTTP on %s', (kind) => {
  let fx: Fixture;
  let hs: Served;
  let rs: Served;
  let idp: JwksServer;
  let key1: RsaKey;
  let stranger: RsaKey;

  beforeAll(async () => {
    [key1, stranger] = await Promise.all([rsaKey('key-1'), rsaKey('stranger')]);
    idp = await jwksServer();
    idp.set([key1.jwk]);
    fx = await createFixture(kind, { sql: fixture('seed003.sql'), yaml: HS_YAML });
    hs = await serve(fx, { env: { TG_JWT_SECRET: JWT_SECRET } });
    await fx.reload(jwksYaml(idp.url));
    rs = await serve(fx);
  });
  afterAll(async () => {
    await hs?.close();
    await rs?.close();
    await idp?.close();
    await fx?.cleanup();
  });
  afterEach(() => {
    vi.restoreAllMocks();
  });

  const query = (s: Served, token: string, headers: Record<string, string> = {}) => s.post('/v1/query', Q, { authorization: `Bearer ${token}`, ...headers });
  const expectInvalid = async (s: Served, token: string, what: string) => {
    const r = await query(s, token);
    expect({ what, status: r.status, code: r.json?.error?.code }).toEqual({ what, status: 401, code: 'AUTH_INVALID' });
  };
  const expectOk = async (s: Served, token: string) => {
    const r = await query(s, token);
    expect(r.status, JSON.stringify(r.json)).toBe(200);
    expect(r.json.rows).toEqual(ACME_ROWS);
  };

  describe('HS256 (identity.jwt.secret_env)', () => {
    it('a valid token works (the baseline every failure below differs from in one way)', async () => {
      await expectOk(hs, await signHs(claims()));
    });

    it('alg none (unsigned) is AUTH_INVALID, with or without a signature part', async () => {
      await expectInvalid(hs, unsigned(claims()), 'alg none');
      await expectInvalid(hs, unsigned(claims(), { alg: 'None' }), 'alg None');
      const signed = await signHs(claims());
      await expectInvalid(hs, `${b64({ alg: 'none', typ: 'JWT' })}.${signed.split('.')[1]}.${signed.split('.')[2]}`, 'alg none with a signature');
    });

    it('a token signed with another HS key is AUTH_INVALID', async () => {
      await expectInvalid(hs, await signHs(claims(), 'another-secret-of-at-least-32-characters!!'), 'wrong key');
      await expectInvalid(hs, await signHs(claims(), `${JWT_SECRET} `), 'key with one more byte');
    });

    it('an HS384/HS512 token signed with the right secret is AUTH_INVALID (only HS256 is configured)', async () => {
      const secret = new TextEncoder().encode(JWT_SECRET);
      await expectInvalid(hs, await new SignJWT(claims()).setProtectedHeader({ alg: 'HS512' }).sign(secret), 'HS512');
      await expectInvalid(hs, await new SignJWT(claims()).setProtectedHeader({ alg: 'HS384' }).sign(secret), 'HS384');
    });

    it(`expired beyond the ${JWT_CLOCK_TOLERANCE_S} s skew is AUTH_INVALID; expired just inside it passes`, async () => {
      await expectInvalid(hs, await signHs(claims({ exp: now() - JWT_CLOCK_TOLERANCE_S - 30 })), 'expired a minute ago');
      await expectInvalid(hs, await signHs(claims({ exp: now() - 86_400, iat: now() - 90_000 })), 'expired yesterday');
      await expectOk(hs, await signHs(claims({ exp: now() - JWT_CLOCK_TOLERANCE_S + 15 })));
    });

    it('nbf in the future (beyond the skew) is AUTH_INVALID; just inside the skew passes', async () => {
      await expectInvalid(hs, await signHs(claims({ nbf: now() + 120 })), 'nbf in 2 minutes');
      await expectOk(hs, await signHs(claims({ nbf: now() + JWT_CLOCK_TOLERANCE_S - 15 })));
    });

    it('a wrong or missing issuer or audience is AUTH_INVALID', async () => {
      await expectInvalid(hs, await signHs(claims({ iss: 'https://evil.example.test/' })), 'wrong iss');
      await expectInvalid(hs, await signHs(claims({ iss: undefined })), 'no iss');
      await expectInvalid(hs, await signHs(claims({ aud: 'someone-else' })), 'wrong aud');
      await expectInvalid(hs, await signHs(claims({ aud: ['someone-else', 'another'] })), 'wrong aud list');
      await expectInvalid(hs, await signHs(claims({ aud: undefined })), 'no aud');
      await expectOk(hs, await signHs(claims({ aud: ['someone-else', AUDIENCE] })));
    });

    it('a token without exp (or with a non-numeric exp) is AUTH_INVALID', async () => {
      await expectInvalid(hs, await signHs(claims({ exp: undefined })), 'no exp');
      await expectInvalid(hs, await signHs(claims({ exp: 'tomorrow' as unknown as number })), 'string exp');
      await expectInvalid(hs, await signHs(claims({ exp: null as unknown as number })), 'null exp');
    });

    it('a token whose role claim is unknown, missing or not a string is AUTH_INVALID', async () => {
      for (const role of ['superuser', 'Analyst', '', 'ops ', ['analyst'], { access: 'platform' }, 1, null, true]) {
        await expectInvalid(hs, await signHs(claims({ role })), `role ${JSON.stringify(role)}`);
      }
      await expectInvalid(hs, await signHs(claims({ role: undefined })), 'no role');
    });

    it('a role claim naming an Object.prototype member (constructor, __proto__, toString) is AUTH_INVALID', async () => {
      // Found: `config.roles[roleName]` is a plain-object lookup, so these names find a "role"
      // with no access level; /v1/datasets and /v1/tenant then answer 200, queries 400.
      const seen: string[] = [];
      for (const role of ['constructor', '__proto__', 'toString', 'hasOwnProperty', 'valueOf']) {
        const token = await signHs(claims({ role }));
        const auth = { authorization: `Bearer ${token}` };
        const answers = {
          query: await query(hs, token),
          queries: await hs.post('/v1/queries', { sql: 'SELECT region FROM orders' }, auth),
          datasets: await hs.get('/v1/datasets', auth),
          tenant: await hs.get('/v1/tenant', auth),
        };
        for (const [endpoint, r] of Object.entries(answers)) seen.push(`${role} ${endpoint}: ${r.status} ${r.json?.error?.code}`);
      }
      expect(seen).toEqual(seen.map((line) => line.replace(/: .*$/, ': 401 AUTH_INVALID')));
    });

    it('a token whose tenant claim is invalid is AUTH_INVALID', async () => {
      for (const tenant_id of ['Acme', '../x', 'acme_corp/../globex_inc', 'all', '', 'a', 'x'.repeat(41), 'acme corp', 'acme_corp\u0000', 'ácme', 42, ['acme_corp'], { id: 'acme_corp' }, null]) {
        await expectInvalid(hs, await signHs(claims({ tenant_id })), `tenant_id ${JSON.stringify(tenant_id)}`);
      }
      await expectInvalid(hs, await signHs(claims({ tenant_id: undefined })), 'no tenant');
      await expectInvalid(hs, await signHs(claims({ tenant_id: undefined, tenants: ['acme_corp', '../x'] })), 'one bad tenant in the list');
      await expectInvalid(hs, await signHs(claims({ tenant_id: undefined, tenants: ['Acme'] })), 'tenants [Acme]');
      await expectInvalid(hs, await signHs(claims({ tenant_id: undefined, tenants: [] })), 'tenants []');
      await expectInvalid(hs, await signHs(claims({ tenant_id: undefined, tenants: [null] })), 'tenants [null]');
      await expectInvalid(hs, await signHs(claims({ tenant_id: 'acme_corp', tenants: ['Acme'] })), 'valid single, invalid list');
    });

    it('a valid tenant claim for a tenant that does not exist answers TENANT_MISMATCH, like another tenant', async () => {
      const r = await query(hs, await signHs(claims({ tenant_id: 'no_such_tenant' })));
      expect(r.status).toBe(403);
      expect(r.json.error.code).toBe('TENANT_MISMATCH');
    });

    it('malformed tokens are AUTH_INVALID', async () => {
      const valid = await signHs(claims());
      const [h, p, sig] = valid.split('.') as [string, string, string];
      const malformed = [
        'a.b.c',
        '..',
        '!!!.@@@.###',
        '%%%%.%%%%.%%%%',
        `${h}.${p}`,
        `${h}.${p}.${sig}.extra`,
        `${h}.${p}.${sig}x`,
        `${h}.${p}.${sig.slice(0, -4)}`,
        `${h}.${p}.`,
        `${h}..${sig}`,
        `.${p}.${sig}`,
        `${b64('not json')}.${p}.${sig}`,
        `${b64([1, 2])}.${p}.${sig}`,
        `${b64('null')}.${p}.${sig}`,
        `${h}.${b64('not json')}.${sig}`,
        `${h}.${b64('[]')}.${sig}`,
        `${b64({ alg: 'HS256', crit: ['x-unknown'], 'x-unknown': 1 })}.${p}.${sig}`,
        `${b64({ alg: 'HS256', b64: false, crit: ['b64'] })}.${p}.${sig}`,
        `${b64({ alg: 'RSA-OAEP', enc: 'A256GCM' })}.${p}.${sig}.x.y`,
        `${'A'.repeat(4000)}.${'B'.repeat(4000)}.${'C'.repeat(4000)}`,
        `${h}.${p}.${sig}`.replace(/./, '\u00e9'),
        'eyJ.eyJ.eyJ',
      ];
      for (const token of malformed) await expectInvalid(hs, token, `malformed ${token.slice(0, 60)}`);
      // The payload tampered with after signing.
      const tampered = `${h}.${b64({ ...claims(), tenant_id: 'globex_inc' })}.${sig}`;
      await expectInvalid(hs, tampered, 'tampered payload');
    });

    it('an RS256 token is AUTH_INVALID against an HS256 config', async () => {
      await expectInvalid(hs, await signRs(key1, claims()), 'RS256 at an HS config');
    });
  });

  describe('RS256 from a JWKS URL (identity.jwt.jwks_url)', () => {
    it('a valid RS256 token from the local JWKS server works, and a multi-tenant one acts for the tenant it names', async () => {
      await expectOk(rs, await signRs(key1, claims()));
      const multi = await signRs(key1, claims({ tenant_id: undefined, tenants: ['acme_corp', 'globex_inc'] }));
      const g = await rs.post('/v1/tenants/globex_inc/query', Q, { authorization: `Bearer ${multi}` });
      expect(g.status).toBe(200);
      expect([...g.json.rows].sort()).toEqual([['East', 400], ['North', 300]]);
      const ops = await signRs(key1, claims({ tenant_id: undefined, role: 'ops' }));
      const all = await rs.post('/v1/query', Q, { authorization: `Bearer ${ops}`, 'x-tenant-id': 'all' });
      expect(all.status).toBe(200);
      expect(all.json.rows).toEqual([['East', 400], ['North', 400], ['South', 200]]);
    });

    it('an HS256 token signed with the RSA public key (PEM bytes) as the HMAC secret is AUTH_INVALID', async () => {
      const pem = await exportSPKI(key1.publicKey);
      const forged = await signHs(claims(), new TextEncoder().encode(pem), { kid: key1.kid });
      await expectInvalid(rs, forged, 'HS256 with the PEM public key');
      const forgedJwk = await signHs(claims(), new TextEncoder().encode(JSON.stringify(key1.jwk)), { kid: key1.kid });
      await expectInvalid(rs, forgedJwk, 'HS256 with the JWK public key');
      const forgedN = await signHs(claims(), Buffer.from(key1.jwk.n as string, 'base64url'), { kid: key1.kid });
      await expectInvalid(rs, forgedN, 'HS256 with the modulus');
    });

    it('alg none, PS256 and ES256 headers are AUTH_INVALID against an RS256 config', async () => {
      await expectInvalid(rs, unsigned(claims(), { kid: key1.kid }), 'alg none with a known kid');
      const sig = (await signRs(key1, claims())).split('.')[2] as string;
      await expectInvalid(rs, `${b64({ alg: 'PS256', kid: key1.kid })}.${b64(claims())}.${sig}`, 'PS256 header');
      const ec = await generateKeyPair('ES256');
      await expectInvalid(rs, await new SignJWT(claims()).setProtectedHeader({ alg: 'ES256', kid: key1.kid }).sign(ec.privateKey), 'ES256');
    });

    it('a token signed by an unknown RSA key is AUTH_INVALID, whether its kid is unknown, borrowed or absent', async () => {
      await expectInvalid(rs, await signRs(stranger, claims()), 'unknown kid');
      await expectInvalid(rs, await signRs(stranger, claims(), { kid: key1.kid }), 'borrowed kid');
      await expectInvalid(rs, await signRs(stranger, claims(), { kid: undefined }), 'no kid');
    });

    it('embedded keys in the header (jwk, jku, x5u) are not trusted', async () => {
      const jwk = { ...stranger.jwk };
      delete jwk.kid;
      await expectInvalid(rs, await signRs(stranger, claims(), { jwk, kid: undefined }), 'embedded jwk');
      await expectInvalid(rs, await signRs(stranger, claims(), { jku: 'http://127.0.0.1:1/evil.json' }), 'jku');
      await expectInvalid(rs, await signRs(stranger, claims(), { x5u: 'http://127.0.0.1:1/evil.pem' }), 'x5u');
    });

    it('junk kids (../, URLs, huge, non-strings) are AUTH_INVALID and never change what is fetched', async () => {
      const junk: unknown[] = [
        '../',
        '../../etc/passwd',
        '../jwks.json',
        '..%2f..%2fjwks.json',
        'http://127.0.0.1:1/evil',
        'key-1/../key-1',
        'key-1\u0000',
        "key-1' OR '1'='1",
        'x'.repeat(2000),
        '',
        42,
        null,
        ['key-1'],
        { kid: 'key-1' },
      ];
      for (const kid of junk) {
        await expectInvalid(rs, await signRs(stranger, claims(), { kid }), `kid ${JSON.stringify(kid).slice(0, 40)}`);
        // Signed by the right key but naming a junk kid: never matched to a key by a fuzzy rule.
        if (typeof kid === 'string' && kid !== '') await expectInvalid(rs, await signRs(key1, claims(), { kid }), `right key, kid ${kid.slice(0, 40)}`);
      }
      expect(new Set(idp.paths)).toEqual(new Set(['/jwks.json']));
    });

    it('the claim checks apply to RS256 tokens too', async () => {
      await expectInvalid(rs, await signRs(key1, claims({ exp: now() - 120 })), 'expired');
      await expectInvalid(rs, await signRs(key1, claims({ exp: undefined })), 'no exp');
      await expectInvalid(rs, await signRs(key1, claims({ nbf: now() + 120 })), 'nbf');
      await expectInvalid(rs, await signRs(key1, claims({ iss: 'https://evil.example.test/' })), 'iss');
      await expectInvalid(rs, await signRs(key1, claims({ aud: 'other' })), 'aud');
      await expectInvalid(rs, await signRs(key1, claims({ role: 'root' })), 'role');
      await expectInvalid(rs, await signRs(key1, claims({ tenant_id: 'Acme' })), 'tenant Acme');
      await expectInvalid(rs, await signRs(key1, claims({ tenant_id: '../x' })), 'tenant ../x');
    });
  });

  describe('JWKS rotation', () => {
    let jwks: JwksServer;
    let gw: Served;
    let a: RsaKey;
    let b: RsaKey;
    let c: RsaKey;
    beforeAll(async () => {
      [a, b, c] = await Promise.all([rsaKey('rot-a'), rsaKey('rot-b'), rsaKey('rot-c')]);
      jwks = await jwksServer();
      jwks.set([a.jwk]);
    });
    afterAll(async () => {
      await gw?.close();
      await jwks?.close();
    });

    it('a key served before the first fetch works (the set is fetched lazily, on first use)', async () => {
      await fx.reload(jwksYaml(jwks.url));
      gw = await serve(fx);
      expect(jwks.paths).toEqual([]);
      // Rotated before anyone asked: the first fetch already has the new key.
      jwks.set([b.jwk]);
      await expectOk(gw, await signRs(b, claims()));
      expect(jwks.paths).toEqual(['/jwks.json']);
      await expectInvalid(gw, await signRs(a, claims()), 'the key rotated out before the first fetch');
    });

    it('a new key with a new kid is picked up on an unknown kid after the cool-down, without a restart', async () => {
      const fetches = () => jwks.paths.length;
      const before = fetches();
      jwks.set([b.jwk, c.jwk]);
      // Within the cool-down (30 s after the last fetch) an unknown kid does not refetch:
      // junk kids cannot make the gateway hammer the identity provider.
      await expectInvalid(gw, await signRs(c, claims()), 'new kid within the cool-down');
      for (let i = 0; i < 5; i++) await expectInvalid(gw, await signRs(stranger, claims(), { kid: `junk-${i}` }), 'junk kid');
      expect(fetches()).toBe(before);
      // 31 s later (jose reads the cool-down clock from Date.now; token times use new Date()).
      const realNow = Date.now.bind(Date);
      vi.spyOn(Date, 'now').mockImplementation(() => realNow() + 31_000);
      await expectOk(gw, await signRs(c, claims()));
      expect(fetches()).toBe(before + 1);
      await expectOk(gw, await signRs(b, claims()));
      // The refetch starts a new cool-down: more unknown kids do not fetch again.
      for (let i = 0; i < 5; i++) await expectInvalid(gw, await signRs(stranger, claims(), { kid: `junk2-${i}` }), 'junk kid');
      expect(fetches()).toBe(before + 1);
    });

    it('a key removed from the set stops working after the next refetch', async () => {
      const realNow = Date.now.bind(Date);
      jwks.set([c.jwk]);
      const d = await rsaKey('rot-d');
      jwks.set([c.jwk, d.jwk]);
      vi.spyOn(Date, 'now').mockImplementation(() => realNow() + 62_000);
      await expectOk(gw, await signRs(d, claims())); // refetch: b is gone now
      await expectInvalid(gw, await signRs(b, claims()), 'rotated-out key');
      await expectOk(gw, await signRs(c, claims()));
    });

    it('a JWKS endpoint that fails or answers junk gives AUTH_INVALID, not 500', async () => {
      const broken = await jwksServer();
      broken.set([{ kty: 'RSA', kid: 'junk', n: '!!!', e: 'AQAB' } as JWK]);
      await fx.reload(jwksYaml(broken.url));
      const g = await serve(fx);
      try {
        await expectInvalid(g, await signRs(a, claims(), { kid: 'junk' }), 'a JWKS with a junk key');
        await broken.close();
        const realNow = Date.now.bind(Date);
        vi.spyOn(Date, 'now').mockImplementation(() => realNow() + 700_000);
        await expectInvalid(g, await signRs(a, claims()), 'JWKS server gone');
      } finally {
        await g.close();
      }
      await fx.reload(jwksYaml(broken.url.replace('/jwks.json', '/missing.json')));
      const g404 = await serve(fx);
      try {
        await expectInvalid(g404, await signRs(a, claims()), 'JWKS 404');
      } finally {
        await g404.close();
      }
    });
  });

  describe('other credentials', () => {
    it('no credential is AUTH_MISSING', async () => {
      const r = await hs.post('/v1/query', Q);
      expect(r.status).toBe(401);
      expect(r.json.error.code).toBe('AUTH_MISSING');
      const g = await hs.get('/v1/datasets');
      expect(g.status).toBe(401);
      expect(g.json.error.code).toBe('AUTH_MISSING');
    });

    it('an empty X-API-Key counts as no credential', async () => {
      const r = await hs.post('/v1/query', Q, { 'x-api-key': '' });
      expect(r.status).toBe(401);
      expect(['AUTH_MISSING', 'AUTH_INVALID']).toContain(r.json.error.code);
    });

    it('Authorization schemes other than Bearer, and broken Bearer headers, are AUTH_INVALID', async () => {
      const headers = [
        `Basic ${Buffer.from('acme:secret').toString('base64')}`,
        `Basic ${Buffer.from(`${hs.keys.acme}:`).toString('base64')}`,
        `Digest username="acme"`,
        `Token ${hs.keys.acme}`,
        'Bearer',
        'Bearer ',
        `Bearer ${hs.keys.acme} extra`,
        `Bearer${hs.keys.acme}`,
        hs.keys.acme,
        'garbage',
      ];
      for (const authorization of headers) {
        const r = await hs.post('/v1/query', Q, { authorization });
        expect({ authorization, status: r.status, code: r.json?.error?.code }).toEqual({ authorization, status: 401, code: 'AUTH_INVALID' });
      }
    });

    it('garbage and unknown API keys are AUTH_INVALID, in X-API-Key and as Bearer', async () => {
      const real = hs.keys.acme;
      const m = /^tg_([a-z0-9]{12})_(.{43})$/.exec(real)!;
      const flip = (s: string) => (s[0] === 'A' ? `B${s.slice(1)}` : `A${s.slice(1)}`);
      const keys = [
        'tg_',
        'tg_garbage',
        `tg_${m[1]}_`,
        `tg_${m[1]}_${flip(m[2]!)}`, // right key id, wrong secret
        `tg_zzzzzzzzzzzz_${m[2]}`, // unknown key id, right-shaped secret
        `${real}x`,
        real.toUpperCase(),
        `tg_${m[1]!.toUpperCase()}_${m[2]}`,
        `tg_${m[1]}_${m[2]}\u00e9`,
        `tg_${"'; DROP TABLE tenantgate.api_keys; --".padEnd(12, 'x')}_${m[2]}`,
        'not-a-key',
        'x'.repeat(5000),
      ];
      for (const k of keys) {
        for (const headers of [{ 'x-api-key': k }, { authorization: `Bearer ${k}` }] as Array<Record<string, string>>) {
          const r = await hs.post('/v1/query', Q, headers);
          expect({ k: k.slice(0, 60), status: r.status, code: r.json?.error?.code }).toEqual({ k: k.slice(0, 60), status: 401, code: 'AUTH_INVALID' });
        }
      }
      // The real key still works after all that (no lockout, no cache poisoning).
      const ok = await hs.post('/v1/query', Q, { 'x-api-key': real });
      expect(ok.status).toBe(200);
      expect(ok.json.rows).toEqual(ACME_ROWS);
    });

    it('a revoked API key is AUTH_INVALID (at once if never used; after the cache TTL if it was)', async () => {
      const fresh = await createApiKey(fx.db, fx.config, fx.names, fx.secret, { tenant: 'acme_corp', role: 'analyst' });
      await revokeApiKey(fx.db, fresh.key_id);
      const r = await hs.post('/v1/query', Q, { 'x-api-key': fresh.key });
      expect(r.status).toBe(401);
      expect(r.json.error.code).toBe('AUTH_INVALID');

      const used = await createApiKey(fx.db, fx.config, fx.names, fx.secret, { tenant: 'acme_corp', role: 'analyst' });
      expect((await hs.post('/v1/query', Q, { 'x-api-key': used.key })).status).toBe(200);
      await revokeApiKey(fx.db, used.key_id);
      const realNow = Date.now.bind(Date);
      vi.spyOn(Date, 'now').mockImplementation(() => realNow() + KEY_CACHE_TTL_MS + 1000);
      const after = await hs.post('/v1/query', Q, { authorization: `Bearer ${used.key}` });
      expect(after.status).toBe(401);
      expect(after.json.error.code).toBe('AUTH_INVALID');
    });

    it('a JWT is AUTH_INVALID at a gateway that has no identity.jwt', async () => {
      await fx.reload(fixture('seed003.yaml'));
      const plain = await serve(fx);
      try {
        const r = await query(plain, await signHs(claims()));
        expect(r.status).toBe(401);
        expect(r.json.error.code).toBe('AUTH_INVALID');
        const k = await query(plain, plain.keys.acme);
        expect(k.status).toBe(200);
      } finally {
        await plain.close();
      }
    });
  });
});
