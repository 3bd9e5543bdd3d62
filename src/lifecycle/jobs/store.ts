import type pg from 'pg';
import { TenantGateError } from '../../errors/index.ts';

/**
 * tenantgate.jobs (made by apply: src/provision/catalog.ts): the table and every query on it.
 * Only the owner connection (database.url) reads or writes it; no tenantgate role has a grant.
 */

export const JOB_STATES = ['queued', 'running', 'done', 'failed', 'cancelled'] as const;
export type JobState = (typeof JOB_STATES)[number];
export const FINISHED_STATES: readonly JobState[] = ['done', 'failed', 'cancelled'];

/** Channel a new job (its kind) and a cancel (`cancel:<id>`) are announced on; runners on a server LISTEN to it. */
export const JOBS_CHANNEL = 'tenantgate_jobs';

export interface JobProgress {
  done: number;
  total: number | null;
  phase: string | null;
}

export interface Job {
  id: string;
  seq: number;
  kind: string;
  /** null: a job across tenants (e.g. a migration fan-out). */
  tenant: string | null;
  params: Record<string, unknown>;
  state: JobState;
  /** Set by a cancel while the job runs: its handler stops at its next checkpoint, then it is `cancelled`. */
  cancelRequested: boolean;
  exclusiveKey: string | null;
  progress: JobProgress;
  /** The handler's last checkpoint (JSON), handed back when the job resumes. */
  checkpoint: unknown;
  result: unknown;
  error: { code: string; message: string } | null;
  /** What an unexpected error said (never sent to API callers; `jobs show` prints it). */
  errorDetail: string | null;
  requestedBy: string;
  runner: string | null;
  leaseUntil: Date | null;
  attempts: number;
  maxAttempts: number;
  runAfter: Date;
  createdAt: Date;
  startedAt: Date | null;
  heartbeatAt: Date | null;
  finishedAt: Date | null;
  updatedAt: Date;
}

/** The owner database, or one of its clients inside a transaction. */
type Q = { query(text: string, params?: unknown[]): Promise<pg.QueryResult> };

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
export const isJobId = (id: unknown): id is string => typeof id === 'string' && UUID.test(id);

/** Every column but the checkpoint (lists need no checkpoint; it may be large). */
const COLUMNS = `seq, id, kind, tenant, params, state, cancel_requested, exclusive_key, progress_done, progress_total, phase, result, error_code, error_message, error_detail,
  requested_by, runner, lease_until, attempts, max_attempts, run_after, created_at, started_at, heartbeat_at, finished_at, updated_at`;
const ALL = `${COLUMNS}, checkpoint`;

const num = (v: unknown): number => (v === null || v === undefined ? 0 : Number(v));

export function jobFromRow(r: Record<string, unknown>): Job {
  return {
    id: String(r['id']),
    seq: num(r['seq']),
    kind: r['kind'] as string,
    tenant: (r['tenant'] as string | null) ?? null,
    params: (r['params'] as Record<string, unknown>) ?? {},
    state: r['state'] as JobState,
    cancelRequested: Boolean(r['cancel_requested']),
    exclusiveKey: (r['exclusive_key'] as string | null) ?? null,
    progress: { done: num(r['progress_done']), total: r['progress_total'] === null || r['progress_total'] === undefined ? null : Number(r['progress_total']), phase: (r['phase'] as string | null) ?? null },
    checkpoint: r['checkpoint'] ?? null,
    result: r['result'] ?? null,
    error: r['error_code'] ? { code: r['error_code'] as string, message: (r['error_message'] as string | null) ?? '' } : null,
    errorDetail: (r['error_detail'] as string | null) ?? null,
    requestedBy: r['requested_by'] as string,
    runner: (r['runner'] as string | null) ?? null,
    leaseUntil: (r['lease_until'] as Date | null) ?? null,
    attempts: num(r['attempts']),
    maxAttempts: num(r['max_attempts']),
    runAfter: r['run_after'] as Date,
    createdAt: r['created_at'] as Date,
    startedAt: (r['started_at'] as Date | null) ?? null,
    heartbeatAt: (r['heartbeat_at'] as Date | null) ?? null,
    finishedAt: (r['finished_at'] as Date | null) ?? null,
    updatedAt: r['updated_at'] as Date,
  };
}

