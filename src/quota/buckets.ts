import { Redis } from 'ioredis';

/** One bucket's answer: allowed or not, and what the RateLimit-* headers say. */
export interface Decision {
  allowed: boolean;
  /** Requests the bucket allows at once when full (RateLimit-Limit). */
  limit: number;
  remaining: number;
  /** Seconds until the bucket is full again (RateLimit-Reset). */
  resetS: number;
  /** Seconds to wait before a request is allowed (Retry-After), when refused. */
  retryAfterS: number;
  /** Refused because the shared store could not be asked (fail-closed). */
  unavailable?: boolean;
}

/** A token bucket: `ratePerMin` tokens a minute, at most `burst` at once. */
export interface BucketSpec {
  ratePerMin: number;
  burst: number;
}

/**
 * Token buckets by key. GCRA (the generic cell rate algorithm) keeps one number per bucket, the
 * theoretical arrival time of the next request; it is exactly a token bucket of `burst` tokens
 * refilled at `ratePerMin`.
 */
export interface Buckets {
  readonly kind: 'memory' | 'redis';
  take(key: string, spec: BucketSpec): Promise<Decision>;
  /**
   * Take one token from each bucket in order, stopping at the first that refuses (the later ones
   * keep theirs): one decision per bucket asked. On Redis, one round trip for all of them.
   */
  takeAll(buckets: Array<{ key: string; spec: BucketSpec }>): Decision[] | Promise<Decision[]>;
  /** Wait (up to `ms`) for the store to be usable; resolves either way. */
  ready(ms: number): Promise<boolean>;
  close(): Promise<void>;
}

/** A bucket's state: the theoretical arrival time of the next request, and the tolerance (burst × interval) it was kept under. */
export interface BucketState {
  tat: number;
  tol: number;
}

/**
 * GCRA step: the state to store (null: unchanged) and the decision. Times in ms. When the spec
 * changed since the state was stored (a quota changed at runtime), the drained share of the
 * bucket is kept and rescaled to the new burst, so a raised limit counts at once.
 */
export function gcra(now: number, state: BucketState | undefined, spec: BucketSpec): { state: BucketState | null; decision: Decision } {
  const interval = 60_000 / spec.ratePerMin;
  const tolerance = interval * spec.burst;
  let tat = Math.max(state?.tat ?? now, now);
  if (state && state.tol !== tolerance) tat = now + Math.min(1, (tat - now) / state.tol) * tolerance;
  const next = tat + interval;
  const allowAt = next - tolerance;
  if (now < allowAt) {
    return {
      state: state && state.tol !== tolerance ? { tat, tol: tolerance } : null,
      decision: { allowed: false, limit: spec.burst, remaining: 0, resetS: Math.ceil((tat - now) / 1000), retryAfterS: Math.max(1, Math.ceil((allowAt - now) / 1000)) },
    };
  }
  return {
    state: { tat: next, tol: tolerance },
    decision: { allowed: true, limit: spec.burst, remaining: Math.max(0, Math.floor((tolerance - (next - now)) / interval)), resetS: Math.ceil((next - now) / 1000), retryAfterS: 0 },
  };
}

/** In this process only: right for one gateway, or as the fallback when Redis is away. */
export class MemoryBuckets implements Buckets {
  readonly kind = 'memory' as const;
  private readonly states = new Map<string, BucketState>();
  private sweeps = 0;

  constructor(private readonly now: () => number = Date.now) {}

  async take(key: string, spec: BucketSpec): Promise<Decision> {
    return this.takeNow(key, spec);
  }

  private takeNow(key: string, spec: BucketSpec): Decision {
    const now = this.now();
    const step = gcra(now, this.states.get(key), spec);
    if (step.state !== null) this.states.set(key, step.state);
    // Drop buckets that have refilled (their TAT is past): the map stays as large as the busy keys.
    if (++this.sweeps % 10_000 === 0) for (const [k, st] of this.states) if (st.tat < now) this.states.delete(k);
    return step.decision;
  }

  /** At once, not as a promise: nothing here waits, and every request comes through. */
  takeAll(buckets: Array<{ key: string; spec: BucketSpec }>): Decision[] {
    const out: Decision[] = [];
    for (const b of buckets) {
      const d = this.takeNow(b.key, b.spec);
      out.push(d);
      if (!d.allowed) break;
    }
    return out;
  }

  async ready(): Promise<boolean> {
    return true;
  }

  async close(): Promise<void> {}
}

/**
 * The same GCRA step in one atomic script, for each bucket in KEYS in turn (ARGV: interval and
 * tolerance per key), stopping at the first refusal; on Redis's own clock so every gateway process
 * agrees. A bucket's state is "tat:tol". Returns, per bucket asked: allowed, ms until full, ms to wait.
 */
