/**
 * Job kinds for the runner's tests. `count` processes N items; each item's effect (a row in
 * public.job_items) and the checkpoint after it commit in one transaction (`ctx.step`), so every
 * item is processed exactly once overall however often its runner dies; every start records where
 * it resumed from (public.job_starts), so a resume that redid earlier items would show.
 */
import type pg from 'pg';
import { TenantGateError } from '../../../src/errors/index.ts';
import { JobRegistry, type AnyJobKind, type JobContext, type JobKind } from '../../../src/lifecycle/jobs/registry.ts';
import { createFixture, fixture, type BackendKind, type Fixture } from '../../support/backends.ts';

export const JOB_TEST_SQL = `${fixture('seed003.sql')}
CREATE TABLE public.job_items (job uuid NOT NULL, item int NOT NULL, runner text NOT NULL, at timestamptz NOT NULL DEFAULT clock_timestamp());
CREATE TABLE public.job_starts (job uuid NOT NULL, attempt int NOT NULL, from_item int NOT NULL, runner text NOT NULL, at timestamptz NOT NULL DEFAULT clock_timestamp());`;

export function jobFixture(kind: BackendKind): Promise<Fixture> {
  return createFixture(kind, { sql: JOB_TEST_SQL });
}

export interface CountParams {
  items: number;
  sleepMs?: number;
}
export interface CountCheckpoint {
  next: number;
}

export interface CountHooks {
  /** Called at each point of a run: `claimed` (before anything), `effect` (inside an item's transaction, before it commits), `committed`, `before-finish`. */
  point?: (name: 'claimed' | 'effect' | 'committed' | 'before-finish', item: number, ctx: JobContext<CountParams, CountCheckpoint>) => unknown;
  enter?: (ctx: JobContext<CountParams, CountCheckpoint>) => void;
  exit?: (ctx: JobContext<CountParams, CountCheckpoint>) => void;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export function countKind(hooks: CountHooks = {}, options: { kind?: string; exclusive?: 'tenant'; maxAttempts?: number } = {}): JobKind<CountParams, CountCheckpoint, { items: number }> {
  return {
    kind: options.kind ?? 'count',
    ...(options.exclusive ? { exclusive: options.exclusive } : {}),
    ...(options.maxAttempts ? { maxAttempts: options.maxAttempts } : {}),
    async run(ctx) {
      hooks.enter?.(ctx);
      try {
        const from = ctx.saved?.next ?? 0;
        await hooks.point?.('claimed', from, ctx);
        await ctx.db.query(`INSERT INTO public.job_starts (job, attempt, from_item, runner) VALUES ($1, $2, $3, $4)`, [ctx.job.id, ctx.job.attempts, from, ctx.job.runner]);
        const n = ctx.params.items;
        ctx.progress(from, n, 'counting');
        for (let i = from; i < n; i++) {
          if (ctx.params.sleepMs) await sleep(ctx.params.sleepMs);
          await ctx.step(async (tx: pg.PoolClient) => {
            await tx.query(`INSERT INTO public.job_items (job, item, runner) VALUES ($1, $2, $3)`, [ctx.job.id, i, ctx.job.runner]);
            await hooks.point?.('effect', i, ctx);
            ctx.progress(i + 1, n, 'counting');
            return { next: i + 1 };
          });
          await hooks.point?.('committed', i, ctx);
        }
        await hooks.point?.('before-finish', n, ctx);
        return { items: n };
      } finally {
        hooks.exit?.(ctx);
      }
    },
  };
}

/** Kinds that fail: with a code, with an unexpected error, or once with a transient one. */
export function failingKinds(): JobKind[] {
  let flaky = 0;
  return [
    {
      kind: 'boom-known',
      async run() {
        throw new TenantGateError('QUERY_INVALID', 'the export format is not one we know');
      },
    },
    {
      kind: 'boom-unknown',
      async run() {
        throw new Error('TypeError-ish internals at /srv/app/secret.ts:12');
      },
    },
    {
      kind: 'flaky',
      async run() {
        if (flaky++ === 0) throw new TenantGateError('DB_UNAVAILABLE', 'the database went away');
        return { ok: true };
      },
    },
    {
      kind: 'sleepy',
      async run(ctx) {
        // No checkpoint for a while: only heartbeats keep its lease.
        const ms = (ctx.params as { ms: number }).ms;
        const until = Date.now() + ms;
        while (Date.now() < until) {
          ctx.throwIfAborted();
          await sleep(20);
        }
        return { slept: ms };
      },
    },
  ];
}

export function registryWith(...kinds: AnyJobKind[]): JobRegistry {
  const r = new JobRegistry();
  for (const k of kinds) r.register(k);
  return r;
}

/** Items processed for a job, in order, and how many times each. */
export async function itemsOf(db: { query(text: string, params?: unknown[]): Promise<pg.QueryResult> }, job: string): Promise<Map<number, number>> {
  const r = await db.query(`SELECT item, count(*)::int AS n FROM public.job_items WHERE job = $1 GROUP BY item ORDER BY item`, [job]);
  return new Map(r.rows.map((x) => [x.item as number, x.n as number]));
}

export async function startsOf(db: { query(text: string, params?: unknown[]): Promise<pg.QueryResult> }, job: string): Promise<number[]> {
  const r = await db.query(`SELECT from_item FROM public.job_starts WHERE job = $1 ORDER BY at`, [job]);
  return r.rows.map((x) => x.from_item as number);
}

/** Each of 0..n-1 exactly once. */
export function exactlyOnce(n: number): Map<number, number> {
  return new Map(Array.from({ length: n }, (_, i) => [i, 1]));
}

export async function until<T>(what: string, fn: () => Promise<T | undefined | null | false>, timeoutMs = 20_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(25);
  }
}
