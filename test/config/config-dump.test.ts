/**
 * `tenantgate config dump`: the effective configuration (defaults filled in, tenants/*.yaml
 * merged, ${VAR} and ${VAR:-default} resolved), with every secret masked. A golden test: the
 * output of a fixed config is compared to test/fixtures/golden/config-dump.yaml, reviewed by
 * eye once. Regenerate it with TENANTGATE_UPDATE_GOLDEN=1 and review the diff.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { main } from '../../src/cli/main.ts';
import type { CliIO } from '../../src/cli/io.ts';

const FIXTURES = join(import.meta.dirname, '..', 'fixtures');
const CONFIG = join(FIXTURES, 'config-dump', 'tenantgate.yaml');
const GOLDEN = join(FIXTURES, 'golden', 'config-dump.yaml');

const DB_PASSWORD = 'Sup3r-S3cret-Pw';
const GATEWAY_PASSWORD = 'gAtEwAy-pw-0042';
const SERVER_SECRET = 'server-secret-abcdefghijklmnopqrstuvwxyz-0123456789';

/** The environment of the golden run: some variables set, the `*_env` secrets half set. */
const ENV: Record<string, string> = {
  APP_DATABASE_URL: `postgres://app_owner:${DB_PASSWORD}@db.internal:5432/app`,
  APP_GATEWAY_URL: `postgres://acme_tg_gateway:${GATEWAY_PASSWORD}@db.internal:5432/app`,
  APP_SECRET: SERVER_SECRET,
  INITECH_REGION: 'West',
  // Set but empty counts as unset: the default applies.
  TG_HOST: '',
  // Not set: TG_ROLE_PREFIX, TG_TENANT_HEADER, REDIS_URL, GLOBEX_REGION, INITECH_NAME (defaults),
  // APP_JWT_SECRET and EU_DATABASE_URL (reported as unset).
};

/** The parts of the dump these tests read. */
interface DumpDocument {
  database: { url: string; role_prefix: string };
  server: { host: string };
  identity: { tenant_header: string };
  defaults: { quotas: Record<string, number> };
  datasets: Array<{ tenant_column?: string }>;
  tenants: Array<{ id: string; name: string; tier?: string; attributes: Record<string, unknown> }>;
  quota_store: string;
  environment: Record<string, string>;
}

async function dump(args: string[], env: Record<string, string>, config = CONFIG): Promise<{ exit: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const io: CliIO = { stdout: (t) => void (stdout += t), stderr: (t) => void (stderr += t), env, cwd: tmpdir(), isTTY: false };
  const exit = await main(['--config', config, ...args, 'config', 'dump'], io);
  return { exit, stdout, stderr };
}

