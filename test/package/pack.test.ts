/**
 * The package as a user meets it (issue 13): `npm pack` (which builds dist/ through `prepare`),
 * the tarball installed into a scratch project, then the README's steps there: its bin runs
 * `apply` on the embedded database, plain JavaScript imports `tenantgate` and runs withTenant,
 * and TypeScript resolves the types (not `any`). Packs a copy of the tree, so the checkout's
 * own dist/ is never rebuilt under the other test files.
 */
import { execFileSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const ROOT = join(import.meta.dirname, '../..');
const TSC = join(ROOT, 'node_modules/typescript/bin/tsc');
const run = (cmd: string, args: string[], cwd: string, env: Record<string, string> = {}) =>
  execFileSync(cmd, args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env }, timeout: 240_000 });

const CONFIG = `version: 1
database:
  url: pglite://./data
datasets:
  - name: orders
    table: public.orders
    dimensions: [region]
    metrics: { revenue: sum(amount) }
tenants:
  - id: acme_corp
  - id: globex_inc
`;

// Rows for both tenants, made through the library's own openDatabase before apply.
const SETUP = `import { loadConfig, openDatabase } from 'tenantgate';
const config = await loadConfig('tenantgate.yaml');
const db = await openDatabase(config.effective.database.url, { baseDir: config.dir });
await db.query('CREATE TABLE orders (id serial PRIMARY KEY, tenant_id text NOT NULL, region text, amount int)');
await db.query("INSERT INTO orders (tenant_id, region, amount) VALUES ('acme_corp', 'North', 100), ('globex_inc', 'East', 400)");
await db.close();
`;

// The README's library example, verbatim in shape.
const MAIN_JS = `import { createTenantGate } from 'tenantgate';
const gate = await createTenantGate({ config: 'tenantgate.yaml' });
const rows = await gate.withTenant({ tenant: 'acme_corp', access: 'read' }, async (db) => {
  const r = await db.query('SELECT region, sum(amount)::int AS revenue FROM orders GROUP BY region');
  return r.rows;
});
await gate.close();
console.log(JSON.stringify(rows));
`;

const MAIN_TS = `import { createTenantGate, type TenantClient, type TenantGate } from 'tenantgate';
type IsAny<T> = 0 extends 1 & T ? true : false;
// The pg types behind the client resolve (an unresolved module would make this any).
const resolved: IsAny<Awaited<ReturnType<TenantClient['query']>>> = false;
const gate: TenantGate = await createTenantGate({ config: 'tenantgate.yaml' });
const rows: Array<{ region: string }> = await gate.withTenant({ tenant: 'acme_corp', access: 'read' }, async (db) => {
  const r = await db.query<{ region: string }>('SELECT region FROM orders');
  return r.rows;
});
// @ts-expect-error access levels are typed
await gate.withTenant({ tenant: 'acme_corp', access: 'superuser' }, async () => 1);
console.log(resolved, rows.length);
`;

describe('the packed package, installed into a scratch project', () => {
  let work: string;
  let project: string;

  beforeAll(() => {
    work = mkdtempSync(join(tmpdir(), 'tg-pack-'));
    // A copy of the tree as git would ship it (tracked and new files, nothing ignored).
    const tree = join(work, 'tree');
    const files = run('git', ['ls-files', '--cached', '--others', '--exclude-standard'], ROOT).split('\n').filter(Boolean);
    for (const f of files) {
      mkdirSync(dirname(join(tree, f)), { recursive: true });
      try {
        cpSync(join(ROOT, f), join(tree, f));
      } catch {
        // deleted in the work tree but not yet in the index
      }
    }
    symlinkSync(join(ROOT, 'node_modules'), join(tree, 'node_modules'));
    run('npm', ['pack', '--pack-destination', work, '--loglevel=error'], tree);
    const tarball = readdirSync(work).find((n) => n.endsWith('.tgz'));
    expect(tarball).toBeDefined();
    project = join(work, 'project');
    mkdirSync(project);
    writeFileSync(join(project, 'package.json'), JSON.stringify({ name: 'scratch', private: true, type: 'module' }));
    // From npm's cache where it can (the suite's own `npm ci` filled it); @types/node as a TS project has it.
    run('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund', '--loglevel=error', join(work, tarball!), '@types/node@20'], project);
    writeFileSync(join(project, 'tenantgate.yaml'), CONFIG);
  }, 300_000);

  afterAll(() => {
    if (work) rmSync(work, { recursive: true, force: true });
  });

  it('ships compiled JavaScript and types, and no test or bench files', () => {
    const pkg = join(project, 'node_modules/tenantgate');
    const top = readdirSync(pkg).sort();
    expect(top).toEqual(expect.arrayContaining(['bin', 'dist', 'package.json']));
    expect(top).not.toContain('test');
    expect(top).not.toContain('bench');
    const dist = readdirSync(join(pkg, 'dist'));
    expect(dist).toEqual(expect.arrayContaining(['index.js', 'index.d.ts', 'demo']));
  });

  it('its bin applies the config, then plain JavaScript runs withTenant and sees only its tenant', () => {
    writeFileSync(join(project, 'setup.mjs'), SETUP);
    writeFileSync(join(project, 'main.mjs'), MAIN_JS);
    run('node', ['setup.mjs'], project);
    const applied = run(join(project, 'node_modules/.bin/tenantgate'), ['apply'], project);
    expect(applied).toMatch(/change/);
    expect(JSON.parse(run('node', ['main.mjs'], project))).toEqual([{ region: 'North', revenue: 100 }]);
  }, 120_000);

  it('TypeScript resolves the types', () => {
    writeFileSync(join(project, 'main.ts'), MAIN_TS);
    writeFileSync(
      join(project, 'tsconfig.json'),
      JSON.stringify({ compilerOptions: { target: 'ES2022', module: 'NodeNext', moduleResolution: 'NodeNext', strict: true, noEmit: true, skipLibCheck: true, types: ['node'] }, include: ['main.ts'] }),
    );
    const out = (() => {
      try {
        return run('node', [TSC, '-p', '.'], project);
      } catch (err) {
        return String((err as { stdout?: string }).stdout) + String((err as { stderr?: string }).stderr);
      }
    })();
    expect(out).toBe('');
  }, 120_000);
});
