/**
 * Erase of a database-tier tenant on a named placement (issue 14: "in every tier, on any
 * placement"): its database on the placement's server and its roles there go (its group and a
 * direct login), the certificate names them and its check passes, a neighbour whose database is on
 * the same placement and the tenants on the main database are byte-identical and keep their roles.
 * Server only: a placement is a URL.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Config } from '../../../src/config/types.ts';
import { openDatabase, type Database } from '../../../src/db/database.ts';
import { createApiKey } from '../../../src/identify/api-keys.ts';
import { verifyCertificate } from '../../../src/lifecycle/erase/certificate.ts';
import { bindEraseEnvironment, type EraseResult } from '../../../src/lifecycle/erase/job.ts';
import { JobRunner } from '../../../src/lifecycle/jobs/runner.ts';
import { resolveNames } from '../../../src/provision/apply.ts';
import { SERVER_URL, TEST_SECRET } from '../../support/backends.ts';
import { twoPlacements, type TwoPlacements } from '../../support/placement.ts';
import { SIGNING_PEM } from './support.ts';

describe.skipIf(!SERVER_URL)('erase of a database-tier tenant on a named placement (PostgreSQL)', () => {
  let p: TwoPlacements;
  let db: Database;
  /** The owner on the placement's server (its own database). */
  let second: Database;
  let umbrella: Database;
  let config: Config;
  let env: Record<string, string>;
  let main: { prefix: string };

  beforeAll(async () => {
    p = await twoPlacements(`  - { id: acme_corp }
  - { id: initech, tier: database, placement: second }
  - { id: umbrella, tier: database, placement: second }
`, { TENANTGATE_SIGNING_KEY: SIGNING_PEM });
    ({ db, config, env, main } = p);
    await db.query(`INSERT INTO public.orders (tenant_id, region, amount) VALUES ('acme_corp', 'North', 1), ('acme_corp', 'South', 2)`);
    const own = await openDatabase(p.onSecond(`${main.prefix}_initech`), { max: 1 });
    await own.query(`INSERT INTO public.orders (tenant_id, region, amount) VALUES ('initech', 'West', 3), ('initech', 'East', 4)`);
    await own.close();
    umbrella = await openDatabase(p.onSecond(`${main.prefix}_umbrella`), { max: 1 });
    await umbrella.query(`INSERT INTO public.orders (tenant_id, region, amount) VALUES ('umbrella', 'West', 5)`);
    second = await openDatabase(p.second.url, { max: 1 });
    const n = resolveNames(config, env);
    for (const t of ['acme_corp', 'initech', 'umbrella']) await createApiKey(db, config, n, TEST_SECRET, { tenant: t, role: 'analyst', dbLogin: true });
  }, 120_000);
  afterAll(async () => {
    await umbrella?.close();
    await second?.close();
    await p?.cleanup();
  });

  it('drops its database on the placement and its roles there; the certificate says so and checks; the neighbours untouched', { timeout: 120_000 }, async () => {
    const rowsOf = async (on: Pick<Database, 'query'>, tenant: string) =>
      (await on.query(`SELECT count(*)::text || ':' || md5(string_agg(o::text, ',' ORDER BY o.id)) AS c FROM public.orders o WHERE tenant_id = $1`, [tenant])).rows[0]!['c'];
    /** A tenant's group role and direct logins, as the catalog lists them. */
    const rolesOf = async (tenant: string) =>
      (await db.query<{ r: string }>(`SELECT $2::text AS r UNION SELECT role_name FROM tenantgate.db_roles WHERE tenant_id = $1 ORDER BY 1`, [tenant, `${main.prefix}_t_${tenant}`])).rows.map((x) => x.r);
    /** Which of these roles the placement's server has. */
    const rolesOnSecond = async (roles: string[]) => (await second.query<{ rolname: string }>(`SELECT rolname::text FROM pg_roles WHERE rolname = ANY($1) ORDER BY 1`, [roles])).rows.map((x) => x.rolname);
    const databaseOnSecond = async (tenant: string) => (await second.query(`SELECT count(*)::int AS n FROM pg_database WHERE datname = $1`, [`${main.prefix}_${tenant}`])).rows[0]!['n'];
    const stayers = async () => ({
      acme: await rowsOf(db, 'acme_corp'),
      umbrella: await rowsOf(umbrella, 'umbrella'),
      roles: await rolesOnSecond([...(await rolesOf('acme_corp')), ...(await rolesOf('umbrella'))]),
    });
    const before = await stayers();
    expect(before.roles.length).toBe(4);
    const roles = await rolesOf('initech');
    expect(roles.length, 'a group and a direct login').toBe(2);
    expect(await rolesOnSecond(roles)).toEqual(roles);
    expect(await databaseOnSecond('initech')).toBe(1);
    // Its database is on the placement, not on the main database's name.
    expect((await db.query<{ placement: string; tier: string }>(`SELECT tier, placement FROM tenantgate.tenants WHERE id = 'initech'`)).rows).toEqual([{ tier: 'database', placement: 'second' }]);

    bindEraseEnvironment(db, { config, env });
    const runner = new JobRunner({ db, pollMs: 50 });
    const job = await runner.submit({ kind: 'erase', tenant: 'initech', params: {}, requestedBy: 'cli:placement-test' });
    const done = await runner.follow(job.id);
    expect(done.state, JSON.stringify(done.error) + (done.errorDetail ?? '')).toBe('done');
    const cert = (done.result as EraseResult).certificate;
    expect(cert).toMatchObject({ tenant: 'initech', tier: 'database', placement: 'second', check: { ok: true, database_left: null, roles_left: [], problems: [] } });
    expect(cert.removed.databases).toEqual([{ name: `${main.prefix}_initech`, placement: 'second' }]);
    expect([...cert.removed.logins, ...cert.removed.roles].sort()).toEqual(roles);
    expect(cert.removed.tables.find((t) => t.place === `database ${main.prefix}_initech` && t.table === 'public.orders')?.rows_before).toBe(2);
    expect(await databaseOnSecond('initech')).toBe(0);
    expect(await rolesOnSecond(roles)).toEqual([]);
    expect((await db.query(`SELECT count(*)::int AS n FROM tenantgate.tenants WHERE id = 'initech'`)).rows[0]).toEqual({ n: 0 });
    expect((await db.query(`SELECT count(*)::int AS n FROM tenantgate.erased_tenants WHERE tenant = 'initech' AND certificate IS NOT NULL`)).rows[0]).toEqual({ n: 1 });
    expect(await databaseOnSecond('umbrella')).toBe(1);
    expect(await stayers()).toEqual(before);
    expect(await verifyCertificate({ config, env }, db, cert)).toMatchObject({ ok: true, problems: [] });
  });
});
