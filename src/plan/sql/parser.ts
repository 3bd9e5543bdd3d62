import { fingerprintSync, loadModule, normalizeSync, parseSync } from 'libpg-query';

let loading: Promise<void> | undefined;
let ready = false;

/** Loads the PostgreSQL parser (WASM) once per process; afterwards parsing is synchronous (~40 µs). */
export async function loadParser(): Promise<void> {
  if (ready) return;
  loading ??= loadModule().then(() => {
    ready = true;
  });
  await loading;
}

export interface ParseFailure {
  message: string;
  /** 0-based offset into the text where the parser stopped. */
  position?: number;
}

/** Parses with the real PostgreSQL grammar. Call `loadParser()` first. */
export function parseSql(text: string): { ok: true; tree: { stmts: Array<{ stmt: Record<string, unknown> }> } } | { ok: false; error: ParseFailure } {
  if (!ready) throw new Error('parser not loaded: await loadParser() at startup');
  try {
    const tree = parseSync(text) as { stmts?: Array<{ stmt: Record<string, unknown> }> };
    return { ok: true, tree: { stmts: tree.stmts ?? [] } };
  } catch (err) {
    const e = err as { message?: string; sqlDetails?: { cursorPosition?: number } };
    const failure: ParseFailure = { message: e.message ?? String(err) };
    const pos = e.sqlDetails?.cursorPosition;
    if (typeof pos === 'number') failure.position = pos;
    return { ok: false, error: failure };
  }
}

/**
 * The audit trail's view of a statement: constants replaced by $n (no literal value survives) and
 * libpg_query's fingerprint (the same for statements that differ only in their constants).
 */
export function sqlFingerprint(text: string): { normalized: string; fingerprint: string } {
  if (!ready) throw new Error('parser not loaded: await loadParser() at startup');
  return { normalized: normalizeSync(text), fingerprint: fingerprintSync(text) };
}
