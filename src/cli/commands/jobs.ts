import type { Database } from '../../db/database.ts';
import { ERROR_CODES, TenantGateError, type ErrorCode } from '../../errors/index.ts';
import { jobKinds, type JobRegistry } from '../../lifecycle/jobs/registry.ts';
import { enqueueJob, JobRunner, type JobRequest, type RunnerOptions } from '../../lifecycle/jobs/runner.ts';
import { cancelJob, JOB_STATES, jobJson, listJobs, requireJob, type Job, type JobPage, type JobState } from '../../lifecycle/jobs/store.ts';
import { printJson, progress, table, type CliIO } from '../io.ts';

export interface JobListFlags {
  tenant?: string;
  state?: string;
  kind?: string;
  limit?: number;
  before?: string;
}

/** `tenantgate jobs list`: newest first, one page (the output says when more match). */
export async function listJobsCommand(db: Database, flags: JobListFlags): Promise<JobPage> {
  const limit = flags.limit ?? 100;
  if (!(Number.isInteger(limit) && limit >= 1 && limit <= 1000)) throw new TenantGateError('USAGE', '--limit takes a whole number from 1 to 1000');
  if (flags.state !== undefined && !(JOB_STATES as readonly string[]).includes(flags.state)) throw new TenantGateError('USAGE', `--state takes one of ${JOB_STATES.join(', ')}`);
  if (flags.before !== undefined && !/^[1-9][0-9]{0,17}$/.test(flags.before)) throw new TenantGateError('USAGE', '--before takes the cursor a cut page names');
  return listJobs(db, { tenant: flags.tenant, state: flags.state as JobState | undefined, kind: flags.kind, before: flags.before, limit });
}

export const cliRequester = (io: CliIO) => `cli:${io.env['USER'] ?? io.env['USERNAME'] ?? 'owner'}`;

const progressText = (j: Job) => {
  const p = j.progress;
  const count = p.total !== null ? `${p.done}/${p.total}` : p.done ? String(p.done) : '';
  return [count, p.phase ?? ''].filter(Boolean).join(' ');
};
const stateText = (j: Job) => (j.cancelRequested && j.state === 'running' ? 'running (cancel requested)' : j.state);
const at = (d: Date | null) => (d ? d.toISOString() : '');

export function formatJobs(page: JobPage): string {
  if (page.jobs.length === 0) return 'No jobs.\n';
  const rows = [['ID', 'KIND', 'TENANT', 'STATE', 'PROGRESS', 'REQUESTED BY', 'CREATED'], ...page.jobs.map((j) => [j.id, j.kind, j.tenant ?? '*', stateText(j), progressText(j), j.requestedBy, at(j.createdAt)])];
  return table(rows) + (page.truncated ? `More jobs match: add --before ${page.next} for the next page.\n` : '');
}

export function formatJob(j: Job): string {
  const rows: Array<[string, string]> = [
    ['id', j.id],
    ['kind', j.kind],
    ['tenant', j.tenant ?? '* (across tenants)'],
    ['state', stateText(j)],
    ['progress', progressText(j)],
    ['attempts', `${j.attempts} of ${j.maxAttempts}`],
    ['requested by', j.requestedBy],
    ['runner', j.runner ?? ''],
    ['created', at(j.createdAt)],
    ['started', at(j.startedAt)],
    ['heartbeat', at(j.heartbeatAt)],
    ['lease until', at(j.leaseUntil)],
    ['finished', at(j.finishedAt)],
    ['params', JSON.stringify(j.params)],
  ];
  if (j.result !== null) rows.push(['result', JSON.stringify(j.result)]);
  if (j.error) rows.push(['error', `${j.error.code}: ${j.error.message}${j.errorDetail ? ` (${j.errorDetail})` : ''}`]);
  return table(rows.filter(([, v]) => v !== ''));
}

/** `tenantgate jobs cancel`: what happened, in a line. */
export function formatCancel(j: Job): string {
  return j.state === 'cancelled' ? `Cancelled job ${j.id}.\n` : `Asked job ${j.id} to stop: it stops at its next checkpoint (\`tenantgate jobs show ${j.id}\`).\n`;
}

