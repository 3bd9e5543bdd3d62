/**
 * Concurrent queries per tenant, in this gateway process: at most `limit` in flight; the next
 * ones wait in order for a slot, up to `waitMs`, then are refused. The database pool is per
 * process, so this is where one tenant is kept from holding every connection.
 */
export class ConcurrencySlots {
  private readonly inFlight = new Map<string, number>();
  private readonly queues = new Map<string, Array<() => void>>();

  /**
   * Take a slot of `key`: its release function at once when one is free (no promise on the common
   * path), else a promise of it, or of null after `waitMs`.
   */
  acquire(key: string, limit: number, waitMs: number): (() => void) | null | Promise<(() => void) | null> {
    if ((this.inFlight.get(key) ?? 0) < limit) return this.grant(key);
    if (waitMs <= 0) return null;
    return new Promise((resolve) => {
      const queue = this.queues.get(key) ?? this.queues.set(key, []).get(key)!;
      const wake = () => {
        clearTimeout(timer);
        resolve(this.grant(key));
      };
      const timer = setTimeout(() => {
        const i = queue.indexOf(wake);
        if (i >= 0) queue.splice(i, 1);
        if (queue.length === 0) this.queues.delete(key);
        resolve(null);
      }, waitMs);
      queue.push(wake);
    });
  }

  private grant(key: string): () => void {
    this.inFlight.set(key, (this.inFlight.get(key) ?? 0) + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const queue = this.queues.get(key);
      const next = queue?.shift();
      if (queue && queue.length === 0) this.queues.delete(key);
      const n = (this.inFlight.get(key) ?? 1) - 1;
      if (n <= 0) this.inFlight.delete(key);
      else this.inFlight.set(key, n);
      // Hand the slot straight to the next in line (FIFO, no thundering herd).
      next?.();
    };
  }

  inUse(key: string): number {
    return this.inFlight.get(key) ?? 0;
  }

  waiting(key: string): number {
    return this.queues.get(key)?.length ?? 0;
  }
}
