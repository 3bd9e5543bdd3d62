/**
 * pgbench scripts from a wire capture (bench/wire.ts): the same statements, with the same text
 * and the same parameters as the gateway sent them, one round trip of the gateway per pipeline
 * of pgbench. Parameters become pgbench variables, so pgbench sends them as bind parameters too:
 * the tenant and its HMAC per script file (`-D tenant_<j>=…`), the row id from `\set`, anything
 * else (role, timeout, row cap) as a constant (`-D c<k>=…`).
 */
import pg from 'pg';
import { runBatch } from './prototypes.ts';
import type { Capture, WireStatement } from './wire.ts';

export type PgbenchMode = 'extended' | 'prepared';

export interface ScriptCommand {
  text: string;
  /** Variable for each `$n` of `text` (index n-1): 'tenant', 'mac', 'id' or a constant's name. */
  vars: string[];
  /** Statement as captured (before splitting a multi-statement simple query). */
  from: WireStatement;
}

export interface ScriptShape {
  trips: ScriptCommand[][];
  /** Constant parameters by variable name (a plain object, so results survive JSON). */
  constants: Record<string, string>;
  /** [trip, command] of the statement that reads the row (the one bound to the id). */
  data: [number, number];
}

/** What the captured request was for, so its parameter values can be told apart. */
export interface CapturedValues {
  tenant: string;
  mac: string;
  id: number;
}

/** Calls `onParam(n, start, end)` for every `$n` outside quotes and comments; `onSemicolon` likewise for `;`. */
function scan(text: string, onParam: (n: number, start: number, end: number) => void, onSemicolon?: (at: number) => void): void {
  for (let i = 0; i < text.length; i++) {
    const ch = text[i];
    if (ch === "'" || ch === '"') {
      const close = ch;
      for (i++; i < text.length; i++) {
        if (text[i] === close) {
          if (text[i + 1] === close) i++;
          else break;
        }
      }
    } else if (ch === '-' && text[i + 1] === '-') {
      while (i < text.length && text[i] !== '\n') i++;
    } else if (ch === '$' && /[0-9]/.test(text[i + 1] ?? '') && !/[A-Za-z0-9_]/.test(text[i - 1] ?? '')) {
      let j = i + 1;
      while (/[0-9]/.test(text[j] ?? '')) j++;
      onParam(Number(text.slice(i + 1, j)), i, j);
      i = j - 1;
    } else if (ch === ';') onSemicolon?.(i);
  }
}

/** A simple-protocol query string split into its statements. */
export function splitStatements(text: string): string[] {
  const cuts: number[] = [];
  scan(text, () => {}, (at) => cuts.push(at));
  const out: string[] = [];
  let start = 0;
  for (const c of [...cuts, text.length]) {
    const s = text.slice(start, c).trim();
    if (s) out.push(s);
    start = c + 1;
  }
  return out;
}

/** The captured request as pgbench commands, one list per round trip. */
export function scriptShape(capture: Capture, values: CapturedValues): ScriptShape {
  const constants: Record<string, string> = {};
  const constantFor = (v: string) => {
    for (const [name, value] of Object.entries(constants)) if (value === v) return name;
    const name = `c${Object.keys(constants).length + 1}`;
    constants[name] = v;
    return name;
  };
  let data: [number, number] | undefined;
  const trips = capture.roundTrips.map((trip, t) => {
    const commands: ScriptCommand[] = [];
    for (const st of trip.statements) {
      if (st.protocol === 'simple') {
        for (const text of splitStatements(st.text)) commands.push({ text, vars: [], from: st });
        continue;
      }
      const vars = st.params.map((v) => {
        if (v === null) throw new Error(`a NULL parameter in ${st.text}: pgbench cannot send NULL`);
        const roles = [v === values.tenant && 'tenant', v === values.mac && 'mac', v === String(values.id) && 'id'].filter(Boolean) as string[];
        if (roles.length > 1) throw new Error(`parameter "${v}" is ambiguous (${roles.join(', ')}): capture with other values`);
        return roles[0] ?? constantFor(v);
      });
      if (vars.includes('id')) data = [t, commands.length];
      commands.push({ text: st.text, vars, from: st });
    }
    return commands;
  });
  if (!data) throw new Error(`no captured statement is bound to the row id ${values.id}: ${JSON.stringify(capture.roundTrips.map((t) => t.statements.map((s) => [s.text.slice(0, 60), s.params])))}`);
  return { trips, constants, data };
}

const varName = (v: string, file: number) => (v === 'tenant' || v === 'mac' ? `${v}_${file}` : v);

