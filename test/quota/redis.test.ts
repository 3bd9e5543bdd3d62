/**
 * The shared quota store (issue 6): two gateway processes on one Redis hold a tenant to its limit
 * within 5%; with Redis killed mid-run, requests are answered per quota_store_failure (open:
 * each process limits on its own; closed: 503 QUOTA_UNAVAILABLE), never 500, and they recover when
 * Redis is back. Real Redis: REDIS_URL for the first, a private redis-server for the second.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createServer } from 'node:net';
import { describe, expect, it } from 'vitest';
import { createFixture, fixture, type Fixture } from '../support/backends.ts';
import { serve, type Served } from '../http/support.ts';

const REDIS_URL = process.env['REDIS_URL'];
const REDIS_SERVER = ['/usr/bin/redis-server', '/usr/local/bin/redis-server'].find((p) => existsSync(p));
const config = (store: string, failure: 'open' | 'closed', quotas: string) =>
  fixture('seed003.yaml').replace(/# Quotas out of the way[\s\S]*?\ndatasets:/, `quota_store: ${store}\nquota_store_failure: ${failure}\ndefaults:\n  tier_quotas:\n    pooled: ${quotas}\ndatasets:`);

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

function startRedis(port: number): Promise<ChildProcess> {
  return new Promise((resolve, reject) => {
    const child = spawn(REDIS_SERVER as string, ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: ['ignore', 'pipe', 'ignore'] });
    let out = '';
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('Ready to accept connections')) resolve(child);
    });
    child.on('exit', (code) => reject(new Error(`redis-server exited (${code}): ${out}`)));
  });
}

const stop = (c: ChildProcess) => new Promise<void>((r) => (c.exitCode !== null ? r() : (c.once('exit', () => r()), c.kill('SIGKILL'))));

describe.skipIf(!REDIS_URL)('two gateways on one Redis', () => {
  it('hold a tenant to its limit within 5%, however the requests are spread', { timeout: 60_000 }, async () => {
    // 40 requests a second, a burst of 40, for the tenant; the key may go as fast as it likes. (The burst is a
    // second's worth so a client that stalls for a moment on a busy machine wastes none of the allowance; the
    // rate is low enough that a loaded 2-core machine still sends several times it.)
    const fx = await createFixture('pglite', { sql: fixture('seed003.sql'), yaml: config(REDIS_URL!, 'open', '{ requests_per_minute: 2400, burst: 40, key_requests_per_minute: 10000000, key_burst: 1000000 }') });
    const gateways: Served[] = [];
    try {
      gateways.push(await serve(fx), await serve(fx));
      const keys = [gateways[0]!.keys.acme, gateways[1]!.keys.acme, gateways[0]!.keys.acmeAdmin];
      let ok = 0;
      let refused = 0;
      let other = 0;
      const seconds = 3;
      const started = Date.now();
      let i = 0;
      let lastSent = started;
      const worker = async () => {
        while (Date.now() - started < seconds * 1000) {
          const n = i++;
          lastSent = Date.now();
          const r = await gateways[n % 2]!.get('/v1/tenant', { 'x-api-key': keys[n % keys.length]! });
          if (r.status === 200) ok++;
          else if (r.status === 429) refused++;
          else other++;
        }
      };
      await Promise.all(Array.from({ length: 8 }, worker));
      // The window requests were admitted in: to the last one sent (a slow answer after it admits nothing more).
      const elapsed = (lastSent - started) / 1000;
      const expected = 40 + 40 * elapsed;
      expect(other).toBe(0);
      expect(refused).toBeGreaterThan(ok); // the load was well past the limit
      expect(Math.abs(ok - expected) / expected, `${ok} allowed, ${expected.toFixed(0)} expected over ${elapsed.toFixed(2)} s`).toBeLessThan(0.05);
    } finally {
      for (const g of gateways) await g.close();
      await fx.cleanup();
    }
  });
});

describe.skipIf(!REDIS_SERVER)('Redis killed mid-run', () => {
  for (const failure of ['open', 'closed'] as const) {
    it(`${failure}: answered per quota_store_failure while it is away, never 500, and back to shared limits after`, { timeout: 60_000 }, async () => {
      const port = await freePort();
      let redis = await startRedis(port);
      let fx: Fixture | undefined;
      let s: Served | undefined;
      try {
        fx = await createFixture('pglite', { sql: fixture('seed003.sql'), yaml: config(`redis://127.0.0.1:${port}`, failure, '{ requests_per_minute: 600000, burst: 1000 }') });
        s = await serve(fx);
        const burst = async (n: number) => {
          const statuses: number[] = [];
          for (let i = 0; i < n; i++) {
            const r = await s!.get('/v1/tenant', { 'x-api-key': s!.keys.acme });
            statuses.push(r.status);
            if (r.status === 503) {
              expect(r.json.error.code).toBe('QUOTA_UNAVAILABLE');
              expect(r.headers.get('retry-after')).toBeTruthy();
            }
          }
          return statuses;
        };
        expect(new Set(await burst(20))).toEqual(new Set([200]));
        await stop(redis);
        const away = await burst(30);
        expect(away.some((x) => x >= 500 && x !== 503)).toBe(false);
        if (failure === 'open') expect(new Set(away)).toEqual(new Set([200]));
        else expect(new Set(away), JSON.stringify(away)).toEqual(new Set([503]));
        redis = await startRedis(port);
        // ioredis reconnects on its own (backoff up to 2 s).
        let back: number[] = [];
        for (let i = 0; i < 40 && !(back.length && back.every((x) => x === 200)); i++) {
          await new Promise((r) => setTimeout(r, 250));
          back = await burst(5);
        }
        expect(new Set(back), JSON.stringify(back)).toEqual(new Set([200]));
      } finally {
        await s?.close();
        await fx?.cleanup();
        await stop(redis);
      }
    });
  }
});
