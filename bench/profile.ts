/**
 * A CPU profile of this process (the in-process gateway) while something else drives it, taken
 * with the inspector's Profiler, and a summary of where the self time went: tenantgate's own
 * code, Fastify, pg, validation, JSON, Node's I/O, GC.
 */
import { Session } from 'node:inspector/promises';
import { resolve } from 'node:path';

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
  columnNumber: number;
}
interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  hitCount?: number;
  children?: number[];
}
export interface Profile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples?: number[];
  timeDeltas?: number[];
}

export interface ProfileSummary {
  /** Wall time profiled and the part of it the main thread was busy (not idle), ms. */
  wallMs: number;
  busyMs: number;
  categories: Array<{ name: string; ms: number; share: number }>;
  top: Array<{ name: string; where: string; category: string; ms: number; share: number }>;
}

/** Profile the main thread while `fn` runs. */
export async function cpuProfile<T>(fn: () => Promise<T>, intervalUs = 500): Promise<{ value: T; profile: Profile }> {
  const session = new Session();
  session.connect();
  try {
    await session.post('Profiler.enable');
    await session.post('Profiler.setSamplingInterval', { interval: intervalUs });
    await session.post('Profiler.start');
    const outcome = await fn().then(
      (value) => ({ ok: true as const, value }),
      (error: unknown) => ({ ok: false as const, error }),
    );
    const { profile } = (await session.post('Profiler.stop')) as { profile: Profile };
    if (!outcome.ok) throw outcome.error;
    const value = outcome.value;
    await session.post('Profiler.disable');
    return { value, profile };
  } finally {
    session.disconnect();
  }
}

const ROOT = resolve(import.meta.dirname, '..');

