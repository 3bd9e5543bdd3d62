/**
 * Erase (issue 14 §4) as a job, in every tier: everything of the tenant goes (rows in FK order,
 * schema or database, keys, logins, group role, quota overrides, catalog row; a tombstone stays),
 * every other tenant's rows are byte-identical before and after, the certificate's signature holds
 * and the zero-rows check passes, then fails naming the problem on an edited certificate or a row
 * planted back; audit.on_erase keeps, pseudonymises or deletes the erased chain while every other
 * chain still verifies.
 */
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { appendEvents, verifyChains } from '../../../src/audit/store.ts';
import type { Config } from '../../../src/config/types.ts';
import { createApiKey } from '../../../src/identify/api-keys.ts';
import { verifyCertificate, type Certificate } from '../../../src/lifecycle/erase/certificate.ts';
import { bindEraseEnvironment, removeTenantFromFile, type EraseResult } from '../../../src/lifecycle/erase/job.ts';
import { JobRunner } from '../../../src/lifecycle/jobs/runner.ts';
import { lifecycleEvent } from '../../../src/lifecycle/suspend.ts';
import { setQuotas } from '../../../src/quota/quota-book.ts';
import { ownerDatabases } from '../../../src/tiers/databases.ts';
import { tenantDatabase } from '../../../src/tiers/location.ts';
import { BACKENDS, pgliteFactory, type Fixture } from '../../support/backends.ts';
import { checksums, eraseFixture, SIGNING_PEM } from './support.ts';

const TENANTS = ['acme_corp', 'globex_inc', 'hooli', 'initech'];