const iso = (d: Date | null) => (d ? d.toISOString() : null);

/** The wire form (admin API, `jobs … --json`): snake_case, no checkpoint, `detail` only where asked (the CLI). */
export function jobJson(j: Job, options: { detail?: boolean } = {}) {
  return {
    id: j.id,
    kind: j.kind,
    tenant: j.tenant,
    state: j.state,
    cancel_requested: j.cancelRequested,
    progress: j.progress,
    params: j.params,
    result: j.result,
    error: j.error ? { ...j.error, ...(options.detail && j.errorDetail ? { detail: j.errorDetail } : {}) } : null,
    requested_by: j.requestedBy,
    attempts: j.attempts,
    max_attempts: j.maxAttempts,
    runner: j.runner,
    created_at: iso(j.createdAt),
    started_at: iso(j.startedAt),
    heartbeat_at: iso(j.heartbeatAt),
    lease_until: iso(j.leaseUntil),
    finished_at: iso(j.finishedAt),
  };
}
export type JobJson = ReturnType<typeof jobJson>;

export interface NewJob {
  kind: string;
  tenant?: string | null;
  params?: Record<string, unknown>;
  /** Who asked: `cli:<user>`, `key:<key id>`, `jwt:<subject>`. */
  requestedBy: string;
  /** At most one running job per key (a tenant id for kinds that must not overlap for one tenant). */
  exclusiveKey?: string | null;
  maxAttempts?: number;
}

const lease = (ms: number) => `clock_timestamp() + (${Math.max(1, Math.round(ms))} * interval '1 millisecond')`;

/**
 * Insert a job: queued (and announced to listening runners), or already running for `claimBy`
 * (the CLI running its own job in the foreground: nobody else may take it while its lease holds).
 */
export async function insertJob(db: Q, job: NewJob, id: string, claimBy?: { runner: string; leaseMs: number }): Promise<Job> {
  const values = [id, job.kind, job.tenant ?? null, JSON.stringify(job.params ?? {}), job.requestedBy, job.exclusiveKey ?? null, job.maxAttempts ?? 5];
  const r = claimBy
    ? await db.query(
        `INSERT INTO tenantgate.jobs (id, kind, tenant, params, requested_by, exclusive_key, max_attempts, state, runner, lease_until, attempts, started_at, heartbeat_at)
         VALUES ($1, $2, $3, $4::jsonb, $5, $6, $7, 'running', $8, ${lease(claimBy.leaseMs)}, 1, clock_timestamp(), clock_timestamp()) RETURNING ${ALL}`,
        [...values, claimBy.runner],
      )
    : await db.query(
        `WITH j AS (INSERT INTO tenantgate.jobs (id, kind, tenant, params, requested_by, exclusive_key, max_attempts) VALUES ($1, $2, $3, $4::jsonb, $5, $6, $7) RETURNING ${ALL})
         SELECT j.*, pg_notify('${JOBS_CHANNEL}', j.kind) FROM j`,
        values,
      );
  return jobFromRow(r.rows[0] as Record<string, unknown>);
}

export async function getJob(db: Q, id: string): Promise<Job | null> {
  if (!isJobId(id)) return null;
  const r = await db.query(`SELECT ${ALL} FROM tenantgate.jobs WHERE id = $1`, [id]);
  return r.rows[0] ? jobFromRow(r.rows[0]) : null;
}

const unknown = () => new TenantGateError('JOB_UNKNOWN', 'no such job');

/** A job by id, or JOB_UNKNOWN. */
export async function requireJob(db: Q, id: string): Promise<Job> {
  const j = await getJob(db, id);
  if (!j) throw unknown();
  return j;
}

/**
 * A job as a caller acting for one tenant may see it: another tenant's job (or one across
 * tenants) answers exactly like an id that does not exist (JOB_UNKNOWN, same message), so the
 * answer never says that it exists. Tenant-scoped endpoints (GET /v1/exports/{id}, …) build on this.
 */
