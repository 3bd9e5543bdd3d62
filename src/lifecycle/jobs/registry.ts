import type pg from 'pg';
import type { Logger } from 'pino';
import type { Database } from '../../db/database.ts';
import type { Job, JobProgress } from './store.ts';

/** Why a handler's signal fired: `signal.reason` is a JobAbort with one of these. */
export type AbortWhy = 'cancelled' | 'lease-lost' | 'shutdown';

/** The reason a job's signal carries; thrown by `throwIfAborted`, `checkpoint` and `step` once it fired. */
export class JobAbort extends Error {
  constructor(readonly why: AbortWhy) {
    super(why === 'cancelled' ? 'the job was cancelled' : why === 'lease-lost' ? 'another runner owns the job now (this runner lost its lease)' : 'the runner is stopping');
    this.name = 'JobAbort';
  }
}

/**
 * What a handler gets. Progress is kept in memory and written with the next heartbeat or
 * checkpoint (never a statement per call). Work is resumable through checkpoints: `saved` is the
 * last one, handed back when a job resumes after its runner died.
 */
export interface JobContext<P = Record<string, unknown>, C = unknown> {
  /** The job as claimed (id, tenant, attempts, requested_by, …). */
  readonly job: Job;
  readonly params: P;
  /** The last checkpoint saved (null on a first run): continue from here. */
  readonly saved: C | null;
  /** Fires when the job is cancelled, when this runner lost it (lease lapsed, another runner took it) or at shutdown; `reason` is a JobAbort. */
  readonly signal: AbortSignal;
  /** The owner database (database.url). On the embedded database this is the one session: inside `step`, use its transaction only. */
  readonly db: Database;
  readonly log: Logger;
  /** Report progress: done of total (null: unknown) in a phase. */
  progress(done: number, total?: number | null, phase?: string | null): void;
  /** Persist a checkpoint (JSON) while still owning the job; throws JobAbort if the signal fired or the job is no longer this runner's. */
  checkpoint(state: C): Promise<void>;
  /**
   * One unit of work and its checkpoint in one transaction on the owner database: `fn` makes the
   * effect on `tx` and returns the new checkpoint; both commit together, and only while this
   * runner owns the job (the job row is locked for the transaction, so no other runner can take
   * it meanwhile). Effects in the same database therefore happen exactly once across crashes.
   */
  step(fn: (tx: pg.PoolClient) => Promise<C>): Promise<C>;
  /** Throw the signal's JobAbort if it fired. */
  throwIfAborted(): void;
}

/** A job kind: registered once (at import of its module), run by every runner that knows it. */
export interface JobKind<P = Record<string, unknown>, C = unknown, R = unknown> {
  kind: string;
  run(ctx: JobContext<P, C>): Promise<R>;
  /**
   * `tenant`: one job of any exclusive kind per tenant runs at a time (an erase never overlaps an
   * export of the same tenant); others of that tenant wait in the queue.
   */
  exclusive?: 'tenant';
  /** How many times it may be claimed (runner deaths and transient errors count); default 5. */
  maxAttempts?: number;
  /** Whether an error is worth another attempt (default: lost connections, DB_UNAVAILABLE, TENANT_MOVING, serialization failures, deadlocks). */
  retryable?(err: unknown): boolean;
}

// Handlers are typed loosely here: a kind's own P, C and R meet the runner only through JSON.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type AnyJobKind = JobKind<any, any, any>;

export class JobRegistry {
  private readonly kinds = new Map<string, AnyJobKind>();

  register(kind: AnyJobKind): void {
    if (!/^[a-z][a-z0-9_.-]{0,63}$/.test(kind.kind)) throw new Error(`job kind "${kind.kind}": use lower-case letters, digits, _ . -`);
    const had = this.kinds.get(kind.kind);
    if (had && had !== kind) throw new Error(`job kind "${kind.kind}" is registered twice`);
    this.kinds.set(kind.kind, kind);
  }

  get(kind: string): AnyJobKind | undefined {
    return this.kinds.get(kind);
  }

  names(): string[] {
    return [...this.kinds.keys()];
  }
}

/** The process's job kinds: export, erase, backup, … register themselves here when their module loads. */
export const jobKinds = new JobRegistry();

export function registerJobKind(kind: AnyJobKind, registry: JobRegistry = jobKinds): void {
  registry.register(kind);
}

/**
 * The modules that register the built-in kinds, loaded by `serve` before its runner starts (the CLI
 * loads only the one its command needs). Each later kind adds its module here.
 */
const BUILT_IN_KINDS: Array<() => Promise<unknown>> = [() => import('../export/job.ts'), () => import('../erase/job.ts')];

export async function loadJobKinds(): Promise<JobRegistry> {
  await Promise.all(BUILT_IN_KINDS.map((load) => load()));
  return jobKinds;
}

export type { JobProgress };
