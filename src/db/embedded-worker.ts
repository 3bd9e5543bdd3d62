/**
 * The embedded database's thread, as JavaScript source (src/db/embedded.ts starts it from a data:
 * URL, so the same text runs from the TypeScript sources, under the test runner and from dist/, with
 * no loader and no build step). It owns one PGlite instance on one data directory and is fed the
 * PostgreSQL wire protocol by the main thread. PGlite runs its backend on the thread that calls it
 * and nothing interrupts it there (no timer signal in WASM), so it runs here, where the main thread
 * can end it, and the gateway's event loop never waits on a statement.
 *
 * Messages in: `open` (a new client connection: the session is reset as a new server session
 * would be), `data` (protocol bytes, whole messages), `close`. Out: `ready`/`failed` once, then
 * `data` (the answer to each `data`, in order, possibly empty), `fatal`, `closed`.
 */

export interface EmbeddedWorkerInit {
  /** file: URL of PGlite's ES module (a data: URL module cannot resolve package names). */
  pglite: string;
  dataDir: string;
  username?: string;
  /** PGlite's WASM module, compiled once by the main thread (saves ~0.5 s per start). */
  wasmModule?: WebAssembly.Module;
}

export type ToWorker = { type: 'open' } | { type: 'data'; bytes: Uint8Array } | { type: 'close' };
export type FromWorker =
  | { type: 'ready'; user: string }
  | { type: 'failed'; message: string }
  | { type: 'data'; bytes: Uint8Array }
  | { type: 'fatal'; message: string }
  | { type: 'closed' };

export const EMBEDDED_WORKER_SOURCE = String.raw`
import { parentPort, workerData } from 'node:worker_threads';

const init = workerData;
const { PGlite } = await import(init.pglite);
const db = new PGlite(init.dataDir, {
  // 32 MB of shared buffers, not PGlite's 128: zeroing them was half a second of every start (a CLI
  // command's whole budget), and pages beyond them come from the OS cache of the data directory.
  startParams: [...PGlite.defaultStartParams, '-c', 'shared_buffers=32MB'],
  ...(init.username ? { username: init.username } : {}),
  ...(init.wasmModule ? { pgliteWasmModule: init.wasmModule } : {}),
});
const post = (m) => parentPort.postMessage(m);
const EMPTY = new Uint8Array(0);

// Connections opened so far: the first gets the session as it started, later ones a reset one.
let connections = 0;
// A connection's first message is its startup packet (no type byte).
let expectStartup = false;
// Bytes of a message not yet complete (the main thread sends whole messages; kept for safety).
let partial = EMPTY;

// One array of its own: a single answer may be a view of PGlite's receive buffer (the startup
// packet's is), and posting a view would copy the whole buffer behind it.
function concat(parts) {
  if (parts.length === 1) {
    const p = parts[0];
    return p.byteOffset === 0 && p.byteLength === p.buffer.byteLength ? p : p.slice();
  }
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

// Run each whole message (PGlite takes them one at a time, as pglite-socket feeds them).
async function run(bytes) {
  const buf = partial.length ? concat([partial, bytes]) : bytes;
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const answers = [];
  let at = 0;
  for (;;) {
    const header = expectStartup ? 4 : 5;
    if (buf.length - at < header) break;
    const length = expectStartup ? view.getInt32(at) : 1 + view.getInt32(at + 1);
    if (buf.length - at < length) break;
    const message = buf.subarray(at, at + length);
    at += length;
    if (expectStartup) expectStartup = false;
    // Terminate: the connection goes, the session stays (the next open resets it).
    else if (message[0] === 0x58) continue;
    const answer = await db.execProtocolRaw(message);
    if (answer.length) answers.push(answer);
  }
  partial = at < buf.length ? buf.slice(at) : EMPTY;
  return answers.length ? concat(answers) : EMPTY;
}

// A new connection gets what a new server session would: no transaction, prepared statement,
// portal, setting, temp table, listen or lock left by the one before.
async function open() {
  partial = EMPTY;
  expectStartup = true;
  if (connections++ === 0) return;
  await db.exec('ROLLBACK').catch(() => {});
  await db.exec('DISCARD ALL');
}

let queue = Promise.resolve();
parentPort.on('message', (m) => {
  queue = queue.then(async () => {
    try {
      // Copied to the main thread, not moved: PGlite might still hold what it handed back.
      if (m.type === 'data') post({ type: 'data', bytes: await run(m.bytes) });
      else if (m.type === 'open') await open();
      else if (m.type === 'close') {
        if (!db.closed) await db.close();
        post({ type: 'closed' });
      }
    } catch (err) {
      post({ type: 'fatal', message: String(err && err.message ? err.message : err) });
    }
  });
});

try {
  await db.waitReady;
  const user = (await db.query('SELECT current_user AS u')).rows[0]?.u ?? 'postgres';
  post({ type: 'ready', user });
} catch (err) {
  post({ type: 'failed', message: String(err && err.message ? err.message : err) });
}
`;
