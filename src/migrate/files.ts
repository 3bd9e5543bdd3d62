import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { TenantGateError } from '../errors/index.ts';

/** One migration file of the `migrations/` folder. */
export interface MigrationFile {
  /** The four digits: '0003'. */
  version: string;
  /** The file name without `.sql`: '0003_add_note' (what the ledger records). */
  name: string;
  /** Absolute path. */
  file: string;
  sql: string;
  /** SHA-256 (hex) of the file's bytes: an applied migration must not change. */
  checksum: string;
}

const FILE_NAME = /^(\d{4})_[a-z0-9_]+\.sql$/;
const MIGRATION_NAME = /^[a-z0-9_]+$/;
const MAX_NAME = 100;

/** The folder's migrations in version order; a missing folder has none. */
export function readMigrations(dir: string): MigrationFile[] {
  const abs = resolve(dir);
  if (!existsSync(abs)) return [];
  if (!statSync(abs).isDirectory()) throw new TenantGateError('MIGRATION_INVALID', `${abs} is not a folder`);
  const files: MigrationFile[] = [];
  const bad: string[] = [];
  for (const entry of readdirSync(abs, { withFileTypes: true })) {
    // Case-insensitive: `0001_X.SQL` must be reported, not silently skipped.
    if (!entry.isFile() || !/\.sql$/i.test(entry.name)) continue;
    const m = FILE_NAME.exec(entry.name);
    if (!m) {
      bad.push(entry.name);
      continue;
    }
    const file = join(abs, entry.name);
    const bytes = readFileSync(file);
    files.push({
      version: m[1] as string,
      name: entry.name.slice(0, -'.sql'.length),
      file,
      sql: bytes.toString('utf8'),
      checksum: createHash('sha256').update(bytes).digest('hex'),
    });
  }
  if (bad.length > 0) {
    throw new TenantGateError('MIGRATION_INVALID', `${bad.sort().join(', ')} in ${abs}: migration files are named NNNN_name.sql (four digits, then lower-case letters, digits and _)`);
  }
  files.sort((a, b) => (a.version < b.version ? -1 : a.version > b.version ? 1 : 0));
  const dupes = files.filter((f, i) => files.some((g, j) => j !== i && g.version === f.version));
  if (dupes.length > 0) {
    throw new TenantGateError('MIGRATION_INVALID', `${dupes.map((f) => `${f.name}.sql`).join(', ')} in ${abs}: two migrations share a number; renumber one`);
  }
  return files;
}

/** Creates the next migration file (version = last + 1, from 0001) with a header stating the contract; returns its path. */
export function newMigration(dir: string, name: string): string {
  if (typeof name !== 'string' || !MIGRATION_NAME.test(name) || name.length > MAX_NAME) {
    throw new TenantGateError(
      'MIGRATION_INVALID',
      `migration name ${JSON.stringify(name)}: use 1 to ${MAX_NAME} lower-case letters, digits and _ (e.g. tenantgate migrate new add_order_note)`,
    );
  }
  const abs = resolve(dir);
  // Reading first also refuses to add onto a folder that is already invalid.
  const last = readMigrations(abs).at(-1);
  const next = last ? Number(last.version) + 1 : 1;
  if (next > 9999) throw new TenantGateError('MIGRATION_INVALID', `${abs} already holds migration 9999: there is no next number`);
  const version = String(next).padStart(4, '0');
  mkdirSync(abs, { recursive: true });
  const file = join(abs, `${version}_${name}.sql`);
  const header = [
    `-- ${version}_${name}`,
    '-- Write this against the pooled tables\' names (e.g. public.orders). tenantgate runs it on every',
    '-- target in one transaction each: the main database, each schema-tier tenant (table names',
    "-- rewritten to the tenant's schema) and each database-tier tenant's database. So: no BEGIN/COMMIT,",
    '-- no CONCURRENTLY, and name tables directly, never inside a string (\'public.orders\'::regclass).',
    '-- Once applied anywhere the file must not change: write a new migration instead.',
    '',
    '',
  ].join('\n');
  // 'wx': never overwrite a file another `migrate new` just wrote.
  writeFileSync(file, header, { flag: 'wx' });
  return file;
}