describe.each(BACKENDS)('erase on %s', (kind) => {
  let fx: Fixture;
  let env: Record<string, string | undefined>;
  const withMode = (mode: 'keep' | 'pseudonymise' | 'delete'): Config => ({ ...fx.config, effective: { ...fx.config.effective, audit: { ...fx.config.effective.audit, on_erase: mode } } });
  const erase = async (tenant: string, mode: 'keep' | 'pseudonymise' | 'delete' = 'pseudonymise') => {
    bindEraseEnvironment(fx.db, { config: withMode(mode), env, pglite: pgliteFactory });
    const runner = new JobRunner({ db: fx.db, pollMs: 50 });
    const job = await runner.submit({ kind: 'erase', tenant, params: { batch_rows: 2 }, requestedBy: 'cli:erase-test' });
    const done = await runner.follow(job.id);
    expect(done.error, JSON.stringify(done.error) + (done.errorDetail ?? '')).toBeNull();
    expect(done.state).toBe('done');
    return (done.result as EraseResult).certificate;
  };
  const others = async (except: string[]) => Object.fromEntries(await Promise.all(TENANTS.filter((t) => !except.includes(t)).map(async (t) => [t, await checksums(fx, t)] as const)));
  const verify = (doc: unknown) => verifyCertificate({ config: fx.config, env, pglite: pgliteFactory }, fx.db, doc);
  const erased: string[] = [];

  beforeAll(async () => {
    fx = await eraseFixture(kind);
    env = { TG_TEST_DB: fx.url, TG_TEST_PREFIX: fx.prefix, TENANTGATE_SIGNING_KEY: SIGNING_PEM };
    for (const t of TENANTS) {
      await createApiKey(fx.db, fx.config, fx.names, fx.secret, { tenant: t, role: 'analyst', dbLogin: true });
      await appendEvents(fx.db, [{ ...lifecycleEvent(t, 'cli:alice', { action: 'suspend', reason: 'x', changed: true }, Date.now()), client: '10.0.0.1' } as never]);
    }
    await setQuotas(fx.db, 'acme_corp', { requests_per_minute: 5 }, 'cli:test');
  }, 120_000);
  afterAll(async () => fx?.cleanup());

  it('erases a pooled tenant: rows (in FK order, in batches), keys, logins, quota overrides, catalog row; neighbours byte-identical', { timeout: 120_000 }, async () => {
    const before = await others(['acme_corp']);
    const keys = (await fx.db.query<{ key_id: string; db_login: string }>(`SELECT key_id, db_login FROM tenantgate.api_keys WHERE tenant_id = 'acme_corp'`)).rows;
    const c = await erase('acme_corp');
    erased.push('acme_corp');
    expect(await others(erased)).toEqual(before);
    expect(c).toMatchObject({ type: 'tenantgate.erasure-certificate', tenant: 'acme_corp', tier: 'pooled', requested_by: 'cli:erase-test', export_manifest_sha256: null });
    const shared = c.removed.tables.filter((t) => t.place === 'shared');
    expect(shared).toEqual([
      { table: 'public.order_items', place: 'shared', rows_before: 3, rows_deleted: 3 },
      { table: 'public.orders', place: 'shared', rows_before: 3, rows_deleted: 3 },
    ]);
    expect(c.removed.keys).toEqual(keys.map((k) => k.key_id));
    expect(c.removed.logins).toEqual(keys.map((k) => k.db_login));
    expect(c.removed.roles).toEqual([`${fx.prefix}_t_acme_corp`]);
    expect(c.removed.quota_overrides).toBe(true);
    expect(c.check.ok).toBe(true);
    expect(c.check.tables.every((t) => t.rows === 0)).toBe(true);
    for (const table of ['api_keys', 'db_roles']) expect((await fx.db.query(`SELECT 1 FROM tenantgate.${table} WHERE tenant_id = 'acme_corp'`)).rowCount).toBe(0);
    for (const table of ['tenant_quotas', 'suspensions']) expect((await fx.db.query(`SELECT 1 FROM tenantgate.${table} WHERE tenant = 'acme_corp'`)).rowCount).toBe(0);
    expect((await fx.db.query(`SELECT 1 FROM tenantgate.tenants WHERE id = 'acme_corp'`)).rowCount).toBe(0);
    expect((await fx.db.query(`SELECT 1 FROM pg_roles WHERE rolname = ANY($1)`, [[...c.removed.logins, ...c.removed.roles]])).rowCount).toBe(0);
    const tomb = (await fx.db.query<{ certificate: Certificate }>(`SELECT certificate FROM tenantgate.erased_tenants WHERE tenant = 'acme_corp'`)).rows[0];
    expect(tomb?.certificate.signature?.value).toBe(c.signature?.value);
    // audit: pseudonymised (default), kept, and every chain verifies
    const events = (await fx.db.query<{ event: string }>(`SELECT event FROM tenantgate.audit_log WHERE tenant = 'acme_corp'`)).rows.map((r) => JSON.parse(r.event) as Record<string, unknown>);
    expect(events.length).toBeGreaterThan(0);
    for (const e of events) {
      expect(String(e['principal'])).toMatch(/^erased:[0-9a-f]{16}$/);
      expect(e['client']).toBeNull();
      expect(e['pseudonymised']).toBeTruthy();
    }
    expect(await verifyChains(fx.db)).toMatchObject({ ok: true, problems: [] });
    expect(await verify(c)).toMatchObject({ ok: true, problems: [], signature: { ok: true, signer: 'configured' } });
    // The erasure itself is on the platform chain.
    const own = (await fx.db.query<{ event: string }>(`SELECT event FROM tenantgate.audit_log WHERE tenant = '*'`)).rows.map((r) => JSON.parse(r.event));
    expect(own).toContainEqual(expect.objectContaining({ principal: 'cli:erase-test', endpoint: 'tenant erase', lifecycle: { action: 'erase', reason: expect.stringMatching(/^tenant acme_corp \(job /), changed: true } }));
  });

  it('verify-certificate fails naming the problem: an edited certificate, a row planted back', { timeout: 60_000 }, async () => {
    const c = (await fx.db.query<{ certificate: Certificate }>(`SELECT certificate FROM tenantgate.erased_tenants WHERE tenant = 'acme_corp'`)).rows[0]!.certificate;
    const edited = { ...c, removed: { ...c.removed, keys: [] } };
    const v1 = await verify(edited);
    expect(v1.ok).toBe(false);
    expect(v1.problems.join('\n')).toMatch(/signature: the signature does not match the content/);
    await fx.db.query(`INSERT INTO public.orders (tenant_id, region, amount) VALUES ('acme_corp', 'North', 1)`);
    const v2 = await verify(c);
    expect(v2.ok).toBe(false);
    expect(v2.problems).toEqual(['1 row(s) of acme_corp in public.orders']);
    await fx.db.query(`DELETE FROM public.orders WHERE tenant_id = 'acme_corp'`);
    expect((await verify(c)).ok).toBe(true);
  });

  it('audit verify still catches an edit of a pseudonymised record', async () => {
    const row = (await fx.db.query<{ seq: string; event: string }>(`SELECT seq, event FROM tenantgate.audit_log WHERE tenant = 'acme_corp' ORDER BY seq LIMIT 1`)).rows[0]!;
    await fx.db.query(`UPDATE tenantgate.audit_log SET event = replace(event, 'erased:', 'erasXd:') WHERE tenant = 'acme_corp' AND seq = $1`, [row.seq]);
    const broken = await verifyChains(fx.db);
    expect(broken.ok).toBe(false);
    expect(broken.problems).toEqual([expect.objectContaining({ tenant: 'acme_corp', seq: Number(row.seq), problem: 'edited', detail: 'its pseudonymised text was changed after the erasure' })]);
    await fx.db.query(`UPDATE tenantgate.audit_log SET event = $2 WHERE tenant = 'acme_corp' AND seq = $1`, [row.seq, row.event]);
    expect((await verifyChains(fx.db)).ok).toBe(true);
  });

  it('erases a schema-tier tenant (its schema goes) with audit.on_erase: delete', { timeout: 120_000 }, async () => {
    const before = await others(['hooli', ...erased]);
    const c = await erase('hooli', 'delete');
    erased.push('hooli');
    expect(await others(erased)).toEqual(before);
    expect(c.removed.schemas).toEqual(['t_hooli']);
    expect(c.removed.tables.filter((t) => t.place === 'schema t_hooli').map((t) => t.rows_before)).toEqual([3, 3]);
    expect((await fx.db.query(`SELECT to_regnamespace('t_hooli') AS s`)).rows[0]!['s']).toBeNull();
    expect((await fx.db.query(`SELECT 1 FROM tenantgate.audit_log WHERE tenant = 'hooli' UNION ALL SELECT 1 FROM tenantgate.audit_heads WHERE tenant = 'hooli'`)).rowCount).toBe(0);
    expect(await verifyChains(fx.db)).toMatchObject({ ok: true });
    expect((await verify(c)).ok).toBe(true);
  });

  it('erases a database-tier tenant (its database goes) with audit.on_erase: keep', { timeout: 120_000 }, async () => {
    const before = await others(['initech', ...erased]);
    const auditBefore = (await fx.db.query(`SELECT event FROM tenantgate.audit_log WHERE tenant = 'initech' ORDER BY seq`)).rows;
    const c = await erase('initech', 'keep');
    erased.push('initech');
    expect(await others(erased)).toEqual(before);
    const name = tenantDatabase(fx.prefix, 'initech');
    expect(c.removed.databases).toEqual([{ name, placement: 'default' }]);
    expect(c.removed.tables.filter((t) => t.place === `database ${name}`).map((t) => t.rows_before)).toEqual([3, 3]);
    if (kind === 'postgres') expect((await fx.db.query(`SELECT 1 FROM pg_database WHERE datname = $1`, [name])).rowCount).toBe(0);
    else expect(ownerDatabases(fx.config, fx.db, {}, pgliteFactory).embeddedExists('default', name)).toBe(false);
    expect((await fx.db.query(`SELECT event FROM tenantgate.audit_log WHERE tenant = 'initech' ORDER BY seq`)).rows).toEqual(auditBefore);
    expect(await verifyChains(fx.db)).toMatchObject({ ok: true });
    expect((await verify(c)).ok).toBe(true);
  });
});

describe('removing the tenant from its declaration', () => {
  it('deletes tenants/<id>.yaml, or takes its entry out of the configuration file (comments kept); idempotent', () => {
    const dir = mkdtempSync(join(tmpdir(), 'tg-erase-file-'));
    try {
      const file = join(dir, 'tenantgate.yaml');
      writeFileSync(file, 'version: 1\n# our tenants\ntenants:\n  - { id: acme_corp, tier: pooled }   # first\n  - id: globex_inc\n    tier: schema\n');
      removeTenantFromFile(file, 'acme_corp');
      removeTenantFromFile(file, 'acme_corp');
      const text = readFileSync(file, 'utf8');
      expect(text).toContain('# our tenants');
      expect(text).not.toContain('acme_corp');
      expect(text).toMatch(/- id: globex_inc\n\s+tier: schema/);
      mkdirSync(join(dir, 'tenants'));
      const own = join(dir, 'tenants', 'hooli.yaml');
      writeFileSync(own, 'id: hooli\n');
      removeTenantFromFile(own, 'hooli');
      expect(existsSync(own)).toBe(false);
      removeTenantFromFile(own, 'hooli');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
