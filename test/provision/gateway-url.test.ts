/**
 * Issue 13, defect 2: `apply` prints the gateway URL so that it works as printed. A new user on a
 * fresh database runs apply as the owner, pastes the printed `export TENANTGATE_GATEWAY_URL='…'`,
 * runs `serve`, and queries with a fresh key. A second apply says the login exists and how to reset
 * its password; `--rotate-gateway-password` sets a new one (the old one stops matching). On the
 * embedded database nothing about a gateway URL is printed.
 *
 * The test server trusts local logins (any password opens a session), so whether a password is the
 * login's is checked against the verifier PostgreSQL stores for it (pg_authid.rolpassword).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash, createHmac, pbkdf2Sync } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { parse as parseConnectionString } from 'pg-connection-string';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CliIO } from '../../src/cli/io.ts';
import { main } from '../../src/cli/main.ts';
import { shellQuote } from '../../src/cli/commands/plan-apply.ts';
import { encodeUserinfo, loginUrl } from '../../src/db/url.ts';
import { createServerDatabase, fixture, seedPgliteDir, SERVER_URL, type ServerDatabase } from '../support/backends.ts';

const ROOT = join(import.meta.dirname, '..', '..');

/** What a POSIX shell makes of `export NAME=<word>` for a word of single-quoted parts (what apply prints). */
function exported(stdout: string, name = 'TENANTGATE_GATEWAY_URL'): string | undefined {
  const line = stdout.split('\n').find((l) => l.trimStart().startsWith(`export ${name}=`));
  if (!line) return undefined;
  const word = line.trimStart().slice(`export ${name}=`.length);
  // 'abc'\''def' → abc'def: quoted runs, with \' between them.
  let out = '';
  const re = /'([^']*)'|\\(.)/gy;
  let m: RegExpExecArray | null;
  let at = 0;
  while ((m = re.exec(word))) {
    out += m[1] ?? m[2];
    at = re.lastIndex;
  }
  if (at !== word.trimEnd().length) throw new Error(`not a single-quoted shell word: ${word}`);
  return out;
}

describe('the gateway login URL', () => {
  const password = `p@ss:w/rd?#%'& "x+é`;

  it('keeps the owner URL host, port, database and parameters, with the login percent-encoded', () => {
    const url = loginUrl('postgres://owner:secret@db.internal:6432/app?sslmode=disable&application_name=x', 'tg_gateway', password)!;
    expect(url).toBe(`postgres://tg_gateway:${encodeUserinfo(password)}@db.internal:6432/app?sslmode=disable&application_name=x`);
    expect(url).not.toContain("'");
    expect(parseConnectionString(url)).toMatchObject({ user: 'tg_gateway', password, host: 'db.internal', port: '6432', database: 'app', sslmode: 'disable', application_name: 'x' });
  });

  it('works for an owner URL with no user and no port, and fills in a database it does not name', () => {
    expect(parseConnectionString(loginUrl('postgres://db.internal/app', 'gw', password)!)).toMatchObject({ user: 'gw', password, host: 'db.internal', database: 'app' });
    expect(parseConnectionString(loginUrl('postgresql://db.internal?sslmode=verify-full', 'gw', password, 'my db')!)).toMatchObject({ user: 'gw', password, host: 'db.internal', database: 'my db', sslmode: 'verify-full' });
    // A socket directory in the query and no host at all.
    expect(parseConnectionString(loginUrl('postgres:///app?host=/var/run/postgresql', 'gw', password)!)).toMatchObject({ user: 'gw', password, host: '/var/run/postgresql', database: 'app' });
    // IPv6, and a database name that is encoded already.
    expect(parseConnectionString(loginUrl('postgres://[::1]:5433/my%20app', 'gw', password)!)).toMatchObject({ user: 'gw', password, host: '::1', port: '5433', database: 'my app' });
  });

  it("drops the owner's user and password parameters: they would override the login", () => {
    const url = loginUrl('postgres://db/app?user=owner&password=secret&sslmode=verify-full&application_name=a%20b', 'gw', 'pw')!;
    expect(url).toBe('postgres://gw:pw@db/app?sslmode=verify-full&application_name=a%20b');
    expect(parseConnectionString(url)).toMatchObject({ user: 'gw', password: 'pw', application_name: 'a b' });
  });

  it('is not a postgres URL: no URL', () => {
    expect(loginUrl('pglite://./data', 'gw', 'pw')).toBeUndefined();
  });

  it('the printed export line gives the shell exactly the URL, whatever it holds', () => {
    for (const text of ['postgres://gw:pw@h/d', "it's", "''", "a'b'c"]) expect(exported(`export TENANTGATE_GATEWAY_URL=${shellQuote(text)}\n`)).toBe(text);
  });
});

