/** `tenantgate tenant quotas`: show, change and drop runtime quota changes (the CLI opens database.url itself: server). */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { main } from '../../src/cli/main.ts';
import { createFixture, fixture, SERVER_URL } from '../support/backends.ts';

describe.skipIf(!SERVER_URL)('tenantgate tenant quotas', () => {
  it('shows the quotas in force with their source, changes them at runtime and drops the change', async () => {
    const fx = await createFixture('postgres', { sql: fixture('seed003.sql') });
    const dir = mkdtempSync(join(tmpdir(), 'tg-quota-cli-'));
    writeFileSync(join(dir, 'tenantgate.yaml'), fixture('seed003.yaml'));
    const run = async (...args: string[]) => {
      const out: string[] = [];
      const code = await main(['--config', join(dir, 'tenantgate.yaml'), ...args], {
        stdout: (t) => out.push(t),
        stderr: (t) => out.push(t),
        env: { TG_TEST_DB: fx.url, TG_TEST_PREFIX: fx.prefix, TENANTGATE_SECRET: fx.secret.toString() },
        cwd: dir,
        isTTY: false,
      });
      return { code, out: out.join('') };
    };
    try {
      const set = await run('--json', 'tenant', 'quotas', 'acme_corp', '--set', 'burst=7', '--set', 'concurrent_queries=3');
      expect(set.code, set.out).toBe(0);
      expect(JSON.parse(set.out)).toMatchObject({ tenant: 'acme_corp', quotas: { burst: 7, concurrent_queries: 3 }, overrides: { burst: 7, concurrent_queries: 3 } });
      const shown = await run('tenant', 'quotas', 'acme_corp');
      expect(shown.out).toMatch(/burst\s+7\s+runtime/);
      expect(shown.out).toMatch(/max_rows\s+10000\s+config/);
      const cleared = await run('--json', 'tenant', 'quotas', 'acme_corp', '--clear', 'burst');
      expect(JSON.parse(cleared.out)).toMatchObject({ overrides: { concurrent_queries: 3 } });
      expect(JSON.parse(cleared.out).quotas.burst).toBe(1000000);
      // Bad input: a clear error code, nothing changed.
      expect((await run('tenant', 'quotas', 'acme_corp', '--set', 'bursts=1')).code).toBe(2);
      expect((await run('tenant', 'quotas', 'acme_corp', '--set', 'burst=lots')).code).toBe(2);
      expect((await run('tenant', 'quotas', 'nobody', '--set', 'burst=1')).code).toBe(2);
      expect(JSON.parse((await run('--json', 'tenant', 'quotas', 'acme_corp')).out).overrides).toEqual({ concurrent_queries: 3 });
    } finally {
      await fx.cleanup();
    }
  });
});
