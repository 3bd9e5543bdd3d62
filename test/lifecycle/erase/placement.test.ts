/**
 * Erase of a database-tier tenant on a named placement (issue 14: "in every tier, on any
 * placement"): its database on the placement's server and its roles go, the certificate names
 * them and its check passes, the tenants on the main database are byte-identical. Server only: a
 * placement is a URL.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Config } from '../../../src/config/types.ts';
import { openDatabase, type Database } from '../../../src/db/database.ts';
import { verifyCertificate } from '../../../src/lifecycle/erase/certificate.ts';
import { bindEraseEnvironment, type EraseResult } from '../../../src/lifecycle/erase/job.ts';
import { JobRunner } from '../../../src/lifecycle/jobs/runner.ts';
import { SERVER_URL } from '../../support/backends.ts';
import { twoPlacements, type TwoPlacements } from '../../support/placement.ts';
import { SIGNING_PEM } from './support.ts';

describe.skipIf(!SERVER_URL)('erase of a database-tier tenant on a named placement (PostgreSQL)', () => {
  let p: TwoPlacements;
  let db: Database;
  let config: Config;
  let env: Record<string, string>;
  let main: { prefix: string };

  beforeAll(async () => {
    p = await twoPlacements(`  - { id: acme_corp }
  - { id: initech, tier: database, placement: second }
`, { TENANTGATE_SIGNING_KEY: SIGNING_PEM });
    ({ db, config, env, main } = p);
    await db.query(`INSERT INTO public.orders (tenant_id, region, amount) VALUES ('acme_corp', 'North', 1), ('acme_corp', 'South', 2)`);
    const own = await openDatabase(p.onSecond(`${main.prefix}_initech`), { max: 1 });
    await own.query(`INSERT INTO public.orders (tenant_id, region, amount) VALUES ('initech', 'West', 3)`);
    await own.close();
  }, 120_000);
  afterAll(async () => p?.cleanup());

  it('drops its database on the placement and its roles; the certificate says so and checks; the main database untouched', { timeout: 120_000 }, async () => {
    const acme = async () => (await db.query(`SELECT count(*)::text || md5(string_agg(o::text, ',' ORDER BY o.id)) AS c FROM public.orders o WHERE tenant_id = 'acme_corp'`)).rows[0]!['c'];
    const before = await acme();
    const roles = () => db.query<{ n: number }>(`SELECT count(*)::int AS n FROM pg_roles WHERE rolname LIKE $1`, [`${main.prefix}\\_%initech%`]);
    expect((await roles()).rows[0]!.n).toBeGreaterThan(0);
    bindEraseEnvironment(db, { config, env });
    const runner = new JobRunner({ db, pollMs: 50 });
    const job = await runner.submit({ kind: 'erase', tenant: 'initech', params: {}, requestedBy: 'cli:placement-test' });
    const done = await runner.follow(job.id);
    expect(done.state, JSON.stringify(done.error) + (done.errorDetail ?? '')).toBe('done');
    const cert = (done.result as EraseResult).certificate;
    expect(cert).toMatchObject({ tenant: 'initech', check: { ok: true } });
    expect(JSON.stringify(cert.removed)).toContain(`${main.prefix}_initech`);
    expect((await db.query(`SELECT count(*)::int AS n FROM pg_database WHERE datname = $1`, [`${main.prefix}_initech`])).rows[0]).toEqual({ n: 0 });
    expect((await roles()).rows[0]).toEqual({ n: 0 });
    expect(await acme()).toBe(before);
    expect(await verifyCertificate({ config, env }, db, cert)).toMatchObject({ ok: true, problems: [] });
  });
});
