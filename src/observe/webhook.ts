import type { Logger } from 'pino';
import { TenantGateError } from '../errors/index.ts';

export interface WebhookOptions {
  url: string;
  retries: number;
  timeoutMs: number;
  /** Events held at most (older ones are dropped first, and counted). */
  queueLimit?: number;
  /** Between retries: base × 2^attempt (default 500 ms). */
  backoffMs?: number;
}

/**
 * POSTs events to a webhook in the background as `{"events": [...]}` batches, retried with
 * exponential backoff. Never slows the caller: events queue (bounded) and go out one batch at a
 * time; a batch that still fails after the retries is logged and counted.
 */
export class WebhookPoster<E> {
  private queue: E[] = [];
  private sending: Promise<void> | undefined;
  readonly stats = { delivered: 0, failed: 0, dropped: 0 };

  constructor(
    private readonly o: WebhookOptions,
    private readonly log: Logger,
    private readonly what: string,
  ) {}

  push(e: E): void {
    if (this.queue.length >= (this.o.queueLimit ?? 10_000)) {
      this.queue.shift();
      this.stats.dropped++;
    }
    this.queue.push(e);
    this.sending ??= this.drain().finally(() => {
      this.sending = undefined;
    });
  }

  private async drain(): Promise<void> {
    while (this.queue.length > 0) {
      const batch = this.queue.splice(0, 100);
      let ok = false;
      for (let attempt = 0; attempt <= this.o.retries && !ok; attempt++) {
        if (attempt > 0) await new Promise((r) => setTimeout(r, (this.o.backoffMs ?? 500) * 2 ** (attempt - 1)));
        try {
          const res = await fetch(this.o.url, {
            method: 'POST',
            headers: { 'content-type': 'application/json' },
            body: JSON.stringify({ events: batch }),
            signal: AbortSignal.timeout(this.o.timeoutMs),
          });
          ok = res.ok;
          await res.body?.cancel().catch(() => {});
        } catch {
          ok = false;
        }
      }
      if (ok) this.stats.delivered += batch.length;
      else {
        this.stats.failed += batch.length;
        this.log.error({ events: batch.length }, `${this.what} webhook: delivery failed after retries`);
      }
    }
  }

  /** Wait for queued events to be delivered (or given up on). */
  async flush(): Promise<void> {
    while (this.sending) await this.sending;
  }
}

/** The poster for a configured webhook (`{ url_env, retries, timeout_ms }`), or undefined when none is set. */
export function webhookFrom<E>(
  hook: { url_env: string; retries: number; timeout_ms: number } | undefined,
  env: Record<string, string | undefined>,
  log: Logger,
  what: string,
  key: string,
): WebhookPoster<E> | undefined {
  if (!hook) return undefined;
  const url = env[hook.url_env];
  if (!url) {
    throw new TenantGateError('CONFIG_ENV_MISSING', `${key}.url_env names ${hook.url_env}, which is not set`, {
      hint: `Set ${hook.url_env} (${key}.url_env) to the webhook's URL, or remove ${key} from the configuration.`,
    });
  }
  return new WebhookPoster<E>({ url, retries: hook.retries, timeoutMs: hook.timeout_ms }, log, what);
}