/** `$n` → `:variable` (pgbench numbers its own parameters in order of appearance). */
function withVariables(cmd: ScriptCommand, file: number): string {
  let out = '';
  let last = 0;
  scan(cmd.text, (n, start, end) => {
    const v = cmd.vars[n - 1];
    if (v === undefined) throw new Error(`$${n} has no captured value in ${cmd.text}`);
    out += `${cmd.text.slice(last, start)}:${varName(v, file)}`;
    last = end;
  });
  return `${out}${cmd.text.slice(last)}`;
}

/** Whether pgbench, numbering parameters by appearance, sends the captured text unchanged. */
export function sameText(cmd: ScriptCommand): boolean {
  const seen: number[] = [];
  scan(cmd.text, (n) => seen.push(n));
  return seen.every((n, i) => n === i + 1);
}

/** One script file: tenant `file` (its variables), ids drawn from `idBase` … `idBase + span - 1`. */
export function renderScript(shape: ScriptShape, file: number, idBase: number, span: number): string {
  const lines = [`\\set id ${idBase} + random(0, ${span - 1})`];
  for (const trip of shape.trips) {
    const pipeline = trip.length > 1;
    if (pipeline) lines.push('\\startpipeline');
    for (const cmd of trip) lines.push(`${withVariables(cmd, file)};`);
    if (pipeline) lines.push('\\endpipeline');
  }
  return `${lines.join('\n')}\n`;
}

/** `-D` arguments: the constants, and each file's tenant and HMAC. */
export function defineArgs(shape: ScriptShape, files: Array<{ tenant: string; mac: string }>): string[] {
  const args: string[] = [];
  for (const [name, value] of Object.entries(shape.constants)) args.push('-D', `${name}=${value}`);
  files.forEach((f, j) => args.push('-D', `tenant_${j}=${f.tenant}`, '-D', `mac_${j}=${f.mac}`));
  return args;
}

/**
 * Send the script's statements for one tenant and id the way pgbench frames them (each round
 * trip's commands under one Sync), as the gateway login; returns the data statement's row count.
 */
export async function replay(url: string, shape: ScriptShape, values: CapturedValues): Promise<number> {
  const pool = new pg.Pool({ connectionString: url, max: 1 });
  const client = await pool.connect();
  let rows = -1;
  try {
    for (const [t, trip] of shape.trips.entries()) {
      const statements = trip.map((cmd, k) => ({
        name: `tg_replay_${t}_${k}`,
        text: cmd.text,
        values: cmd.vars.map((v) => (v === 'tenant' ? values.tenant : v === 'mac' ? values.mac : v === 'id' ? String(values.id) : (shape.constants[v] as string))),
      }));
      const results = await runBatch(client, statements);
      if (t === shape.data[0]) rows = results[shape.data[1]]?.rowCount ?? -1;
    }
  } finally {
    client.release(true);
    await pool.end();
  }
  return rows;
}

/** Where pgbench's framing differs from the captured one (pgbench 15 has one Sync per pipeline, and one protocol mode per run). */
export function differences(capture: Capture, shape: ScriptShape, mode: PgbenchMode): string[] {
  const out: string[] = [];
  capture.roundTrips.forEach((trip, t) => {
    const cmds = shape.trips[t] ?? [];
    const pgbenchSyncs = cmds.length > 1 ? 1 : cmds.length;
    if (pgbenchSyncs !== trip.syncPoints) {
      out.push(`round trip ${t + 1}: the gateway sends ${trip.syncPoints} Sync/Query messages (${trip.syncPoints} ReadyForQuery answers), pgbench ${pgbenchSyncs} (${cmds.length > 1 ? 'one pipeline' : 'one command'})`);
    }
    for (const st of trip.statements) {
      if (st.protocol === 'simple') {
        const parts = splitStatements(st.text).length;
        out.push(
          `round trip ${t + 1}: \`${abbreviate(st.text)}\` goes as a simple Query${parts > 1 ? ` (${parts} statements in one message)` : ''}; pgbench sends ${parts > 1 ? 'each statement' : 'it'} with the extended protocol${mode === 'prepared' ? ', prepared' : ''}`,
        );
      } else if (st.name !== '' && mode === 'extended') {
        out.push(`round trip ${t + 1}: \`${abbreviate(st.text)}\` is a named statement prepared once per connection (${st.parsed ? 'parsed in this request' : 'no Parse'}); pgbench -M extended parses it every time`);
      } else if (st.name === '' && mode === 'prepared') {
        out.push(`round trip ${t + 1}: \`${abbreviate(st.text)}\` is unnamed (Parse, plan, execute every time); pgbench -M prepared prepares it once per connection`);
      }
    }
  });
  for (const trip of shape.trips) for (const cmd of trip) if (!sameText(cmd)) out.push(`\`${abbreviate(cmd.text)}\`: pgbench renumbers its parameters by appearance`);
  return out;
}

export function abbreviate(sql: string, max = 60): string {
  const flat = sql.replace(/\s+/g, ' ').trim();
  return flat.length > max ? `${flat.slice(0, max - 1)}…` : flat;
}
