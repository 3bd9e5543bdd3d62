import { z } from 'zod';
import type { Config } from '../config/types.ts';
import { TIERS } from '../config/schema.ts';
import { openDatabase, type Database } from '../db/database.ts';
import { TenantGateError } from '../errors/index.ts';
import type { TenantGate } from '../gate.ts';
import type { Logger } from 'pino';
import { parseBody } from '../plan/planner.ts';
import { abortMove, moveTenant, type MoveReport } from '../tiers/move/move.ts';
import { readMove, type MoveRecord } from '../tiers/move/state.ts';

export const moveBodySchema = z.strictObject({
  tier: z.enum(TIERS),
  placement: z.string().min(1).max(60).default('default'),
  dry_run: z.boolean().default(false),
  grace_seconds: z.number().min(0).max(3600).optional(),
});

/**
 * Tenant moves started through the admin API: run in this gateway process, in the background,
 * as the owner (database.url; on the embedded database, the gateway's own session). Progress and
 * the outcome are in tenantgate.moves for GET …/move from any process.
 */
export class MoveRunner {
  private owner: Promise<Database> | undefined;
  private readonly running = new Map<string, Promise<unknown>>();

  constructor(
    private readonly config: Config,
    private readonly gate: TenantGate,
    private readonly secret: Buffer,
    private readonly env: Record<string, string | undefined>,
    private readonly log: Logger,
  ) {}

  private ownerDb(): Promise<Database> {
    if (this.gate.database.kind === 'pglite') return Promise.resolve(this.gate.database);
    this.owner ??= openDatabase(this.config.effective.database.url, { baseDir: this.config.dir, max: 6 }).catch((err: unknown) => {
      this.owner = undefined;
      throw err;
    });
    return this.owner;
  }

  async status(tenant: string): Promise<{ move: MoveRecord | null; running: boolean }> {
    return { move: (await readMove(this.gate.database.kind === 'pglite' ? this.gate.database : await this.ownerDb(), tenant)) ?? null, running: this.running.has(tenant) };
  }

  /** A dry run answers at once; a move starts and is answered with its record (202). */
  async start(tenant: string, body: unknown): Promise<{ dryRun: true; report: MoveReport } | { dryRun: false; move: MoveRecord | null }> {
    const b = parseBody(moveBodySchema, body);
    const main = await this.ownerDb();
    const o = { config: this.config, main, secret: this.secret, env: this.env, tenant, to: { tier: b.tier, placement: b.placement }, ...(b.grace_seconds !== undefined ? { graceMs: b.grace_seconds * 1000 } : {}) };
    if (b.dry_run) return { dryRun: true, report: await moveTenant({ ...o, dryRun: true }) };
    if (this.running.has(tenant)) throw new TenantGateError('MOVE_CONFLICT', 'a move of this tenant is running in this gateway');
    const first = new Promise<void>((resolve, reject) => {
      // Answered once the move is under way (its first step), or with the error that stopped it before.
      const run = moveTenant({ ...o, onProgress: () => resolve() });
      this.running.set(tenant, run);
      run.then(
        (r) => this.log.info({ tenant, to: r.to, rows: r.rows, pause_ms: r.pauseMs }, 'tenant move done'),
        (err: unknown) => this.log.error({ err, tenant }, 'tenant move stopped'),
      ).finally(() => this.running.delete(tenant));
      // Errors before the move is under way (a bad target, a conflict) are the request's answer.
      run.then(() => resolve(), reject);
    });
    await first;
    return { dryRun: false, move: (await readMove(main, tenant)) ?? null };
  }

  async abort(tenant: string): Promise<MoveRecord> {
    if (this.running.has(tenant)) throw new TenantGateError('MOVE_CONFLICT', 'the move is running in this gateway: wait for it to stop, or stop the gateway first');
    return abortMove({ config: this.config, main: await this.ownerDb(), secret: this.secret, env: this.env, tenant });
  }

  /** A move still running stops with the owner connection: it is recorded where it got to, and a rerun resumes it. */
  async close(): Promise<void> {
    if (this.owner && this.gate.database.kind !== 'pglite') await (await this.owner.catch(() => undefined))?.close();
  }
}
