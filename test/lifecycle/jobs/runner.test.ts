/**
 * The durable job runner (issue 14 §1): jobs in tenantgate.jobs, claimed with FOR UPDATE SKIP
 * LOCKED under a lease that heartbeats extend; checkpoints and outcomes only while the lease is
 * the runner's own. Real job kinds, a real catalog made by apply, on every backend.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDatabase, type Database } from '../../../src/db/database.ts';
import { TenantGateError } from '../../../src/errors/index.ts';
import { enqueueJob, JobRunner } from '../../../src/lifecycle/jobs/runner.ts';
import { cancelJob, claimJob, getJob, getJobForTenant, listJobs, requireJob, sweepJobs, type Job } from '../../../src/lifecycle/jobs/store.ts';
import { planProvision } from '../../../src/provision/apply.ts';
import { gatewayRoles } from '../../../src/provision/names.ts';
import { BACKENDS, type Fixture } from '../../support/backends.ts';
import { countKind, exactlyOnce, failingKinds, itemsOf, jobFixture, registryWith, startsOf, until } from './support.ts';

const who = 'cli:test';

async function codeOf(p: Promise<unknown>): Promise<{ code: string; message: string }> {
  try {
    await p;
  } catch (err) {
    if (err instanceof TenantGateError) return { code: err.code, message: err.message };
    throw err;
  }
  throw new Error('expected a TenantGateError');
}

describe.each(BACKENDS)('job runner on %s', (kind) => {
  let fx: Fixture;
  let db: Database;
  beforeAll(async () => {
    fx = await jobFixture(kind);
    db = fx.db;
  });
  afterAll(async () => fx?.cleanup());

  it('apply makes tenantgate.jobs once, for the owner only: a second apply changes nothing', async () => {
    const plan = await planProvision(fx.config, db, fx.secret, { TG_TEST_DB: fx.url, TG_TEST_PREFIX: fx.prefix });
    expect(plan.changes.map((c) => c.object)).toEqual([]);
    const r = await db.query(`SELECT count(*)::int AS n FROM pg_class c JOIN pg_namespace s ON s.oid = c.relnamespace WHERE s.nspname = 'tenantgate' AND c.relname = 'jobs'`);
    expect(r.rows[0]?.n).toBe(1);
    for (const role of [fx.names.gateway, fx.names.direct, ...gatewayRoles(fx.names).map((g) => g.role)]) {
      const p = await db.query(`SELECT has_table_privilege($1, 'tenantgate.jobs', 'SELECT') OR has_table_privilege($1, 'tenantgate.jobs', 'UPDATE') AS any`, [role]);
      expect(p.rows[0]?.any, role).toBe(false);
    }
  });

  it('runs a job to its end: claim, progress, checkpoints, result, who asked, timestamps', async () => {
    const registry = registryWith(countKind());
    const runner = new JobRunner({ db, registry });
    const job = await enqueueJob(db, { kind: 'count', tenant: 'acme_corp', params: { items: 5 }, requestedBy: who }, registry);
    expect(job).toMatchObject({ state: 'queued', attempts: 0, tenant: 'acme_corp', requestedBy: who, runner: null });
    const done = await runner.runNext();
    expect(done).toMatchObject({ id: job.id, state: 'done', result: { items: 5 }, attempts: 1, error: null, runner: runner.id, progress: { done: 5, total: 5, phase: 'counting' } });
    expect(done!.checkpoint).toEqual({ next: 5 });
    expect(done!.startedAt).toBeInstanceOf(Date);
    expect(done!.finishedAt!.getTime()).toBeGreaterThanOrEqual(done!.startedAt!.getTime());
    expect(done!.heartbeatAt).toBeInstanceOf(Date);
    expect(done!.leaseUntil).toBeNull();
    expect(await itemsOf(db, job.id)).toEqual(exactlyOnce(5));
    expect(await startsOf(db, job.id)).toEqual([0]);
    expect(await runner.runNext()).toBeNull();
  });

  it('a runner that stops heartbeating loses the job after its lease, never before; the next resumes at the checkpoint and the first writes nothing more', async () => {
    let release!: () => void;
    const stalled = new Promise<void>((r) => (release = r));
    let stalledOnce = false;
    // Runner A stalls after item 2 (as a hung or paused process would) and sends no heartbeats.
    const stall = countKind({
      point: async (name, item, ctx) => {
        if (name === 'committed' && item === 2 && ctx.job.runner === 'runner-a' && !stalledOnce) {
          stalledOnce = true;
          await stalled;
        }
      },
    });
    const registry = registryWith(stall);
    const a = new JobRunner({ db, registry, id: 'runner-a', leaseMs: 600, heartbeatMs: 3_600_000 });
    const b = new JobRunner({ db, registry, id: 'runner-b', leaseMs: 5_000, heartbeatMs: 100 });
    const job = await enqueueJob(db, { kind: 'count', tenant: 'globex_inc', params: { items: 8 }, requestedBy: who }, registry);
    const first = a.runNext();
    await until('runner A to stall', async () => (stalledOnce ? true : undefined));
    // While A's lease holds, nobody else may take the job.
    expect(await b.runNext()).toBeNull();
    const resumed = await until('runner B to take the lapsed job', () => b.runNext(), 10_000);
    expect(resumed).toMatchObject({ id: job.id, state: 'done', attempts: 2, runner: 'runner-b', result: { items: 8 } });
    release();
    const a1 = await first;
    // A learned it lost the job at its next step: it wrote no item and no outcome.
    expect(a1).toMatchObject({ id: job.id, state: 'done', runner: 'runner-b' });
    expect(await itemsOf(db, job.id)).toEqual(exactlyOnce(8));
    expect(await startsOf(db, job.id)).toEqual([0, 3]);
  });

  it('a runner that takes its own stalled job again holds a new claim: the stalled run writes nothing more', async () => {
    let release!: () => void;
    const stalled = new Promise<void>((r) => (release = r));
    let stalls = 0;
    const registry = registryWith(
      countKind({
        point: async (name, item, ctx) => {
          if (name === 'committed' && item === 1 && ctx.job.attempts === 1) {
            stalls++;
            await stalled;
          }
          // The second claim, mid-run, lets the stalled first run go on, and gives it time to try.
          if (name === 'committed' && item === 3 && ctx.job.attempts === 2) {
            release();
            await new Promise((r) => setTimeout(r, 200));
          }
        },
      }),
    );
    const a = new JobRunner({ db, registry, id: 'runner-self', leaseMs: 400, heartbeatMs: 3_600_000 });
    const job = await enqueueJob(db, { kind: 'count', params: { items: 5 }, requestedBy: who }, registry);
    const first = a.runNext();
    await until('the stall', async () => (stalls ? true : undefined));
    const again = await until('the same runner to take it again', () => a.runNext(), 10_000);
    expect(again).toMatchObject({ id: job.id, state: 'done', attempts: 2, runner: 'runner-self' });
    // The stalled run found the job claimed again (attempt 2) at its next step and stopped there.
    expect((await first)!.attempts).toBe(2);
    expect(await getJob(db, job.id)).toMatchObject({ state: 'done', attempts: 2 });
    expect(await itemsOf(db, job.id)).toEqual(exactlyOnce(5));
    expect(await startsOf(db, job.id)).toEqual([0, 2]);
  });

  it('heartbeats keep a long job that saves no checkpoint its own', async () => {
    const registry = registryWith(...failingKinds());
    const a = new JobRunner({ db, registry, leaseMs: 300, heartbeatMs: 60 });
    const b = new JobRunner({ db, registry, leaseMs: 300 });
    const job = await enqueueJob(db, { kind: 'sleepy', params: { ms: 1_200 }, requestedBy: who }, registry);
    const running = a.runNext();
    const end = Date.now() + 1_000;
    while (Date.now() < end) {
      expect(await b.runNext()).toBeNull();
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(await running).toMatchObject({ id: job.id, state: 'done', attempts: 1, runner: a.id, result: { slept: 1_200 } });
  });

  it('cancel: a queued job at once; a running one stops at its next checkpoint; finished and unknown jobs are refused', async () => {
    const registry = registryWith(countKind());
    const runner = new JobRunner({ db, registry, leaseMs: 5_000, heartbeatMs: 100 });
    const queued = await enqueueJob(db, { kind: 'count', tenant: 'acme_corp', params: { items: 3 }, requestedBy: who }, registry);
    expect(await cancelJob(db, queued.id)).toMatchObject({ state: 'cancelled', cancelRequested: true });
    expect((await getJob(db, queued.id))!.finishedAt).toBeInstanceOf(Date);
    expect(await runner.runNext()).toBeNull();
    expect(await itemsOf(db, queued.id)).toEqual(new Map());

    const long = await enqueueJob(db, { kind: 'count', tenant: 'acme_corp', params: { items: 200, sleepMs: 20 }, requestedBy: who }, registry);
    const running = runner.runNext();
    await until('a few items', async () => ((await getJob(db, long.id))!.progress.done >= 3 ? true : undefined));
    expect(await cancelJob(db, long.id)).toMatchObject({ state: 'running', cancelRequested: true });
    const ended = await running;
    expect(ended).toMatchObject({ state: 'cancelled', cancelRequested: true, result: null });
    const items = await itemsOf(db, long.id);
    expect(items.size).toBeLessThan(200);
    expect(items).toEqual(exactlyOnce(items.size));
    expect(ended!.checkpoint).toEqual({ next: items.size });

    expect((await codeOf(cancelJob(db, long.id))).code).toBe('JOB_FINISHED');
    expect((await codeOf(cancelJob(db, randomUUID()))).code).toBe('JOB_UNKNOWN');
    expect((await codeOf(cancelJob(db, 'not-a-job'))).code).toBe('JOB_UNKNOWN');
    expect((await codeOf(requireJob(db, "1' OR '1'='1"))).code).toBe('JOB_UNKNOWN');
  });

  it('failures: a code is kept with its message, an unexpected error is INTERNAL without its internals, a transient one is retried', async () => {
    const registry = registryWith(...failingKinds());
    const runner = new JobRunner({ db, registry, retryDelayMs: () => 0 });
    const known = await enqueueJob(db, { kind: 'boom-known', tenant: 'acme_corp', requestedBy: who }, registry);
    expect(await runner.runNext()).toMatchObject({ id: known.id, state: 'failed', attempts: 1, error: { code: 'QUERY_INVALID', message: 'the export format is not one we know' } });
    const unknown = await enqueueJob(db, { kind: 'boom-unknown', requestedBy: who }, registry);
    const failed = await runner.runNext();
    expect(failed).toMatchObject({ id: unknown.id, state: 'failed', error: { code: 'INTERNAL' } });
    expect(failed!.error!.message).not.toMatch(/secret|srv/);
    expect(failed!.errorDetail).toMatch(/secret\.ts/); // for the owner's `jobs show`, never the API
    const flaky = await enqueueJob(db, { kind: 'flaky', requestedBy: who }, registry);
    expect(await runner.runNext()).toMatchObject({ id: flaky.id, state: 'queued', attempts: 1, error: { code: 'DB_UNAVAILABLE' } });
    expect(await runner.runNext()).toMatchObject({ id: flaky.id, state: 'done', attempts: 2, error: null, result: { ok: true } });
  });

  it('a job whose runners kept dying fails JOB_ABANDONED once its attempts are used; one with a cancel pending ends cancelled', async () => {
    const registry = registryWith(countKind({}, { maxAttempts: 2 }));
    const job = await enqueueJob(db, { kind: 'count', params: { items: 1 }, requestedBy: who }, registry);
    const cancelled = await enqueueJob(db, { kind: 'count', params: { items: 1 }, requestedBy: who }, registry);
    expect(job.maxAttempts).toBe(2);
    // Two runners claim it and die (their leases lapse without an outcome).
    for (const ghost of ['ghost-1', 'ghost-2']) {
      expect(await claimJob(db, ghost, ['count'], 1, job.id)).toMatchObject({ id: job.id, runner: ghost });
      await new Promise((r) => setTimeout(r, 20));
    }
    expect(await claimJob(db, 'ghost-3', ['count'], 1, job.id)).toBeNull(); // no attempts left
    expect(await claimJob(db, 'ghost-4', ['count'], 1, cancelled.id)).toMatchObject({ id: cancelled.id });
    await cancelJob(db, cancelled.id);
    await new Promise((r) => setTimeout(r, 20));
    expect(await sweepJobs(db)).toBeGreaterThanOrEqual(2);
    expect(await getJob(db, job.id)).toMatchObject({ state: 'failed', attempts: 2, error: { code: 'JOB_ABANDONED' } });
    expect(await getJob(db, cancelled.id)).toMatchObject({ state: 'cancelled', error: null });
  });

  it('exclusive kinds: one job per tenant at a time, other tenants alongside', async () => {
    const active = new Map<string, number>();
    let most = 0;
    let overlapAcrossTenants = false;
    const kindX = countKind(
      {
        enter: (ctx) => {
          const t = ctx.job.tenant!;
          active.set(t, (active.get(t) ?? 0) + 1);
          most = Math.max(most, active.get(t)!);
          if ([...active.values()].filter((n) => n > 0).length > 1) overlapAcrossTenants = true;
        },
        exit: (ctx) => active.set(ctx.job.tenant!, active.get(ctx.job.tenant!)! - 1),
      },
      { kind: 'count-x', exclusive: 'tenant' },
    );
    const registry = registryWith(kindX);
    const jobs = [
      await enqueueJob(db, { kind: 'count-x', tenant: 'acme_corp', params: { items: 4, sleepMs: 15 }, requestedBy: who }, registry),
      await enqueueJob(db, { kind: 'count-x', tenant: 'acme_corp', params: { items: 4, sleepMs: 15 }, requestedBy: who }, registry),
      await enqueueJob(db, { kind: 'count-x', tenant: 'globex_inc', params: { items: 4, sleepMs: 15 }, requestedBy: who }, registry),
    ];
    expect(jobs.map((j) => j.exclusiveKey)).toEqual(['acme_corp', 'acme_corp', 'globex_inc']);
    const runner = new JobRunner({ db, registry, concurrency: 3, pollMs: 30 }).start();
    try {
      await until('every exclusive job', async () => {
        const states = await Promise.all(jobs.map(async (j) => (await getJob(db, j.id))!.state));
        return states.every((s) => s === 'done') ? true : undefined;
      });
    } finally {
      await runner.stop();
    }
    expect(most).toBe(1);
    expect(overlapAcrossTenants).toBe(true);
    for (const j of jobs) expect(await itemsOf(db, j.id)).toEqual(exactlyOnce(4));
  });

  it("getJobForTenant: another tenant's job answers exactly like a job that does not exist", async () => {
    const registry = registryWith(countKind());
    const acme = await enqueueJob(db, { kind: 'count', tenant: 'acme_corp', params: { items: 1 }, requestedBy: who }, registry);
    const platform = await enqueueJob(db, { kind: 'count', tenant: null, params: { items: 1 }, requestedBy: who }, registry);
    expect(await getJobForTenant(db, acme.id, 'acme_corp')).toMatchObject({ id: acme.id, tenant: 'acme_corp' });
    const missing = await codeOf(getJobForTenant(db, randomUUID(), 'globex_inc'));
    expect(missing.code).toBe('JOB_UNKNOWN');
    expect(await codeOf(getJobForTenant(db, acme.id, 'globex_inc'))).toEqual(missing);
    expect(await codeOf(getJobForTenant(db, platform.id, 'globex_inc'))).toEqual(missing);
    expect(await codeOf(getJobForTenant(db, 'garbage', 'globex_inc'))).toEqual(missing);
    // Cancelling for the wrong tenant: the same answer, and the job is untouched.
    expect(await codeOf(cancelJob(db, acme.id, 'globex_inc'))).toEqual(missing);
    expect(await getJob(db, acme.id)).toMatchObject({ state: 'queued', cancelRequested: false });
    expect(await cancelJob(db, acme.id, 'acme_corp')).toMatchObject({ state: 'cancelled' });
    await cancelJob(db, platform.id);
  });

  it('lists newest first with filters, in pages that say when more match', async () => {
    const registry = registryWith(countKind());
    const mine: Job[] = [];
    for (let i = 0; i < 5; i++) mine.push(await enqueueJob(db, { kind: 'count', tenant: 'globex_inc', params: { items: 1, i }, requestedBy: 'key:paging' }, registry));
    const all = await listJobs(db, { tenant: 'globex_inc', state: 'queued', kind: 'count', limit: 100 });
    expect(all.jobs.map((j) => j.id)).toEqual(mine.map((j) => j.id).reverse());
    const p1 = await listJobs(db, { tenant: 'globex_inc', state: 'queued', limit: 2 });
    expect(p1).toMatchObject({ truncated: true, next: expect.any(String) });
    const p2 = await listJobs(db, { tenant: 'globex_inc', state: 'queued', limit: 2, before: p1.next! });
    const p3 = await listJobs(db, { tenant: 'globex_inc', state: 'queued', limit: 2, before: p2.next! });
    expect(p3).toMatchObject({ truncated: false, next: null });
    expect([...p1.jobs, ...p2.jobs, ...p3.jobs].map((j) => j.id)).toEqual(mine.map((j) => j.id).reverse());
    expect((await codeOf(listJobs(db, { limit: 2, before: 'x' }))).code).toBe('QUERY_INVALID');
    for (const j of mine) await cancelJob(db, j.id);
  });
});

describe.skipIf(!BACKENDS.includes('postgres'))('job runners on one PostgreSQL server', () => {
  let fx: Fixture;
  const extra: Database[] = [];
  beforeAll(async () => {
    fx = await jobFixture('postgres');
  });
  afterAll(async () => {
    for (const d of extra) await d.close().catch(() => {});
    await fx?.cleanup();
  });
  const pool = async () => {
    const d = await openDatabase(fx.url, { max: 6 });
    extra.push(d);
    return d;
  };

  it('two runners in their own pools never run the same job at once, and each item happens once', { timeout: 60_000 }, async () => {
    const active = new Map<string, number>();
    const ranBy = new Map<string, Set<string>>();
    let twice = 0;
    const kind = countKind({
      enter: (ctx) => {
        const n = (active.get(ctx.job.id) ?? 0) + 1;
        active.set(ctx.job.id, n);
        if (n > 1) twice++;
        const s = ranBy.get(ctx.job.runner!) ?? new Set();
        s.add(ctx.job.id);
        ranBy.set(ctx.job.runner!, s);
      },
      exit: (ctx) => active.set(ctx.job.id, active.get(ctx.job.id)! - 1),
    });
    const registry = registryWith(kind);
    const jobs: Job[] = [];
    for (let i = 0; i < 12; i++) jobs.push(await enqueueJob(fx.db, { kind: 'count', tenant: i % 2 ? 'acme_corp' : 'globex_inc', params: { items: 5, sleepMs: 10 }, requestedBy: who }, registry));
    const a = new JobRunner({ db: await pool(), registry, id: 'pg-a', concurrency: 3, pollMs: 20 });
    const b = new JobRunner({ db: await pool(), registry, id: 'pg-b', concurrency: 3, pollMs: 20 });
    a.start();
    b.start();
    try {
      await until('every job', async () => {
        const r = await fx.db.query(`SELECT count(*)::int AS n FROM tenantgate.jobs WHERE id = ANY($1::uuid[]) AND state = 'done'`, [jobs.map((j) => j.id)]);
        return r.rows[0]?.n === jobs.length ? true : undefined;
      }, 40_000);
    } finally {
      await Promise.all([a.stop(), b.stop()]);
    }
    expect(twice).toBe(0);
    for (const j of jobs) {
      expect(await itemsOf(fx.db, j.id)).toEqual(exactlyOnce(5));
      expect(await getJob(fx.db, j.id)).toMatchObject({ attempts: 1 });
    }
    expect(ranBy.get('pg-a')?.size ?? 0).toBeGreaterThan(0);
    expect(ranBy.get('pg-b')?.size ?? 0).toBeGreaterThan(0);
  });

  it('a runner listening on the server picks up a new job at once, and a cancel at once, without waiting for its poll', async () => {
    const registry = registryWith(countKind());
    const runner = new JobRunner({ db: await pool(), registry, pollMs: 60_000, heartbeatMs: 60_000, leaseMs: 120_000 }).start();
    try {
      await new Promise((r) => setTimeout(r, 300)); // LISTEN in place
      const job = await enqueueJob(fx.db, { kind: 'count', tenant: 'acme_corp', params: { items: 400, sleepMs: 10 }, requestedBy: who }, registry);
      const t0 = Date.now();
      await until('the job to start', async () => ((await getJob(fx.db, job.id))!.state === 'running' ? true : undefined), 3_000);
      expect(Date.now() - t0).toBeLessThan(3_000);
      await until('a few items', async () => ((await getJob(fx.db, job.id))!.progress.done >= 2 ? true : undefined), 3_000);
      await cancelJob(fx.db, job.id);
      const ended = await until('the cancel', async () => {
        const j = (await getJob(fx.db, job.id))!;
        return j.state === 'cancelled' ? j : undefined;
      }, 3_000);
      expect((await itemsOf(fx.db, job.id)).size).toBeLessThan(400);
      expect(ended.checkpoint).toEqual({ next: (await itemsOf(fx.db, job.id)).size });
    } finally {
      await runner.stop();
    }
  });

  it('stopping a runner puts its running job back in the queue without using an attempt; another finishes it from the checkpoint', async () => {
    const registry = registryWith(countKind());
    const a = new JobRunner({ db: await pool(), registry, id: 'stop-a', pollMs: 20 }).start();
    const job = await enqueueJob(fx.db, { kind: 'count', tenant: 'acme_corp', params: { items: 30, sleepMs: 20 }, requestedBy: who }, registry);
    await until('a few items', async () => ((await getJob(fx.db, job.id))!.progress.done >= 3 ? true : undefined));
    await a.stop();
    const back = (await getJob(fx.db, job.id))!;
    expect(back).toMatchObject({ state: 'queued', attempts: 0, runner: null });
    const b = new JobRunner({ db: await pool(), registry, id: 'stop-b' });
    expect(await b.runNext()).toMatchObject({ state: 'done', attempts: 1, runner: 'stop-b' });
    expect(await itemsOf(fx.db, job.id)).toEqual(exactlyOnce(30));
    expect((await startsOf(fx.db, job.id))[1]).toBe((back.checkpoint as { next: number }).next);
  });
});