/** Does `password` match the verifier PostgreSQL stored for `user` (SCRAM-SHA-256 or md5)? */
function verifies(verifier: string, user: string, password: string): boolean {
  const scram = /^SCRAM-SHA-256\$(\d+):([^$]+)\$([^:]+):(.+)$/.exec(verifier);
  if (scram) {
    const salted = pbkdf2Sync(password, Buffer.from(scram[2]!, 'base64'), Number(scram[1]), 32, 'sha256');
    const clientKey = createHmac('sha256', salted).update('Client Key').digest();
    return createHash('sha256').update(clientKey).digest('base64') === scram[3];
  }
  if (verifier.startsWith('md5')) return verifier === `md5${createHash('md5').update(password + user).digest('hex')}`;
  throw new Error(`unknown password verifier: ${verifier.slice(0, 12)}…`);
}

interface Run {
  code: number;
  out: string;
  err: string;
}

function cliIn(dir: string, env: Record<string, string | undefined>) {
  return async (...argv: string[]): Promise<Run> => {
    let out = '';
    let err = '';
    const io: CliIO = { stdout: (t) => void (out += t), stderr: (t) => void (err += t), env, cwd: dir, isTTY: false };
    const code = await main(['--config', join(dir, 'tenantgate.yaml'), ...argv], io);
    return { code, out, err };
  };
}

/** `tenantgate serve --port 0` as its own process, as a user runs it; resolves with its URL once it listens. */
function serve(dir: string, env: Record<string, string>): Promise<{ url: string; child: ChildProcess; output: () => string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'src/cli/main.ts'), '--config', join(dir, 'tenantgate.yaml'), 'serve', '--port', '0'], {
      cwd: ROOT, // where tsx resolves
      env: { PATH: process.env['PATH'] ?? '', TENANTGATE_LOG_LEVEL: 'warn', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`serve did not start within 60 s:\n${out}`));
    }, 60_000);
    const seen = (d: Buffer) => {
      out += d.toString();
      const m = /listening on (http:\/\/\S+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve({ url: m[1]!, child, output: () => out });
      }
    };
    child.stdout.on('data', seen);
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`serve exited with ${code}:\n${out}`));
    });
  });
}

