import { resolve } from 'node:path';
import type { Config } from '../config/types.ts';
import type { Database } from '../db/database.ts';

/** Everything a command touches outside itself, so tests run commands in-process. */
export interface CliIO {
  stdout: (text: string) => void;
  stderr: (text: string) => void;
  env: Record<string, string | undefined>;
  cwd: string;
  isTTY: boolean;
  /** Resolves once stdout has room again (a slow reader at the other end of a pipe); streams await it between pages. */
  drain?: () => Promise<void>;
}

export interface GlobalOptions {
  config?: string;
  json?: boolean;
}

export function processIO(): CliIO {
  return {
    stdout: (t) => process.stdout.write(t),
    stderr: (t) => process.stderr.write(t),
    env: process.env,
    cwd: process.cwd(),
    isTTY: Boolean(process.stdout.isTTY),
    drain: () =>
      process.stdout.writableNeedDrain
        ? new Promise<void>((done) => {
            const end = () => {
              process.stdout.off('drain', end).off('close', end).off('error', end);
              done();
            };
            process.stdout.on('drain', end).on('close', end).on('error', end);
          })
        : Promise.resolve(),
  };
}

export function configPath(io: CliIO, opts: GlobalOptions): string {
  return resolve(io.cwd, opts.config ?? io.env['TENANTGATE_CONFIG'] ?? 'tenantgate.yaml');
}

export async function withConfig(io: CliIO, opts: GlobalOptions): Promise<Config> {
  const { loadConfig } = await import('../config/load.ts');
  return loadConfig(configPath(io, opts), { env: io.env });
}

/** Open the owner connection (database.url) for the duration of `fn`. */
export async function withOwnerDb<T>(config: Config, fn: (db: Database) => Promise<T>, max = 2): Promise<T> {
  const { openDatabase } = await import('../db/database.ts');
  const db = await openDatabase(config.effective.database.url, { baseDir: config.dir, max });
  try {
    return await fn(db);
  } finally {
    await db.close();
  }
}

export function printJson(io: CliIO, value: unknown): void {
  io.stdout(`${JSON.stringify(value, null, 2)}\n`);
}

/** A progress reporter: a redrawn line on a terminal, plain lines otherwise. */
export function progress(io: CliIO, label: string): (done: number, total: number) => void {
  let last = -1;
  return (done, total) => {
    const pct = total === 0 ? 100 : Math.floor((done / total) * 100);
    if (io.isTTY) {
      const width = 30;
      const filled = Math.round((pct / 100) * width);
      io.stderr(`\r${label} [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${done}/${total}${done === total ? '\n' : ''}`);
    } else if (pct >= last + 25 || done === total) {
      last = pct;
      io.stderr(`${label}: ${done}/${total} (${pct}%)\n`);
    }
  };
}

export function table(rows: string[][]): string {
  if (rows.length === 0) return '';
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  return rows.map((r) => r.map((c, i) => c.padEnd(widths[i] ?? 0)).join('  ').trimEnd()).join('\n') + '\n';
}
