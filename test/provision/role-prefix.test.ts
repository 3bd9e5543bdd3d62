/**
 * Issue 13, defect 3: two databases on one server with the same role_prefix share role names
 * (roles are per server, the database is per project). The second project's apply (and plan)
 * refuses with ROLE_PREFIX_IN_USE naming the first database and suggesting a prefix; its doctor
 * reports TG022. The first project's own database-tier tenants' databases (`<prefix>_<id>`, on the
 * default server or on a placement that is this same server) are not a collision.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CliIO } from '../../src/cli/io.ts';
import { main } from '../../src/cli/main.ts';
import { createServerDatabase, fixture, SERVER_URL, type ServerDatabase } from '../support/backends.ts';

interface Run {
  code: number;
  out: string;
  err: string;
}

const SECRET = 'a-test-secret-of-at-least-32-characters-0123456789';

/** seed003's config with database.url and role_prefix from the environment; globex_inc in its own database, initech on a placement. */
const FIRST = `${fixture('seed003.yaml')
  .replace('url: ${TG_TEST_DB}', 'url: ${OWNER_URL}\n  placements:\n    same-server: { url_env: PLACEMENT_URL }')
  .replace('name: Globex Inc', 'name: Globex Inc\n    tier: database')}  - id: initech
    name: Initech
    tier: database
    placement: same-server
    attributes: { region: West }
`;
const SECOND = fixture('seed003.yaml').replace('url: ${TG_TEST_DB}', 'url: ${OWNER_URL}');

