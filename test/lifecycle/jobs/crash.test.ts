/**
 * `kill -9` of a job runner (issue 14 §1): a runner process is killed at several points of one job
 * (right after its claim, inside an item's transaction, after an item committed, before the job's
 * outcome is written); each time the next runner takes the job only once the dead one's lease has
 * lapsed, resumes at the last checkpoint (never from scratch) and, at the end, every item was
 * processed exactly once. The item's effect and its checkpoint commit in one transaction
 * (`ctx.step`). Server only: the embedded database lives inside one process.
 */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { enqueueJob } from '../../../src/lifecycle/jobs/runner.ts';
import { getJob } from '../../../src/lifecycle/jobs/store.ts';
import { SERVER_URL, type Fixture } from '../../support/backends.ts';
import { countKind, exactlyOnce, itemsOf, jobFixture, registryWith, startsOf } from './support.ts';

const ROOT = join(import.meta.dirname, '..', '..', '..');
const LEASE_MS = 1_000;

describe.skipIf(!SERVER_URL)('a job runner killed with SIGKILL', () => {
  let fx: Fixture;
  beforeAll(async () => {
    fx = await jobFixture('postgres');
  });
  afterAll(async () => fx?.cleanup());

  const runner = (job: string, killAt?: string) =>
    new Promise<{ code: number | null; signal: NodeJS.Signals | null; out: string; ms: number }>((resolve) => {
      const t0 = Date.now();
      const child = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'test/lifecycle/jobs/crash-runner.ts')], {
        cwd: ROOT,
        env: { ...process.env, JOB_DB: fx.url, JOB_ID: job, LEASE_MS: String(LEASE_MS), ...(killAt ? { KILL_AT: killAt } : {}) },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let out = '';
      child.stdout.on('data', (d: Buffer) => (out += d.toString()));
      child.stderr.on('data', (d: Buffer) => (out += d.toString()));
      child.on('exit', (code, signal) => resolve({ code, signal, out, ms: Date.now() - t0 }));
    });

  it('resumes from the last checkpoint after each kill, and processes every item exactly once', { timeout: 120_000 }, async () => {
    const registry = registryWith(countKind());
    const job = await enqueueJob(fx.db, { kind: 'count', tenant: 'acme_corp', params: { items: 12, sleepMs: 30 }, requestedBy: 'cli:crash-test' }, registry);
    const afterKill = async (killAt: string, committed: number, startedFrom: number[]) => {
      const r = await runner(job.id, killAt);
      expect(r.signal, `${killAt}: ${r.out}`).toBe('SIGKILL');
      const j = (await getJob(fx.db, job.id))!;
      // Dead, not finished: still running under a lease nobody renews.
      expect(j.state).toBe('running');
      expect(j.checkpoint).toEqual(committed ? { next: committed } : null);
      expect(await itemsOf(fx.db, job.id)).toEqual(exactlyOnce(committed));
      expect(await startsOf(fx.db, job.id)).toEqual(startedFrom);
      return j;
    };
    // Killed inside item 3's transaction: items 0-2 and their checkpoint committed, item 3 rolled back.
    const first = await afterKill('effect:3', 3, [0]);
    expect(first.attempts).toBe(1);
    // The next runner waits for the lease to lapse, claims, and is killed before doing anything.
    const second = await afterKill('claimed', 3, [0]);
    expect(second.attempts).toBe(2);
    expect(second.runner).not.toBe(first.runner);
    expect(second.startedAt).toEqual(first.startedAt);
    // …and it claimed only after the dead runner's lease ran out (heartbeat_at is set by the claim).
    expect(second.heartbeatAt!.getTime()).toBeGreaterThanOrEqual(first.leaseUntil!.getTime());
    // Resumes at item 3 (0-2 are not redone); killed right after item 7 committed.
    await afterKill('committed:7', 8, [0, 3]);
    // Resumes at 8, does the rest, killed before the outcome is written.
    await afterKill('before-finish', 12, [0, 3, 8]);
    const last = await runner(job.id);
    expect(last.code, last.out).toBe(0);
    const done = (await getJob(fx.db, job.id))!;
    expect(done).toMatchObject({ state: 'done', attempts: 5, result: { items: 12 }, error: null, progress: { done: 12, total: 12 } });
    expect(await itemsOf(fx.db, job.id)).toEqual(exactlyOnce(12));
    expect(await startsOf(fx.db, job.id)).toEqual([0, 3, 8, 12]);
    // Never two runners at once: each item was written by one runner, and the runners' items follow each other in time.
    const byRunner = (await fx.db.query(`SELECT runner, min(at) AS first, max(at) AS last FROM public.job_items WHERE job = $1 GROUP BY runner ORDER BY min(at)`, [job.id])).rows as Array<{ first: Date; last: Date }>;
    expect(byRunner.length).toBe(3);
    for (let i = 1; i < byRunner.length; i++) expect(byRunner[i]!.first.getTime()).toBeGreaterThan(byRunner[i - 1]!.last.getTime());
  });
});
