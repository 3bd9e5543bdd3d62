import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { applyProvision, planProvision } from '../../src/provision/apply.ts';
import { BACKENDS, createFixture, fixture, type Fixture } from '../support/backends.ts';

const objects = (changes: Array<{ object: string }>) => changes.map((c) => c.object);

describe.each(BACKENDS)('plan and apply on %s', (kind) => {
  let fx: Fixture;
  beforeAll(async () => {
    fx = await createFixture(kind, { sql: fixture('seed003.sql') });
  });
  afterAll(async () => fx?.cleanup());
  const env = () => ({ TG_TEST_DB: fx.url, TG_TEST_PREFIX: fx.prefix });
  const plan = async () => (await planProvision(fx.config, fx.db, fx.secret, env())).changes;
  const apply = async () => (await applyProvision(fx.config, fx.db, fx.secret, { env: env() })).changes;

  it('a second apply changes nothing', async () => {
    expect(await apply()).toEqual([]);
    expect(await plan()).toEqual([]);
  });

  it('apply made the table ENABLE and FORCE row level security with one policy per command and path', async () => {
    const t = await fx.db.query(`SELECT relrowsecurity, relforcerowsecurity FROM pg_class WHERE oid = 'public.orders'::regclass`);
    expect(t.rows[0]).toEqual({ relrowsecurity: true, relforcerowsecurity: true });
    const p = await fx.db.query<{ polname: string; polcmd: string; has_check: boolean }>(
      `SELECT polname, polcmd, polwithcheck IS NOT NULL AS has_check FROM pg_policy WHERE polrelid = 'public.orders'::regclass ORDER BY polname`,
    );
    const byName = Object.fromEntries(p.rows.map((r) => [r.polname.slice(fx.prefix.length + 1), `${r.polcmd}:${r.has_check}`]));
    expect(byName).toEqual({
      direct_select: 'r:false',
      gw_delete: 'd:false',
      gw_insert: 'a:true',
      gw_select: 'r:false',
      gw_update: 'w:true',
      platform_all: 'r:false',
    });
  });

  it('restricted columns are granted to no tenantgate role; masked ones not to direct logins', async () => {
    const r = await fx.db.query<{ grantee: string; col: string }>(
      `SELECT pg_get_userbyid(x.grantee)::text AS grantee, a.attname::text AS col
         FROM pg_attribute a, aclexplode(a.attacl) x WHERE a.attrelid = 'public.orders'::regclass AND a.attacl IS NOT NULL`,
    );
    expect(r.rows.filter((g) => g.col === 'internal_cost')).toEqual([]);
    expect(r.rows.filter((g) => g.col === 'email' && (g.grantee.endsWith('_direct_default') || g.grantee.includes('_t_')))).toEqual([]);
    // globex_inc overrides status to restricted: its own direct grants leave it out.
    const globex = r.rows.filter((g) => g.grantee === fx.names.tenant('globex_inc')).map((g) => g.col);
    expect(globex).toContain('region');
    expect(globex).not.toContain('status');
  });

  it('plan shows RLS disabled, a dropped policy, an edited policy and a widening grant; apply repairs all', async () => {
    await fx.db.query(`ALTER TABLE public.orders DISABLE ROW LEVEL SECURITY`);
    await fx.db.query(`ALTER TABLE public.orders NO FORCE ROW LEVEL SECURITY`);
    await fx.db.query(`DROP POLICY ${fx.names.policy('gw_select')} ON public.orders`);
    await fx.db.query(`ALTER POLICY ${fx.names.policy('direct_select')} ON public.orders USING (true)`);
    await fx.db.query(`CREATE POLICY sneaky ON public.orders FOR SELECT TO PUBLIC USING (true)`);
    await fx.db.query(`GRANT SELECT ON public.orders TO ${fx.names.access.read}`);
    const drift = objects(await plan());
    expect(drift).toEqual(
      expect.arrayContaining([
        'rls public.orders',
        'force rls public.orders',
        `policy public.orders ${fx.names.policy('gw_select')}`,
        `policy public.orders ${fx.names.policy('direct_select')}`,
        'policy public.orders sneaky',
        `grants public.orders ${fx.names.access.read}`,
      ]),
    );
    await apply();
    expect(await plan()).toEqual([]);
    const gate = await fx.gate();
    const rows = await gate.withTenant({ tenant: 'acme_corp', access: 'read' }, (db) => db.query(`SELECT tenant_id FROM public.orders`));
    expect(rows.rows.map((r) => r['tenant_id'])).toEqual(['acme_corp', 'acme_corp']);
  });

  it('plan shows a function body edited outside tenantgate', async () => {
    await fx.db.query(`CREATE OR REPLACE FUNCTION tenantgate.gateway_tenant() RETURNS text LANGUAGE sql STABLE SECURITY DEFINER AS $$ SELECT current_setting('tenantgate.tenant', true) $$`);
    expect(objects(await plan())).toContain('function tenantgate.gateway_tenant()');
    await apply();
    expect(await plan()).toEqual([]);
  });

  it('a changed config shows as a planned change, not as drift', async () => {
    const yaml = fixture('seed003.yaml').replace('- { column: deleted_at, condition: IS NULL }', "- { column: deleted_at, condition: IS NULL }\n        - { column: status, condition: \"<> 'void'\" }");
    await fx.reload(yaml);
    const changes = await plan();
    expect(changes.filter((c) => c.object.startsWith('policy')).map((c) => c.reason)).toEqual(
      expect.arrayContaining([expect.stringContaining('the config changed its definition')]),
    );
    await apply();
    expect(await plan()).toEqual([]);
    await fx.reload(fixture('seed003.yaml'));
    await apply();
  });

  it('a tenant in the database but not in the config is reported, never deleted', async () => {
    await fx.reload(fixture('seed003.yaml').replace(/  - id: globex_inc[\s\S]*$/, ''));
    const changes = await plan();
    expect(changes.find((c) => c.object === 'tenant globex_inc')).toMatchObject({ action: 'drop', sql: [] });
    await apply();
    const still = await fx.db.query(`SELECT id FROM tenantgate.tenants ORDER BY id`);
    expect(still.rows.map((r) => r['id'])).toEqual(['acme_corp', 'globex_inc']);
    await fx.reload(fixture('seed003.yaml'));
  });
});

