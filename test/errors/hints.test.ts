/**
 * Issue 13, defect 4: a missing JWT secret was answered with the server secret's hint. Every
 * path that raises SECRET_MISSING or CONFIG_ENV_MISSING is walked here, and its hint must name
 * the key and variable that failed (and what to run), never another one's. A guard counts the
 * raising sites in src/ so a new one cannot be added without a case here.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/load.ts';
import type { Config } from '../../src/config/types.ts';
import { openDatabase } from '../../src/db/database.ts';
import { TenantGateError } from '../../src/errors/index.ts';
import { createTenantGate } from '../../src/gate.ts';
import { createJwtVerifier } from '../../src/identify/jwt.ts';
import { webhookFrom } from '../../src/observe/webhook.ts';
import { loadServerSecret } from '../../src/security/secret.ts';
import { gatewayDatabases, ownerDatabases } from '../../src/tiers/databases.ts';
import { main } from '../../src/cli/main.ts';

const SERVER = 'postgres://nobody@127.0.0.1:1/nowhere'; // never connected to: every path below fails first
const parse = (yaml: string, env: Record<string, string> = {}) => parseConfig(`version: 1\n${yaml}`, '/virtual/tenantgate.yaml', { env });

/** The CLI in-process on a config text, with an empty environment. */
async function runCli(args: string[], yaml: string): Promise<{ code: number; stdout: string; stderr: string }> {
  const dir = mkdtempSync(join(tmpdir(), 'tg-hints-'));
  const out: string[] = [];
  const err: string[] = [];
  try {
    writeFileSync(join(dir, 'tenantgate.yaml'), yaml);
    const code = await main(args, { stdout: (t) => out.push(t), stderr: (t) => err.push(t), env: {}, cwd: dir, isTTY: false });
    return { code, stdout: out.join(''), stderr: err.join('') };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

async function raised(fn: () => unknown): Promise<TenantGateError> {
  try {
    await fn();
  } catch (err) {
    if (err instanceof TenantGateError) return err;
    throw err;
  }
  throw new Error('expected a TenantGateError');
}

function expectHint(e: TenantGateError, code: string, names: string[], notNames: string[] = []): void {
  expect(e.code).toBe(code);
  for (const n of names) expect(e.hint, `hint should name ${n}: ${e.hint}`).toContain(n);
  for (const n of notNames) expect(e.hint, `hint should not name ${n}: ${e.hint}`).not.toContain(n);
}

describe('SECRET_MISSING and CONFIG_ENV_MISSING hints name what failed', () => {
  it('server secret unset or short: names the variable, security.secret_env and how to make one', async () => {
    const config = await parse(`database: { url: '${SERVER}' }`);
    expectHint(await raised(() => loadServerSecret(config, {})), 'SECRET_MISSING', ['TENANTGATE_SECRET', 'security.secret_env', 'openssl rand'], ['jwt']);
    expectHint(await raised(() => loadServerSecret(config, { TENANTGATE_SECRET: 'short' })), 'SECRET_MISSING', ['TENANTGATE_SECRET', '32+']);
    const custom = await parse(`database: { url: '${SERVER}' }\nsecurity: { secret_env: ACME_SECRET }`);
    expectHint(await raised(() => loadServerSecret(custom, {})), 'SECRET_MISSING', ['ACME_SECRET', 'security.secret_env'], ['TENANTGATE_SECRET']);
  });

  it('JWT secret unset or short: names identity.jwt.secret_env and its variable, not the server secret', async () => {
    const config = await parse(`identity: { jwt: { secret_env: X_JWT, algorithms: [HS256] } }`);
    for (const env of [{}, { X_JWT: 'too-short' }]) {
      const e = await raised(() => createJwtVerifier(config, env));
      expectHint(e, 'SECRET_MISSING', ['X_JWT', 'identity.jwt.secret_env'], ['TENANTGATE_SECRET', 'security.secret_env']);
      expect(e.message).toContain('X_JWT');
    }
  });

  it('${VAR} without a default: names the variable and where it is used', async () => {
    const e = await raised(() => parse(`database: { url: '\${OWNER_URL_X}' }`));
    expectHint(e, 'CONFIG_ENV_MISSING', ['OWNER_URL_X', 'database.url', '${OWNER_URL_X:-default}']);
    expect(e.location?.key).toBe('database.url');
  });

  it('webhook url_env unset: names the webhook key and its variable', async () => {
    const config = await parse(`audit: { security_webhook: { url_env: SEC_HOOK } }\nquota_webhook: { url_env: QUOTA_HOOK }`);
    const log = pino({ level: 'silent' });
    expectHint(await raised(() => webhookFrom(config.effective.audit.security_webhook, {}, log, 'x', 'audit.security_webhook')), 'CONFIG_ENV_MISSING', ['SEC_HOOK', 'audit.security_webhook']);
    expectHint(await raised(() => webhookFrom(config.effective.quota_webhook, {}, log, 'x', 'quota_webhook')), 'CONFIG_ENV_MISSING', ['QUOTA_HOOK', 'quota_webhook'], ['SEC_HOOK']);
  });

  it('gateway URL unset: names database.gateway_url_env and what to run (apply, or rotate the password)', async () => {
    const config = await parse(`database: { url: '${SERVER}', gateway_url_env: GW_URL_X }`);
    const e = await raised(() => createTenantGate({ config, secret: Buffer.alloc(32, 1), env: {} }));
    expectHint(e, 'CONFIG_ENV_MISSING', ['GW_URL_X', 'tenantgate apply', '--rotate-gateway-password'], ['TENANTGATE_SECRET']);
  });

  it("a placement's URL unset: names the placement key (owner url_env, or the gateway's gateway_url_env) and variable", async () => {
    const config: Config = await parse(`database: { url: '${SERVER}', placements: { eu: { url_env: EU_OWNER }, us: { url_env: US_OWNER } } }`);
    const main = await openDatabase(SERVER, { max: 1 }); // a pool that never connects
    try {
      const owner = ownerDatabases(config, main, {});
      expectHint(await raised(() => owner.get('eu', 'tg_x')), 'CONFIG_ENV_MISSING', ['EU_OWNER', "placement eu's"], ['US_OWNER']);
      const gateway = gatewayDatabases(config, main, SERVER, {});
      const e = await raised(() => gateway.get('us', 'tg_x'));
      expectHint(e, 'CONFIG_ENV_MISSING', ['database.placements.us.gateway_url_env'], ['EU_OWNER', 'US_OWNER']);
    } finally {
      await main.close();
    }
  });

  it('the CLI prints the hint of the failure (text and --json)', async () => {
    const { code, stderr } = await runCli(['plan'], `version: 1\ndatabase: { url: '${SERVER}' }\nidentity: { jwt: { secret_env: X_JWT, algorithms: [HS256] } }\n`);
    expect(code).toBe(2);
    expect(stderr).toMatch(/hint: Set TENANTGATE_SECRET \(security\.secret_env/);
    const json = await runCli(['--json', 'plan'], `version: 1\ndatabase: { url: '\${NOPE_URL}' }\n`);
    expect(JSON.parse(json.stdout).error).toMatchObject({ code: 'CONFIG_ENV_MISSING', hint: expect.stringContaining('NOPE_URL') });
  });

  it('every site in src/ that raises these codes gives its own hint and is walked above', () => {
    const root = join(import.meta.dirname, '../../src');
    const files = (dir: string): string[] => readdirSync(dir).flatMap((n) => (statSync(join(dir, n)).isDirectory() ? files(join(dir, n)) : n.endsWith('.ts') ? [join(dir, n)] : []));
    const sites: Record<string, number> = {};
    for (const f of files(root)) {
      const text = readFileSync(f, 'utf8');
      for (const m of text.matchAll(/new TenantGateError\(\s*'(SECRET_MISSING|CONFIG_ENV_MISSING)'/g)) {
        const rel = relative(root, f);
        sites[rel] = (sites[rel] ?? 0) + 1;
        // The constructor call carries a hint of its own.
        expect(text.slice(m.index, m.index + 800), `${rel}: ${m[1]} without a hint`).toMatch(/\bhint\b/);
      }
    }
    // The cases above, by file. A new raising site needs a case (and then an entry here).
    expect(sites).toEqual({
      'security/secret.ts': 2,
      'identify/jwt.ts': 1,
      'config/yaml-source.ts': 1,
      'observe/webhook.ts': 1,
      'gate.ts': 1,
      'tiers/databases.ts': 1,
    });
  });
});