const PACKAGES: Array<[RegExp, string]> = [
  [/node_modules\/secure-json-parse\//, 'JSON (request body parse, reply serialize)'],
  [/node_modules\/(fastify|@fastify|find-my-way|light-my-request|avvio|fast-json-stringify|secure-json-parse|toad-cache|rfdc|safe-regex2|ret|fast-querystring|fast-decode-uri-component|abstract-logging|process-warning|json-schema-ref-resolver|ajv[^/]*|fast-uri|content-type)\//, 'Fastify (routing, hooks, reply, body parsing)'],
  [/node_modules\/(pino|@pinojs|pino-[^/]+|sonic-boom|thread-stream)\//, 'pino'],
  [/node_modules\/(pg|pg-protocol|pg-pool|pg-types|pg-int8|postgres-[^/]+|pgpass|pg-connection-string|split2)\//, 'pg (driver, protocol, pool)'],
  [/node_modules\/zod\//, 'zod (request validation)'],
  [/node_modules\/(libpg-query|pgsql-[^/]+|@pgsql)\//, 'SQL parser (libpg-query, deparser)'],
  [/node_modules\/(tsx|esbuild|get-tsconfig)\//, 'tsx loader'],
];

/** Native V8 builtins and Node bindings show with no URL (JSON.parse/stringify mostly count as their JS caller's self time). */
const JSON_FUNCTIONS = new Set(['parse', 'stringify', 'JSON.parse', 'JSON.stringify']);
const SOCKET_FUNCTIONS = /^(writev|writeBuffer|writeUtf8String|writeLatin1String|writeAsciiString|writeUcs2String|readStart|readStop|onStreamRead|shutdown|close)$/;

/** Native functions (no URL) count for the JS that called them, except socket writes, JSON and crypto. */
function category(f: CallFrame, caller?: CallFrame): string {
  const name = f.functionName;
  if (!f.url && caller?.url && !/^\(/.test(name)) {
    if (SOCKET_FUNCTIONS.test(name)) return 'socket I/O bindings (syscalls)';
    if (/internal\/crypto/.test(caller.url)) return 'crypto (HMAC, hashes)';
    return category(caller);
  }
  if (name === '(idle)') return 'idle';
  if (name === '(garbage collector)') return 'GC';
  if (name === '(program)') return 'V8/Node runtime, unattributed ("(program)")';
  const url = f.url;
  if (!url) {
    if (JSON_FUNCTIONS.has(name)) return 'JSON (parse/stringify builtins)';
    if (SOCKET_FUNCTIONS.test(name)) return 'socket I/O bindings (syscalls)';
    if (/hmac|hash|digest|random|timingSafeEqual/i.test(name)) return 'crypto (HMAC, hashes)';
    return 'other native builtins';
  }
  if (url.includes(`${ROOT}/src/`)) return 'tenantgate (src/)';
  // Fastify's reply serializer is JSON.stringify (a builtin, so its time shows as the caller's).
  if (/node_modules\/fastify\/lib\/reply\.js$/.test(url) && name === 'serialize') return 'JSON (request body parse, reply serialize)';
  if (url.includes(`${ROOT}/bench/`)) return 'benchmark harness';
  for (const [re, cat] of PACKAGES) if (re.test(url)) return cat;
  if (/node_modules\//.test(url)) return `other packages`;
  if (/^node:(net|internal\/stream_base_commons|internal\/net|internal\/streams|stream|internal\/dns)/.test(url)) return 'Node net/streams (JS side of socket I/O)';
  if (/^node:(_http|http|internal\/http)/.test(url)) return 'Node http (parser, server response)';
  if (/^node:(crypto|internal\/crypto)/.test(url)) return 'crypto (HMAC, hashes)';
  if (/^node:/.test(url)) return 'Node core, other (timers, events, buffers, promises)';
  return 'other';
}

function where(f: CallFrame, caller?: CallFrame): string {
  const url = f.url;
  if (!url) return caller?.url ? `(native, from ${where(caller)})` : '(native)';
  const local = url.replace(`file://${ROOT}/`, '');
  const short = local.includes('node_modules/') ? local.slice(local.lastIndexOf('node_modules/') + 'node_modules/'.length) : local;
  return `${short}:${f.lineNumber + 1}`;
}

/** Self time by category and the functions with the most self time (idle excluded from shares). */
export function summariseProfile(profile: Profile, topN = 15): ProfileSummary {
  const wallMs = (profile.endTime - profile.startTime) / 1000;
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, ProfileNode>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n);
  // The nearest caller with a URL (natives often call natives).
  const jsCaller = (id: number): CallFrame | undefined => {
    for (let p = parent.get(id); p; p = parent.get(p.id)) if (p.callFrame.url) return p.callFrame;
    return undefined;
  };
  // Self time per node from the samples and their time deltas (delta i+1 is sample i's duration).
  const self = new Map<number, number>();
  const samples = profile.samples ?? [];
  const deltas = profile.timeDeltas ?? [];
  for (let i = 0; i < samples.length; i++) {
    const dt = (deltas[i + 1] ?? deltas[i] ?? 0) / 1000;
    self.set(samples[i] as number, (self.get(samples[i] as number) ?? 0) + dt);
  }
  const cats = new Map<string, number>();
  const fns = new Map<string, { name: string; where: string; category: string; ms: number }>();
  let idle = 0;
  for (const [id, ms] of self) {
    const node = byId.get(id);
    if (!node) continue;
    const cat = category(node.callFrame, jsCaller(id));
    if (cat === 'idle') {
      idle += ms;
      continue;
    }
    cats.set(cat, (cats.get(cat) ?? 0) + ms);
    const caller = node.callFrame.url ? undefined : jsCaller(id);
    const key = `${node.callFrame.functionName}@${node.callFrame.url}:${node.callFrame.lineNumber}@${caller?.url ?? ''}:${caller?.lineNumber ?? ''}`;
    const f = fns.get(key) ?? { name: node.callFrame.functionName || '(anonymous)', where: where(node.callFrame, caller), category: cat, ms: 0 };
    f.ms += ms;
    fns.set(key, f);
  }
  const busyMs = [...cats.values()].reduce((a, b) => a + b, 0);
  const share = (ms: number) => (busyMs > 0 ? ms / busyMs : 0);
  return {
    wallMs,
    busyMs: busyMs || wallMs - idle,
    categories: [...cats].map(([name, ms]) => ({ name, ms, share: share(ms) })).sort((a, b) => b.ms - a.ms),
    top: [...fns.values()]
      .sort((a, b) => b.ms - a.ms)
      .slice(0, topN)
      .map((f) => ({ ...f, share: share(f.ms) })),
  };
}

/** The part of a profile between two offsets from its start (ms): a whole-process profile cut to the measured round. */
export function trimProfile(profile: Profile, fromMs: number, toMs: number): Profile {
  const samples: number[] = [];
  const timeDeltas: number[] = [];
  let t = profile.startTime;
  let last: number | undefined;
  const from = profile.startTime + fromMs * 1000;
  const to = profile.startTime + toMs * 1000;
  (profile.samples ?? []).forEach((s, i) => {
    t += profile.timeDeltas?.[i] ?? 0;
    if (t < from || t > to) return;
    samples.push(s);
    timeDeltas.push(last === undefined ? 0 : t - last);
    last = t;
  });
  return { ...profile, samples, timeDeltas, startTime: from, endTime: Math.min(to, last ?? to) };
}

/** Time with each function on the stack (inclusive), for frames whose location matches `where`, ms. */
export function inclusiveTimes(profile: Profile, where: RegExp, topN = 25): Array<{ name: string; where: string; ms: number }> {
  const parent = new Map<number, ProfileNode>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n);
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const total = new Map<string, { name: string; where: string; ms: number }>();
  const samples = profile.samples ?? [];
  const deltas = profile.timeDeltas ?? [];
  for (let i = 0; i < samples.length; i++) {
    const dt = (deltas[i + 1] ?? deltas[i] ?? 0) / 1000;
    const seen = new Set<string>();
    for (let n = byId.get(samples[i] as number); n; n = parent.get(n.id)) {
      const f = n.callFrame;
      if (!where.test(f.url)) continue;
      const key = `${f.functionName}@${f.url}:${f.lineNumber}`;
      if (seen.has(key)) continue;
      seen.add(key);
      const e = total.get(key) ?? { name: f.functionName || '(anonymous)', where: `${f.url.replace(/^.*?\/(src|node_modules)\//, '$1/')}:${f.lineNumber + 1}`, ms: 0 };
      e.ms += dt;
      total.set(key, e);
    }
  }
  return [...total.values()].sort((a, b) => b.ms - a.ms).slice(0, topN);
}