describe.each(BACKENDS)('apply refuses an unsafe gateway login on %s', (kind) => {
  let fx: Fixture;
  beforeAll(async () => {
    fx = await createFixture(kind, { sql: fixture('seed003.sql'), apply: false });
  });
  afterAll(async () => fx?.cleanup());
  const env = () => ({ TG_TEST_DB: fx.url, TG_TEST_PREFIX: fx.prefix });
  const refuse = async () => {
    const err = await applyProvision(fx.config, fx.db, fx.secret, { env: env() }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'GATEWAY_ROLE_UNSAFE' });
    // Nothing half-applied: the catalog schema was never created.
    const schema = await fx.db.query(`SELECT 1 FROM pg_namespace WHERE nspname = 'tenantgate'`);
    expect(schema.rowCount).toBe(0);
  };

  it('with BYPASSRLS', async () => {
    await fx.db.query(`CREATE ROLE ${fx.names.gateway} LOGIN NOINHERIT BYPASSRLS`);
    await refuse();
    await fx.db.query(`DROP ROLE ${fx.names.gateway}`);
  });

  it.skipIf(kind === 'pglite')('as superuser', async () => {
    await fx.db.query(`CREATE ROLE ${fx.names.gateway} LOGIN NOINHERIT SUPERUSER`);
    await refuse();
    await fx.db.query(`DROP ROLE ${fx.names.gateway}`);
  });

  it('owning a dataset table', async () => {
    await fx.db.query(`CREATE ROLE ${fx.names.gateway} LOGIN NOINHERIT`);
    await fx.db.query(`ALTER TABLE public.orders OWNER TO ${fx.names.gateway}`);
    await refuse();
    await fx.db.query(`ALTER TABLE public.orders OWNER TO CURRENT_USER`);
    await fx.db.query(`DROP ROLE ${fx.names.gateway}`);
  });
});