export async function getJobForTenant(db: Q, id: string, tenant: string): Promise<Job> {
  if (!isJobId(id)) throw unknown();
  const r = await db.query(`SELECT ${ALL} FROM tenantgate.jobs WHERE id = $1 AND tenant = $2`, [id, tenant]);
  if (!r.rows[0]) throw unknown();
  return jobFromRow(r.rows[0]);
}

export interface JobFilter {
  tenant?: string | undefined;
  state?: JobState | undefined;
  kind?: string | undefined;
  /** The `next` cursor of the previous page. */
  before?: string | undefined;
  limit: number;
}

export interface JobPage {
  jobs: Job[];
  /** More jobs match than this page holds. */
  truncated: boolean;
  /** When truncated: pass as `before` for the next page. */
  next: string | null;
}

/** Newest first, one page; the cursor is the position in the queue, so a page stays stable while jobs are added. */
export async function listJobs(db: Q, f: JobFilter): Promise<JobPage> {
  if (f.before !== undefined && !/^[1-9][0-9]{0,17}$/.test(f.before)) throw new TenantGateError('QUERY_INVALID', 'before: not a cursor this API gave out');
  const r = await db.query(
    `SELECT ${COLUMNS} FROM tenantgate.jobs
      WHERE ($1::text IS NULL OR tenant = $1) AND ($2::text IS NULL OR state = $2) AND ($3::text IS NULL OR kind = $3) AND ($4::bigint IS NULL OR seq < $4)
      ORDER BY seq DESC LIMIT $5`,
    [f.tenant ?? null, f.state ?? null, f.kind ?? null, f.before ?? null, f.limit + 1],
  );
  const jobs = r.rows.slice(0, f.limit).map(jobFromRow);
  const truncated = r.rows.length > f.limit;
  return { jobs, truncated, next: truncated ? String(jobs[jobs.length - 1]!.seq) : null };
}

/**
 * Cancel: a queued job is cancelled at once; a running one is asked to stop (its handler sees the
 * signal at its next checkpoint or heartbeat, then the job is `cancelled`). A finished job: JOB_FINISHED.
 * With `tenant`, another tenant's job answers JOB_UNKNOWN like a missing one.
 */
export async function cancelJob(db: Q, id: string, tenant?: string): Promise<Job> {
  if (!isJobId(id)) throw unknown();
  const r = await db.query(
    `WITH c AS (
       UPDATE tenantgate.jobs SET cancel_requested = true,
              state = CASE WHEN state = 'queued' THEN 'cancelled' ELSE state END,
              finished_at = CASE WHEN state = 'queued' THEN clock_timestamp() ELSE finished_at END,
              updated_at = clock_timestamp()
        WHERE id = $1 AND ($2::text IS NULL OR tenant = $2) AND state IN ('queued', 'running')
        RETURNING ${ALL})
     SELECT c.*, CASE WHEN c.state = 'running' THEN pg_notify('${JOBS_CHANNEL}', 'cancel:' || c.id::text) END AS notified FROM c`,
    [id, tenant ?? null],
  );
  if (r.rows[0]) return jobFromRow(r.rows[0]);
  const j = tenant === undefined ? await getJob(db, id) : await getJobForTenant(db, id, tenant).catch(() => null);
  if (!j) throw unknown();
  throw new TenantGateError('JOB_FINISHED', `job ${j.id} is already ${j.state}`);
}

/* ------------------------------------------------------------------------------------------
 * The runner's side: claim, heartbeat, checkpoint, finish. Every write after the claim is
 * conditional on `runner = <its id> AND state = 'running'`: a runner whose lease lapsed and was
 * taken over writes nothing (and learns it lost the job from the empty answer).
 * ---------------------------------------------------------------------------------------- */

/**
 * Claim the oldest job of these kinds that is queued (and due), or running with a lapsed lease
 * (its runner died), skipping rows other runners hold locked. A job with an exclusive key is
 * skipped while another job with that key runs; two runners racing for two such jobs meet the
 * unique index `jobs_exclusive`, and the loser claims nothing this round.
 */
