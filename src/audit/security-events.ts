import type { Logger } from 'pino';

export interface SecurityEvent {
  at: string;
  request_id: string;
  code: string;
  tenant: string;
  principal: string | null;
  endpoint: string;
  named_tenant: string | null;
  client: string | null;
}

export interface WebhookOptions {
  url: string;
  retries: number;
  timeoutMs: number;
  /** Events held for the webhook at most (older ones are dropped first, and counted). */
  queueLimit?: number;
  /** Between retries: base × 2^attempt (default 500 ms). */
  backoffMs?: number;
}

/**
 * Security events (tenant mismatch, forbidden SQL, denied write): a warning in the log, a metric
 * (GatewayMetrics counts them), and, when audit.security_webhook is set, a POST of a JSON batch
 * `{"events": [...]}` retried with exponential backoff. The webhook never slows a request: events
 * queue (bounded) and go out in the background; failures are logged and counted.
 */
export class SecurityEvents {
  private queue: SecurityEvent[] = [];
  private sending: Promise<void> | undefined;
  readonly stats = { emitted: 0, delivered: 0, failed: 0, dropped: 0 };

  constructor(
    private readonly log: Logger,
    private readonly webhook?: WebhookOptions,
  ) {}

  emit(e: SecurityEvent): void {
    this.stats.emitted++;
    this.log.warn({ security_event: e }, `security event ${e.code}`);
    if (!this.webhook) return;
    if (this.queue.length >= (this.webhook.queueLimit ?? 10_000)) {
      this.queue.shift();
      this.stats.dropped++;
    }
    this.queue.push(e);
    this.sending ??= this.drain().finally(() => {
      this.sending = undefined;
    });
  }

  private async drain(): Promise<void> {
    const w = this.webhook!;
    while (this.queue.length > 0) {
      const batch = this.queue.splice(0, 100);
      let ok = false;
      for (let attempt = 0; attempt <= w.retries && !ok; attempt++) {
        if (attempt > 0) await new Promise((r) => setTimeout(r, (w.backoffMs ?? 500) * 2 ** (attempt - 1)));
        try {
          const res = await fetch(w.url, {
            method: 'POST',
            headers: { 'content-type': 'application/json' },
            body: JSON.stringify({ events: batch }),
            signal: AbortSignal.timeout(w.timeoutMs),
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
        this.log.error({ events: batch.length }, 'security webhook: delivery failed after retries');
      }
    }
  }

  /** Wait for queued events to be delivered (or given up on). */
  async flush(): Promise<void> {
    while (this.sending) await this.sending;
  }
}