const GCRA_LUA = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local out = {}
for i, key in ipairs(KEYS) do
  local interval = tonumber(ARGV[2 * i - 1])
  local tolerance = tonumber(ARGV[2 * i])
  local stored = redis.call('GET', key)
  local tat = now
  local tol = tolerance
  if stored then
    local sep = string.find(stored, ':', 1, true)
    tat = tonumber(string.sub(stored, 1, sep - 1))
    tol = tonumber(string.sub(stored, sep + 1))
  end
  if tat < now then tat = now end
  local changed = tol ~= tolerance
  if changed then tat = now + math.min(1, (tat - now) / tol) * tolerance end
  local nxt = tat + interval
  local allow_at = nxt - tolerance
  if now < allow_at then
    if changed then redis.call('SET', key, tostring(tat) .. ':' .. tostring(tolerance), 'PX', math.ceil(tat - now) + 1000) end
    table.insert(out, {0, tostring(tat - now), tostring(allow_at - now)})
    return out
  end
  redis.call('SET', key, tostring(nxt) .. ':' .. tostring(tolerance), 'PX', math.ceil(nxt - now) + 1000)
  table.insert(out, {1, tostring(nxt - now), '0'})
end
return out
`;

/** Shared by every gateway process on one Redis (quota_store: redis://…). */
export class RedisBuckets implements Buckets {
  readonly kind = 'redis' as const;
  private readonly redis: Redis;

  constructor(url: string, options: { commandTimeoutMs?: number; namespace?: string } = {}) {
    // Fail fast when Redis is away (the caller falls back or refuses): no offline queue, no retries per command.
    this.redis = new Redis(url, {
      lazyConnect: false,
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      commandTimeout: options.commandTimeoutMs ?? 100,
      connectTimeout: 1_000,
      retryStrategy: (times) => Math.min(times * 200, 2_000),
      // Gateways of one deployment share buckets; another deployment on the same Redis (another role prefix) does not.
      keyPrefix: `tenantgate:rl:${options.namespace ?? 'tenantgate'}:`,
    });
    this.redis.on('error', () => {});
    // The number of keys is the script's first argument (one to a few buckets per request).
    this.redis.defineCommand('tgGcra', { lua: GCRA_LUA });
  }

  /** Commands fail at once while not connected (no offline queue): a gateway waits for the connection when it starts. */
  async ready(ms: number): Promise<boolean> {
    if (this.redis.status === 'ready') return true;
    return new Promise((resolve) => {
      const done = (ok: boolean) => {
        clearTimeout(t);
        this.redis.off('ready', onReady);
        resolve(ok);
      };
      const onReady = () => done(true);
      const t = setTimeout(() => done(false), ms);
      this.redis.once('ready', onReady);
    });
  }

  async take(key: string, spec: BucketSpec): Promise<Decision> {
    return (await this.takeAll([{ key, spec }]))[0] as Decision;
  }

  async takeAll(buckets: Array<{ key: string; spec: BucketSpec }>): Promise<Decision[]> {
    const args = buckets.flatMap((b) => {
      const interval = 60_000 / b.spec.ratePerMin;
      return [interval, interval * b.spec.burst];
    });
    const rows = (await (this.redis as unknown as { tgGcra(n: number, ...a: Array<string | number>): Promise<Array<[number, string, string]>> }).tgGcra(buckets.length, ...buckets.map((b) => b.key), ...args)) ?? [];
    return rows.map(([ok, untilFull, wait], i) => {
      const spec = buckets[i]!.spec;
      const interval = 60_000 / spec.ratePerMin;
      const tolerance = interval * spec.burst;
      return {
        allowed: Number(ok) === 1,
        limit: spec.burst,
        remaining: Number(ok) === 1 ? Math.max(0, Math.floor((tolerance - Number(untilFull)) / interval)) : 0,
        resetS: Math.ceil(Number(untilFull) / 1000),
        retryAfterS: Number(ok) === 1 ? 0 : Math.max(1, Math.ceil(Number(wait) / 1000)),
      };
    });
  }

  async close(): Promise<void> {
    this.redis.disconnect();
  }
}

export type StoreFailure = 'open' | 'closed';

/**
 * Redis with a way out: when a command fails (Redis away, slow past the timeout) the request is
 * decided by the local limiter (`open`: per-process limits still hold) or refused (`closed`).
 * Never throws for a store failure, so it can never turn into a 500.
 */
export class ResilientBuckets implements Buckets {
  readonly kind = 'redis' as const;
  failures = 0;

  constructor(
    private readonly primary: Buckets,
    private readonly local: Buckets,
    private readonly mode: StoreFailure,
    private readonly onFailure: (err: unknown) => void = () => {},
  ) {}

  async take(key: string, spec: BucketSpec): Promise<Decision> {
    return (await this.takeAll([{ key, spec }]))[0] as Decision;
  }

  async takeAll(buckets: Array<{ key: string; spec: BucketSpec }>): Promise<Decision[]> {
    try {
      return await this.primary.takeAll(buckets);
    } catch (err) {
      this.failures++;
      this.onFailure(err);
      if (this.mode === 'open') return this.local.takeAll(buckets);
      return [{ allowed: false, limit: buckets[0]!.spec.burst, remaining: 0, resetS: 1, retryAfterS: 1, unavailable: true }];
    }
  }

  ready(ms: number): Promise<boolean> {
    return this.primary.ready(ms);
  }

  async close(): Promise<void> {
    await this.primary.close();
    await this.local.close();
  }
}
