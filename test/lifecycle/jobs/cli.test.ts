/**
 * `tenantgate jobs list|show|cancel` and the helper later lifecycle commands run their job with:
 * in the foreground with progress (a bar on a terminal, plain lines otherwise), or --detach.
 */
import { tmpdir } from 'node:os';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runJobCommand } from '../../../src/cli/commands/jobs.ts';
import type { CliIO } from '../../../src/cli/io.ts';
import { TenantGateError } from '../../../src/errors/index.ts';
import { enqueueJob } from '../../../src/lifecycle/jobs/runner.ts';
import { cancelJob, getJob, type Job } from '../../../src/lifecycle/jobs/store.ts';
import { BACKENDS, type BackendKind, type Fixture } from '../../support/backends.ts';
import { cliDatabase, runSeedCli, type CliDatabase } from '../../support/cli.ts';
import { countKind, exactlyOnce, failingKinds, itemsOf, JOB_TEST_SQL, jobFixture, registryWith, until } from './support.ts';

const registry = registryWith(countKind(), ...failingKinds());

function captureIO(isTTY = false): CliIO & { out: string[]; err: string[] } {
  const out: string[] = [];
  const err: string[] = [];
  return { out, err, stdout: (t) => void out.push(t), stderr: (t) => void err.push(t), env: { USER: 'alice' }, cwd: tmpdir(), isTTY };
}

describe.each(BACKENDS)('running a job from a command on %s', (kind) => {
  let fx: Fixture;
  beforeAll(async () => {
    fx = await jobFixture(kind);
  });
  afterAll(async () => fx?.cleanup());

  it('in the foreground: plain progress lines when not on a terminal, the finished job back, who asked', async () => {
    const io = captureIO(false);
    const job = await runJobCommand(io, fx.db, { kind: 'count', tenant: 'acme_corp', params: { items: 8 } }, { registry, runner: { heartbeatMs: 50 } });
    expect(job).toMatchObject({ state: 'done', result: { items: 8 }, requestedBy: 'cli:alice', attempts: 1 });
    expect(await itemsOf(fx.db, job.id)).toEqual(exactlyOnce(8));
    const err = io.err.join('');
    expect(err).toContain(`job ${job.id}: count of acme_corp running here`);
    expect(err).toContain('count: counting: 8/8 (100%)\n');
    expect(err).not.toContain('\r');
    expect(io.out).toEqual([]);
  });

  it('in the foreground on a terminal: a redrawn bar', async () => {
    const io = captureIO(true);
    await runJobCommand(io, fx.db, { kind: 'count', tenant: 'acme_corp', params: { items: 4 } }, { registry, label: 'export' });
    const err = io.err.join('');
    expect(err).toContain('\rexport: counting [');
    expect(err).toMatch(/\] 4\/4\n$/);
  });

  it('with --detach: queued and its id printed (a document with --json); nothing runs here', async () => {
    const io = captureIO();
    const job = await runJobCommand(io, fx.db, { kind: 'count', tenant: 'globex_inc', params: { items: 2 } }, { registry, detach: true });
    expect(job).toMatchObject({ state: 'queued', requestedBy: 'cli:alice' });
    expect(io.out.join('')).toContain(`Queued job ${job.id} (count of globex_inc)`);
    const asJson = captureIO();
    const j2 = await runJobCommand(asJson, fx.db, { kind: 'count', tenant: 'globex_inc', params: { items: 2 } }, { registry, detach: true, json: true });
    expect(JSON.parse(asJson.out.join(''))).toMatchObject({ job: { id: j2.id, state: 'queued', kind: 'count', tenant: 'globex_inc' } });
    for (const j of [job, j2]) await cancelJob(fx.db, j.id);
  });

  it('a failed job ends the command with its code; a job cancelled meanwhile with JOB_CANCELLED', async () => {
    const io = captureIO();
    await expect(runJobCommand(io, fx.db, { kind: 'boom-known', tenant: 'acme_corp' }, { registry })).rejects.toMatchObject({ code: 'QUERY_INVALID' });
    const running = runJobCommand(captureIO(), fx.db, { kind: 'count', tenant: 'acme_corp', params: { items: 300, sleepMs: 15 } }, { registry, runner: { heartbeatMs: 50 } });
    const job = await until('the foreground job', async () => {
      const r = await fx.db.query(`SELECT id FROM tenantgate.jobs WHERE state = 'running' AND (params ->> 'items')::int = 300`);
      return r.rows[0]?.id as string | undefined;
    });
    await until('some progress', async () => ((await getJob(fx.db, job))!.progress.done >= 2 ? true : undefined));
    await cancelJob(fx.db, job);
    const e = await running.catch((err: unknown) => err);
    expect(e).toBeInstanceOf(TenantGateError);
    expect((e as TenantGateError).code).toBe('JOB_CANCELLED');
    expect((e as TenantGateError).exitCode).toBe(1);
  });
});

