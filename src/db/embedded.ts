/**
 * The embedded database (PGlite on a data directory) off the main thread. PGlite runs PostgreSQL's
 * backend on the thread that calls it, where nothing can interrupt it (statement_timeout needs a
 * timer signal WASM does not have): a runaway statement on the main thread would stop the whole
 * gateway, /healthz included. So a worker thread owns the instance (src/db/embedded-worker.ts) and
 * node-postgres talks to it over the ordinary wire protocol through a stream (`connection()`), as
 * it would to a server: the driver, the pool and every caller stay as they are.
 *
 * The watchdog: a connection may carry a budget (`setStatementBudget`, set by the tenant transaction
 * to the tenant's statement_timeout_ms). A round trip that runs past it ends the worker (nothing
 * else can stop a statement in WASM), fails that connection with SQLSTATE 57014 as PostgreSQL's
 * own timeout would, and starts a new worker on the same directory: PGlite recovers from the WAL
 * like after a crash, so everything committed is there; what was uncommitted is rolled back.
 */
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { Duplex } from 'node:stream';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import type pg from 'pg';
import { EMBEDDED_WORKER_SOURCE, type EmbeddedWorkerInit, type FromWorker, type ToWorker } from './embedded-worker.ts';

const require = createRequire(import.meta.url);

/** How long a clean close may take before the worker is ended anyway. */
const CLOSE_GRACE_MS = 10_000;

let compiled: Promise<WebAssembly.Module | undefined> | undefined;
/** PGlite's WASM module, compiled once per process and handed to every worker (saves ~0.5 s per start). */
function pgliteModule(): Promise<WebAssembly.Module | undefined> {
  compiled ??= (async () => {
    try {
      const entry = require.resolve('@electric-sql/pglite');
      return await WebAssembly.compile(await readFile(join(dirname(entry), 'pglite.wasm')));
    } catch {
      return undefined; // PGlite finds and compiles it itself
    }
  })();
  return compiled;
}

/** The worker's code (a data: URL module) and where it finds PGlite. */
let entry: { url: URL; pglite: string } | undefined;
function workerEntry(): { url: URL; pglite: string } {
  entry ??= {
    url: new URL(`data:text/javascript,${encodeURIComponent(EMBEDDED_WORKER_SOURCE)}`),
    // The package's ES module entry, beside its CommonJS one.
    pglite: pathToFileURL(join(dirname(require.resolve('@electric-sql/pglite')), 'index.js')).href,
  };
  return entry;
}

function sqlError(message: string, code: string): Error {
  return Object.assign(new Error(message), { code, severity: 'ERROR' });
}

interface InFlight {
  owner: EmbeddedStream;
  budgetMs: number | undefined;
}

/** One PGlite data directory served by a worker thread, restarted when the watchdog ends it. */
export class EmbeddedServer {
  /** The role the session runs as (PGlite's `username`, else postgres). */
  user = 'postgres';
  private worker: Worker | undefined;
  private starting: Promise<Worker> | undefined;
  /** The previous worker's end: a new one never opens the directory before the old one stopped. */
  private gone: Promise<unknown> = Promise.resolve();
  /** The connection that has the session (PGlite is one session: one connection at a time). */
  private attached: EmbeddedStream | undefined;
  private readonly waiting: Array<() => void> = [];
  /** Batches sent and not answered yet, in order (the worker answers each, in order). */
  private inflight: InFlight[] = [];
  private timer: NodeJS.Timeout | undefined;
  private closed = false;

  private constructor(
    readonly dataDir: string,
    private readonly username: string | undefined,
  ) {}

  static async open(dataDir: string, options: { username?: string } = {}): Promise<EmbeddedServer> {
    const server = new EmbeddedServer(dataDir, options.username);
    await server.start();
    return server;
  }

  /** A new client connection (node-postgres's `stream` option): it waits for the session. */
  connection(): EmbeddedStream {
    return new EmbeddedStream(this);
  }

