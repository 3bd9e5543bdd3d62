import type { AuditEvent } from './event.ts';

export interface SinkOptions {
  /** Writes one batch; throws when it could not (the batch stays and is retried). */
  write: (events: AuditEvent[]) => Promise<unknown>;
  flushIntervalMs: number;
  batchSize: number;
  /** Events held at most; past it, record() waits for room (backpressure), never grows memory. */
  bufferLimit: number;
  /** How long record() waits for room before it drops the event (counted, logged). */
  maxWaitMs?: number;
  onError?: (err: unknown, pending: number) => void;
  onDrop?: (event: AuditEvent) => void;
}

export interface SinkStats {
  buffered: number;
  written: number;
  dropped: number;
  failedFlushes: number;
  /** Requests waiting for room now, and how many ever had to (backpressure). */
  waiting: number;
  waited: number;
  /** The most events ever held at once (never above bufferLimit). */
  peak: number;
}

/**
 * The batched audit writer: requests hand their event to record() and go on; a timer (and a full
 * batch) flushes them in one statement each. The buffer is bounded: when the database falls behind
 * or is away, record() makes the request wait for room (backpressure) up to maxWaitMs, then drops
 * the event and counts it, so memory never grows past bufferLimit events. close() flushes all.
 * What a crash loses is what is buffered: at most flushIntervalMs of traffic plus one batch in flight.
 */
export class AuditSink {
  private buffer: AuditEvent[] = [];
  private timer: NodeJS.Timeout | undefined;
  private flushing: Promise<void> | undefined;
  private closed = false;
  private waiters: Array<() => void> = [];
  private backoffMs = 0;
  readonly stats: SinkStats = { buffered: 0, written: 0, dropped: 0, failedFlushes: 0, waiting: 0, waited: 0, peak: 0 };

  constructor(private readonly o: SinkOptions) {
    this.timer = setInterval(() => void this.flushOnce(true), o.flushIntervalMs);
    this.timer.unref();
  }

  /**
   * Queue one event. Returns nothing when there was room (the common case costs no promise), else a
   * promise of when there is room, or the event was dropped.
   */
  record(event: AuditEvent): Promise<void> | undefined {
    if (this.buffer.length < this.o.bufferLimit) {
      this.push(event);
      return undefined;
    }
    this.stats.waited++;
    return this.recordWhenRoom(event);
  }

  private async recordWhenRoom(event: AuditEvent): Promise<void> {
    // Loop: another waiter may have taken the room this one was woken for.
    while (this.buffer.length >= this.o.bufferLimit) {
      this.stats.waiting++;
      const room = await this.waitForRoom(this.o.maxWaitMs ?? 10_000);
      this.stats.waiting--;
      if (!room) {
        this.stats.dropped++;
        this.o.onDrop?.(event);
        return;
      }
    }
    this.push(event);
  }

  private push(event: AuditEvent): void {
    this.buffer.push(event);
    this.stats.buffered = this.buffer.length;
    if (this.buffer.length > this.stats.peak) this.stats.peak = this.buffer.length;
    if (this.buffer.length >= this.o.batchSize && !this.flushing && this.backoffMs === 0) void this.flushOnce(false);
  }

  private waitForRoom(ms: number): Promise<boolean> {
    return new Promise((resolve) => {
      const done = (ok: boolean) => {
        clearTimeout(t);
        this.waiters = this.waiters.filter((w) => w !== wake);
        resolve(ok);
      };
      const wake = () => {
        if (this.buffer.length < this.o.bufferLimit) done(true);
      };
      const t = setTimeout(() => done(false), ms);
      this.waiters.push(wake);
      void this.flushOnce(true);
    });
  }

  /**
   * Write everything buffered now (a flush already under way may have started before some of it
   * arrived: wait for it, then go on). Returns early when a batch fails: the timer retries.
   */
  async flush(): Promise<void> {
    const target = this.stats.written + this.buffer.length;
    const failures = this.stats.failedFlushes;
    while (this.stats.written < target && this.buffer.length > 0 && this.stats.failedFlushes === failures) await this.flushOnce(true);
  }

  /**
   * One pass: write what is buffered, batch by batch: only full batches unless `all` (the timer,
   * close, a waiting request), so a busy gateway writes batch_size events per statement, not a
   * trickle. A failed batch stays at the front for the next try.
   */
  private flushOnce(all: boolean): Promise<void> {
    if (this.flushing) return this.flushing;
    if (this.buffer.length === 0) return Promise.resolve();
    // Never rejects: a failed batch is kept and retried; close() keeps trying until its deadline.
    this.flushing = (async () => {
      try {
        // `all` owes only what was buffered when it began: events arriving meanwhile wait for a full
        // batch or the next tick, or a busy gateway would drain in a trickle of tiny statements.
        let owed = all ? this.buffer.length : 0;
        while (this.buffer.length >= this.o.batchSize || owed > 0) {
          const batch = this.buffer.slice(0, this.o.batchSize);
          try {
            await this.o.write(batch);
          } catch (err) {
            this.stats.failedFlushes++;
            this.o.onError?.(err, this.buffer.length);
            // Back off (up to 5 s) so a database that is away is not hammered; the timer retries.
            this.backoffMs = Math.min(5_000, Math.max(100, this.backoffMs * 2));
            await new Promise((r) => setTimeout(r, this.closed ? 50 : this.backoffMs).unref?.());
            return;
          }
          this.backoffMs = 0;
          this.buffer.splice(0, batch.length);
          owed -= batch.length;
          this.stats.written += batch.length;
          this.stats.buffered = this.buffer.length;
          for (const w of [...this.waiters]) w();
        }
      } finally {
        this.flushing = undefined;
      }
    })();
    return this.flushing;
  }

  /** Stop the timer and write everything still buffered (retrying until `timeoutMs`). */
  async close(timeoutMs = 10_000): Promise<void> {
    this.closed = true;
    if (this.timer) clearInterval(this.timer);
    const deadline = Date.now() + timeoutMs;
    while (this.buffer.length > 0 && Date.now() < deadline) await this.flushOnce(true);
    for (const w of [...this.waiters]) w();
  }
}
