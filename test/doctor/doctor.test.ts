/** One planted defect per check: the doctor names it by id; a fresh apply has nothing at warning level or above. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { atLeast } from '../../src/doctor/finding.ts';
import { runDoctor } from '../../src/doctor/run.ts';
import { toSarif } from '../../src/doctor/sarif.ts';
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
