/**
 * `tenantgate verify` against real databases: it passes on a correct setup and names the probe
 * for each planted hole. The fourth hole of issue 4 ("a dataset compiled without the tenant
 * predicate") needs a planner hook that does not exist yet: it is listed as a todo.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { catalogue } from '../../src/verify/probes.ts';
import { runVerify, samplePairs, type VerifyReport } from '../../src/verify/run.ts';
import { formatReport } from '../../src/verify/report.ts';
import { BACKENDS, createFixture, fixture, type BackendKind, type Fixture } from '../support/backends.ts';
import { serve, type Served } from '../http/support.ts';

const leaksOf = (r: VerifyReport) => [...new Set(r.results.filter((x) => x.status === 'LEAK').map((x) => x.probe))];

describe('probe catalogue', () => {
  it('has at least 50 distinct probes, each listed in docs/security.md', async () => {
    const { readFileSync } = await import('node:fs');
    const doc = readFileSync(new URL('../../docs/security.md', import.meta.url), 'utf8');
    const ids = catalogue().map((p) => p.id);
    expect(new Set(ids).size).toBe(ids.length);
    expect(ids.length).toBeGreaterThanOrEqual(50);
    for (const id of ids) expect(doc, id).toContain(`\`${id}\``);
  });
  it('samples pairs and says how many of all it covered', () => {
    const tenants = Array.from({ length: 30 }, (_, i) => `t${i}`);
    const s = samplePairs(tenants, 40);
    expect(s.total).toBe(30 * 29);
    expect(s.list).toHaveLength(40);
    expect(new Set(s.list.map(([a, b]) => `${a}/${b}`)).size).toBe(40);
    expect(s.list.every(([a, b]) => a !== b)).toBe(true);
    expect(samplePairs(['a', 'b', 'c'], 100).list).toHaveLength(6);
  });
});

describe.each(BACKENDS)('tenantgate verify on %s', (kind: BackendKind) => {
  let fx: Fixture | undefined;
  let served: Served | undefined;
  afterEach(async () => {
    await served?.close();
    served = undefined;
    await fx?.cleanup();
    fx = undefined;
  });

  async function verify(f: Fixture, url?: string): Promise<VerifyReport> {
    const gate = await f.gate();
    return runVerify({ config: f.config, names: f.names, owner: f.db, gate, secret: f.secret, connectAs: (u, p) => f.connectAs(u, p), ...(url ? { url } : {}) });
  }

  async function ownerRows(f: Fixture) {
    return (await f.db.query<{ n: number; c: number }>(`SELECT count(*)::int AS n, count(*) FILTER (WHERE region LIKE 'tg-canary-%')::int AS c FROM public.orders`)).rows[0]!;
  }

  it('passes on a correct setup, covering every path, and removes its canaries', async () => {
    fx = await createFixture(kind, { sql: fixture('seed003.sql') });
    served = await serve(fx);
    const before = await ownerRows(fx);
    const report = await verify(fx, served.url);
    expect(leaksOf(report), formatReport(report)).toEqual([]);
    expect(report.ok).toBe(true);
    expect(report.pairs).toMatchObject({ covered: 2, total: 2 });
    expect(report.datasets).toEqual([{ name: 'orders', marker_column: 'region' }]);
    expect(report.canaries.planted).toBe(2);
    expect(report.canaries.removed).toBe(2);
    expect(await ownerRows(fx)).toEqual(before);
    const ran = new Set(report.results.filter((r) => r.status === 'pass').map((r) => r.path));
    expect([...ran].sort()).toEqual(kind === 'postgres' ? ['direct', 'http', 'library', 'statement'] : ['http', 'library', 'statement']);
    const skipped = report.results.filter((r) => r.status === 'skipped');
    if (kind === 'postgres') expect(skipped).toEqual([]);
    else expect(skipped.every((s) => s.detail?.startsWith('PGlite has one superuser session'))).toBe(true);
    // Probe keys and direct logins are revoked afterwards.
    const keys = await fx.db.query(`SELECT 1 FROM tenantgate.api_keys WHERE revoked_at IS NULL AND db_login IS NOT NULL`);
    expect(keys.rowCount).toBe(0);
  }, 120_000);

  it('fails and names the library probes when a table has RLS disabled', async () => {
    fx = await createFixture(kind, { sql: fixture('seed003.sql') });
    await fx.db.query(`ALTER TABLE public.orders DISABLE ROW LEVEL SECURITY`);
    const before = await ownerRows(fx);
    const report = await verify(fx);
    expect(report.ok).toBe(false);
    expect(leaksOf(report)).toEqual(expect.arrayContaining(['L-read-plain', 'L-read-where-tenant', 'L-write-update-b', 'S-read-marker']));
    expect(formatReport(report)).toContain('LEAK L-read-plain [library] orders');
    expect(await ownerRows(fx)).toEqual(before);
  }, 120_000);

  it('fails and names the probe for a permissive always-true policy to the read role', async () => {
    fx = await createFixture(kind, { sql: fixture('seed003.sql') });
    await fx.db.query(`CREATE POLICY planted_leak ON public.orders AS PERMISSIVE FOR SELECT TO ${fx.names.access.read} USING (true)`);
    const report = await verify(fx);
    expect(report.ok).toBe(false);
    expect(leaksOf(report)).toEqual(expect.arrayContaining(['L-read-plain', 'L-read-set-config-local', 'S-read-where-tenant']));
    // Only the read role got the hole.
    expect(leaksOf(report).filter((id) => id.startsWith('L-write-') && id.endsWith('plain'))).toEqual([]);
  }, 120_000);

  it.skipIf(kind === 'pglite')('fails and names the probe when the gateway login has BYPASSRLS (server only)', async () => {
    fx = await createFixture(kind, { sql: fixture('seed003.sql') });
    await fx.db.query(`ALTER ROLE ${fx.names.gateway} BYPASSRLS`);
    const report = await verify(fx);
    expect(report.ok).toBe(false);
    expect(leaksOf(report)).toContain('L-session-bypass');
  }, 120_000);

  it.todo('fails for a dataset compiled without the tenant predicate (needs a planner hook to plant it)');
});
