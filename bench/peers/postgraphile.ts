/**
 * PostGraphile 4.14 serving the point query of bench/peers.ts over the same RLS-protected table:
 * its own HTTP server, `pgSettings` setting the read role and the tenant context (the tenant and
 * its HMAC, looked up by API key as the minimal handler does), its own pool. Run as its own process:
 *
 *   node --import tsx bench/peers/postgraphile.ts SPEC.json     (prints "listening on http://…")
 *
 * The GraphQL request: `query($id: BigInt!) { orderById(id: $id) { id region status } }`.
 */
import { readFileSync } from 'node:fs';
import http from 'node:http';
import pg from 'pg';
import { postgraphile } from 'postgraphile';
import type { PeerSpec } from './spec.ts';

const spec = JSON.parse(readFileSync(process.argv[2] as string, 'utf8')) as PeerSpec;
const pool = new pg.Pool({ connectionString: spec.url, max: spec.poolSize });
pool.on('error', () => {});
const keys = new Map(Object.entries(spec.keys));

const handler = postgraphile(pool, 'public', {
  disableQueryLog: true,
  graphiql: false,
  enableQueryBatching: false,
  retryOnInitFail: false,
  pgSettings: (req: http.IncomingMessage) => {
    const who = keys.get(String(req.headers['x-api-key']));
    // No key, no tenant: the read role with no context sees no rows (RLS fails closed).
    return who
      ? { role: who.role, 'tenantgate.tenant': who.tenant, 'tenantgate.mac': who.mac, statement_timeout: '5000', transaction_read_only: 'on' }
      : { role: Object.values(spec.keys)[0]?.role ?? 'nobody' };
  },
});

const server = http.createServer(handler);
server.keepAliveTimeout = 60_000;
server.listen(0, '127.0.0.1', () => {
  const a = server.address();
  process.stdout.write(`listening on http://127.0.0.1:${typeof a === 'object' && a ? a.port : 0}\n`);
});
// A plain exit on SIGTERM (what the benchmark sends), so --cpu-prof can write its profile.
process.once('SIGTERM', () => process.exit(0));
