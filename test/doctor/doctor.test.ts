/** One planted defect per check: the doctor names it by id; a fresh apply has nothing at warning level or above. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { atLeast } from '../../src/doctor/finding.ts';
import { runDoctor } from '../../src/doctor/run.ts';
import { toSarif } from '../../src/doctor/sarif.ts';
import { lacksFix, RLS_CVES, versionNum } from '../../src/doctor/checks/server-cve.ts';
import { BACKENDS, createFixture, fixture, type Fixture } from '../support/backends.ts';

describe.each(BACKENDS)('doctor on %s', (kind) => {
  let fx: Fixture;
  beforeAll(async () => {
    fx = await createFixture(kind, { sql: fixture('seed003.sql') });
  });
  afterAll(async () => fx?.cleanup());
  const doctor = () => runDoctor({ db: fx.db, config: fx.config, names: fx.names, gatewayRole: fx.names.gateway });
  const keys = async () => (await doctor()).filter((f) => atLeast(f.severity, 'low')).map((f) => `${f.id} ${f.object}`);
  /** Plant a defect, expect a finding with its id (and `object` text), then undo it and expect that finding gone. */
  const planted = async (id: string, plant: string, undo: string, object = '') => {
    const hit = (list: string[]) => list.some((k) => k.startsWith(`${id} `) && k.includes(object));
    expect(hit(await keys())).toBe(false);
    await fx.db.query(plant);
    try {
      expect(await keys()).toEqual(expect.arrayContaining([expect.stringMatching(new RegExp(`^${id} .*${object.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`))]));
    } finally {
      await fx.db.query(undo);
    }
    expect(hit(await keys())).toBe(false);
  };

  it('a fresh apply has no finding at medium or above (primary keys on surrogate ids are only noted)', async () => {
    const findings = await doctor();
    expect(findings.filter((f) => atLeast(f.severity, 'medium'))).toEqual([]);
  });

  it.skipIf(kind === 'pglite')('TG001: a BYPASSRLS login that can read a dataset table', async () => {
    const role = `${fx.prefix}x_bypass`;
    await planted('TG001', `CREATE ROLE ${role} LOGIN BYPASSRLS; GRANT SELECT ON public.orders TO ${role}`, `REVOKE ALL ON public.orders FROM ${role}; DROP ROLE ${role}`);
  });

  it('TG002: the gateway login inherits, or owns a table', async () => {
    await planted('TG002', `ALTER ROLE ${fx.names.gateway} INHERIT`, `ALTER ROLE ${fx.names.gateway} NOINHERIT`);
    await planted('TG002', `CREATE TABLE public.gw_owned (x int); ALTER TABLE public.gw_owned OWNER TO ${fx.names.gateway}`, `DROP TABLE public.gw_owned`);
  });

  it('TG003: a table with a tenant column and RLS disabled, or not forced', async () => {
    await planted('TG003', `CREATE TABLE public.invoices (id int, tenant_id text)`, `DROP TABLE public.invoices`);
    await planted('TG003', `ALTER TABLE public.orders NO FORCE ROW LEVEL SECURITY`, `ALTER TABLE public.orders FORCE ROW LEVEL SECURITY`);
  });

  it('TG004: a table with RLS and no policy', async () => {
    await planted('TG004', `CREATE TABLE public.notes (id int, tenant_id text); ALTER TABLE public.notes ENABLE ROW LEVEL SECURITY; ALTER TABLE public.notes FORCE ROW LEVEL SECURITY`, `DROP TABLE public.notes`);
  });

  it('TG005: a permissive always-true policy', async () => {
    await planted('TG005', `CREATE POLICY wide ON public.orders FOR SELECT USING (true)`, `DROP POLICY wide ON public.orders`);
  });

  it('TG006: an INSERT policy without WITH CHECK', async () => {
    await planted('TG006', `CREATE POLICY ins ON public.orders AS RESTRICTIVE FOR INSERT TO ${fx.names.access.write}`, `DROP POLICY ins ON public.orders`);
  });

  it('TG007: a direct-login policy keyed on a setting', async () => {
    await planted('TG007', `CREATE POLICY spoof ON public.orders AS RESTRICTIVE FOR SELECT TO ${fx.names.direct} USING (tenant_id = current_setting('app.tenant', true))`, `DROP POLICY spoof ON public.orders`);
  });

  it('TG008: no index leading with the tenant column', async () => {
    await planted('TG008', `DROP INDEX public.orders_tenant_idx`, `CREATE INDEX orders_tenant_idx ON public.orders (tenant_id, id)`);
  });

  it('TG009: a unique constraint and a foreign key without the tenant column', async () => {
    await planted('TG009', `ALTER TABLE public.orders ADD CONSTRAINT orders_email_key UNIQUE (email)`, `ALTER TABLE public.orders DROP CONSTRAINT orders_email_key`, 'orders_email_key');
    await planted(
      'TG009',
      `CREATE TABLE public.customers (id int PRIMARY KEY, tenant_id text); ALTER TABLE public.orders ADD COLUMN customer_id int REFERENCES public.customers (id)`,
      `ALTER TABLE public.orders DROP COLUMN customer_id; DROP TABLE public.customers`,
      'orders_customer_id_fkey',
    );
  });

  it('TG010: a view over a dataset table without security_invoker that a tenantgate role can read', async () => {
    await planted('TG010', `CREATE VIEW public.orders_v AS SELECT * FROM public.orders; GRANT SELECT ON public.orders_v TO ${fx.names.access.read}`, `DROP VIEW public.orders_v`, 'orders_v');
    // A view over that view: still the owner's privileges all the way down.
    await planted(
      'TG010',
      `CREATE VIEW public.orders_v AS SELECT * FROM public.orders WITH CHECK OPTION; CREATE VIEW public.orders_vv AS SELECT id FROM public.orders_v; GRANT SELECT (id) ON public.orders_vv TO ${fx.names.direct}`,
      `DROP VIEW public.orders_vv; DROP VIEW public.orders_v`,
      'orders_vv',
    );
  });

  it('TG010: a security_invoker view is not a finding', async () => {
    await fx.db.query(`CREATE VIEW public.orders_iv WITH (security_invoker = true) AS SELECT * FROM public.orders; GRANT SELECT ON public.orders_iv TO ${fx.names.access.read}`);
    try {
      expect((await keys()).filter((k) => k.startsWith('TG010 '))).toEqual([]);
    } finally {
      await fx.db.query(`DROP VIEW public.orders_iv`);
    }
  });

  it('TG011: SECURITY DEFINER functions executable by PUBLIC or tenant roles, or without a pinned search_path', async () => {
    const body = `RETURNS bigint LANGUAGE sql SECURITY DEFINER`;
    // PUBLIC can execute by default (and no search_path).
    await planted('TG011', `CREATE FUNCTION public.peek() ${body} AS 'SELECT count(*) FROM public.orders'`, `DROP FUNCTION public.peek()`, 'peek');
    // Pinned, not PUBLIC, but granted to a tenant group.
    const tenantRole = fx.names.tenant('acme_corp');
    await planted(
      'TG011',
      `CREATE FUNCTION public.peek2() ${body} SET search_path = pg_catalog AS 'SELECT count(*) FROM public.orders'; REVOKE ALL ON FUNCTION public.peek2() FROM PUBLIC; GRANT EXECUTE ON FUNCTION public.peek2() TO ${tenantRole}`,
      `DROP FUNCTION public.peek2()`,
      'peek2',
    );
    // Nobody tenant-facing can run it, but its search_path is not pinned.
    await planted('TG011', `CREATE FUNCTION public.peek3() ${body} AS 'SELECT 1::bigint'; REVOKE ALL ON FUNCTION public.peek3() FROM PUBLIC`, `DROP FUNCTION public.peek3()`, 'peek3');
  });

  it('TG012: CREATE for PUBLIC on a dataset schema, and a PUBLIC grant on a dataset table', async () => {
    await planted('TG012', `GRANT CREATE ON SCHEMA public TO PUBLIC`, `REVOKE CREATE ON SCHEMA public FROM PUBLIC`, 'schema public');
    await planted('TG012', `GRANT CREATE ON SCHEMA public TO ${fx.names.access.write}`, `REVOKE CREATE ON SCHEMA public FROM ${fx.names.access.write}`, 'schema public');
    await planted('TG012', `GRANT SELECT ON public.orders TO PUBLIC`, `REVOKE SELECT ON public.orders FROM PUBLIC`, 'orders');
  });

  it('TG013: a restricted column granted, by column or table-wide', async () => {
    await planted('TG013', `GRANT SELECT (internal_cost) ON public.orders TO ${fx.names.access.read}`, `REVOKE SELECT (internal_cost) ON public.orders FROM ${fx.names.access.read}`, 'internal_cost');
    await planted('TG013', `GRANT SELECT ON public.orders TO ${fx.names.direct}`, `REVOKE SELECT ON public.orders FROM ${fx.names.direct}`, 'internal_cost');
  });

  it('TG014: roles under the prefix that the config does not know', async () => {
    await planted('TG014', `CREATE ROLE ${fx.names.tenant('ghost_co')} NOLOGIN`, `DROP ROLE ${fx.names.tenant('ghost_co')}`, fx.names.tenant('ghost_co'));
    await planted('TG014', `CREATE ROLE ${fx.names.login('stray')} NOLOGIN`, `DROP ROLE ${fx.names.login('stray')}`, fx.names.login('stray'));
    await planted('TG014', `CREATE ROLE ${fx.prefix}_reporting NOLOGIN`, `DROP ROLE ${fx.prefix}_reporting`, `${fx.prefix}_reporting`);
    // A direct login recorded in tenantgate.db_roles is known.
    const login = fx.names.login('known');
    await fx.db.query(`CREATE ROLE ${login} NOLOGIN; INSERT INTO tenantgate.db_roles (role_name, tenant_id, kind) VALUES ('${login}', 'acme_corp', 'login')`);
    try {
      expect((await keys()).filter((k) => k.startsWith('TG014 '))).toEqual([]);
    } finally {
      await fx.db.query(`DELETE FROM tenantgate.db_roles WHERE role_name = '${login}'; DROP ROLE ${login}`);
    }
  });

  it('TG015: a materialized view, a child table without RLS, and an owned sequence readable by tenantgate roles', async () => {
    const read = fx.names.access.read;
    await planted('TG015', `CREATE MATERIALIZED VIEW public.orders_mv AS SELECT * FROM public.orders; GRANT SELECT ON public.orders_mv TO ${read}`, `DROP MATERIALIZED VIEW public.orders_mv`, 'orders_mv');
    await planted('TG015', `CREATE TABLE public.orders_child () INHERITS (public.orders); GRANT SELECT ON public.orders_child TO ${read}`, `DROP TABLE public.orders_child`, 'orders_child');
    await planted('TG015', `GRANT SELECT ON SEQUENCE public.orders_id_seq TO ${read}`, `REVOKE SELECT ON SEQUENCE public.orders_id_seq FROM ${read}`, 'orders_id_seq');
  });

  it('TG015: a child table with RLS forced is not a finding', async () => {
    await fx.db.query(
      `CREATE TABLE public.orders_child2 () INHERITS (public.orders); ALTER TABLE public.orders_child2 ENABLE ROW LEVEL SECURITY; ALTER TABLE public.orders_child2 FORCE ROW LEVEL SECURITY; GRANT SELECT ON public.orders_child2 TO ${fx.names.access.read}`,
    );
    try {
      expect((await keys()).filter((k) => k.startsWith('TG015 '))).toEqual([]);
    } finally {
      await fx.db.query(`DROP TABLE public.orders_child2`);
    }
  });

  it('TG016: the test server has no known RLS CVE', async () => {
    expect((await doctor()).filter((f) => f.id === 'TG016')).toEqual([]);
  });

  it('TG017: extended statistics on a dataset table', async () => {
    await planted('TG017', `CREATE STATISTICS public.orders_rs (mcv) ON region, status FROM public.orders; ANALYZE public.orders`, `DROP STATISTICS public.orders_rs`, 'orders_rs');
  });

  it('TG018: a role the config needs that the database lacks', async () => {
    const role = fx.names.tenant('acme_corp');
    await planted('TG018', `ALTER ROLE ${role} RENAME TO ${fx.prefix}_renamed`, `ALTER ROLE ${fx.prefix}_renamed RENAME TO ${role}`, role);
  });

  it('SARIF output has the 2.1.0 shape with a rule per check', async () => {
    await fx.db.query(`CREATE POLICY wide ON public.orders FOR SELECT USING (true)`);
    try {
      const sarif = toSarif(await doctor()) as { version: string; runs: Array<{ tool: { driver: { rules: Array<{ id: string }> } }; results: Array<{ ruleId: string; level: string; message: { text: string } }> }> };
      expect(sarif.version).toBe('2.1.0');
      const run = sarif.runs[0]!;
      expect(run.tool.driver.rules.map((r) => r.id)).toContain('TG005');
      expect(run.results.find((r) => r.ruleId === 'TG005')).toMatchObject({ level: 'error' });
    } finally {
      await fx.db.query(`DROP POLICY wide ON public.orders`);
    }
  });
});

