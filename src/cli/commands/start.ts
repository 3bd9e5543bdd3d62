import { chmodSync, copyFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadConfig } from '../../config/load.ts';
import { openDatabase } from '../../db/database.ts';
import { createTenantGate } from '../../gate.ts';
import { createApiKey, type CreatedKey } from '../../identify/api-keys.ts';
import { applyProvision } from '../../provision/apply.ts';
import { loadServerSecret } from '../../security/secret.ts';
import { loginUrl } from '../../db/url.ts';
import type { CliIO } from '../io.ts';

const DEMO = fileURLToPath(new URL('../../demo/', import.meta.url));

/**
 * `npm start`: the demo catalog on the embedded database. Idempotent: a second run reuses the
 * data directory and the demo keys it saved (mode 0600) beside it.
 */
export async function runDemo(io: CliIO, dirOption: string, json: boolean, serve: { enabled: boolean; port?: number } = { enabled: false }): Promise<void> {
  const dir = resolve(io.cwd, dirOption);
  mkdirSync(dir, { recursive: true });
  const configFile = join(dir, 'tenantgate.yaml');
  if (!existsSync(configFile)) copyFileSync(join(DEMO, 'tenantgate.yaml'), configFile);
  const config = await loadConfig(configFile, { env: io.env });
  const secret = loadServerSecret(config, io.env);
  const db = await openDatabase(config.effective.database.url, { baseDir: config.dir });
  let serving = false;
  try {
    const seeded = await db.query(`SELECT to_regclass('public.orders') IS NOT NULL AS present`);
    if (!seeded.rows[0]?.['present']) await db.query(readFileSync(join(DEMO, 'orders.sql'), 'utf8'));
    const result = await applyProvision(config, db, secret, { env: io.env });
    const keysFile = join(dir, 'demo-keys.json');
    let keys: CreatedKey[];
    if (existsSync(keysFile)) {
      keys = JSON.parse(readFileSync(keysFile, 'utf8')) as CreatedKey[];
    } else {
      keys = [];
      for (const [tenant, role] of [['acme_corp', 'analyst'], ['globex_inc', 'analyst'], [undefined, 'ops']] as const) {
        keys.push(await createApiKey(db, config, result.names, secret, { role, ...(tenant ? { tenant } : {}) }));
      }
      // On a server, a direct database login for acme_corp too (psql, BI tools): isolated by the database alone.
      if (db.kind === 'postgres') keys.push(await createApiKey(db, config, result.names, secret, { role: 'analyst', tenant: 'acme_corp', dbLogin: true }));
      writeFileSync(keysFile, JSON.stringify(keys, null, 2), { mode: 0o600 });
      chmodSync(keysFile, 0o600);
    }
    // Prove the wall on the spot: the same query, once per tenant, through withTenant.
    const gate = await createTenantGate({ config, database: db, secret, env: io.env });
    const sql = 'SELECT region, sum(amount)::int AS revenue FROM public.orders GROUP BY region ORDER BY region';
    const answers: Record<string, unknown[]> = {};
    for (const tenant of ['acme_corp', 'globex_inc']) {
      const r = await gate.withTenant({ tenant, access: 'read' }, (c) => c.query<{ region: string; revenue: number }>(sql));
      answers[tenant] = r.rows.map((row) => [row.region, row.revenue]);
    }
    const rel = relative(io.cwd, configFile) || configFile;
    const login = keys.find((k) => k.db_login)?.db_login;
    const loginUrlText = login ? loginUrl(config.effective.database.url, login.user, login.password, login.database) : undefined;
    // The three things a newcomer does next: call the API (curl, below), look with psql as a tenant, edit the catalog.
    const psqlLines = loginUrlText
      ? [
          'As acme_corp with psql (a direct login: only its rows, by the database alone; saved in demo-keys.json):',
          `  psql '${loginUrlText}' -c 'SELECT region, sum(amount) FROM orders GROUP BY region'`,
        ]
      : [
          'psql: the embedded database has no network port (and one superuser session, so a login is no boundary there).',
          '  To log in as a tenant with psql, run the demo on PostgreSQL: DEMO_DATABASE_URL=postgres://USER@HOST:5432/DB npm start',
        ];
    const configLines = [
      `The catalog to edit: ${rel} (datasets, tenants, roles, quotas; every key: docs/configuration.md),`,
      `  then: npx tenantgate --config ${rel} plan   (what would change) and apply`,
    ];
    if (json && !serve.enabled) {
      io.stdout(`${JSON.stringify({ config: configFile, changes: result.changes.length, keys, answers }, null, 2)}\n`);
      await gate.close();
      return;
    }
    const lines = [
      `tenantgate demo: embedded database at ${relative(io.cwd, join(dir, 'pgdata'))}, catalog ${rel}`,
      `apply: ${result.changes.length === 0 ? 'nothing to do (already provisioned)' : `${result.changes.length} change(s) made`}`,
      '',
      'The same query, run as each tenant inside withTenant (RLS enforced by the database):',
      `  ${sql}`,
      ...Object.entries(answers).map(([t, rows]) => `  ${t.padEnd(11)} -> ${JSON.stringify(rows)}`),
      '',
      'Demo API keys (saved in demo-keys.json, mode 0600):',
      ...keys.map((k) => `  ${(k.tenant ?? 'platform').padEnd(11)} ${k.role.padEnd(8)} ${k.key}${k.db_login ? '  (+ database login, below)' : ''}`),
      '',
    ];
    if (serve.enabled) {
      const { serveGateway } = await import('./serve.ts');
      const server = await serveGateway(io, config, gate, secret, { ...(serve.port !== undefined ? { port: serve.port } : {}), onClose: () => db.close() });
      serving = true;
      const [acme, globex, ops] = keys;
      const body = `'{"dataset": "orders", "dimensions": ["region"], "metrics": ["revenue"]}'`;
      lines.push(
        `Gateway listening on ${server.url} (Ctrl-C to stop). Try:`,
        `  curl -s ${server.url}/v1/query -H 'X-API-Key: ${acme?.key}' -H 'Content-Type: application/json' -d ${body}`,
        `  curl -s ${server.url}/v1/query -H 'X-API-Key: ${globex?.key}' -H 'Content-Type: application/json' -d ${body}`,
        `  curl -s ${server.url}/v1/queries -H 'X-API-Key: ${acme?.key}' -H 'Content-Type: application/json' -d '{"sql": "SELECT region, sum(amount) FROM orders GROUP BY region"}'`,
        `  curl -s ${server.url}/v1/query -H 'X-API-Key: ${ops?.key}' -H 'X-Tenant-ID: all' -H 'Content-Type: application/json' -d ${body}`,
        `  curl -s ${server.url}/v1/datasets -H 'X-API-Key: ${acme?.key}'`,
        `  curl -s '${server.url}/v1/admin/audit?tenant=all&limit=5' -H 'X-API-Key: ${ops?.key}'`,
        `  curl -s ${server.url}/metrics -H 'X-API-Key: ${ops?.key}'`,
        `  curl -s ${server.url}/openapi.json`,
        '',
        ...psqlLines,
        '',
        ...configLines,
        '',
        'Other commands (stop the gateway first: the embedded database has one session):',
        `  npx tenantgate --config ${rel} tenant list`,
        `  npx tenantgate --config ${rel} tenant add initech --attr region=West`,
        '',
      );
    } else {
      lines.push(
        ...psqlLines,
        '',
        ...configLines,
        '',
        'Next:',
        `  npm start                                                  # the same, then serve the HTTP gateway`,
        `  npx tenantgate --config ${rel} tenant list`,
        `  npx tenantgate --config ${rel} tenant show acme_corp --json`,
        `  npx tenantgate --config ${rel} plan                      # drift check: nothing to do`,
        `  npx tenantgate --config ${rel} tenant add initech --attr region=West`,
        `  npx tenantgate --config ${rel} key create --tenant initech --role analyst --json`,
        '',
        'As a library:',
        `  const gate = await createTenantGate({ config: '${rel}' });`,
        `  await gate.withTenant({ tenant: 'acme_corp', access: 'read' }, (db) => db.query('SELECT * FROM orders'));`,
        '',
      );
      await gate.close();
    }
    io.stdout(lines.join('\n'));
  } finally {
    if (!serving) await db.close();
  }
}
