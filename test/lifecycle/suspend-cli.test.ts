/**
 * `tenant suspend ID [--reason] [--dry-run] [--json]` / `tenant resume ID` / `tenant show` as an
 * operator types them (the CLI in-process, on a data directory or a server database), with the
 * config's `status: suspended` combined: suspended if either says so, and apply's changes to the
 * file's status move the direct logins too.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cliFolder } from '../support/cli.ts';
import { BACKENDS } from '../support/backends.ts';
import { TIER_SQL } from '../tiers/support.ts';
import { SUSPEND_YAML } from './suspend-support.ts';


describe.each(BACKENDS)('tenant suspend / resume / show through the CLI on %s', (kind) => {
  const cli = cliFolder(kind, { sql: TIER_SQL, yaml: SUSPEND_YAML, name: 'suspend-cli' });
  const { file, run, owner } = cli;
  const canLogin = (role: string) => owner(async (db) => (await db.query<{ c: boolean }>(`SELECT rolcanlogin AS c FROM pg_roles WHERE rolname = $1`, [role])).rows[0]?.c);

  beforeAll(async () => {
    await cli.setup();
    const applied = await run('apply', '--json');
    expect(applied.code, applied.out + applied.err).toBe(0);
  }, 120_000);
  afterAll(() => cli.cleanup());

  // Each command opens the database anew (on PGlite, its data directory: about a second each).
  it('suspend (dry run first), idempotent again, show, apply keeps it, audited with the reason, resume', { timeout: 300_000 }, async () => {
    const key = await run('key', 'create', '--tenant', 'acme_corp', '--role', 'analyst', '--db-login', '--json');
    expect(key.code, key.out + key.err).toBe(0);
    const login = key.json().db_login.user as string;

    const dry = await run('tenant', 'suspend', 'acme_corp', '--reason', 'unpaid invoice', '--dry-run', '--json');
    expect(dry.code).toBe(0);
    expect(dry.json()).toMatchObject({ tenant: 'acme_corp', status: 'active', dry_run: true, would_change: true, logins: [login] });
    expect((await run('tenant', 'show', 'acme_corp', '--json')).json()).toMatchObject({ status: 'active', suspension: null });
    expect(await canLogin(login)).toBe(true);

    const done = await run('tenant', 'suspend', 'acme_corp', '--reason', 'unpaid invoice', '--json');
    expect(done.code, done.out + done.err).toBe(0);
    expect(done.json()).toMatchObject({ tenant: 'acme_corp', status: 'suspended', changed: true, suspension: { reason: 'unpaid invoice', by: 'cli:alice' }, logins: { logins: [login], changed: 1, failed: [] } });
    expect(await canLogin(login)).toBe(false);
    const again = await run('tenant', 'suspend', 'acme_corp', '--reason', 'other');
    expect(again.code).toBe(0);
    expect(again.out).toMatch(/^acme_corp was already suspended since .* by cli:alice \(reason: unpaid invoice\): nothing changed\.$/m);

    const shown = (await run('tenant', 'show', 'acme_corp', '--json')).json();
    expect(shown).toMatchObject({ id: 'acme_corp', status: 'suspended', suspension: { source: 'runtime', reason: 'unpaid invoice', by: 'cli:alice', since: expect.any(String) } });
    expect(Date.now() - Date.parse(shown.suspension.since)).toBeLessThan(60_000);
    const text = (await run('tenant', 'show', 'acme_corp')).out;
    expect(text).toMatch(/^status\s+suspended$/m);
    expect(text).toMatch(/^suspension\s+.*"reason":"unpaid invoice"/m);
    expect((await run('tenant', 'list', '--json')).json().tenants.find((t: { id: string }) => t.id === 'acme_corp').status).toBe('suspended');

    // apply never undoes it (and has nothing to do).
    const applied = await run('apply', '--json');
    expect(applied.code).toBe(0);
    expect(applied.json().changes).toEqual([]);
    expect((await run('tenant', 'show', 'acme_corp', '--json')).json().status).toBe('suspended');
    expect(await canLogin(login)).toBe(false);

    const resumed = await run('tenant', 'resume', 'acme_corp', '--json');
    expect(resumed.code, resumed.out + resumed.err).toBe(0);
    expect(resumed.json()).toMatchObject({ status: 'active', changed: true, suspension: null, logins: { changed: 1 } });
    expect(await canLogin(login)).toBe(true);
    expect((await run('tenant', 'resume', 'acme_corp')).out).toBe('acme_corp was not suspended at runtime: nothing changed.\n');

    const trail = (await run('audit', '--tenant', 'acme_corp', '--json')).json().events as Array<{ principal: string; endpoint: string; lifecycle?: unknown }>;
    expect(trail.filter((e) => e.lifecycle).map((e) => [e.principal, e.endpoint, e.lifecycle]).reverse()).toEqual([
      ['cli:alice', 'tenant suspend', { action: 'suspend', reason: 'unpaid invoice', changed: true }],
      ['cli:alice', 'tenant suspend', { action: 'suspend', reason: 'other', changed: false }],
      ['cli:alice', 'tenant resume', { action: 'resume', reason: null, changed: true }],
      ['cli:alice', 'tenant resume', { action: 'resume', reason: null, changed: false }],
    ]);
    expect((await run('audit', 'verify', '--tenant', 'acme_corp')).code).toBe(0);
  });

  it('unknown tenants and bad flags have stable codes', { timeout: 120_000 }, async () => {
    const unknown = await run('tenant', 'suspend', 'nobody_here', '--json');
    expect(unknown.code).toBe(2);
    expect(unknown.json().error.code).toBe('TENANT_UNKNOWN');
    expect((await run('tenant', 'resume', 'nobody_here', '--json')).json().error.code).toBe('TENANT_UNKNOWN');
    const long = await run('tenant', 'suspend', 'acme_corp', '--reason', 'x'.repeat(501), '--json');
    expect(long.json().error.code).toBe('USAGE');
  });

  it("the file's status: suspended and a runtime suspension combine (suspended if either says so); apply moves the logins with the file", { timeout: 300_000 }, async () => {
    const key = await run('key', 'create', '--tenant', 'hooli', '--role', 'analyst', '--db-login', '--json');
    const login = key.json().db_login.user as string;
    const setFileStatus = (status: string | undefined) =>
      writeFileSync(file, readFileSync(file, 'utf8').replace(/- \{ id: hooli, tier: schema[^}]*\}/, `- { id: hooli, tier: schema${status ? `, status: ${status}` : ''} }`));

    setFileStatus('suspended');
    const applied = await run('apply', '--json');
    expect(applied.code, applied.out + applied.err).toBe(0);
    expect(applied.json().changes.map((c: { object: string }) => c.object)).toEqual(['tenant hooli']);
    expect(await canLogin(login)).toBe(false);
    expect((await run('tenant', 'show', 'hooli', '--json')).json()).toMatchObject({ status: 'suspended', suspension: { source: 'config', reason: null } });
    // Resuming at runtime cannot override the file, and says so.
    const resume = await run('tenant', 'resume', 'hooli');
    expect(resume.out).toContain('It stays suspended: its configuration says status: suspended');
    expect((await run('tenant', 'suspend', 'hooli', '--reason', 'both', '--json')).json()).toMatchObject({ status: 'suspended', changed: true, config_status: 'suspended' });
    expect((await run('tenant', 'show', 'hooli', '--json')).json().suspension).toMatchObject({ source: 'both', reason: 'both' });

    // The file says active again: apply gives the logins back only once the runtime suspension is gone too.
    setFileStatus(undefined);
    expect((await run('apply', '--json')).json().changes.map((c: { object: string }) => c.object)).toEqual(['tenant hooli']);
    expect(await canLogin(login)).toBe(false);
    expect((await run('tenant', 'show', 'hooli', '--json')).json()).toMatchObject({ status: 'suspended', suspension: { source: 'runtime' } });
    expect((await run('tenant', 'resume', 'hooli', '--json')).json()).toMatchObject({ status: 'active', changed: true });
    expect(await canLogin(login)).toBe(true);
    expect((await run('apply', '--json')).json().changes).toEqual([]);
  });
});
