import { ERROR_CODES, type ErrorCode } from './codes.ts';

/** Where in a config file an error sits. */
export interface SourceLocation {
  file: string;
  line?: number;
  column?: number;
  key?: string;
}

/** The only error type tenantgate throws on purpose; `code` is the stable contract. */
export class TenantGateError extends Error {
  readonly code: ErrorCode;
  readonly location?: SourceLocation;
  readonly details?: Record<string, unknown>;
  /** HTTP headers the answer carries (Retry-After and RateLimit-* of a 429). */
  readonly headers?: Record<string, string>;
  /** What to do about this very failure, when the registry's hint for the code is too general. */
  private readonly ownHint?: string;

  constructor(
    code: ErrorCode,
    message: string,
    options: { location?: SourceLocation; details?: Record<string, unknown>; cause?: unknown; headers?: Record<string, string>; hint?: string } = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'TenantGateError';
    this.code = code;
    if (options.location) this.location = options.location;
    if (options.details) this.details = options.details;
    if (options.headers) this.headers = options.headers;
    if (options.hint) this.ownHint = options.hint;
  }

  get status(): number {
    return ERROR_CODES[this.code].status;
  }

  get exitCode(): 1 | 2 {
    return ERROR_CODES[this.code].exit;
  }

  /** The error's own hint (it names the key or variable that failed), else the code's. */
  get hint(): string {
    return this.ownHint ?? ERROR_CODES[this.code].hint;
  }

  /** `file:line key: message`, the form every config error is printed in. */
  describe(): string {
    const loc = this.location;
    if (!loc) return `${this.code}: ${this.message}`;
    const where = [loc.file, loc.line, loc.column].filter((p) => p !== undefined).join(':');
    return `${where}${loc.key ? ` (${loc.key})` : ''}: ${this.code}: ${this.message}`;
  }
}

export function isTenantGateError(err: unknown): err is TenantGateError {
  return err instanceof TenantGateError;
}