  private start(): Promise<Worker> {
    if (this.starting) return this.starting;
    const starting = this.spawn();
    this.starting = starting;
    starting.catch(() => {
      if (this.starting === starting) this.starting = undefined;
    });
    return starting;
  }

  private async spawn(): Promise<Worker> {
    await this.gone;
    if (this.closed) throw sqlError('the embedded database is closed', '08003');
    const { url, pglite } = workerEntry();
    const init: EmbeddedWorkerInit = { pglite, dataDir: this.dataDir };
    if (this.username) init.username = this.username;
    const wasmModule = await pgliteModule();
    if (wasmModule) init.wasmModule = wasmModule;
    const worker = new Worker(url, { workerData: init });
    const ready = await new Promise<FromWorker>((resolve, reject) => {
      const onExit = (code: number) => reject(sqlError(`the embedded database's worker exited (code ${code}) while starting`, '08006'));
      const onError = (err: Error) => reject(sqlError(`the embedded database could not start: ${err.message}`, '08006'));
      worker.once('exit', onExit);
      worker.once('error', onError);
      worker.once('message', (m: FromWorker) => {
        worker.off('exit', onExit).off('error', onError);
        resolve(m);
      });
    });
    if (ready.type !== 'ready') {
      await worker.terminate();
      throw sqlError(`the embedded database could not start: ${ready.type === 'failed' ? ready.message : ready.type}`, '08006');
    }
    if (this.closed) {
      await worker.terminate();
      throw sqlError('the embedded database is closed', '08003');
    }
    this.user = ready.user;
    worker.on('message', (m: FromWorker) => this.onMessage(worker, m));
    worker.on('error', () => {}); // followed by 'exit'
    worker.on('exit', () => {
      if (this.worker === worker) this.lost(sqlError('the embedded database stopped unexpectedly', '08006'));
    });
    // Idle, it keeps no process alive (a round trip in flight does: see send()).
    if (this.inflight.length === 0) worker.unref();
    this.worker = worker;
    return worker;
  }

  /** Give the session to `s` once the connection before it is gone. */
  async attach(s: EmbeddedStream): Promise<void> {
    while (this.attached) await new Promise<void>((resolve) => this.waiting.push(resolve));
    if (this.closed) throw sqlError('the embedded database is closed', '08003');
    this.attached = s;
    try {
      const worker = await this.start();
      if (this.attached !== s) throw sqlError('the embedded database was restarted', '08006');
      worker.postMessage({ type: 'open' } satisfies ToWorker);
    } catch (err) {
      this.detach(s);
      throw err;
    }
  }

  detach(s: EmbeddedStream): void {
    if (this.attached !== s) return;
    this.attached = undefined;
    this.waiting.shift()?.();
  }

  send(s: EmbeddedStream, bytes: Uint8Array): void {
    const worker = this.worker;
    if (this.attached !== s || !worker) {
      s.destroy(sqlError('the embedded database connection was closed', '08003'));
      return;
    }
    this.inflight.push({ owner: s, budgetMs: s.budgetMs });
    if (this.inflight.length === 1) {
      worker.ref();
      this.arm();
    }
    // `bytes` is this connection's own copy (see flush): moved to the worker, not copied again.
    worker.postMessage({ type: 'data', bytes } satisfies ToWorker, [bytes.buffer as ArrayBuffer]);
  }

  /** Time the batch at the head of the line: it runs from now. */
  private arm(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    const head = this.inflight[0];
    if (!head?.budgetMs) return;
    this.timer = setTimeout(() => {
      if (this.inflight[0] === head) {
        this.lost(sqlError('canceling statement due to statement timeout', '57014'), head.owner);
      }
    }, head.budgetMs);
  }

  private onMessage(worker: Worker, m: FromWorker): void {
    if (worker !== this.worker) return;
    if (m.type === 'data') {
      const done = this.inflight.shift();
      if (this.inflight.length === 0) worker.unref();
      this.arm();
      if (done && done.owner === this.attached) done.owner.deliver(m.bytes);
    } else if (m.type === 'fatal') {
      // PGlite threw in the middle of a message: its state cannot be trusted, start afresh.
      this.lost(sqlError(`the embedded database failed: ${m.message}`, '08006'));
    }
  }