export async function showJobCommand(db: Database, id: string): Promise<Job> {
  return requireJob(db, id);
}

export async function cancelJobCommand(db: Database, id: string): Promise<Job> {
  return cancelJob(db, id);
}

export interface JobCommandOptions {
  /** Leave the job to `serve`'s runner: queue it and print its id. */
  detach?: boolean;
  json?: boolean;
  registry?: JobRegistry;
  /** Runner settings for the foreground run (lease, heartbeat: tests). */
  runner?: Partial<RunnerOptions>;
  /** Progress label (default the kind). */
  label?: string;
  /** An unfinished job of the same request to carry on (a rerun after a crash) instead of submitting a new one. */
  resume?: Job;
}

/**
 * For lifecycle commands (export, erase, backup, …): run their job here, in the foreground, with
 * progress on stderr (a bar on a terminal via `progress()`, plain lines otherwise), or with
 * `detach` queue it for `serve`'s runner and print its id (`{"job": …}` with --json). The job
 * is a row of tenantgate.jobs either way: if this process dies, a runner resumes it from its last
 * checkpoint. Resolves with the finished job (done); a failed job throws its error code, a
 * cancelled one JOB_CANCELLED.
 */
export async function runJobCommand(io: CliIO, db: Database, req: Omit<JobRequest, 'requestedBy'> & { requestedBy?: string }, options: JobCommandOptions = {}): Promise<Job> {
  const registry = options.registry ?? jobKinds;
  const request: JobRequest = { ...req, requestedBy: req.requestedBy ?? cliRequester(io) };
  const label = options.label ?? req.kind;
  if (options.detach) {
    const job = await enqueueJob(db, request, registry);
    if (options.json) printJson(io, { job: jobJson(job) });
    else io.stdout(`Queued job ${job.id} (${job.kind}${job.tenant ? ` of ${job.tenant}` : ''}): \`serve\` runs it; \`tenantgate jobs show ${job.id}\` follows it.\n`);
    return job;
  }
  let phase: string | null | undefined;
  let bar: ((done: number, total: number) => void) | undefined;
  const show = (p: Job['progress']) => {
    if (p.phase !== phase) {
      phase = p.phase;
      bar = undefined;
      if (p.total === null && p.phase) io.stderr(`${label}: ${p.phase}\n`);
    }
    if (p.total === null) return;
    bar ??= progress(io, p.phase ? `${label}: ${p.phase}` : label);
    bar(Math.min(p.done, p.total), p.total);
  };
  const runner = new JobRunner({ db, registry, ...options.runner, onProgress: (_job, p) => show(p) });
  const submitted = options.resume ?? (await runner.submit(request));
  if (options.resume) io.stderr(`resuming job ${submitted.id} from its last checkpoint (it runs here once its previous runner's lease has lapsed)\n`);
  io.stderr(`job ${submitted.id}: ${submitted.kind}${submitted.tenant ? ` of ${submitted.tenant}` : ''} ${submitted.state === 'running' ? 'running here' : 'queued behind another job of this tenant'} (if this stops, a runner resumes it; \`tenantgate jobs cancel ${submitted.id}\` stops it)\n`);
  let seen = -1;
  const job = await runner.follow(submitted.id, (j) => {
    // Another runner has it (it was queued, or this one lost its lease): its progress from the row.
    if (j.progress.done !== seen) {
      seen = j.progress.done;
      show(j.progress);
    }
  });
  if (job.state === 'done') return job;
  if (job.state === 'cancelled') throw new TenantGateError('JOB_CANCELLED', `job ${job.id} was cancelled`);
  const code = (job.error?.code && job.error.code in ERROR_CODES ? job.error.code : 'INTERNAL') as ErrorCode;
  throw new TenantGateError(code, `job ${job.id} failed: ${job.error?.message ?? 'unknown error'}${job.errorDetail ? ` (${job.errorDetail})` : ''}`);
}
