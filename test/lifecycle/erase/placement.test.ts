/**
 * Erase of a database-tier tenant on a named placement (issue 14: "in every tier, on any
 * placement"): its database on the placement's server and its roles go, the certificate names
 * them and its check passes, the tenants on the main database are byte-identical. Server only: a
 * placement is a URL.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../../src/config/load.ts';
import type { Config } from '../../../src/config/types.ts';
import { openDatabase, type Database } from '../../../src/db/database.ts';
import { verifyCertificate } from '../../../src/lifecycle/erase/certificate.ts';
import { bindEraseEnvironment, type EraseResult } from '../../../src/lifecycle/erase/job.ts';
import { JobRunner } from '../../../src/lifecycle/jobs/runner.ts';
import { applyProvision } from '../../../src/provision/apply.ts';
import { createServerDatabase, SERVER_URL, TEST_SECRET, type ServerDatabase } from '../../support/backends.ts';
import { TIER_SQL } from '../../tiers/support.ts';
import { SIGNING_PEM } from './support.ts';

describe.skipIf(!SERVER_URL)('erase of a database-tier tenant on a named placement (PostgreSQL)', () => {
  let main: ServerDatabase;
  let second: ServerDatabase;
  let db: Database;
  let config: Config;
  const dir = mkdtempSync(join(tmpdir(), 'tg-erase-placement-'));
  let env: Record<string, string>;

  beforeAll(async () => {
    main = await createServerDatabase(TIER_SQL);
    second = await createServerDatabase();
    env = { TG_TEST_DB: main.url, TG_TEST_PREFIX: main.prefix, TG_SECOND_URL: second.url, TENANTGATE_SIGNING_KEY: SIGNING_PEM };
    const yaml = `version: 1
database:
  url: \${TG_TEST_DB}
  role_prefix: \${TG_TEST_PREFIX}
  placements:
    second: { url_env: TG_SECOND_URL }
datasets:
  - name: orders
    table: public.orders
    tenant_column: tenant_id
    dimensions: [region]
tenants:
  - { id: acme_corp }
  - { id: initech, tier: database, placement: second }
`;
    writeFileSync(join(dir, 'tenantgate.yaml'), yaml);
    config = await parseConfig(yaml, join(dir, 'tenantgate.yaml'), { env });
    db = await openDatabase(main.url, { max: 4 });
    await applyProvision(config, db, TEST_SECRET, { env });
    await db.query(`INSERT INTO public.orders (tenant_id, region, amount) VALUES ('acme_corp', 'North', 1), ('acme_corp', 'South', 2)`);
    const own = await openDatabase(second.url.replace(/\/[^/?]+(\?|$)/, `/${main.prefix}_initech$1`), { max: 1 });
    await own.query(`INSERT INTO public.orders (tenant_id, region, amount) VALUES ('initech', 'West', 3)`);
    await own.close();
  }, 120_000);
  afterAll(async () => {
    await db?.close();
    await second?.drop();
    await main?.drop();
    rmSync(dir, { recursive: true, force: true });
  });

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