describe('tenantgate config dump', () => {
  it('matches the golden file', async () => {
    const { exit, stdout, stderr } = await dump([], ENV);
    expect(stderr).toBe('');
    expect(exit).toBe(0);
    if (process.env['TENANTGATE_UPDATE_GOLDEN'] === '1') writeFileSync(GOLDEN, stdout);
    expect(stdout).toBe(readFileSync(GOLDEN, 'utf8'));
  });

  it('never prints a secret: the database password, the gateway URL or the server secret', async () => {
    const { stdout } = await dump([], ENV);
    for (const secret of [DB_PASSWORD, GATEWAY_PASSWORD, SERVER_SECRET]) expect(stdout).not.toContain(secret);
  });

  it('masks the password in database.url, resolves defaults, and lists *_env variables as set or unset', async () => {
    const { stdout } = await dump([], ENV);
    const doc = parse(stdout) as DumpDocument;
    expect(doc.database.url).toBe('postgres://app_owner:***@db.internal:5432/app');
    expect(doc.database.role_prefix).toBe('acme_tg'); // ${TG_ROLE_PREFIX:-acme_tg}, unset
    expect(doc.server.host).toBe('0.0.0.0'); // ${TG_HOST:-0.0.0.0}, set but empty
    expect(doc.identity.tenant_header).toBe('X-Org-ID');
    expect(doc.quota_store).toBe('memory');
    expect(doc.environment).toEqual({
      APP_GATEWAY_URL: 'set (hidden)',
      APP_JWT_SECRET: 'unset',
      APP_SECRET: 'set (hidden)',
      EU_DATABASE_URL: 'unset',
      TENANTGATE_SIGNING_KEY: 'unset',
    });
    // tenants/*.yaml merged after the main file's tenants, in file name order.
    expect(doc.tenants.map((t) => t.id)).toEqual(['acme_corp', 'globex_inc', 'initech']);
    expect(doc.tenants[1]?.attributes).toEqual({ region: 'East' });
    expect(doc.tenants[2]?.name).toBe('Initech');
    expect(doc.tenants[2]?.attributes).toEqual({ region: 'West' });
  });

  it('fills in the defaults a value falls back to (quotas, dataset tenant column, tenant tier)', async () => {
    // "print the effective configuration (defaults filled in …)": the operator should see the
    // quotas and tenant column apply will actually use, not only the keys written in the file.
    const { stdout } = await dump([], ENV);
    const doc = parse(stdout) as DumpDocument;
    expect(doc.defaults.quotas).toEqual({
      requests_per_minute: 1200,
      burst: 60,
      concurrent_queries: 4,
      queue_timeout_ms: 1000,
      max_rows: 10000,
      statement_timeout_ms: 5000,
      warn_at: 0.8,
      storage_bytes: 10737418240,
    });
    expect(doc.datasets[0]?.tenant_column).toBe('tenant_id');
    expect(doc.tenants.map((t) => t.tier)).toEqual(['pooled', 'pooled', 'pooled']);
  });

  it('--json never prints the database password either', async () => {
    const { exit, stdout } = await dump(['--json'], ENV);
    expect(exit).toBe(0);
    expect(stdout).not.toContain(DB_PASSWORD);
    expect(stdout).not.toContain(GATEWAY_PASSWORD);
    expect(stdout).not.toContain(SERVER_SECRET);
  });

  describe('URLs whose password must be masked', () => {
    let dir: string;
    beforeAll(() => {
      dir = mkdtempSync(join(tmpdir(), 'tg-config-dump-'));
    });
    afterAll(() => rmSync(dir, { recursive: true, force: true }));

    const CASES: Array<[string, string, string]> = [
      ['postgres, user and password', 'database.url', 'postgresql://owner:pw-one-1111@db:5432/app'],
      ['postgres, password with reserved characters', 'database.url', 'postgres://owner:pw%40two%2F2222@db/app'],
      ['redis, user and password', 'quota_store', 'redis://default:pw-three-3333@cache:6379/0'],
      ['redis, password without a user', 'quota_store', 'redis://:pw-four-4444@cache:6379/0'],
      ['postgres, password in the query string', 'database.url', 'postgres://owner@db/app?password=pw-five-5555'],
    ];
    const RUNS = CASES.flatMap(([what, key, url]) => (['yaml', '--json'] as const).map((form) => [what, key, form, url] as const));
    it.each(RUNS)('%s (%s), %s output', async (_what, key, form, url) => {
      const file = join(dir, `${key.replace('.', '-')}-${Math.random().toString(36).slice(2)}.yaml`);
      writeFileSync(file, `version: 1\ndatabase:\n  url: \${THE_DB_URL:-pglite://./pgdata}\nquota_store: \${THE_QUOTA_URL:-memory}\n`);
      const env: Record<string, string> = key === 'database.url' ? { THE_DB_URL: url } : { THE_QUOTA_URL: url };
      const password = /pw[-%][\w%-]+/.exec(url)?.[0] as string;
      const { exit, stdout } = await dump(form === '--json' ? ['--json'] : [], env, file);
      expect(exit).toBe(0);
      expect(stdout).not.toContain(password);
    });
  });
});
