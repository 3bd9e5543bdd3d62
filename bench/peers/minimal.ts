/**
 * Node's own ceiling for the gateway's request: `node:http` + `pg` and nothing else. It answers the
 * semantic point query of bench/peers.ts with the same wire traffic as the gateway (the one-Sync
 * batch of context + compiled statement, src/execute/tenant-statement.ts) and the same JSON, but
 * with no identification beyond a Map lookup of the key, no planning, no checks, no audit, no
 * quotas, no metrics. Run as its own process:
 *
 *   node --import tsx bench/peers/minimal.ts SPEC.json     (prints "listening on http://…")
 */
import { readFileSync } from 'node:fs';
import http from 'node:http';
import pg from 'pg';
import { runTenantStatement } from '../../src/execute/tenant-statement.ts';
import type { PeerSpec } from './spec.ts';

const spec = JSON.parse(readFileSync(process.argv[2] as string, 'utf8')) as PeerSpec;
const pool = new pg.Pool({ connectionString: spec.url, max: spec.poolSize });
pool.on('error', () => {});
const keys = new Map(Object.entries(spec.keys));

const server = http.createServer((req, res) => {
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => {
    const who = keys.get(String(req.headers['x-api-key']));
    if (!who) {
      res.writeHead(401, { 'content-type': 'application/json' }).end('{"error":{"code":"AUTH_INVALID"}}');
      return;
    }
    let id: unknown;
    try {
      id = (JSON.parse(Buffer.concat(chunks).toString('utf8')) as { filters: Array<{ value: unknown }> }).filters[0]?.value;
    } catch {
      res.writeHead(400).end();
      return;
    }
    runTenantStatement(pool, { tenant: who.tenant, access: 'read', role: who.role, mac: who.mac, statementTimeoutMs: 5000, searchPath: null }, { text: spec.sql, values: [who.tenant, id, spec.limit], rowMode: 'array' }).then(
      (r) => {
        const body = JSON.stringify({ columns: r.fields.map((f) => f.name), rows: r.rows, row_count: r.rows.length, truncated: false });
        res.writeHead(200, { 'content-type': 'application/json; charset=utf-8' }).end(body);
      },
      (err: unknown) => res.writeHead(500, { 'content-type': 'application/json' }).end(JSON.stringify({ error: { code: 'INTERNAL', message: (err as Error).message } })),
    );
  });
});
server.keepAliveTimeout = 60_000;
server.listen(0, '127.0.0.1', () => {
  const a = server.address();
  process.stdout.write(`listening on http://127.0.0.1:${typeof a === 'object' && a ? a.port : 0}\n`);
});
// A plain exit on SIGTERM (what the benchmark sends), so --cpu-prof can write its profile.
process.once('SIGTERM', () => process.exit(0));
