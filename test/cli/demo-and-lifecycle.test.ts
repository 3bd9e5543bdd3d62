/**
 * The CLI end to end, in-process: `start` provisions the demo, then the tenant and key
 * commands run against the same database, as a newcomer would type them.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { main } from '../../src/cli/main.ts';
import type { CliIO } from '../../src/cli/io.ts';
import { BACKENDS, SERVER_URL } from '../support/backends.ts';

interface Run {
  code: number;
  out: string;
  err: string;
  json: () => any; // eslint-disable-line @typescript-eslint/no-explicit-any
}

describe.each(BACKENDS)('demo and tenant lifecycle through the CLI on %s', (kind) => {
  const dir = mkdtempSync(join(tmpdir(), 'tg-cli-'));
  const tag = randomBytes(4).toString('hex');
  const env: Record<string, string | undefined> = { PATH: process.env['PATH'] };
  let dbName = '';
  const run = async (...argv: string[]): Promise<Run> => {
    let out = '';
    let err = '';
    const io: CliIO = { stdout: (t) => void (out += t), stderr: (t) => void (err += t), env, cwd: dir, isTTY: false };
    const code = await main(argv, io);
    return { code, out, err, json: () => JSON.parse(out) };
  };
  const cfg = ['--config', join(dir, 'demo', 'tenantgate.yaml')];

  beforeAll(async () => {
    if (kind === 'postgres') {
      dbName = `tg_test_${tag}`;
      const admin = new pg.Client({ connectionString: SERVER_URL });
      await admin.connect();
      await admin.query(`CREATE DATABASE ${dbName}`);
      await admin.end();
      const u = new URL(SERVER_URL as string);
      u.pathname = `/${dbName}`;
      env['DEMO_DATABASE_URL'] = u.toString();
      env['DEMO_ROLE_PREFIX'] = `tg${tag}`;
      env['TENANTGATE_SECRET'] = randomBytes(32).toString('base64');
    }
  });
  afterAll(async () => {
    rmSync(dir, { recursive: true, force: true });
    if (kind === 'postgres') {
      const admin = new pg.Client({ connectionString: SERVER_URL });
      await admin.connect();
      await admin.query(`DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`);
      const roles = await admin.query(`SELECT rolname FROM pg_roles WHERE rolname LIKE $1`, [`tg${tag}\\_%`]);
      for (const r of roles.rows) await admin.query(`DROP ROLE "${r.rolname}"`);
      await admin.end();
    }
  });

  it('start provisions the demo and shows each tenant only its rows; a second start changes nothing', async () => {
    const first = await run('start', '--dir', 'demo', '--no-serve', '--json');
    expect(first.code).toBe(0);
    expect(first.json().answers).toEqual({ acme_corp: [['North', 100], ['South', 200]], globex_inc: [['East', 400], ['North', 300]] });
    expect(first.json().changes).toBeGreaterThan(0);
    const keysFile = join(dir, 'demo', 'demo-keys.json');
    expect(statSync(keysFile).mode & 0o777).toBe(0o600);
    const second = await run('start', '--dir', 'demo', '--no-serve', '--json');
    expect(second.code).toBe(0);
    expect(second.json().changes).toBe(0);
    const text = await run('start', '--dir', 'demo', '--no-serve');
    expect(text.out).toContain('tenant list');
    // The three next steps: curl (when serving), psql as a tenant, the catalog to edit.
    expect(text.out).toContain(`The catalog to edit: ${join('demo', 'tenantgate.yaml')}`);
    if (kind === 'pglite') {
      expect(text.out).toMatch(/psql: the embedded database has no network port/);
      return;
    }
    // On a server the printed psql URL is a direct login that sees only acme_corp's rows.
    const url = /psql '([^']+)'/.exec(text.out)?.[1];
    expect(url).toBeDefined();
    const login = new pg.Client({ connectionString: url });
    await login.connect();
    try {
      const r = await login.query<{ region: string; revenue: number }>('SELECT region, sum(amount)::int AS revenue FROM orders GROUP BY region ORDER BY region');
      expect(r.rows.map((row) => [row.region, row.revenue])).toEqual([['North', 100], ['South', 200]]);
    } finally {
      await login.end();
    }
  });

  it('tenant list and show --json', async () => {
    const list = await run(...cfg, 'tenant', 'list', '--json');
    expect(list.json().tenants.map((t: { id: string }) => t.id)).toEqual(['acme_corp', 'globex_inc']);
    const show = await run(...cfg, 'tenant', 'show', 'acme_corp', '--json');
    const prefix = env['DEMO_ROLE_PREFIX'] ?? 'tenantgate';
    expect(show.json()).toMatchObject({ id: 'acme_corp', tier: 'pooled', placement: 'default', status: 'active', roles: { read: `${prefix}_read`, direct: `${prefix}_t_acme_corp` } });
    const unknown = await run(...cfg, 'tenant', 'show', 'nobody', '--json');
    expect(unknown.code).toBe(2);
    expect(unknown.json().error.code).toBe('TENANT_UNKNOWN');
  });

  it('tenant add writes one file and applies it; a bad one leaves nothing behind', async () => {
    const dry = await run(...cfg, 'tenant', 'add', 'initech', '--attr', 'region=West', '--dry-run', '--json');
    expect(dry.code).toBe(0);
    expect(existsSync(join(dir, 'demo', 'tenants', 'initech.yaml'))).toBe(false);
    const added = await run(...cfg, 'tenant', 'add', 'initech', '--name', 'Initech', '--attr', 'region=West', '--json');
    expect(added.code).toBe(0);
    expect(added.json().applied).toBe(true);
    expect(existsSync(join(dir, 'demo', 'tenants', 'initech.yaml'))).toBe(true);
    const again = await run(...cfg, 'tenant', 'add', 'initech', '--json');
    expect(again.json().error.code).toBe('TENANT_EXISTS');
    for (const bad of ['Initech', 'ini tech', 'x', '../etc', 'a'.repeat(41), 'acmé']) {
      const r = await run(...cfg, 'tenant', 'add', bad, '--json');
      expect(r.code, bad).toBe(2);
      expect(r.json().error.code).toBe('TENANT_ID_INVALID');
    }
    const plan = await run(...cfg, 'plan', '--json');
    expect(plan.json().changes).toEqual([]);
  });

  it('key create, list and revoke', async () => {
    const created = await run(...cfg, 'key', 'create', '--tenant', 'initech', '--role', 'analyst', '--json');
    expect(created.code).toBe(0);
    expect(created.json()).toMatchObject({ tenant: 'initech', role: 'analyst' });
    expect(Object.keys(created.json()).sort()).toEqual(['access', 'key', 'key_id', 'role', 'tenant']);
    const withLogin = await run(...cfg, 'key', 'create', '--tenant', 'initech', '--role', 'analyst', '--db-login', '--json');
    expect(withLogin.json().db_login).toMatchObject({ user: expect.stringContaining('_l_') });
    const list = await run(...cfg, 'key', 'list', '--tenant', 'initech', '--json');
    expect(list.json().keys).toHaveLength(2);
    expect(list.out).not.toContain(created.json().key);
    const revoked = await run(...cfg, 'key', 'revoke', created.json().key_id, '--json');
    expect(revoked.code).toBe(0);
    expect(revoked.json().revoked_at).not.toBeNull();
    const missingRole = await run(...cfg, 'key', 'create', '--tenant', 'initech', '--json');
    expect(missingRole.code).toBe(2);
  });
});
