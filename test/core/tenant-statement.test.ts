/** The one-statement path (one Sync on a server): same wall as withTenant, nothing left behind. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BACKENDS, createFixture, fixture, type Fixture } from '../support/backends.ts';

describe.each(BACKENDS)('gate.statement on %s', (kind) => {
  let fx: Fixture;
  beforeAll(async () => {
    fx = await createFixture(kind, { sql: fixture('seed003.sql') });
  });
  afterAll(async () => fx?.cleanup());

  it('sees only its tenant, as rows or arrays', async () => {
    const gate = await fx.gate();
    const r = await gate.statement({ tenant: 'globex_inc', access: 'read' }, { text: 'SELECT tenant_id, amount::int FROM public.orders WHERE amount > $1 ORDER BY amount', values: [0], rowMode: 'array' });
    expect(r.rows).toEqual([['globex_inc', 300], ['globex_inc', 400]]);
  });

  it('read access is read-only; a failed write changes nothing', async () => {
    const gate = await fx.gate();
    await expect(gate.statement({ tenant: 'acme_corp', access: 'read' }, { text: `UPDATE public.orders SET status = 'x'`, values: [] })).rejects.toMatchObject({ code: expect.stringMatching(/25006|POLICY_DENIED/) });
    await expect(gate.statement({ tenant: 'acme_corp', access: 'write' }, { text: `INSERT INTO public.orders (tenant_id, region, amount) VALUES ('globex_inc', 'X', 1)`, values: [] })).rejects.toMatchObject({ code: 'POLICY_DENIED' });
    const w = await gate.statement({ tenant: 'acme_corp', access: 'write' }, { text: `UPDATE public.orders SET status = 'seen' WHERE region = $1`, values: ['North'] });
    expect(w.rowCount).toBe(1);
    const owner = await fx.db.query(`SELECT tenant_id, status FROM public.orders WHERE status = 'seen'`);
    expect(owner.rows).toEqual([{ tenant_id: 'acme_corp', status: 'seen' }]);
  });

  it('leaves no setting or role on the connection', async () => {
    const gate = await fx.gate();
    await gate.statement({ tenant: 'acme_corp', access: 'read' }, { text: 'SELECT 1', values: [] });
    const c = await gate.database.pool.connect();
    try {
      const r = await c.query(`SELECT current_setting('tenantgate.tenant', true) AS t, current_setting('tenantgate.mac', true) AS m, current_user AS u`);
      expect(r.rows[0]?.['t'] ?? '').toBe('');
      expect(r.rows[0]?.['m'] ?? '').toBe('');
      if (kind === 'postgres') expect(r.rows[0]?.['u']).toBe(fx.names.gateway);
    } finally {
      c.release();
    }
  });

  it.skipIf(kind === 'pglite')('the statement timeout applies', async () => {
    const gate = await fx.gate();
    const short = { ...fx.config.tenants.get('acme_corp')! };
    expect(short.quotas.statement_timeout_ms).toBeGreaterThan(0);
    await expect(gate.statement({ tenant: 'acme_corp', access: 'read' }, { text: `SELECT count(*) FROM public.orders, generate_series(1, 100000000)`, values: [] })).rejects.toMatchObject({ code: 'QUERY_TIMEOUT' });
  }, 20_000);
});
