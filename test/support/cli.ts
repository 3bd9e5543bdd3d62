/**
 * The CLI run in-process: on a database it opens itself (database.url of seed003.yaml), which is a
 * seeded PGlite data directory or a server fixture's database.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { main } from '../../src/cli/main.ts';
import { parseConfig } from '../../src/config/load.ts';
import type { Config } from '../../src/config/types.ts';
import type { Database } from '../../src/db/database.ts';
import { applyProvision } from '../../src/provision/apply.ts';
import { openDatabase } from '../../src/db/database.ts';
import { createFixture, createServerDatabase, fixture, seedPgliteDir, TEST_SECRET, withPgliteDir, type BackendKind, type Fixture, type ServerDatabase } from './backends.ts';

/** What the CLI printed and returned. */
export interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
}

/** seed003.yaml written to a temp folder, the CLI run there on the database `d` names, the folder removed after. */
export async function runSeedCli(d: { url: string; prefix: string }, args: string[]): Promise<CliRun> {
  const dir = mkdtempSync(join(tmpdir(), 'tg-cli-'));
  try {
    writeFileSync(join(dir, 'tenantgate.yaml'), fixture('seed003.yaml'));
    let stdout = '';
    let stderr = '';
    const code = await main(['--config', join(dir, 'tenantgate.yaml'), ...args], {
      stdout: (t) => void (stdout += t),
      stderr: (t) => void (stderr += t),
      env: { TG_TEST_DB: d.url, TG_TEST_PREFIX: d.prefix, TENANTGATE_SECRET: TEST_SECRET.toString() },
      cwd: dir,
      isTTY: false,
    });
    return { code, stdout, stderr };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The CLI against a fixture; stdout and stderr together. */
export async function runCli(fx: Fixture, args: string[]): Promise<{ code: number; out: string }> {
  const r = await runSeedCli(fx, args);
  return { code: r.code, out: r.stdout + r.stderr };
}

/** A database the CLI opens itself, seed003.yaml applied; `owner` opens it between commands (a data directory takes one opener at a time). */
export interface CliDatabase {
  url: string;
  prefix: string;
  config: Config;
  owner<T>(fn: (db: Database) => Promise<T>): Promise<T>;
  cleanup(): Promise<void>;
}

/** `sql` run as the owner before apply, `prepare` after it. */
export async function cliDatabase(kind: BackendKind, options: { sql?: string; prepare?: (db: Database) => Promise<void> } = {}): Promise<CliDatabase> {
  const sql = options.sql ?? fixture('seed003.sql');
  if (kind === 'postgres') {
    const fx = await createFixture('postgres', { sql });
    await options.prepare?.(fx.db);
    return { url: fx.url, prefix: fx.prefix, config: fx.config, owner: (fn) => fn(fx.db), cleanup: () => fx.cleanup() };
  }
  const root = mkdtempSync(join(tmpdir(), 'tg-cli-db-'));
  const pgdata = join(root, 'pgdata');
  await seedPgliteDir(pgdata, sql);
  const url = `pglite://${pgdata}`;
  const prefix = `tg${Math.random().toString(16).slice(2, 10)}`;
  const env = { TG_TEST_DB: url, TG_TEST_PREFIX: prefix };
  const config = await parseConfig(fixture('seed003.yaml'), join(root, 'tenantgate.yaml'), { env });
  await withPgliteDir(pgdata, async (db) => {
    await applyProvision(config, db, TEST_SECRET, { env });
    await options.prepare?.(db);
  });
  return { url, prefix, config, owner: (fn) => withPgliteDir(pgdata, fn), cleanup: async () => rmSync(root, { recursive: true, force: true }) };
}

/** What `run` answers: exit code, what it printed, and stdout as JSON. */
export interface FolderRun {
  code: number;
  out: string;
  err: string;
  json: () => any; // eslint-disable-line @typescript-eslint/no-explicit-any
}

/**
 * An operator's folder: tenantgate.yaml (and whatever the test writes beside it) over a database
 * the CLI opens itself, a data directory in the folder or a new server database, seeded with `sql`.
 * `TG_TEST_DB` / `TG_TEST_PREFIX` in `env` name it for the YAML.
 */
export interface CliFolder {
  dir: string;
  file: string;
  env: Record<string, string | undefined>;
  /** The CLI in-process in the folder, with `--config tenantgate.yaml`. */
  run(...argv: string[]): Promise<FolderRun>;
  /** The owner's look at the database between commands (a data directory takes one opener at a time). */
  owner<T>(fn: (db: Database) => Promise<T>): Promise<T>;
  /** Make the database and write the YAML (call in beforeAll). */
  setup(): Promise<void>;
  cleanup(): Promise<void>;
}

export function cliFolder(kind: BackendKind, o: { sql: string; yaml: string; env?: Record<string, string | undefined>; name?: string }): CliFolder {
  const dir = mkdtempSync(join(tmpdir(), `tg-${o.name ?? 'cli'}-`));
  const file = join(dir, 'tenantgate.yaml');
  const env: Record<string, string | undefined> = { TENANTGATE_SECRET: TEST_SECRET.toString(), USER: 'alice', ...o.env };
  let server: ServerDatabase | undefined;
  return {
    dir,
    file,
    env,
    async run(...argv) {
      let out = '';
      let err = '';
      const code = await main(['--config', file, ...argv], { stdout: (t) => void (out += t), stderr: (t) => void (err += t), env, cwd: dir, isTTY: false });
      return { code, out, err, json: () => JSON.parse(out) };
    },
    async owner(fn) {
      const db = await openDatabase(env['TG_TEST_DB'] as string, { baseDir: dir, max: 1 });
      try {
        return await fn(db);
      } finally {
        await db.close();
      }
    },
    async setup() {
      if (kind === 'postgres') {
        server = await createServerDatabase(o.sql);
        env['TG_TEST_DB'] = server.url;
        env['TG_TEST_PREFIX'] = server.prefix;
      } else {
        await seedPgliteDir(join(dir, 'pgdata'), o.sql);
        env['TG_TEST_DB'] = `pglite://${join(dir, 'pgdata')}`;
      }
      writeFileSync(file, o.yaml);
    },
    async cleanup() {
      await server?.drop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
