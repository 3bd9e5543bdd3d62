import type { Logger } from 'pino';
import type { WebhookPoster } from '../observe/webhook.ts';

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

/**
 * Security events (tenant mismatch, forbidden SQL, denied write): a warning in the log, a metric
 * (GatewayMetrics counts them), and, when audit.security_webhook is set, a POST in the background.
 */
export class SecurityEvents {
  readonly stats = { emitted: 0 };

  constructor(
    private readonly log: Logger,
    private readonly webhook?: WebhookPoster<SecurityEvent>,
  ) {}

  emit(e: SecurityEvent): void {
    this.stats.emitted++;
    this.log.warn({ security_event: e }, `security event ${e.code}`);
    this.webhook?.push(e);
  }

  get delivered(): number {
    return this.webhook?.stats.delivered ?? 0;
  }

  /** Wait for queued events to be delivered (or given up on). */
  async flush(): Promise<void> {
    await this.webhook?.flush();
  }
}