  /**
   * End the worker and start another on the same directory. `owner`'s connection gets `err` (the
   * statement that overran); any other connection holding the session learns it was lost.
   */
  private lost(err: Error, owner?: EmbeddedStream): void {
    const worker = this.worker;
    this.worker = undefined;
    this.starting = undefined;
    clearTimeout(this.timer);
    this.timer = undefined;
    const affected = new Set(this.inflight.map((b) => b.owner));
    this.inflight = [];
    if (this.attached) affected.add(this.attached);
    for (const s of affected) s.destroy(s === owner || !owner ? err : sqlError('the embedded database was restarted', '08006'));
    this.gone = worker ? worker.terminate().catch(() => undefined) : Promise.resolve();
    // At once, so the connections waiting for the session get it as soon as the directory is open again.
    if (!this.closed) this.start().catch(() => {});
  }

  /** Close the instance cleanly (a checkpoint, no recovery at the next open). */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.attached?.destroy();
    for (const w of this.waiting.splice(0)) w();
    const worker = await this.starting?.catch(() => undefined);
    this.worker = undefined;
    clearTimeout(this.timer);
    if (worker) {
      worker.ref();
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, CLOSE_GRACE_MS);
        worker.on('message', (m: FromWorker) => {
          if (m.type === 'closed') {
            clearTimeout(timer);
            resolve();
          }
        });
        worker.once('exit', () => {
          clearTimeout(timer);
          resolve();
        });
        worker.postMessage({ type: 'close' } satisfies ToWorker);
      });
      await worker.terminate();
    }
    await this.gone;
  }
}

/**
 * One client connection to the embedded database, as node-postgres sees a socket: protocol bytes
 * written in one tick go to the worker as one batch; its answers are read back.
 */
export class EmbeddedStream extends Duplex {
  /** The longest a round trip may run (the tenant's statement timeout); undefined: no limit. */
  budgetMs: number | undefined;
  private chunks: Uint8Array[] = [];
  private scheduled = false;

  constructor(private readonly server: EmbeddedServer) {
    super();
  }

  // The socket methods node-postgres calls.
  connect(): this {
    this.server.attach(this).then(
      () => this.emit('connect'),
      (err: unknown) => this.destroy(err as Error),
    );
    return this;
  }
  setNoDelay(): this {
    return this;
  }
  setKeepAlive(): this {
    return this;
  }
  ref(): this {
    return this;
  }
  unref(): this {
    return this;
  }

  override _read(): void {}

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    this.chunks.push(chunk);
    if (!this.scheduled) {
      this.scheduled = true;
      process.nextTick(() => this.flush());
    }
    callback();
  }

  private flush(): void {
    this.scheduled = false;
    if (this.chunks.length === 0 || this.destroyed) return;
    const parts = this.chunks;
    this.chunks = [];
    // A buffer of its own, which send() hands over: node-postgres's may be slices of a shared pool.
    const bytes = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
    let at = 0;
    for (const p of parts) {
      bytes.set(p, at);
      at += p.length;
    }
    this.server.send(this, bytes);
  }

  override _final(callback: (error?: Error | null) => void): void {
    this.flush();
    this.server.detach(this);
    this.push(null);
    callback();
  }

  override _destroy(err: Error | null, callback: (error?: Error | null) => void): void {
    this.chunks = [];
    this.server.detach(this);
    callback(err);
  }

  deliver(bytes: Uint8Array): void {
    if (!this.destroyed && bytes.length) this.push(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
  }
}

/**
 * Hold each round trip of this client to `ms` on the embedded database (its statement timeout,
 * enforced by the watchdog); undefined lifts it. Does nothing on a server, which has its own.
 */
export function setStatementBudget(client: pg.PoolClient, ms: number | undefined): void {
  const stream = (client as unknown as { connection?: { stream?: unknown } }).connection?.stream;
  if (stream instanceof EmbeddedStream) stream.budgetMs = ms;
}
