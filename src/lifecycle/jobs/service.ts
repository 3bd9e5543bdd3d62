import { openDatabase, type Database } from '../../db/database.ts';
import type { Gateway } from '../../gateway/gateway.ts';
import { loadJobKinds } from './registry.ts';
import { JobRunner, type RunnerOptions } from './runner.ts';

/**
 * The jobs side of one gateway process: the owner connection the admin endpoints and the runner
 * use (database.url, like moves: the gateway login has no grant on tenantgate.jobs; on the
 * embedded database, the gateway's own session), and the runner `serve` starts.
 */
export class JobService {
  private owner: Promise<Database> | undefined;
  runner: JobRunner | undefined;

  constructor(private readonly gateway: Gateway) {}

  database(): Promise<Database> {
    const { gate, config } = this.gateway;
    if (gate.database.kind === 'pglite') return Promise.resolve(gate.database);
    this.owner ??= openDatabase(config.effective.database.url, { baseDir: config.dir, max: 6 }).catch((err: unknown) => {
      this.owner = undefined;
      throw err;
    });
    return this.owner;
  }

  /**
   * Start this process's runner (once): the built-in kinds loaded, polling every second (and on a
   * server woken by NOTIFY), two jobs at a time. Nothing runs on the request path.
   */
  async startRunner(options: Partial<RunnerOptions> = {}): Promise<JobRunner> {
    if (this.runner) return this.runner;
    const registry = options.registry ?? (await loadJobKinds());
    this.runner = new JobRunner({ concurrency: 2, log: this.gateway.log, ...options, registry, db: await this.database() }).start();
    return this.runner;
  }

  /** Stop the runner (its jobs go back to the queue, or resume elsewhere from their checkpoints) and close the owner connection. */
  async close(): Promise<void> {
    const runner = this.runner;
    this.runner = undefined;
    await runner?.stop();
    const owner = this.owner;
    this.owner = undefined;
    if (owner) await (await owner.catch(() => undefined))?.close();
  }
}

const services = new WeakMap<Gateway, JobService>();

/** The one JobService of a gateway (made on first use). */
export function jobServiceOf(gateway: Gateway): JobService {
  let s = services.get(gateway);
  if (!s) services.set(gateway, (s = new JobService(gateway)));
  return s;
}

/** `serve`: start the runner in the gateway process (stopped when the server closes: registerJobRoutes' onClose hook). */
export async function startServeRunner(gateway: Gateway, options: Partial<RunnerOptions> = {}): Promise<JobRunner> {
  return jobServiceOf(gateway).startRunner(options);
}