async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((done) => child.once('exit', () => done()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
  await exited;
  clearTimeout(timer);
}

const CONFIG = fixture('seed003.yaml').replace('url: ${TG_TEST_DB}', 'url: ${OWNER_URL}');

describe.skipIf(!SERVER_URL)('apply prints a gateway URL that works as printed (PostgreSQL)', () => {
  let server: ServerDatabase;
  let dir: string;
  let env: Record<string, string | undefined>;
  let run: ReturnType<typeof cliIn>;
  let firstUrl = '';
  const children: ChildProcess[] = [];

  const verifier = async (user: string): Promise<string> => {
    const c = new pg.Client({ connectionString: server.url });
    await c.connect();
    try {
      return (await c.query<{ p: string }>(`SELECT rolpassword AS p FROM pg_authid WHERE rolname = $1`, [user])).rows[0]!.p;
    } finally {
      await c.end();
    }
  };

  beforeAll(async () => {
    server = await createServerDatabase(fixture('seed003.sql'));
    dir = mkdtempSync(join(tmpdir(), 'tg-gateway-url-'));
    writeFileSync(join(dir, 'tenantgate.yaml'), CONFIG);
    // The owner URL with parameters and without a port: the printed URL must keep them.
    const owner = new URL(server.url);
    env = {
      PATH: process.env['PATH'],
      OWNER_URL: `postgres://${owner.username}@${owner.hostname}${owner.pathname}?sslmode=disable&application_name=tg-fresh-clone`,
      TG_TEST_PREFIX: server.prefix,
      TENANTGATE_SECRET: 'a-test-secret-of-at-least-32-characters-0123456789',
    };
    run = cliIn(dir, env);
  }, 60_000);
  afterAll(async () => {
    for (const c of children) await stop(c);
    await server?.drop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('a fresh clone: apply, paste the printed export line, serve, query with a new key', async () => {
    const applied = await run('apply');
    expect(applied.err).not.toMatch(/error/);
    expect(applied.code).toBe(0);
    const url = exported(applied.out);
    expect(url, applied.out).toBeDefined();
    firstUrl = url!;
    expect(applied.out).toContain(`Created the gateway login ${server.prefix}_gateway`);
    expect(applied.out).toMatch(/PgBouncer/);
    const parsed = parseConnectionString(firstUrl);
    expect(parsed).toMatchObject({ user: `${server.prefix}_gateway`, host: '127.0.0.1', database: server.name, sslmode: 'disable', application_name: 'tg-fresh-clone' });
    expect(verifies(await verifier(`${server.prefix}_gateway`), parsed.user!, parsed.password!)).toBe(true);

    const key = await run('--json', 'key', 'create', '--tenant', 'acme_corp', '--role', 'analyst');
    expect(key.code, key.err).toBe(0);
    const { key: apiKey } = JSON.parse(key.out) as { key: string };

    const gateway = await serve(dir, { OWNER_URL: env['OWNER_URL']!, TG_TEST_PREFIX: server.prefix, TENANTGATE_SECRET: env['TENANTGATE_SECRET']!, TENANTGATE_GATEWAY_URL: firstUrl });
    children.push(gateway.child);
    const res = await fetch(`${gateway.url}/v1/query`, {
      method: 'POST',
      headers: { 'X-API-Key': apiKey, 'Content-Type': 'application/json' },
      body: JSON.stringify({ dataset: 'orders', dimensions: ['region'], metrics: ['revenue'] }),
    });
    const body = (await res.json()) as unknown;
    expect(res.status, JSON.stringify(body)).toBe(200);
    expect(body).toMatchObject({ columns: ['region', 'revenue'], rows: [['North', 100], ['South', 200]], row_count: 2 });
    // It connected as the gateway login, through the printed URL (its application_name).
    const c = new pg.Client({ connectionString: server.url });
    await c.connect();
    try {
      const sessions = await c.query(`SELECT usename::text AS u FROM pg_stat_activity WHERE application_name = 'tg-fresh-clone' AND datname = $1`, [server.name]);
      expect(sessions.rows.map((r) => r['u'])).toContain(`${server.prefix}_gateway`);
    } finally {
      await c.end();
    }
    await stop(gateway.child);
  }, 120_000);

  it('a second apply says the login exists and how to set a new password, in text and in --json', async () => {
    const again = await run('apply');
    expect(again.code).toBe(0);
    expect(again.out).toContain('Nothing to do');
    expect(again.out).toContain(`The gateway login ${server.prefix}_gateway exists already`);
    expect(again.out).toContain('tenantgate apply --rotate-gateway-password');
    expect(exported(again.out)).toBeUndefined();
    const json = await run('--json', 'apply');
    expect(json.code).toBe(0);
    expect(JSON.parse(json.out).gateway).toEqual({ user: `${server.prefix}_gateway`, state: 'exists', rotate: 'tenantgate apply --rotate-gateway-password' });
  });

  it('--rotate-gateway-password --dry-run changes nothing', async () => {
    const before = await verifier(`${server.prefix}_gateway`);
    const dry = await run('apply', '--dry-run', '--rotate-gateway-password');
    expect(dry.code, dry.err).toBe(0);
    expect(dry.out).toContain(`role ${server.prefix}_gateway`);
    expect(exported(dry.out)).toBeUndefined();
    expect(await verifier(`${server.prefix}_gateway`)).toBe(before);
  });

  it('--rotate-gateway-password sets a new password, prints the new full URL once, and the old password stops matching', async () => {
    const old = parseConnectionString(firstUrl).password!;
    const rotated = await run('apply', '--rotate-gateway-password');
    expect(rotated.code, rotated.err).toBe(0);
    expect(rotated.out).toContain(`Set a new password for the gateway login ${server.prefix}_gateway`);
    const url = exported(rotated.out)!;
    const parsed = parseConnectionString(url);
    expect(parsed).toMatchObject({ user: `${server.prefix}_gateway`, host: '127.0.0.1', database: server.name, sslmode: 'disable', application_name: 'tg-fresh-clone' });
    expect(parsed.password).not.toBe(old);
    const stored = await verifier(`${server.prefix}_gateway`);
    expect(verifies(stored, parsed.user!, parsed.password!)).toBe(true);
    expect(verifies(stored, parsed.user!, old)).toBe(false);

    // --json: the same, once more, as one document.
    const json = await run('--json', 'apply', '--rotate-gateway-password');
    expect(json.code, json.err).toBe(0);
    const doc = JSON.parse(json.out) as { gateway: { user: string; password: string; url: string; state: string } };
    expect(doc.gateway).toMatchObject({ user: `${server.prefix}_gateway`, state: 'rotated' });
    expect(parseConnectionString(doc.gateway.url)).toMatchObject({ user: doc.gateway.user, password: doc.gateway.password, database: server.name, sslmode: 'disable' });
    const now = await verifier(`${server.prefix}_gateway`);
    expect(verifies(now, doc.gateway.user, doc.gateway.password)).toBe(true);
    expect(verifies(now, doc.gateway.user, parsed.password!)).toBe(false);
    // And the new URL is one serve starts with.
    const gateway = await serve(dir, { OWNER_URL: env['OWNER_URL']!, TG_TEST_PREFIX: server.prefix, TENANTGATE_SECRET: env['TENANTGATE_SECRET']!, TENANTGATE_GATEWAY_URL: doc.gateway.url });
    children.push(gateway.child);
    expect((await fetch(`${gateway.url}/readyz`)).status).toBe(200);
    await stop(gateway.child);
  }, 120_000);
});

describe('apply on the embedded database prints no gateway URL', () => {
  let dir: string;
  let run: ReturnType<typeof cliIn>;
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'tg-gateway-url-embedded-'));
    await seedPgliteDir(join(dir, 'pgdata'), fixture('seed003.sql'));
    writeFileSync(join(dir, 'tenantgate.yaml'), CONFIG);
    run = cliIn(dir, { PATH: process.env['PATH'], OWNER_URL: `pglite://${join(dir, 'pgdata')}`, TG_TEST_PREFIX: 'tgembedded' });
  }, 60_000);
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('neither the first apply nor a later one says anything about a gateway login or URL', async () => {
    const first = await run('apply');
    expect(first.code, first.err).toBe(0);
    expect(first.out).toContain('Applied');
    expect(first.out).not.toMatch(/TENANTGATE_GATEWAY_URL|Created the gateway login|exists already|rotate-gateway-password|postgres:\/\//);
    const second = await run('apply');
    expect(second.out).toBe('Nothing to do: the database matches the configuration.\n');
    const json = await run('--json', 'apply');
    expect(json.code).toBe(0);
    expect(JSON.parse(json.out)).not.toHaveProperty('gateway');
    const rotate = await run('apply', '--rotate-gateway-password');
    expect(rotate.code).toBe(2);
    expect(rotate.err).toContain('USAGE');
    expect(rotate.err).toContain('embedded database');
  }, 60_000);
});