/** A database the CLI opens itself (database.url): a PGlite data directory, or the fixture's server database. */
const cliDb = (kind: BackendKind): Promise<CliDatabase> => cliDatabase(kind, { sql: JOB_TEST_SQL });

describe.each(BACKENDS)('tenantgate jobs on %s', (kind) => {
  let d: CliDatabase;
  const jobs: Job[] = [];
  beforeAll(async () => {
    d = await cliDb(kind);
    await d.owner(async (db) => {
      for (let i = 0; i < 3; i++) jobs.push(await enqueueJob(db, { kind: 'count', tenant: i === 1 ? 'globex_inc' : 'acme_corp', params: { items: 1 }, requestedBy: 'cli:alice' }, registry));
      jobs.push(await enqueueJob(db, { kind: 'boom-unknown', tenant: null, requestedBy: 'key:k1' }, registry));
      // One failed with an unexpected error: the owner's `jobs show` says what it was.
      await db.query(`UPDATE tenantgate.jobs SET state = 'failed', error_code = 'INTERNAL', error_message = 'internal error (see the runner log)', error_detail = 'disk full', finished_at = now() WHERE id = $1`, [jobs[3]!.id]);
    });
  });
  afterAll(async () => d?.cleanup());

  const run = (args: string[]) => runSeedCli(d, args);

  it('jobs list: newest first, filters, pages, --json', async () => {
    const all = await run(['--json', 'jobs', 'list']);
    expect(all.code, all.stdout + all.stderr).toBe(0);
    const doc = JSON.parse(all.stdout);
    expect(doc).toMatchObject({ truncated: false, next: null });
    expect(doc.jobs.map((j: { id: string }) => j.id)).toEqual(jobs.map((j) => j.id).reverse());
    expect(doc.jobs[0]).toMatchObject({ state: 'failed', tenant: null, error: { code: 'INTERNAL', detail: 'disk full' } });
    const acme = JSON.parse((await run(['--json', 'jobs', 'list', '--tenant', 'acme_corp', '--state', 'queued'])).stdout);
    expect(acme.jobs.map((j: { id: string }) => j.id)).toEqual([jobs[2]!.id, jobs[0]!.id]);
    const page = await run(['jobs', 'list', '--limit', '2']);
    expect(page.code).toBe(0);
    expect(page.stdout).toMatch(/^ID\s+KIND\s+TENANT\s+STATE\s+PROGRESS\s+REQUESTED BY\s+CREATED/);
    const next = /--before (\d+)/.exec(page.stdout)?.[1];
    expect(next).toBeDefined();
    const rest = JSON.parse((await run(['--json', 'jobs', 'list', '--limit', '2', '--before', next!])).stdout);
    expect(rest.jobs.map((j: { id: string }) => j.id)).toEqual([jobs[1]!.id, jobs[0]!.id]);
    for (const bad of [['--state', 'lost'], ['--limit', '0'], ['--limit', 'many'], ['--before', 'x']]) {
      const r = await run(['--json', 'jobs', 'list', ...bad]);
      expect([r.code, JSON.parse(r.stdout).error.code], bad.join(' ')).toEqual([2, 'USAGE']);
    }
  });

  it('jobs show and jobs cancel, with the error codes of the registry', async () => {
    const shown = await run(['jobs', 'show', jobs[3]!.id]);
    expect(shown.code).toBe(0);
    expect(shown.stdout).toMatch(/state\s+failed/);
    expect(shown.stdout).toContain('INTERNAL: internal error (see the runner log) (disk full)');
    expect(shown.stdout).toMatch(/requested by\s+key:k1/);
    const asJson = JSON.parse((await run(['--json', 'jobs', 'show', jobs[0]!.id])).stdout);
    expect(asJson.job).toMatchObject({ id: jobs[0]!.id, state: 'queued', tenant: 'acme_corp', requested_by: 'cli:alice' });
    const unknown = await run(['--json', 'jobs', 'show', '00000000-0000-4000-8000-000000000000']);
    expect([unknown.code, JSON.parse(unknown.stdout).error.code]).toEqual([2, 'JOB_UNKNOWN']);
    const cancelled = await run(['jobs', 'cancel', jobs[0]!.id]);
    expect([cancelled.code, cancelled.stdout]).toEqual([0, `Cancelled job ${jobs[0]!.id}.\n`]);
    const again = await run(['--json', 'jobs', 'cancel', jobs[0]!.id]);
    expect([again.code, JSON.parse(again.stdout).error.code]).toEqual([1, 'JOB_FINISHED']);
    const c2 = JSON.parse((await run(['--json', 'jobs', 'cancel', jobs[1]!.id])).stdout);
    expect(c2.job).toMatchObject({ id: jobs[1]!.id, state: 'cancelled', cancel_requested: true });
  });
});
