import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApiKey, hashApiKey, listApiKeys, revokeApiKey, verifyApiKey } from '../../src/identify/api-keys.ts';
import { BACKENDS, createFixture, fixture, type Fixture } from '../support/backends.ts';

describe.each(BACKENDS)('API keys and direct logins on %s', (kind) => {
  let fx: Fixture;
  beforeAll(async () => {
    fx = await createFixture(kind, { sql: fixture('seed003.sql') });
  });
  afterAll(async () => fx?.cleanup());

  it('stores only an HMAC of the key and verifies it', async () => {
    const created = await createApiKey(fx.db, fx.config, fx.names, fx.secret, { tenant: 'acme_corp', role: 'analyst' });
    expect(created.key).toMatch(/^tg_[a-z0-9]{12}_[A-Za-z0-9_-]{43}$/);
    const stored = await fx.db.query<{ hash: Uint8Array }>(`SELECT hash FROM tenantgate.api_keys WHERE key_id = $1`, [created.key_id]);
    expect(Buffer.from(stored.rows[0]!.hash)).toEqual(hashApiKey(fx.secret, created.key));
    const dump = JSON.stringify((await fx.db.query(`SELECT * FROM tenantgate.api_keys`)).rows);
    // The secret part is base64url and may itself contain '_': cut it off by its known prefix.
    const secretPart = created.key.slice(`tg_${created.key_id}_`.length);
    expect(secretPart).toHaveLength(43);
    expect(dump).not.toContain(secretPart);
    expect(await verifyApiKey(fx.db, fx.secret, created.key)).toMatchObject({ key_id: created.key_id, tenant: 'acme_corp', access: 'read' });
  });

  it('rejects a wrong, truncated or foreign-secret key', async () => {
    const created = await createApiKey(fx.db, fx.config, fx.names, fx.secret, { tenant: 'acme_corp', role: 'analyst' });
    const last = created.key.at(-1) === 'A' ? 'B' : 'A';
    expect(await verifyApiKey(fx.db, fx.secret, created.key.slice(0, -1) + last)).toBeUndefined();
    expect(await verifyApiKey(fx.db, fx.secret, created.key.slice(0, -2))).toBeUndefined();
    expect(await verifyApiKey(fx.db, Buffer.from('another-secret-another-secret-another'), created.key)).toBeUndefined();
    expect(await verifyApiKey(fx.db, fx.secret, "tg_' OR 1=1 --")).toBeUndefined();
  });

  it('platform keys have no tenant; tenant roles need one; unknown roles and tenants are refused', async () => {
    expect(await createApiKey(fx.db, fx.config, fx.names, fx.secret, { role: 'ops' })).toMatchObject({ tenant: null, access: 'platform' });
    await expect(createApiKey(fx.db, fx.config, fx.names, fx.secret, { role: 'analyst' })).rejects.toMatchObject({ code: 'USAGE' });
    await expect(createApiKey(fx.db, fx.config, fx.names, fx.secret, { tenant: 'acme_corp', role: 'ops' })).rejects.toMatchObject({ code: 'USAGE' });
    await expect(createApiKey(fx.db, fx.config, fx.names, fx.secret, { tenant: 'acme_corp', role: 'nope' })).rejects.toMatchObject({ code: 'ROLE_UNKNOWN' });
    await expect(createApiKey(fx.db, fx.config, fx.names, fx.secret, { tenant: 'nobody', role: 'analyst' })).rejects.toMatchObject({ code: 'TENANT_UNKNOWN' });
  });

  it('lists keys without secrets, by tenant', async () => {
    const keys = await listApiKeys(fx.db, { tenant: 'acme_corp' });
    expect(keys.length).toBeGreaterThan(0);
    expect(keys.every((k) => k.tenant === 'acme_corp')).toBe(true);
    expect(JSON.stringify(keys)).not.toMatch(/"hash"|"key"/);
  });

  it('revoking a key stops it verifying and drops its database login', async () => {
    const created = await createApiKey(fx.db, fx.config, fx.names, fx.secret, { tenant: 'globex_inc', role: 'analyst', dbLogin: true });
    const login = created.db_login!;
    expect(login.user).toBe(fx.names.login(created.key_id));
    const revoked = await revokeApiKey(fx.db, created.key_id);
    expect(revoked.revoked_at).not.toBeNull();
    expect(await verifyApiKey(fx.db, fx.secret, created.key)).toBeUndefined();
    const role = await fx.db.query(`SELECT 1 FROM pg_roles WHERE rolname = $1`, [login.user]);
    expect(role.rowCount).toBe(0);
    await expect(revokeApiKey(fx.db, 'nosuchkey000')).rejects.toMatchObject({ code: 'KEY_UNKNOWN' });
  });

  it.skipIf(kind === 'pglite')('a revoked login can no longer connect', async () => {
    const created = await createApiKey(fx.db, fx.config, fx.names, fx.secret, { tenant: 'acme_corp', role: 'analyst', dbLogin: true });
    const before = await fx.connectAs(created.db_login!.user, created.db_login!.password);
    expect((await before.query(`SELECT count(*)::int AS c FROM public.orders`)).rows[0]).toEqual({ c: 2 });
    await revokeApiKey(fx.db, created.key_id);
    const after = await fx.connectAs(created.db_login!.user, created.db_login!.password);
    await expect(after.query('SELECT 1')).rejects.toMatchObject({ code: '28000' });
  });
});