describe.skipIf(!SERVER_URL)('two databases on one server with one role_prefix (PostgreSQL)', () => {
  let first: ServerDatabase;
  let second: ServerDatabase;
  let root: string;
  let prefix: string;
  let suggested = '';

  const cli = (name: string, yaml: string, env: Record<string, string | undefined>) => {
    const dir = join(root, name);
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'tenantgate.yaml'), yaml);
    return async (...argv: string[]): Promise<Run> => {
      let out = '';
      let err = '';
      const io: CliIO = { stdout: (t) => void (out += t), stderr: (t) => void (err += t), env: { PATH: process.env['PATH'], TENANTGATE_SECRET: SECRET, ...env }, cwd: dir, isTTY: false };
      const code = await main(['--config', join(dir, 'tenantgate.yaml'), ...argv], io);
      return { code, out, err };
    };
  };
  const query = async (url: string, sql: string, params: unknown[] = []) => {
    const c = new pg.Client({ connectionString: url });
    await c.connect();
    try {
      return (await c.query(sql, params)).rows;
    } finally {
      await c.end();
    }
  };

  beforeAll(async () => {
    root = mkdtempSync(join(tmpdir(), 'tg-role-prefix-'));
    first = await createServerDatabase(fixture('seed003.sql'));
    second = await createServerDatabase(fixture('seed003.sql'));
    prefix = first.prefix;
  }, 60_000);
  afterAll(async () => {
    await second?.drop();
    await first?.drop();
    if (suggested) {
      // Roles made under the suggested prefix (second.drop() removed the database holding their grants).
      const roles = await query(SERVER_URL as string, `SELECT rolname FROM pg_roles WHERE rolname LIKE $1`, [`${suggested.replace(/_/g, '\\_')}\\_%`]);
      for (const r of roles) await query(SERVER_URL as string, `DROP ROLE IF EXISTS "${r['rolname']}"`);
    }
    rmSync(root, { recursive: true, force: true });
  });

  const firstCli = () => cli('first', FIRST, { OWNER_URL: first.url, PLACEMENT_URL: SERVER_URL, TG_TEST_PREFIX: prefix });
  const secondCli = (yaml = SECOND, p = prefix) => cli('second', yaml, { OWNER_URL: second.url, TG_TEST_PREFIX: p });

  it("the first project's own tenant databases (default server and a placement on the same server) are no collision", async () => {
    const run = firstCli();
    const applied = await run('apply');
    expect(applied.code, applied.err).toBe(0);
    const dbs = (await query(first.url, `SELECT datname::text AS d FROM pg_database WHERE datname LIKE $1 ORDER BY 1`, [`${prefix}\\_%`])).map((r) => r['d']);
    expect(dbs).toEqual([`${prefix}_globex_inc`, `${prefix}_initech`]);
    // They hold grants to the prefix's roles (the very thing the check looks for), and yet:
    const again = await run('apply');
    expect(again.code, again.err).toBe(0);
    expect((await run('plan')).code).toBe(0);
    const doctor = await run('--json', 'doctor');
    expect(doctor.err).toBe('');
    expect((JSON.parse(doctor.out) as { findings: Array<{ id: string }> }).findings.filter((f) => f.id === 'TG022')).toEqual([]);
  }, 120_000);

  it('the second database with the same prefix: apply and plan refuse with ROLE_PREFIX_IN_USE naming the first, and change nothing', async () => {
    const run = secondCli();
    const applied = await run('apply');
    expect(applied.code).toBe(2);
    expect(applied.err).toContain('ROLE_PREFIX_IN_USE');
    expect(applied.err).toContain(first.name);
    expect(applied.err).toMatch(/database\.role_prefix: [a-z][a-z0-9_]{0,19} /);
    suggested = /database\.role_prefix: ([a-z][a-z0-9_]*)/.exec(applied.err)![1]!;
    expect(suggested).not.toBe(prefix);
    // The config file and key are named (the prefix comes from the default, so the file's top).
    expect(applied.err).toContain('(database.role_prefix)');
    // Nothing was made in the second database.
    expect(await query(second.url, `SELECT 1 FROM pg_namespace WHERE nspname = 'tenantgate'`)).toEqual([]);

    const json = await run('--json', 'apply');
    expect(json.code).toBe(2);
    const doc = JSON.parse(json.out) as { error: { code: string; message: string; hint: string; location: { key: string } } };
    expect(doc.error).toMatchObject({ code: 'ROLE_PREFIX_IN_USE', location: { key: 'database.role_prefix' } });
    expect(doc.error.message).toContain(first.name);
    expect(doc.error.hint).toContain(`database.role_prefix: ${suggested}`);

    const plan = await run('plan');
    expect(plan.code).toBe(2);
    expect(plan.err).toContain('ROLE_PREFIX_IN_USE');
    // A dry run and a rotation refuse alike (the login is the first project's).
    expect((await run('apply', '--dry-run')).code).toBe(2);
    expect((await run('apply', '--rotate-gateway-password')).code).toBe(2);
  }, 120_000);

  it('doctor on the second database reports TG022 naming the first', async () => {
    const run = secondCli();
    const doctor = await run('--json', 'doctor');
    expect(doctor.code).toBe(1);
    const found = (JSON.parse(doctor.out) as { findings: Array<{ id: string; severity: string; object: string; message: string }> }).findings.filter((f) => f.id === 'TG022');
    // The first project's main database, and its tenant initech's (not a tenant of the second); globex_inc's
    // database has the name the second project's own globex_inc would have in tier database, so it is left to it.
    expect(found).toEqual([
      expect.objectContaining({ severity: 'high', object: `database ${first.name}`, message: expect.stringContaining(`role_prefix "${prefix}" is in use by database ${first.name}`) }),
      expect.objectContaining({ severity: 'high', object: `database ${prefix}_initech` }),
    ]);
  }, 60_000);

  it('with the suggested prefix the second apply goes through, and neither project sees the other', async () => {
    const run = secondCli(SECOND, suggested);
    const applied = await run('apply');
    expect(applied.code, applied.err).toBe(0);
    const doctor = await run('--json', 'doctor');
    expect((JSON.parse(doctor.out) as { findings: Array<{ id: string }> }).findings.filter((f) => f.id === 'TG022')).toEqual([]);
    const firstDoctor = await firstCli()('--json', 'doctor');
    expect((JSON.parse(firstDoctor.out) as { findings: Array<{ id: string }> }).findings.filter((f) => f.id === 'TG022')).toEqual([]);
  }, 120_000);
});
