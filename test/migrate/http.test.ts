/**
 * GET /v1/admin/migrations (`migrate status` and the latest migrate jobs) and POST (`migrate up` as a
 * job) through the real HTTP server: a platform key sees every target and queues a job the
 * gateway's runner completes; a tenant's admin and analyst meet exactly an unknown route; a bad
 * body is a 400 with a stable code, never a 500. The migrations are in database.migrations_dir
 * beside the fixture's config file (a temporary folder).
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { jobServiceOf } from '../../src/lifecycle/jobs/service.ts';
import { applyProvision } from '../../src/provision/apply.ts';
import { ownerDatabases, type DatabaseSet } from '../../src/tiers/databases.ts';
import { tenantDatabase } from '../../src/tiers/location.ts';
import { BACKENDS, createFixture, pgliteFactory, TEST_SECRET, type Fixture } from '../support/backends.ts';
import { jobEnded, serve, type Served } from '../http/support.ts';
import { ERASE_SQL, ERASE_YAML } from '../lifecycle/erase/support.ts';

const TARGETS = ['main', 'schema:hooli', 'database:initech'];

describe.each(BACKENDS)('admin migrations endpoint on %s', (kind) => {
  const dir = mkdtempSync(join(tmpdir(), 'tg-migrate-http-'));
  let fx: Fixture;
  let s: Served;
  let dbs: DatabaseSet;
  const had = process.env['TENANTGATE_SECRET'];
  const ops = () => ({ 'x-api-key': s.keys.ops });
  const columns = async (db: Pick<Fixture['db'], 'query'>, schema: string) =>
    (await db.query<{ c: string }>(`SELECT column_name::text AS c FROM information_schema.columns WHERE table_schema = $1 AND table_name = 'orders'`, [schema])).rows.map((r) => r.c);

  beforeAll(async () => {
    process.env['TENANTGATE_SECRET'] = TEST_SECRET.toString(); // the job provisions afterwards with the process's environment
    fx = await createFixture(kind, { sql: ERASE_SQL, yaml: ERASE_YAML, apply: false, configFile: join(dir, 'tenantgate.yaml') });
    dbs = ownerDatabases(fx.config, fx.db, {}, pgliteFactory);
    await applyProvision(fx.config, fx.db, fx.secret, { env: { TG_TEST_DB: fx.url, TG_TEST_PREFIX: fx.prefix }, databases: dbs });
    mkdirSync(join(dir, 'migrations'));
    writeFileSync(join(dir, 'migrations', '0001_add_note.sql'), `ALTER TABLE public.orders ADD COLUMN note text NOT NULL DEFAULT 'none';\n`);
    writeFileSync(join(dir, 'migrations', '0002_note_index.sql'), `CREATE INDEX orders_note_idx ON public.orders (note);\n`);
    s = await serve(fx);
    await jobServiceOf(s.gateway).startRunner({ pollMs: 50 });
  }, 120_000);
  afterAll(async () => {
    await s?.close();
    await dbs?.close();
    await fx?.cleanup();
    rmSync(dir, { recursive: true, force: true });
    if (had === undefined) delete process.env['TENANTGATE_SECRET'];
    else process.env['TENANTGATE_SECRET'] = had;
  });

  it('a tenant admin and an analyst get exactly the unknown-route answer, for GET and POST', async () => {
    const unknownGet = await s.get('/v1/admin/no-such-thing', { 'x-api-key': s.keys.acmeAdmin });
    expect(unknownGet.status).toBe(404);
    expect(unknownGet.json.error.code).toBe('NOT_FOUND');
    const unknownPost = await s.post('/v1/admin/no-such-thing', {}, { 'x-api-key': s.keys.acmeAdmin });
    const shape = (j: { error: Record<string, unknown> }) => ({ ...j, error: { ...j.error, request_id: undefined } });
    for (const key of [s.keys.acmeAdmin, s.keys.globexAdmin, s.keys.acme, s.keys.acmeWriter]) {
      const get = await s.get('/v1/admin/migrations', { 'x-api-key': key });
      expect(get.status).toBe(404);
      expect(shape(get.json)).toEqual(shape(unknownGet.json));
      for (const body of [{}, { concurrency: 0 }]) {
        const post = await s.post('/v1/admin/migrations', body, { 'x-api-key': key });
        expect(post.status).toBe(404);
        expect(shape(post.json)).toEqual(shape(unknownPost.json));
      }
    }
    // Nothing was queued by them.
    expect((await s.get('/v1/admin/migrations', ops())).json.jobs).toEqual([]);
  });

  it('a bad body is a 400 with a stable code, never a 500', async () => {
    const cases: Array<[unknown, RegExp]> = [
      [{ concurrency: 0 }, /^concurrency: .*>=1/],
      [{ concurrency: 65 }, /^concurrency: .*<=64/],
      [{ to: '1' }, /^to: /],
      [{ retries: -1 }, /^retries: /],
      [{ lock_timeout_ms: 'soon' }, /^lock_timeout_ms: /],
      [{ nope: true }, /unknown field "nope"/],
      ['[1,2]', /expected object/],
      ['not json', /not valid JSON/],
    ];
    for (const [body, message] of cases) {
      const r = await s.post('/v1/admin/migrations', body, ops());
      expect(r.status, JSON.stringify(body)).toBe(400);
      expect(r.json.error, JSON.stringify(body)).toMatchObject({ code: 'QUERY_INVALID', message: expect.stringMatching(message) });
    }
    expect((await s.get('/v1/admin/migrations', ops())).json.jobs).toEqual([]);
  });

  it('a platform key sees every target and queues a job the runner completes; the columns exist everywhere afterwards', { timeout: 120_000 }, async () => {
    const before = await s.get('/v1/admin/migrations', ops());
    expect(before.status, JSON.stringify(before.json)).toBe(200);
    expect(before.json).toMatchObject({ dir: join(dir, 'migrations'), upToDate: false, jobs: [] });
    expect(before.json.targets.map((t: { target: string }) => t.target)).toEqual(TARGETS);
    expect(before.json.migrations).toEqual([
      { version: '0001', name: '0001_add_note', applied: 0, targets: 3, missing: TARGETS },
      { version: '0002', name: '0002_note_index', applied: 0, targets: 3, missing: TARGETS },
    ]);

    const started = await s.post('/v1/admin/migrations', { concurrency: 2 }, ops());
    expect(started.status, JSON.stringify(started.json)).toBe(202);
    expect(started.json.job).toMatchObject({ kind: 'migrate', tenant: null, requested_by: expect.stringMatching(/^key:/) });
    const id = started.json.job.id as string;
    const job = await jobEnded(s, started.json.job, ops());
    expect(job.state, JSON.stringify(job.error)).toBe('done');
    expect(job.result).toMatchObject({ applied: 6, failures: [], notStarted: [], targets: 3 });

    const initech = await dbs.get('default', tenantDatabase(fx.prefix, 'initech'));
    for (const [db, schema] of [[fx.db, 'public'], [fx.db, 't_hooli'], [initech, 'public']] as const) expect(await columns(db, schema), schema).toContain('note');
    const after = await s.get('/v1/admin/migrations', ops());
    expect(after.status).toBe(200);
    expect(after.json.upToDate).toBe(true);
    expect(after.json.migrations.map((m: { applied: number; missing: string[] }) => [m.applied, m.missing])).toEqual([[3, []], [3, []]]);
    expect(after.json.jobs.map((j: { id: string; state: string }) => [j.id, j.state])).toEqual([[id, 'done']]);

    // A second job finds nothing to do.
    const again = await s.post('/v1/admin/migrations', {}, ops());
    expect(again.status).toBe(202);
    expect(again.json.job.id).not.toBe(id);
    const j2 = await jobEnded(s, again.json.job, ops());
    expect(j2.state, JSON.stringify(j2.error)).toBe('done');
    expect(j2.result).toMatchObject({ applied: 0, plan: [] });
  });
});
