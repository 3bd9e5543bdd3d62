/**
 * The migrations folder (issue 15): files named NNNN_name.sql in version order with the SHA-256
 * of their bytes; a misnamed file or a shared number is refused by name rather than skipped;
 * `migrate new` numbers the next file, writes the contract into its header and refuses bad names.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TenantGateError } from '../../src/errors/index.ts';
import { newMigration, readMigrations } from '../../src/migrate/files.ts';
import { checkStatements, prepareRewrite } from '../../src/migrate/rewrite.ts';

const root = mkdtempSync(join(tmpdir(), 'tg-migrate-files-'));
let n = 0;
/** A fresh folder holding the given files. */
function folder(files: Record<string, string | Buffer> = {}): string {
  const dir = join(root, `d${n++}`);
  mkdirSync(dir);
  for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text);
  return dir;
}

function invalid(fn: () => unknown): TenantGateError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(TenantGateError);
    expect((err as TenantGateError).code).toBe('MIGRATION_INVALID');
    return err as TenantGateError;
  }
  throw new Error('expected MIGRATION_INVALID, nothing was thrown');
}

beforeAll(prepareRewrite);
afterAll(() => rmSync(root, { recursive: true, force: true }));

describe('readMigrations', () => {
  it('is empty for a missing folder', () => {
    expect(readMigrations(join(root, 'nope'))).toEqual([]);
  });

  it('lists the .sql files in version order, with name, absolute path, text and the SHA-256 of the bytes', () => {
    // Non-ASCII and CRLF: the checksum is over the bytes as stored, not a normalized text.
    const second = Buffer.from("ALTER TABLE public.orders ADD COLUMN note text DEFAULT 'é';\r\n", 'utf8');
    const dir = folder({
      '0010_later.sql': 'SELECT 1;\n',
      '0002_add_note.sql': second,
      '0001_init.sql': 'CREATE TABLE public.t (id int);\n',
      'README.md': 'not a migration',
      'notes.txt': 'neither',
    });
    mkdirSync(join(dir, 'drafts.sql')); // a folder named .sql is not a file
    const files = readMigrations(dir);
    expect(files.map((f) => f.version)).toEqual(['0001', '0002', '0010']);
    expect(files.map((f) => f.name)).toEqual(['0001_init', '0002_add_note', '0010_later']);
    const f = files[1]!;
    expect(f.file).toBe(join(dir, '0002_add_note.sql'));
    expect(f.sql).toBe(second.toString('utf8'));
    expect(f.checksum).toBe(createHash('sha256').update(second).digest('hex'));
    expect(files[0]!.checksum).not.toBe(f.checksum);
  });

  it.each(['1_init.sql', '0001-init.sql', '0001_Init.sql', '0001_in it.sql', '00001_init.sql', '0001_.sql', '0001_init.SQL'])('refuses a misnamed .sql file: %s', (bad) => {
    const dir = folder({ '0001_ok.sql': 'SELECT 1;', [bad]: 'SELECT 2;' });
    const err = invalid(() => readMigrations(dir));
    expect(err.message).toContain(bad);
    expect(err.message).not.toContain('0001_ok.sql');
  });

  it('refuses two files with the same number, naming both', () => {
    const dir = folder({ '0001_a.sql': 'SELECT 1;', '0002_b.sql': 'SELECT 2;', '0002_c.sql': 'SELECT 3;' });
    const err = invalid(() => readMigrations(dir));
    expect(err.message).toContain('0002_b.sql');
    expect(err.message).toContain('0002_c.sql');
    expect(err.message).not.toContain('0001_a.sql');
  });

  it('refuses a path that is a file, not a folder', () => {
    const dir = folder({ 'x.txt': '' });
    invalid(() => readMigrations(join(dir, 'x.txt')));
  });
});

describe('newMigration', () => {
  it('makes the folder and writes 0001 with a header stating the contract; the file reads back and checks', () => {
    const dir = join(folder(), 'migrations');
    const path = newMigration(dir, 'add_order_note');
    expect(path).toBe(join(dir, '0001_add_order_note.sql'));
    const text = readFileSync(path, 'utf8');
    expect(text).toMatch(/pooled tables' names/);
    expect(text).toMatch(/one transaction each/);
    const files = readMigrations(dir);
    expect(files.map((f) => f.name)).toEqual(['0001_add_order_note']);
    // Only comments: a valid, empty migration until the author writes it.
    expect(checkStatements(files[0]!.sql, files[0]!.name)).toBe(0);
  });

  it('numbers after the last file, not after the count', () => {
    const dir = folder({ '0001_a.sql': '', '0007_b.sql': '' });
    expect(newMigration(dir, 'c')).toBe(join(dir, '0008_c.sql'));
    expect(newMigration(dir, 'd')).toBe(join(dir, '0009_d.sql'));
    expect(readMigrations(dir).map((f) => f.version)).toEqual(['0001', '0007', '0008', '0009']);
  });

  it.each(['Add_Note', 'add-note', 'add note', '', '../escape', 'x'.repeat(101)])('refuses the name %j and writes nothing', (bad) => {
    const dir = folder();
    const err = invalid(() => newMigration(dir, bad));
    expect(err.message).toMatch(/lower-case letters, digits and _/);
    expect(readdirSync(dir)).toEqual([]);
    expect(existsSync(join(dir, '..', 'escape.sql'))).toBe(false);
  });

  it('refuses to add to a folder holding a misnamed migration', () => {
    const dir = folder({ '0001_ok.sql': '', '2_bad.sql': '' });
    const err = invalid(() => newMigration(dir, 'next'));
    expect(err.message).toContain('2_bad.sql');
    expect(readdirSync(dir).sort()).toEqual(['0001_ok.sql', '2_bad.sql']);
  });

  it('refuses past 9999', () => {
    const dir = folder({ '9999_last.sql': '' });
    invalid(() => newMigration(dir, 'more'));
  });
});
