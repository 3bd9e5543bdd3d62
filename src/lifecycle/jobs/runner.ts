import { randomBytes, randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import type pg from 'pg';
import pino, { type Logger } from 'pino';
import type { Database } from '../../db/database.ts';
import { isTenantGateError } from '../../errors/index.ts';
import { mapDatabaseError } from '../../execute/tenant-transaction.ts';
import { JobAbort, jobKinds, type AbortWhy, type AnyJobKind, type JobContext, type JobRegistry } from './registry.ts';
import {
  claimJob,
  FINISHED_STATES,
  finishJob,
  getJob,
  heartbeat,
  insertJob,
  JOBS_CHANNEL,
  lockOwned,
  requireJob,
  saveCheckpoint,
  sweepJobs,
  type Claim,
  type Job,
  type JobProgress,
  type NewJob,
  type Outcome,
} from './store.ts';

export interface RunnerOptions {
  /** The owner database (database.url). */
  db: Database;
  registry?: JobRegistry;
  /** How this runner is named in `runner` (default host:pid:random). */
  id?: string;
  /** How long a claim holds without a heartbeat (default 15 s). */
  leaseMs?: number;
  /** How often a running job's lease is extended and its progress written (default 5 s). */
  heartbeatMs?: number;
  /** How often the queue is polled (default 1 s); on a server a NOTIFY wakes the runner at once too. */
  pollMs?: number;
  /** Jobs run at once by this runner (default 1). */
  concurrency?: number;
  /** LISTEN for new jobs and cancels (default: on a server; PGlite is in-process and polls). */
  listen?: boolean;
  /** How often jobs abandoned by dead runners are ended (default 5 s). */
  sweepMs?: number;
  /** Wait before attempt n+1 after a transient error (default 1 s, doubling, at most 60 s). */
  retryDelayMs?: (attempt: number) => number;
  log?: Logger;
  /** Each progress report of a job this runner runs (the CLI's progress bar). */
  onProgress?: (job: Job, progress: JobProgress) => void;
}

export interface JobRequest {
  kind: string;
  tenant?: string | null;
  params?: Record<string, unknown>;
  /** `cli:<user>`, `key:<key id>`, `jwt:<subject>`. */
  requestedBy: string;
}

/** The table row for a request: the kind decides exclusivity and attempts. */
export function newJob(req: JobRequest, registry: JobRegistry = jobKinds): NewJob {
  const k = registry.get(req.kind);
  return { ...req, exclusiveKey: k?.exclusive === 'tenant' && req.tenant ? req.tenant : null, maxAttempts: k?.maxAttempts ?? 5 };
}

/** Queue a job for any runner (`serve`'s, or another CLI's); listening runners are woken at once. */
export async function enqueueJob(db: Database, req: JobRequest, registry: JobRegistry = jobKinds): Promise<Job> {
  return insertJob(db, newJob(req, registry), randomUUID());
}

/** Errors worth another attempt: the database went away or is busy, or the tenant is mid-move. */
export function defaultRetryable(err: unknown): boolean {
  const mapped = mapDatabaseError(err);
  if (isTenantGateError(mapped)) return mapped.code === 'DB_UNAVAILABLE' || mapped.code === 'TENANT_MOVING' || mapped.code === 'QUOTA_UNAVAILABLE';
  const code = (err as { code?: string })?.code;
  return code === '40001' || code === '40P01' || code === 'ECONNRESET' || code === 'ECONNREFUSED' || code === 'EPIPE' || code === 'ETIMEDOUT';
}

interface Active {
  job: Job;
  ac: AbortController;
  progress: JobProgress;
  /** When the last successful lease extension was sent (local clock). */
  renewedAt: number;
  beating: boolean;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/**
 * Claims jobs from tenantgate.jobs and runs their handlers: heartbeats extend the lease while a
 * handler runs; a heartbeat or checkpoint that finds the job no longer its own (taken over after
 * a lapse, or cancelled) fires the handler's signal, and nothing it writes afterwards counts.
 */
export class JobRunner {
  readonly id: string;
  readonly db: Database;
  readonly registry: JobRegistry;
  readonly leaseMs: number;
  private readonly heartbeatMs: number;
  private readonly pollMs: number;
  private readonly concurrency: number;
  private readonly sweepMs: number;
  private readonly listenFor: boolean;
  private readonly retryDelay: (attempt: number) => number;
  private readonly log: Logger;
  private readonly onProgress: RunnerOptions['onProgress'];
  /** The runs in progress here (one job may appear twice: a stalled run and this runner's new claim of it). */
  private readonly active = new Set<Active>();
  private readonly running = new Set<Promise<unknown>>();
  private timer: NodeJS.Timeout | undefined;
  private listener: pg.PoolClient | undefined;
  private listening: Promise<void> | undefined;
  private started = false;
  private stopping = false;
  private ticking = false;
  private again = false;
  private lastSweep = 0;
  private warnedAt = 0;

  constructor(options: RunnerOptions) {
    this.db = options.db;
    this.registry = options.registry ?? jobKinds;
    this.id = options.id ?? `${hostname()}:${process.pid}:${randomBytes(3).toString('hex')}`;
    this.leaseMs = options.leaseMs ?? 15_000;
    this.heartbeatMs = options.heartbeatMs ?? Math.max(50, Math.floor(this.leaseMs / 3));
    this.pollMs = options.pollMs ?? 1_000;
    this.concurrency = Math.max(1, options.concurrency ?? 1);
    this.sweepMs = options.sweepMs ?? 5_000;
    this.listenFor = options.listen ?? this.db.kind === 'postgres';
    this.retryDelay = options.retryDelayMs ?? ((n) => Math.min(60_000, 1_000 * 2 ** Math.max(0, n - 1)));
    this.log = options.log ?? pino({ level: 'silent' });
    this.onProgress = options.onProgress;
  }

  /** Jobs running here now. */
  get busy(): number {
    return this.active.size;
  }

  /** Poll the queue (and listen, on a server) until stop(). */
  start(): this {
    if (this.started) return this;
    this.started = true;
    this.timer = setInterval(() => void this.tick(), this.pollMs);
    this.timer.unref();
    if (this.listenFor) void this.listen();
    void this.tick();
    return this;
  }

  /**
   * Stop claiming; ask running handlers to stop (signal reason `shutdown`) and wait up to graceMs
   * for them: a job stopped that way goes back to the queue without using an attempt. A handler
   * still running after that is left to its lease (another runner resumes it from its checkpoint).
   */
  async stop(graceMs = 10_000): Promise<void> {
    this.stopping = true;
    if (this.timer) clearInterval(this.timer);
    for (const a of this.active) abort(a, 'shutdown');
    if (this.running.size) await Promise.race([Promise.allSettled([...this.running]), sleep(graceMs)]);
    await this.listening;
    const l = this.listener;
    this.listener = undefined;
    if (l) {
      await l.query('UNLISTEN *').catch(() => {});
      l.release(true);
    }
  }

  /** Check a running job's state now (a cancel made in this process), or look at the queue. */
  nudge(id?: string): void {
    const runs = id === undefined ? [] : [...this.active].filter((a) => a.job.id === id);
    for (const a of runs) void this.beat(a);
    if (!runs.length && this.started) void this.tick();
  }

  /** Claim one job (of a kind this runner knows) and run it to its end; the row as it ended, or null when none was due. */
  async runNext(): Promise<Job | null> {
    const job = await claimJob(this.db, this.id, this.registry.names(), this.leaseMs);
    return job ? this.execute(job) : null;
  }

  /** Insert a job already claimed by this runner (nobody else may take it while the lease holds); run it with `run`. */
  async submit(req: JobRequest): Promise<Job> {
    const row = newJob(req, this.registry);
    try {
      return await insertJob(this.db, row, randomUUID(), { runner: this.id, leaseMs: this.leaseMs });
    } catch (err) {
      // Another job with its exclusive key runs now: queue it; `follow` claims it when its turn comes.
      if ((err as { code?: string }).code === '23505') return insertJob(this.db, row, randomUUID());
      throw err;
    }
  }

  /**
   * Run this job here until it ends, whoever has it: run it when this runner holds or can claim it
   * (queued and due, or its runner's lease lapsed), otherwise wait for its runner, reporting its
   * progress from the row. Resolves with the finished row.
   */
  async follow(id: string, onUpdate?: (job: Job) => void): Promise<Job> {
    let job = await requireJob(this.db, id);
    for (;;) {
      if (job.state === 'running' && job.runner === this.id && ![...this.active].some((a) => a.job.id === job.id && a.job.attempts === job.attempts)) job = await this.execute(job);
      else if (job.state === 'queued' || job.state === 'running') {
        const claimed = await claimJob(this.db, this.id, this.registry.names(), this.leaseMs, id);
        if (claimed) job = await this.execute(claimed);
      }
      if ((FINISHED_STATES as string[]).includes(job.state)) return job;
      onUpdate?.(job);
      await sleep(this.pollMs);
      job = await requireJob(this.db, id);
    }
  }

  private listen(): Promise<void> {
    this.listening ??= (async () => {
      let client: pg.PoolClient | undefined;
      try {
        client = await this.db.pool.connect();
        const c = client;
        c.on('notification', (m) => {
          const payload = m.payload ?? '';
          if (payload.startsWith('cancel:')) this.nudge(payload.slice(7));
          else void this.tick();
        });
        c.on('error', () => {
          if (this.listener === c) this.listener = undefined;
        });
        if (!this.stopping) await c.query(`LISTEN ${JOBS_CHANNEL}`);
        if (this.stopping) {
          c.release(true);
          return;
        }
        this.listener = c;
      } catch (err) {
        client?.release(true);
        this.log.warn({ err: (err as Error).message }, 'jobs: LISTEN failed; polling only');
      } finally {
        this.listening = undefined;
      }
    })();
    return this.listening;
  }

  private async tick(): Promise<void> {
    if (this.stopping) return;
    if (this.ticking) {
      this.again = true;
      return;
    }
    this.ticking = true;
    try {
      if (Date.now() - this.lastSweep >= this.sweepMs) {
        this.lastSweep = Date.now();
        const ended = await sweepJobs(this.db);
        if (ended) this.log.warn({ jobs: ended }, 'jobs: ended jobs whose runners died with no attempts left (or a cancel pending)');
      }
      if (this.listenFor && !this.listener && this.started) void this.listen();
      const kinds = this.registry.names();
      while (!this.stopping && this.active.size < this.concurrency && kinds.length) {
        const job = await claimJob(this.db, this.id, kinds, this.leaseMs);
        if (!job) break;
        const run = this.execute(job).then(
          () => {},
          (err: unknown) => this.log.error({ err, job: job.id }, 'jobs: runner error'),
        );
        this.running.add(run);
        void run.finally(() => {
          this.running.delete(run);
          if (!this.stopping) void this.tick();
        });
      }
    } catch (err) {
      // Once a minute at most: a database that is down (or a catalog apply has not upgraded yet) is polled every second.
      if (Date.now() - this.warnedAt >= 60_000) {
        this.warnedAt = Date.now();
        this.log.warn({ err: (err as Error).message }, 'jobs: polling the queue failed; will retry (is tenantgate.jobs there? run tenantgate apply)');
      }
    } finally {
      this.ticking = false;
      if (this.again) {
        this.again = false;
        void this.tick();
      }
    }
  }

  /** Extend the lease; abort the handler if the job is no longer ours or a cancel was asked for. */
  private async beat(a: Active): Promise<void> {
    if (a.beating) return;
    a.beating = true;
    const sent = Date.now();
    try {
      settle(a, await heartbeat(this.db, claimOf(a.job), this.leaseMs, a.progress), sent);
    } catch (err) {
      this.log.warn({ err: (err as Error).message, job: a.job.id }, 'jobs: heartbeat failed');
      // Past its lease another runner may have the job: stop before it could run twice.
      if (Date.now() - a.renewedAt >= this.leaseMs) abort(a, 'lease-lost');
    } finally {
      a.beating = false;
    }
  }

  /** Run a job this runner has claimed; resolves with its row as the run left it. */
  async execute(job: Job): Promise<Job> {
    const ac = new AbortController();
    const a: Active = { job, ac, progress: { ...job.progress }, renewedAt: Date.now(), beating: false };
    this.active.add(a);
    const beat = setInterval(() => void this.beat(a), this.heartbeatMs);
    beat.unref();
    const kind = this.registry.get(job.kind);
    let outcome: Outcome | undefined;
    try {
      if (!kind) throw new Error(`no handler for job kind "${job.kind}" in this runner`);
      const result = await kind.run(this.context(a));
      // The handler returned: done, unless another runner owns the job now (then finishJob writes nothing).
      outcome = { state: 'done', result: result ?? null };
    } catch (err) {
      const why = ac.signal.aborted ? (ac.signal.reason as JobAbort).why : err instanceof JobAbort ? err.why : undefined;
      if (why === 'lease-lost') {
        this.log.warn({ job: job.id }, 'jobs: lost the lease (another runner took the job, or it ended); stopped here');
      } else if (why === 'cancelled') outcome = { state: 'cancelled' };
      else if (why === 'shutdown') outcome = { state: 'queued', delayMs: 0, uncount: true };
      else outcome = this.failure(job, kind, err);
    } finally {
      clearInterval(beat);
    }
    try {
      const ended = outcome ? await finishJob(this.db, claimOf(job), outcome, a.progress) : null;
      if (outcome && !ended) this.log.warn({ job: job.id, outcome: outcome.state }, 'jobs: the job is no longer this runner\'s; its outcome here was not recorded');
      return ended ?? (await getJob(this.db, job.id)) ?? job;
    } finally {
      this.active.delete(a);
    }
  }

  private failure(job: Job, kind: AnyJobKind | undefined, err: unknown): Outcome {
    const mapped = mapDatabaseError(err);
    const known = isTenantGateError(mapped) ? mapped : undefined;
    const retry = kind ? (kind.retryable ? kind.retryable(err) : defaultRetryable(err)) : false;
    if (retry && job.attempts < job.maxAttempts) {
      this.log.warn({ job: job.id, kind: job.kind, attempt: job.attempts, err: (err as Error)?.message }, 'jobs: transient failure; queued again');
      return { state: 'queued', delayMs: this.retryDelay(job.attempts), code: known?.code ?? 'DB_UNAVAILABLE', message: known?.message ?? 'a transient failure; retrying' };
    }
    if (known) return { state: 'failed', code: known.code, message: known.message };
    // Never a stack or an internal message to API callers: the log has it, `jobs show` prints the message.
    this.log.error({ err, job: job.id, kind: job.kind }, 'jobs: handler failed with an unexpected error');
    return { state: 'failed', code: 'INTERNAL', message: 'internal error (see the runner log)', detail: String((err as Error)?.message ?? err).slice(0, 2000) };
  }

  private context(a: Active): JobContext {
    const { job, ac } = a;
    const throwIfAborted = () => {
      if (ac.signal.aborted) throw ac.signal.reason as JobAbort;
    };
    return {
      job,
      params: job.params,
      saved: job.checkpoint ?? null,
      signal: ac.signal,
      db: this.db,
      log: this.log,
      throwIfAborted,
      progress: (done, total, phase) => {
        a.progress = { done, total: total === undefined ? a.progress.total : total, phase: phase === undefined ? a.progress.phase : phase };
        this.onProgress?.(job, a.progress);
      },
      checkpoint: async (state) => {
        throwIfAborted();
        const sent = Date.now();
        settle(a, await saveCheckpoint(this.db, claimOf(job), this.leaseMs, state, a.progress), sent);
        throwIfAborted();
      },
      step: async (fn) => {
        throwIfAborted();
        const client = await this.db.pool.connect();
        let broken = false;
        let saved: unknown;
        try {
          await client.query('BEGIN');
          const sent = Date.now();
          if (!(await lockOwned(client, claimOf(job)))) {
            await client.query('ROLLBACK');
            abort(a, 'lease-lost');
          } else {
            saved = await fn(client);
            const r = await saveCheckpoint(client, claimOf(job), this.leaseMs, saved, a.progress);
            await client.query('COMMIT');
            settle(a, r, sent);
          }
        } catch (err) {
          // A connection that cannot even roll back is dropped from the pool (a server's; PGlite's one session stays).
          await client.query('ROLLBACK').catch(() => (broken = this.db.kind === 'postgres'));
          throw err;
        } finally {
          client.release(broken);
        }
        throwIfAborted();
        return saved;
      },
    };
  }
}

/** This run's claim: the runner and the attempt (a runner that claims its own lapsed job again holds a new claim, and the old run's writes fail). */
function claimOf(job: Job): Claim {
  return { id: job.id, runner: job.runner ?? '', attempt: job.attempts };
}

function abort(a: Active, why: AbortWhy): void {
  if (!a.ac.signal.aborted) a.ac.abort(new JobAbort(why));
}

function settle(a: Active, r: { owned: boolean; cancelRequested: boolean }, sent: number): void {
  if (!r.owned) abort(a, 'lease-lost');
  else {
    a.renewedAt = sent;
    if (r.cancelRequested) abort(a, 'cancelled');
  }
}
