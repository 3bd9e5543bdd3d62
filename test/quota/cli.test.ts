/** `tenantgate tenant quotas`: show, change and drop runtime quota changes (the CLI opens database.url itself: server). */
import { describe, expect, it } from 'vitest';
import { createFixture, fixture, SERVER_URL } from '../support/backends.ts';
import { runCli } from '../support/cli.ts';

describe.skipIf(!SERVER_URL)('tenantgate tenant quotas', () => {
  it('shows the quotas in force with their source, changes them at runtime and drops the change', async () => {
    const fx = await createFixture('postgres', { sql: fixture('seed003.sql') });
    const run = (...args: string[]) => runCli(fx, args);
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