describe('TG016 version comparison', () => {
  const fixed = (cve: string) => RLS_CVES.find((c) => c.cve === cve)!.fixed;
  it('reads versions like server_version_num', () => {
    expect(versionNum('15.3')).toBe(150003);
    expect(versionNum('9.6.13')).toBe(90613);
  });
  it('flags a branch below its fixed minor, an end-of-life branch, and not later ones', () => {
    const cve = fixed('CVE-2024-10976');
    expect(lacksFix(150009, cve)).toBe(true);
    expect(lacksFix(150010, cve)).toBe(false);
    expect(lacksFix(150020, cve)).toBe(false);
    expect(lacksFix(170001, cve)).toBe(true);
    expect(lacksFix(180001, cve)).toBe(false);
    expect(lacksFix(110022, cve)).toBe(true);
    expect(lacksFix(90612, fixed('CVE-2019-10130'))).toBe(true);
    expect(lacksFix(90613, fixed('CVE-2019-10130'))).toBe(false);
    expect(lacksFix(120000, fixed('CVE-2019-10130'))).toBe(false);
    expect(lacksFix(150002, fixed('CVE-2023-2455'))).toBe(true);
    expect(RLS_CVES.filter((c) => lacksFix(150020, c.fixed))).toEqual([]);
  });
});