export async function claimJob(db: Q, runner: string, kinds: string[], leaseMs: number, onlyId?: string): Promise<Job | null> {
  if (kinds.length === 0) return null;
  try {
    const r = await db.query(
      `UPDATE tenantgate.jobs j
          SET state = 'running', runner = $1, lease_until = ${lease(leaseMs)}, attempts = j.attempts + 1,
              started_at = coalesce(j.started_at, clock_timestamp()), heartbeat_at = clock_timestamp(), updated_at = clock_timestamp()
        WHERE j.seq = (
          SELECT c.seq FROM tenantgate.jobs c
           WHERE c.state IN ('queued', 'running') AND c.kind = ANY ($2::text[]) AND ($3::uuid IS NULL OR c.id = $3::uuid)
             AND ((c.state = 'queued' AND c.run_after <= clock_timestamp()) OR (c.state = 'running' AND c.lease_until < clock_timestamp()))
             AND NOT c.cancel_requested AND c.attempts < c.max_attempts
             AND (c.exclusive_key IS NULL OR NOT EXISTS (
                   SELECT 1 FROM tenantgate.jobs o WHERE o.exclusive_key = c.exclusive_key AND o.state = 'running' AND o.seq <> c.seq))
           ORDER BY c.seq
           LIMIT 1
           FOR UPDATE SKIP LOCKED)
        RETURNING ${ALL}`,
      [runner, kinds, onlyId ?? null],
    );
    return r.rows[0] ? jobFromRow(r.rows[0]) : null;
  } catch (err) {
    if ((err as { code?: string }).code === '23505') return null; // another runner took a job with the same exclusive key first
    throw err;
  }
}

/** One claim of a job: the runner and the attempt it claimed (a runner that claims its own lapsed job again is another claim). */
export interface Claim {
  id: string;
  runner: string;
  attempt: number;
}
const OWNED = `id = $1 AND runner = $2 AND attempts = $3 AND state = 'running'`;
const claimValues = (c: Claim) => [c.id, c.runner, c.attempt];

const progressSet = (first: number) => `progress_done = $${first}, progress_total = $${first + 1}, phase = $${first + 2}`;
const progressValues = (p: JobProgress) => [Math.round(p.done), p.total === null ? null : Math.round(p.total), p.phase];

/** Extend the lease (and record progress). `owned: false`: another runner took the job, or it ended. */
export async function heartbeat(db: Q, claim: Claim, leaseMs: number, progress: JobProgress): Promise<{ owned: boolean; cancelRequested: boolean }> {
  const r = await db.query(
    `UPDATE tenantgate.jobs SET lease_until = ${lease(leaseMs)}, heartbeat_at = clock_timestamp(), updated_at = clock_timestamp(), ${progressSet(4)}
      WHERE ${OWNED} RETURNING cancel_requested`,
    [...claimValues(claim), ...progressValues(progress)],
  );
  const row = r.rows[0] as { cancel_requested: boolean } | undefined;
  return { owned: Boolean(row), cancelRequested: Boolean(row?.cancel_requested) };
}

/** Save a checkpoint (extends the lease too). Same answer as heartbeat. */
export async function saveCheckpoint(db: Q, claim: Claim, leaseMs: number, checkpoint: unknown, progress: JobProgress): Promise<{ owned: boolean; cancelRequested: boolean }> {
  const r = await db.query(
    `UPDATE tenantgate.jobs SET checkpoint = $4::jsonb, lease_until = ${lease(leaseMs)}, heartbeat_at = clock_timestamp(), updated_at = clock_timestamp(), ${progressSet(5)}
      WHERE ${OWNED} RETURNING cancel_requested`,
    [...claimValues(claim), JSON.stringify(checkpoint ?? null), ...progressValues(progress)],
  );
  const row = r.rows[0] as { cancel_requested: boolean } | undefined;
  return { owned: Boolean(row), cancelRequested: Boolean(row?.cancel_requested) };
}

/** Inside a transaction: lock the job row if this runner still owns it (a claim by another runner waits, then finds it not lapsed). */
export async function lockOwned(tx: Pick<pg.PoolClient, 'query'>, claim: Claim): Promise<boolean> {
  const r = await tx.query(`SELECT 1 FROM tenantgate.jobs WHERE ${OWNED} FOR UPDATE`, claimValues(claim));
  return r.rows.length > 0;
}

