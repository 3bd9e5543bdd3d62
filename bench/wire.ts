/**
 * What a pg client really puts on the wire for one request: every frontend message, in which
 * socket write and which round trip, decoded from the client's own socket. The HTTP benchmark
 * records one gateway request with it and builds its pgbench scripts from the recording, so the
 * pgbench side sends what the gateway sends, whatever src/execute does at the time of the run.
 */
import type { Socket } from 'node:net';
import type pg from 'pg';

export interface FrontendMessage {
  /** Protocol message type: Q (simple query), P, B, D, E, S (Sync), H (Flush), C (Close), … */
  type: string;
  /** Q: the query text; P: the statement text. */
  text?: string;
  /** P and B: statement name ('' = unnamed). */
  statement?: string;
  /** B: parameter values in text format (null = SQL NULL). */
  params?: Array<string | null>;
}

/** One statement as the server runs it. */
export interface WireStatement {
  protocol: 'simple' | 'extended';
  text: string;
  /** Extended protocol: the statement name ('' = unnamed). */
  name: string;
  /** Extended protocol: whether this request sent a Parse for it (false: prepared earlier on the connection). */
  parsed: boolean;
  params: Array<string | null>;
}

export interface RoundTrip {
  /** Socket writes (syscalls, counting corked writes as one). */
  writes: number;
  bytes: number;
  messages: FrontendMessage[];
  statements: WireStatement[];
  /** Sync messages plus simple Query messages: each is answered by a ReadyForQuery. */
  syncPoints: number;
  /** Backend message types received in this round trip, with counts (Z = ReadyForQuery). */
  server: Record<string, number>;
}

export interface Capture {
  roundTrips: RoundTrip[];
}

/** Splits a byte stream into protocol messages (1-byte type, int32 length including itself). */
class MessageReader {
  private buf: Buffer = Buffer.alloc(0);
  push(chunk: Buffer, onMessage: (type: string, body: Buffer) => void): void {
    this.buf = this.buf.length ? Buffer.concat([this.buf, chunk]) : chunk;
    let off = 0;
    while (this.buf.length - off >= 5) {
      const len = this.buf.readInt32BE(off + 1);
      if (this.buf.length - off < 1 + len) break;
      onMessage(String.fromCharCode(this.buf[off] as number), this.buf.subarray(off + 5, off + 1 + len));
      off += 1 + len;
    }
    this.buf = this.buf.subarray(off);
  }
}

function cstring(b: Buffer, off: number): [string, number] {
  const end = b.indexOf(0, off);
  return [b.toString('utf8', off, end), end + 1];
}

function decodeFrontend(type: string, body: Buffer): FrontendMessage {
  switch (type) {
    case 'Q':
      return { type, text: cstring(body, 0)[0] };
    case 'P': {
      const [statement, o] = cstring(body, 0);
      return { type, statement, text: cstring(body, o)[0] };
    }
    case 'B': {
      const [, afterPortal] = cstring(body, 0);
      const [statement, afterName] = cstring(body, afterPortal);
      let o = afterName;
      const formats = body.readInt16BE(o);
      o += 2 + 2 * formats;
      const n = body.readInt16BE(o);
      o += 2;
      const params: Array<string | null> = [];
      for (let i = 0; i < n; i++) {
        const len = body.readInt32BE(o);
        o += 4;
        if (len < 0) params.push(null);
        else {
          params.push(body.toString('utf8', o, o + len));
          o += len;
        }
      }
      return { type, statement, params };
    }
    default:
      return { type };
  }
}

/**
 * Records the frontend and backend messages of every connection a pool opens from now on.
 * `record(fn)` captures what `fn` sends; a client write that follows server data starts a new
 * round trip (the client had to read an answer before sending it).
 */
export class WireRecorder {
  private recording: Capture | undefined;
  private serverSinceWrite = false;
  /** Statement texts by name (a name means one text on every connection), so a Bind of a statement prepared earlier is resolved. */
  private readonly prepared = new Map<string, string>();

  attach(pool: pg.Pool): void {
    pool.on('connect', (client) => this.attachClient(client));
  }

  private attachClient(client: pg.PoolClient): void {
    const stream = (client as unknown as { connection: { stream: Socket } }).connection.stream;
    const statements = this.prepared;
    const out = new MessageReader();
    const inbound = new MessageReader();
    let pendingCorked = false;
    const write = stream.write.bind(stream) as (...args: unknown[]) => boolean;
    const uncork = stream.uncork.bind(stream);
    const rt = () => this.roundTrip();
    (stream as unknown as { write: (...args: unknown[]) => boolean }).write = (chunk: unknown, ...rest: unknown[]) => {
      const buf = Buffer.isBuffer(chunk) ? chunk : Buffer.from(String(chunk));
      const trip = this.recording ? rt() : undefined;
      if (trip) trip.bytes += buf.length;
      out.push(buf, (type, body) => {
        const msg = decodeFrontend(type, body);
        if (msg.type === 'P') statements.set(msg.statement as string, msg.text as string);
        trip?.messages.push(msg);
      });
      if (stream.writableCorked) pendingCorked = true;
      else if (trip) trip.writes++;
      return write(chunk, ...rest);
    };
    stream.uncork = () => {
      uncork();
      if (stream.writableCorked === 0 && pendingCorked) {
        pendingCorked = false;
        const trip = this.recording ? rt() : undefined;
        if (trip) trip.writes++;
      }
    };
    stream.on('data', (chunk: Buffer) => {
      if (!this.recording) return;
      this.serverSinceWrite = true;
      const trip = this.recording.roundTrips.at(-1);
      inbound.push(chunk, (type) => {
        if (trip) trip.server[type] = (trip.server[type] ?? 0) + 1;
      });
    });
  }

  /** The round trip a client write now belongs to. */
  private roundTrip(): RoundTrip {
    const cap = this.recording as Capture;
    let trip = cap.roundTrips.at(-1);
    if (!trip || this.serverSinceWrite) {
      trip = { writes: 0, bytes: 0, messages: [], statements: [], syncPoints: 0, server: {} };
      cap.roundTrips.push(trip);
      this.serverSinceWrite = false;
    }
    return trip;
  }

  /** Run `fn` (one request, alone on the pool) and return what it put on the wire. */
  async record(fn: () => Promise<unknown>): Promise<Capture> {
    const cap: Capture = { roundTrips: [] };
    this.recording = cap;
    this.serverSinceWrite = false;
    try {
      await fn();
    } finally {
      this.recording = undefined;
    }
    for (const trip of cap.roundTrips) resolveStatements(trip, this.prepared);
    return cap;
  }
}

function resolveStatements(trip: RoundTrip, prepared: Map<string, string>): void {
  const parsedHere = new Map<string, string>();
  for (const m of trip.messages) {
    if (m.type === 'Q') {
      trip.syncPoints++;
      trip.statements.push({ protocol: 'simple', text: m.text as string, name: '', parsed: true, params: [] });
    } else if (m.type === 'S') trip.syncPoints++;
    else if (m.type === 'P') parsedHere.set(m.statement as string, m.text as string);
    else if (m.type === 'B') {
      const name = m.statement as string;
      const text = parsedHere.get(name) ?? prepared.get(name) ?? '?';
      trip.statements.push({ protocol: 'extended', text, name, parsed: parsedHere.has(name), params: m.params ?? [] });
    }
  }
}
