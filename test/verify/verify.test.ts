/**
 * `tenantgate verify` against real databases: it passes on a correct setup and names the probe
 * for each planted hole: RLS disabled, an always-true policy, a BYPASSRLS gateway login, and a
 * dataset compiled without the tenant predicate (a planner that plans orders as for all tenants).
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { AccessLevel, Tenant } from '../../src/config/types.ts';
import { QueryCatalog } from '../../src/plan/catalog.ts';
import { QueryPlanner } from '../../src/plan/planner.ts';
import { catalogue } from '../../src/verify/probes/index.ts';
import { runVerify, samplePairs, type VerifyReport } from '../../src/verify/run.ts';
import { formatReport } from '../../src/verify/report.ts';
import { BACKENDS, createFixture, fixture, type BackendKind, type Fixture } from '../support/backends.ts';
import { serve, type Served } from '../http/support.ts';

const JWT_ENV = { TG_JWT_SECRET: 'a-jwt-secret-of-at-least-32-characters!!' };
const WITH_JWT = fixture('seed003.yaml').replace('datasets:', 'identity:\n  jwt:\n    secret_env: TG_JWT_SECRET\n    algorithms: [HS256]\n    issuer: https://idp.example.test/\n    audience: tenantgate\ndatasets:');
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

  async function verify(f: Fixture, url?: string, extra: Partial<Parameters<typeof runVerify>[0]> = {}): Promise<VerifyReport> {
    const gate = await f.gate();
    return runVerify({ config: f.config, names: f.names, owner: f.db, gate, secret: f.secret, connectAs: (u, p) => f.connectAs(u, p), env: JWT_ENV, ...(url ? { url } : {}), ...extra });
  }

  async function ownerRows(f: Fixture) {
    return (await f.db.query<{ n: number; c: number }>(`SELECT count(*)::int AS n, count(*) FILTER (WHERE region LIKE 'tg-canary-%')::int AS c FROM public.orders`)).rows[0]!;
  }

  it('passes on a correct setup, covering every path, and removes its canaries', async () => {
    fx = await createFixture(kind, { sql: fixture('seed003.sql'), yaml: WITH_JWT });
    served = await serve(fx, { env: JWT_ENV });
    const before = await ownerRows(fx);
    const report = await verify(fx, served.url);
    expect(leaksOf(report), formatReport(report)).toEqual([]);
    expect(report.ok).toBe(true);
    expect(report.pairs).toMatchObject({ covered: 2, total: 2 });
    expect(report.datasets).toEqual([{ name: 'orders', marker_column: 'region' }]);
    expect(report.canaries.planted).toBe(2);
    // The canaries, and the rows the pool probes wrote as B through the unqualified table name.
    expect(report.canaries.removed).toBeGreaterThanOrEqual(2);
    expect(await ownerRows(fx)).toEqual(before);
    const ran = new Set(report.results.filter((r) => r.status === 'pass').map((r) => r.path));
    expect([...ran].sort()).toEqual(kind === 'postgres' ? ['direct', 'gateway-wall', 'http', 'library', 'pool', 'statement'] : ['gateway-wall', 'http', 'library', 'pool', 'statement']);
    expect(report.results.filter((r) => r.probe.startsWith('H-jwt-') && r.status === 'pass')).toHaveLength(2 * 5);
    const skipped = report.results.filter((r) => r.status === 'skipped');
    // Only what cannot apply here: the cross-tier direct probes (both tenants are pooled) and, on PGlite, direct logins.
    const inapplicable = (d = '') => /^B is not in tier /.test(d) || (kind === 'pglite' && d.startsWith('PGlite has one superuser session'));
    expect(skipped.filter((s) => !inapplicable(s.detail))).toEqual([]);
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

  it('fails and names the write probes for write policies whose WITH CHECK does not hold the tenant', async () => {
    fx = await createFixture(kind, { sql: fixture('seed003.sql') });
    const n = fx.names;
    // The planted hole: INSERT and UPDATE policies that check nothing about new rows. (An INSERT
    // policy with no WITH CHECK at all admits no row, and an UPDATE policy without one checks its
    // USING: PostgreSQL fails closed there, so the real hole is a check that does not pin the tenant.)
    await fx.db.query(`ALTER POLICY ${n.policy('gw_insert')} ON public.orders WITH CHECK (true)`);
    await fx.db.query(`ALTER POLICY ${n.policy('gw_update')} ON public.orders WITH CHECK (true)`);
    const before = await ownerRows(fx);
    const report = await verify(fx);
    expect(report.ok).toBe(false);
    expect(leaksOf(report)).toEqual(expect.arrayContaining(['L-write-insert-b', 'L-write-update-all-to-b', 'L-admin-insert-b', 'L-admin-update-all-to-b', 'S-write-insert-b']));
    // Reads are unaffected.
    expect(leaksOf(report).filter((id) => /-(plain|where-tenant|marker)$/.test(id))).toEqual([]);
    expect(await ownerRows(fx)).toEqual(before);
  }, 120_000);

  it.skipIf(kind === 'pglite')('fails and names the probe when the gateway login has BYPASSRLS (server only)', async () => {
    fx = await createFixture(kind, { sql: fixture('seed003.sql') });
    await fx.db.query(`ALTER ROLE ${fx.names.gateway} BYPASSRLS`);
    const report = await verify(fx);
    expect(report.ok).toBe(false);
    expect(leaksOf(report)).toContain('L-session-bypass');
  }, 120_000);

  it('fails and names the gateway-wall probes for a dataset compiled without the tenant predicate', async () => {
    fx = await createFixture(kind, { sql: fixture('seed003.sql') });
    const catalog = await QueryCatalog.load(fx.config, fx.db);
    /** The planted hole: the orders dataset is compiled as if for all tenants (no tenant predicate). */
    class Holed extends QueryPlanner {
      override semantic(body: unknown, tenant: Tenant | null) {
        return super.semantic(body, (body as { dataset?: string }).dataset === 'orders' ? null : tenant);
      }
      override sql(body: unknown, tenant: Tenant | null, access: AccessLevel) {
        return super.sql(body, null, access === 'write' ? access : 'platform');
      }
    }
    const report = await verify(fx, undefined, { planner: new Holed(fx.config, catalog) });
    expect(report.ok).toBe(false);
    expect(leaksOf(report)).toEqual(expect.arrayContaining(['G-semantic-plain', 'G-semantic-filter-tenant', 'G-sql-select', 'G-sql-where-tenant']));
    // The database's wall still holds on every other path.
    expect(leaksOf(report).filter((id) => !id.startsWith('G-'))).toEqual([]);
    expect(formatReport(report)).toContain('LEAK G-semantic-plain [gateway-wall] orders');
  }, 120_000);

  it('passes with the real planner on the same setup (the gateway-wall probes are not vacuous)', async () => {
    fx = await createFixture(kind, { sql: fixture('seed003.sql') });
    const report = await verify(fx, undefined, { only: catalogue().filter((p) => p.path === 'gateway-wall').map((p) => p.id) });
    expect(report.ok, formatReport(report)).toBe(true);
    // Reads ran (their controls saw A's canary), and on a superuser owner the write plans too.
    expect(report.results.filter((r) => r.status === 'pass')).toHaveLength(2 * catalogue().filter((p) => p.path === 'gateway-wall').length);
  }, 120_000);
});