export type Outcome =
  | { state: 'done'; result: unknown }
  | { state: 'failed'; code: string; message: string; detail?: string | null }
  | { state: 'cancelled' }
  /** Back to the queue: a transient error (run again after delayMs), or a runner shutting down (the attempt does not count). */
  | { state: 'queued'; delayMs: number; uncount?: boolean; code?: string; message?: string };

/** Record how the run ended, if this runner still owns the job; the row as it is now, or null when it does not. */
export async function finishJob(db: Q, claim: Claim, outcome: Outcome, progress: JobProgress): Promise<Job | null> {
  const p = progressValues(progress);
  const c = claimValues(claim);
  let r: pg.QueryResult;
  switch (outcome.state) {
    case 'done':
      r = await db.query(
        `UPDATE tenantgate.jobs SET state = 'done', result = $4::jsonb, error_code = NULL, error_message = NULL, error_detail = NULL, lease_until = NULL,
                finished_at = clock_timestamp(), updated_at = clock_timestamp(), ${progressSet(5)}
          WHERE ${OWNED} RETURNING ${ALL}`,
        [...c, JSON.stringify(outcome.result ?? null), ...p],
      );
      break;
    case 'failed':
      r = await db.query(
        `UPDATE tenantgate.jobs SET state = 'failed', error_code = $4, error_message = $5, error_detail = $6, lease_until = NULL,
                finished_at = clock_timestamp(), updated_at = clock_timestamp(), ${progressSet(7)}
          WHERE ${OWNED} RETURNING ${ALL}`,
        [...c, outcome.code, outcome.message, outcome.detail ?? null, ...p],
      );
      break;
    case 'cancelled':
      r = await db.query(
        `UPDATE tenantgate.jobs SET state = 'cancelled', lease_until = NULL, finished_at = clock_timestamp(), updated_at = clock_timestamp(), ${progressSet(4)}
          WHERE ${OWNED} RETURNING ${ALL}`,
        [...c, ...p],
      );
      break;
    case 'queued':
      // A cancel asked for meanwhile wins: the job ends cancelled rather than waiting in the queue.
      r = await db.query(
        `UPDATE tenantgate.jobs SET state = CASE WHEN cancel_requested THEN 'cancelled' ELSE 'queued' END,
                finished_at = CASE WHEN cancel_requested THEN clock_timestamp() END,
                attempts = CASE WHEN $4 AND NOT cancel_requested THEN greatest(attempts - 1, 0) ELSE attempts END,
                run_after = clock_timestamp() + ($5 * interval '1 millisecond'), lease_until = NULL, runner = NULL,
                error_code = coalesce($6, error_code), error_message = coalesce($7, error_message), updated_at = clock_timestamp(), ${progressSet(8)}
          WHERE ${OWNED} RETURNING ${ALL}`,
        [...c, Boolean(outcome.uncount), Math.max(0, Math.round(outcome.delayMs)), outcome.code ?? null, outcome.message ?? null, ...p],
      );
      break;
  }
  return r.rows[0] ? jobFromRow(r.rows[0]) : null;
}

/**
 * Jobs whose runner died and that will not run again: cancelled if a cancel was asked for, failed
 * (JOB_ABANDONED) once they have used their attempts. Returns how many it ended.
 */
export async function sweepJobs(db: Q): Promise<number> {
  const r = await db.query(
    `UPDATE tenantgate.jobs SET state = CASE WHEN cancel_requested THEN 'cancelled' ELSE 'failed' END,
            error_code = CASE WHEN cancel_requested THEN error_code ELSE 'JOB_ABANDONED' END,
            error_message = CASE WHEN cancel_requested THEN error_message ELSE 'its runner stopped without finishing it ' || attempts || ' time(s); no attempts left' END,
            lease_until = NULL, finished_at = clock_timestamp(), updated_at = clock_timestamp()
      WHERE seq IN (SELECT seq FROM tenantgate.jobs WHERE state = 'running' AND lease_until < clock_timestamp() AND (cancel_requested OR attempts >= max_attempts) FOR UPDATE SKIP LOCKED)
      RETURNING id`,
  );
  return r.rows.length;
}
