/**
 * Bad input, each a clear error with its location, exit code 2 and nothing half-applied.
 *
 * Everything runs through the CLI in-process (`main(argv, io)`), the way an operator meets
 * these errors: a temp dir holding tenantgate.yaml (and tenants/*.yaml), `--json` so the
 * error document can be read, then the owner connection to prove nothing was applied.
 *
 * - Config errors are found before the database is opened. Their config points at a PGlite
 *   directory that does not exist yet; that it still does not exist afterwards proves the
 *   database was never opened, so nothing can have been applied.
 * - Errors found against the live database (missing table or column, wrong column type)
 *   run on every backend; afterwards the owner connection shows no `tenantgate` schema,
 *   no role under the prefix and no policy or RLS switch on the dataset table.
 */
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { main } from '../../src/cli/main.ts';
import type { CliIO } from '../../src/cli/io.ts';
import { loadConfig } from '../../src/config/load.ts';
import { ERROR_CODES, TenantGateError, type ErrorCode } from '../../src/errors/index.ts';
import { BACKENDS, createServerDatabase, fixture, seedPgliteDir, withPgliteDir, type BackendKind, type ServerDatabase } from '../support/backends.ts';

const SECRET = 'bad-input-test-secret-0123456789abcdef';

interface CliResult {
  exit: number;
  stdout: string;
  stderr: string;
}

interface ErrorDocument {
  error: { code: string; message: string; hint: string; location?: { file: string; line?: number; column?: number; key?: string } };
}

async function cli(dir: string, args: string[], env: Record<string, string> = {}, json = true): Promise<CliResult> {
  let stdout = '';
  let stderr = '';
  const io: CliIO = {
    stdout: (t) => void (stdout += t),
    stderr: (t) => void (stderr += t),
    env: { TENANTGATE_SECRET: SECRET, ...env },
    cwd: dir,
    isTTY: false,
  };
  const exit = await main(['--config', join(dir, 'tenantgate.yaml'), ...(json ? ['--json'] : []), ...args], io);
  return { exit, stdout, stderr };
}

function errorOf(result: CliResult): ErrorDocument['error'] {
  let doc: ErrorDocument;
  try {
    doc = JSON.parse(result.stdout) as ErrorDocument;
  } catch {
    throw new Error(`stdout is not one JSON document:\n${result.stdout}\nstderr:\n${result.stderr}`);
  }
  return doc.error;
}

/** 1-based line of the one line of `text` that contains `needle` (it must be unique). */
function lineOf(text: string, needle: string): number {
  const lines = text.split('\n');
  const hits = lines.flatMap((l, i) => (l.includes(needle) ? [i + 1] : []));
  if (hits.length !== 1) throw new Error(`"${needle}" is on ${hits.length} lines of the test config; make it unique`);
  return hits[0] as number;
}

interface Expected {
  code: ErrorCode;
  /** Path relative to the case directory. */
  file: string;
  line: number;
  /** Config path; omitted for YAML syntax errors, which have no key. */
  key?: string;
}

/** Exit 2, the code, and the file/line/key of the error document. */
function expectCliError(result: CliResult, dir: string, want: Expected): void {
  const error = errorOf(result);
  expect({ exit: result.exit, code: error.code }).toEqual({ exit: 2, code: want.code });
  expect(ERROR_CODES[want.code].exit).toBe(2);
  // A missing variable's hint names it and where it is used (test/errors/hints.test.ts); the others are the code's.
  if (want.code === 'CONFIG_ENV_MISSING') expect(error.hint).toContain(`(used by ${want.key})`);
  else expect(error.hint).toBe(ERROR_CODES[want.code].hint);
  // Soft, so a wrong location still lets the caller go on to check that nothing was applied.
  expect.soft(error.location?.file).toBe(join(dir, want.file));
  expect.soft(error.location?.line).toBe(want.line);
  if (want.key !== undefined) expect.soft(error.location?.key).toBe(want.key);
}

/** The library path (loadConfig) reports the same code and location as the CLI. */
async function expectLoadError(dir: string, want: Expected, env: Record<string, string> = {}): Promise<void> {
  const err = await loadConfig(join(dir, 'tenantgate.yaml'), { env: { TENANTGATE_SECRET: SECRET, ...env } }).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(TenantGateError);
  const e = err as TenantGateError;
  expect(e.code).toBe(want.code);
  expect(e.location?.file).toBe(join(dir, want.file));
  expect(e.location?.line).toBe(want.line);
  if (want.key !== undefined) expect(e.location?.key).toBe(want.key);
}

function writeCase(dir: string, yaml: string, tenantFiles: Record<string, string> = {}): void {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'tenantgate.yaml'), yaml);
  if (Object.keys(tenantFiles).length > 0) mkdirSync(join(dir, 'tenants'), { recursive: true });
  for (const [name, text] of Object.entries(tenantFiles)) writeFileSync(join(dir, 'tenants', name), text);
}

/* ======================================================================================== */

describe('config errors: found before the database is opened', () => {
  let root: string;
  let n = 0;
  beforeAll(() => {
    root = mkdtempSync(join(tmpdir(), 'tg-bad-input-'));
  });
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  /** A fresh case directory whose database.url names a PGlite directory that must never appear. */
  const caseDir = () => join(root, `case-${++n}`);
  const HEAD = `version: 1
database:
  url: pglite://./pgdata
  role_prefix: tgbad
roles:
  analyst: { access: read }
  writer: { access: write }
`;
  /** Run `apply` and check exit code, error code, location, and that the database was never opened. */
  async function expectRejected(dir: string, want: Expected, env: Record<string, string> = {}): Promise<void> {
    const result = await cli(dir, ['apply'], env);
    expectCliError(result, dir, want);
    expect(existsSync(join(dir, 'pgdata')), 'apply opened the database although the config is invalid').toBe(false);
    await expectLoadError(dir, want, env);
  }

  const BAD_IDS: Array<[string, string]> = [
    ['upper case', 'Acme_corp'],
    ['unicode', 'acmé'],
    ['41 characters', `a${'b'.repeat(40)}`],
    ['a quote', "acme'corp"],
    ['a path', '../etc'],
  ];

  describe.each(BAD_IDS)('tenant id with %s (%s)', (_what, id) => {
    it('in tenantgate.yaml tenants:', async () => {
      const dir = caseDir();
      const yaml = `${HEAD}tenants:\n  - id: good_one\n  - id: ${id}\n    name: Bad\n`;
      writeCase(dir, yaml);
      await expectRejected(dir, { code: 'TENANT_ID_INVALID', file: 'tenantgate.yaml', line: lineOf(yaml, `id: ${id}`), key: 'tenants.1.id' });
    });

    it('as a tenants/<file>.yaml', async () => {
      const dir = caseDir();
      // A file cannot be called "../etc.yaml"; the operator would name it etc.yaml.
      const fileName = `${id.replace(/^\.\.\//, '')}.yaml`;
      const text = `# onboarded by a pull request\nid: ${id}\nname: Bad\n`;
      writeCase(dir, `${HEAD}tenants:\n  - id: good_one\n`, { [fileName]: text });
      await expectRejected(dir, { code: 'TENANT_ID_INVALID', file: join('tenants', fileName), line: lineOf(text, `id: ${id}`), key: 'tenants.1.id' });
    });
  });

  it('an unknown key at the top level', async () => {
    const dir = caseDir();
    const yaml = `${HEAD}tenant_form: [header]\ntenants:\n  - id: acme_corp\n`;
    writeCase(dir, yaml);
    await expectRejected(dir, { code: 'CONFIG_INVALID', file: 'tenantgate.yaml', line: lineOf(yaml, 'tenant_form:'), key: 'tenant_form' });
  });

  it('an unknown key nested in a dataset (datasets.0.tenant_colum)', async () => {
    const dir = caseDir();
    const yaml = `${HEAD}datasets:\n  - name: orders\n    table: public.orders\n    tenant_colum: tenant_id\n    dimensions: [region]\ntenants:\n  - id: acme_corp\n`;
    writeCase(dir, yaml);
    await expectRejected(dir, { code: 'CONFIG_INVALID', file: 'tenantgate.yaml', line: lineOf(yaml, 'tenant_colum:'), key: 'datasets.0.tenant_colum' });
  });

  it('an unknown key nested deeper (identity.jwt.claim)', async () => {
    const dir = caseDir();
    const yaml = `${HEAD}identity:\n  jwt:\n    issuer: https://idp.example.com/\n    claim:\n      tenant: org_id\ntenants:\n  - id: acme_corp\n`;
    writeCase(dir, yaml);
    await expectRejected(dir, { code: 'CONFIG_INVALID', file: 'tenantgate.yaml', line: lineOf(yaml, 'claim:'), key: 'identity.jwt.claim' });
  });

  it('an unknown key in a tenants/<file>.yaml', async () => {
    const dir = caseDir();
    const text = `id: initech\natributes: { region: West }\n`;
    writeCase(dir, `${HEAD}tenants:\n  - id: acme_corp\n`, { 'initech.yaml': text });
    await expectRejected(dir, { code: 'CONFIG_INVALID', file: 'tenants/initech.yaml', line: lineOf(text, 'atributes:'), key: 'tenants.1.atributes' });
  });

  it('a tenant naming an undefined role (roles: [nope])', async () => {
    const dir = caseDir();
    const yaml = `${HEAD}tenants:\n  - id: acme_corp\n    name: Acme\n    roles: [nope]\n`;
    writeCase(dir, yaml);
    await expectRejected(dir, { code: 'ROLE_UNKNOWN', file: 'tenantgate.yaml', line: lineOf(yaml, 'roles: [nope]'), key: 'tenants.0.roles.0' });
  });

  it('a tenant file naming an undefined role, second in its list', async () => {
    const dir = caseDir();
    const text = `id: initech\nroles:\n  - analyst\n  - nope\n`;
    writeCase(dir, `${HEAD}tenants:\n  - id: acme_corp\n`, { 'initech.yaml': text });
    await expectRejected(dir, { code: 'ROLE_UNKNOWN', file: 'tenants/initech.yaml', line: lineOf(text, '- nope'), key: 'tenants.1.roles.1' });
  });

  it('a tenant naming an undefined placement', async () => {
    const dir = caseDir();
    const yaml = `${HEAD}tenants:\n  - id: acme_corp\n  - id: globex_inc\n    name: Globex\n    placement: eu-dedicated\n`;
    writeCase(dir, yaml);
    await expectRejected(dir, { code: 'PLACEMENT_UNKNOWN', file: 'tenantgate.yaml', line: lineOf(yaml, 'placement: eu-dedicated'), key: 'tenants.1.placement' });
  });

  it('a tenant file naming an undefined placement', async () => {
    const dir = caseDir();
    const text = `id: initech\nname: Initech\nplacement: mars\n`;
    writeCase(dir, `${HEAD}tenants:\n  - id: acme_corp\n`, { 'initech.yaml': text });
    await expectRejected(dir, { code: 'PLACEMENT_UNKNOWN', file: 'tenants/initech.yaml', line: lineOf(text, 'placement: mars'), key: 'tenants.1.placement' });
  });

  it('${UNSET_VAR} without a default', async () => {
    const dir = caseDir();
    const yaml = `version: 1\ndatabase:\n  role_prefix: tgbad\n  url: \${UNSET_VAR}\ntenants:\n  - id: acme_corp\n`;
    writeCase(dir, yaml);
    await expectRejected(dir, { code: 'CONFIG_ENV_MISSING', file: 'tenantgate.yaml', line: lineOf(yaml, '${UNSET_VAR}'), key: 'database.url' });
  });

  it('${UNSET_VAR} without a default in a tenants/<file>.yaml', async () => {
    const dir = caseDir();
    const text = `id: initech\nname: Initech\nattributes:\n  region: \${UNSET_VAR}\n`;
    writeCase(dir, `${HEAD}tenants:\n  - id: acme_corp\n`, { 'initech.yaml': text });
    await expectRejected(dir, { code: 'CONFIG_ENV_MISSING', file: 'tenants/initech.yaml', line: lineOf(text, '${UNSET_VAR}'), key: 'tenants.1.attributes.region' });
  });

  it('an empty variable counts as unset', async () => {
    const dir = caseDir();
    const yaml = `version: 1\ndatabase:\n  role_prefix: tgbad\n  url: \${EMPTY_VAR}\n`;
    writeCase(dir, yaml);
    await expectRejected(dir, { code: 'CONFIG_ENV_MISSING', file: 'tenantgate.yaml', line: lineOf(yaml, '${EMPTY_VAR}'), key: 'database.url' }, { EMPTY_VAR: '' });
  });

  const MALFORMED: Array<[string, string, string]> = [
    ['a tab used for indentation', `${HEAD}server:\n\tport: 8081\n`, '\tport: 8081'],
    ['a duplicated key', `${HEAD}server:\n  port: 8081\n  port: 8082\n`, 'port: 8082'],
    ['a mapping in a compact value', `${HEAD}quota_store: memory: yes\n`, 'quota_store: memory: yes'],
    ['a bad indentation', `${HEAD}tenants:\n  - id: acme_corp\n   name: Acme\n`, '   name: Acme'],
  ];
  it.each(MALFORMED)('malformed YAML: %s', async (_what, yaml, badLine) => {
    const dir = caseDir();
    writeCase(dir, yaml);
    await expectRejected(dir, { code: 'CONFIG_INVALID', file: 'tenantgate.yaml', line: lineOf(yaml, badLine) });
  });

  it('malformed YAML in a tenants/<file>.yaml', async () => {
    const dir = caseDir();
    const text = `id: initech\nattributes:\n\tregion: West\n`;
    writeCase(dir, `${HEAD}tenants:\n  - id: acme_corp\n`, { 'initech.yaml': text });
    await expectRejected(dir, { code: 'CONFIG_INVALID', file: 'tenants/initech.yaml', line: lineOf(text, '\tregion') });
  });

  it('no configuration file at all: CONFIG_NOT_FOUND, exit 2, naming the file', async () => {
    const dir = caseDir();
    mkdirSync(dir);
    const result = await cli(dir, ['apply']);
    const error = errorOf(result);
    expect({ exit: result.exit, code: error.code }).toEqual({ exit: 2, code: 'CONFIG_NOT_FOUND' });
    expect(error.location?.file).toBe(join(dir, 'tenantgate.yaml'));
    expect(readdirSync(dir)).toEqual([]);
  });

  it('without --json, stderr names file:line (key) and the code', async () => {
    const dir = caseDir();
    const yaml = `${HEAD}tenants:\n  - id: acme_corp\n    roles: [nope]\n`;
    writeCase(dir, yaml);
    const result = await cli(dir, ['apply'], {}, false);
    expect(result.exit).toBe(2);
    expect(result.stdout).toBe('');
    const file = join(dir, 'tenantgate.yaml');
    expect(result.stderr).toContain(`${file}:${lineOf(yaml, 'roles: [nope]')}:`);
    expect(result.stderr).toContain('(tenants.0.roles.0)');
    expect(result.stderr).toContain('ROLE_UNKNOWN');
  });

  describe('tenant add', () => {
    const GOOD = `${HEAD}tenants:\n  - id: acme_corp\n`;

    it.each(BAD_IDS)('with a bad id (%s: %s) exits 2 and writes no file', async (_what, id) => {
      const dir = caseDir();
      writeCase(dir, GOOD, { 'globex_inc.yaml': 'id: globex_inc\n' });
      const result = await cli(dir, ['tenant', 'add', id]);
      const error = errorOf(result);
      expect({ exit: result.exit, code: error.code }).toEqual({ exit: 2, code: 'TENANT_ID_INVALID' });
      expect(readdirSync(join(dir, 'tenants'))).toEqual(['globex_inc.yaml']);
      expect(readdirSync(dir).sort()).toEqual(['tenantgate.yaml', 'tenants']);
    });

    it('with a bad id and no tenants/ folder yet creates none', async () => {
      const dir = caseDir();
      writeCase(dir, GOOD);
      const result = await cli(dir, ['tenant', 'add', 'Initech']);
      expect({ exit: result.exit, code: errorOf(result).code }).toEqual({ exit: 2, code: 'TENANT_ID_INVALID' });
      expect(readdirSync(dir)).toEqual(['tenantgate.yaml']);
    });

    it('an id that already exists: TENANT_EXISTS, exit 2, the file untouched', async () => {
      const dir = caseDir();
      writeCase(dir, GOOD, { 'globex_inc.yaml': 'id: globex_inc\nname: Globex\n' });
      for (const id of ['acme_corp', 'globex_inc']) {
        const result = await cli(dir, ['tenant', 'add', id, '--name', 'Other']);
        expect({ exit: result.exit, code: errorOf(result).code }).toEqual({ exit: 2, code: 'TENANT_EXISTS' });
      }
      expect(readdirSync(join(dir, 'tenants'))).toEqual(['globex_inc.yaml']);
      expect(existsSync(join(dir, 'pgdata'))).toBe(false);
    });

    it.each([
      ['an undefined role', ['--roles', 'analyst,nope'], 'ROLE_UNKNOWN'],
      ['an undefined placement', ['--placement', 'mars'], 'PLACEMENT_UNKNOWN'],
    ] as const)('a good id with %s: exit 2 and the file it wrote is gone again', async (_what, flags, code) => {
      const dir = caseDir();
      writeCase(dir, GOOD);
      const result = await cli(dir, ['tenant', 'add', 'initech', ...flags]);
      const error = errorOf(result);
      expect({ exit: result.exit, code: error.code }).toEqual({ exit: 2, code });
      expect(error.location?.file).toBe(join(dir, 'tenants', 'initech.yaml'));
      expect(existsSync(join(dir, 'tenants', 'initech.yaml'))).toBe(false);
      expect(existsSync(join(dir, 'tenants', 'initech.yaml.tmp'))).toBe(false);
      expect(existsSync(join(dir, 'pgdata'))).toBe(false);
    });
  });
});

/* ======================================================================================== */

interface DbState {
  schema: boolean;
  roles: string[];
  /** Policies and the RLS switch on public.orders. */
  policies: string[];
  rls: boolean;
  tenants: string[];
  applied: number;
}

describe.each(BACKENDS)('errors found against the live database on %s', (kind: BackendKind) => {
  let root: string;
  let url: string;
  let prefix: string;
  let server: ServerDatabase | undefined;
  let pgdata = '';
  let n = 0;

  beforeAll(async () => {
    root = mkdtempSync(join(tmpdir(), `tg-bad-db-${kind}-`));
    if (kind === 'pglite') {
      pgdata = join(root, 'pgdata');
      await seedPgliteDir(pgdata, fixture('seed003.sql'));
      url = `pglite://${pgdata}`;
      prefix = `tg${Math.random().toString(16).slice(2, 10)}`;
    } else {
      server = await createServerDatabase(fixture('seed003.sql'));
      url = server.url;
      prefix = server.prefix;
    }
  });
  afterAll(async () => {
    await server?.drop();
    rmSync(root, { recursive: true, force: true });
  });

  async function owner<T>(fn: (q: (sql: string, params?: unknown[]) => Promise<Array<Record<string, unknown>>>) => Promise<T>): Promise<T> {
    if (kind === 'pglite') return withPgliteDir(pgdata, (db) => fn(async (sql, params) => (await db.query(sql, params)).rows));
    const c = new pg.Client({ connectionString: url });
    await c.connect();
    try {
      return await fn(async (sql, params) => (await c.query(sql, params)).rows);
    } finally {
      await c.end();
    }
  }

  const state = () =>
    owner(async (q): Promise<DbState> => {
      const schema = (await q(`SELECT count(*)::int AS n FROM pg_namespace WHERE nspname = 'tenantgate'`))[0]?.['n'] === 1;
      const roles = (await q(`SELECT rolname FROM pg_roles WHERE rolname LIKE $1 ORDER BY 1`, [`${prefix}\\_%`])).map((r) => String(r['rolname']));
      const policies = (await q(`SELECT polname FROM pg_policy WHERE polrelid = 'public.orders'::regclass ORDER BY 1`)).map((r) => String(r['polname']));
      const rls = Boolean((await q(`SELECT relrowsecurity FROM pg_class WHERE oid = 'public.orders'::regclass`))[0]?.['relrowsecurity']);
      const tenants = schema ? (await q(`SELECT id FROM tenantgate.tenants ORDER BY 1`)).map((r) => String(r['id'])) : [];
      const applied = schema ? Number((await q(`SELECT count(*)::int AS n FROM tenantgate.applied`))[0]?.['n']) : 0;
      return { schema, roles, policies, rls, tenants, applied };
    });
  const NOTHING: DbState = { schema: false, roles: [], policies: [], rls: false, tenants: [], applied: 0 };

  const env = () => ({ TG_URL: url, TG_PREFIX: prefix });
  const config = (datasets: string, tenants = '  - id: acme_corp\n    attributes: { region: North }\n  - id: globex_inc\n    attributes: { region: East }\n') =>
    `version: 1
database:
  url: \${TG_URL}
  role_prefix: \${TG_PREFIX}
datasets:
${datasets}tenants:
${tenants}`;
  const ORDERS = `  - name: orders
    table: public.orders
    tenant_column: tenant_id
    rls:
      expression: "region = '{region}'"
    dimensions: [region, status]
    columns:
      internal_cost: { access: restricted }
`;
  const caseDir = () => join(root, `case-${++n}`);

  async function expectRejectedByDb(yaml: string, want: Omit<Expected, 'file'>, before: DbState = NOTHING): Promise<string> {
    const dir = caseDir();
    writeCase(dir, yaml);
    const result = await cli(dir, ['apply'], env());
    expectCliError(result, dir, { ...want, file: 'tenantgate.yaml' });
    expect(await state()).toEqual(before);
    return dir;
  }

  describe('on a database apply never ran on', () => {
    it('a dataset whose table does not exist (the second of two: nothing of the first is applied)', async () => {
      const yaml = config(`${ORDERS}  - name: invoices\n    table: public.invoices\n`);
      await expectRejectedByDb(yaml, { code: 'DATASET_TABLE_MISSING', line: lineOf(yaml, 'table: public.invoices'), key: 'datasets.1.table' });
    });

    it('a dataset whose tenant column does not exist', async () => {
      const yaml = config(ORDERS.replace('tenant_column: tenant_id', 'tenant_column: customer_id'));
      await expectRejectedByDb(yaml, { code: 'DATASET_COLUMN_MISSING', line: lineOf(yaml, 'tenant_column: customer_id'), key: 'datasets.0.tenant_column' });
    });

    it('a dataset whose default tenant column (defaults.tenant_column) does not exist', async () => {
      const yaml = config(ORDERS.replace('    tenant_column: tenant_id\n', '')).replace('datasets:\n', 'defaults:\n  tenant_column: org_id\ndatasets:\n');
      // The dataset does not name its tenant column; the error points at the dataset.
      await expectRejectedByDb(yaml, { code: 'DATASET_COLUMN_MISSING', line: lineOf(yaml, '- name: orders'), key: 'datasets.0.tenant_column' });
    });

    it('a dataset whose tenant column is not text', async () => {
      const yaml = config(ORDERS.replace('tenant_column: tenant_id', 'tenant_column: amount'));
      await expectRejectedByDb(yaml, { code: 'DATASET_COLUMN_TYPE', line: lineOf(yaml, 'tenant_column: amount'), key: 'datasets.0.tenant_column' });
    });

    it('a dimension column that does not exist', async () => {
      const yaml = config(ORDERS.replace('dimensions: [region, status]', 'dimensions:\n      - region\n      - colour'));
      await expectRejectedByDb(yaml, { code: 'DATASET_COLUMN_MISSING', line: lineOf(yaml, '- colour'), key: 'datasets.0.dimensions.1' });
    });
  });

  describe('on a provisioned database', () => {
    let provisioned: DbState;
    let goodDir: string;

    it('apply succeeds, and a second apply reports nothing to do', async () => {
      goodDir = caseDir();
      writeCase(goodDir, config(ORDERS));
      const first = await cli(goodDir, ['apply'], env());
      expect(first.exit, first.stdout + first.stderr).toBe(0);
      const firstDoc = JSON.parse(first.stdout) as { applied: boolean; changes: unknown[] };
      expect(firstDoc.applied).toBe(true);
      expect(firstDoc.changes.length).toBeGreaterThan(0);

      const second = await cli(goodDir, ['apply'], env());
      expect(second.exit, second.stdout + second.stderr).toBe(0);
      expect((JSON.parse(second.stdout) as { changes: unknown[] }).changes).toEqual([]);

      const plan = await cli(goodDir, ['plan'], env());
      expect(plan.exit).toBe(0);
      expect((JSON.parse(plan.stdout) as { changes: unknown[] }).changes).toEqual([]);

      provisioned = await state();
      expect(provisioned.schema).toBe(true);
      expect(provisioned.tenants).toEqual(['acme_corp', 'globex_inc']);
      expect(provisioned.rls).toBe(true);
      expect(provisioned.roles.length).toBeGreaterThan(0);
    });

    it('a new tenant beside a missing table: neither is applied', async () => {
      const yaml = config(
        `${ORDERS}  - name: invoices\n    table: public.invoices\n`,
        '  - id: acme_corp\n    attributes: { region: North }\n  - id: globex_inc\n    attributes: { region: East }\n  - id: initech\n    attributes: { region: West }\n',
      );
      await expectRejectedByDb(yaml, { code: 'DATASET_TABLE_MISSING', line: lineOf(yaml, 'table: public.invoices'), key: 'datasets.1.table' }, provisioned);
    });

    it('a new tenant overriding a column the table does not have: nothing applied', async () => {
      const yaml = config(
        ORDERS,
        '  - id: acme_corp\n    attributes: { region: North }\n  - id: globex_inc\n    attributes: { region: East }\n  - id: initech\n    attributes: { region: West }\n    access_overrides: { orders: { colour: restricted } }\n',
      );
      const dir = caseDir();
      writeCase(dir, yaml);
      const result = await cli(dir, ['apply'], env());
      // The line is the one the unknown column is written on, not the tenant's first line.
      expectCliError(result, dir, { code: 'DATASET_COLUMN_MISSING', file: 'tenantgate.yaml', line: lineOf(yaml, 'colour: restricted'), key: 'tenants.2.access_overrides.orders.colour' });
      expect(await state()).toEqual(provisioned);
    });

    it('tenant add with a bad id exits 2, writes no file and applies nothing', async () => {
      for (const id of ['Initech', '../etc']) {
        const result = await cli(goodDir, ['tenant', 'add', id], env());
        expect({ exit: result.exit, code: errorOf(result).code }).toEqual({ exit: 2, code: 'TENANT_ID_INVALID' });
      }
      expect(existsSync(join(goodDir, 'tenants'))).toBe(false);
      expect(await state()).toEqual(provisioned);
    });

    it('tenant add whose apply fails against the database removes its file and applies nothing', async () => {
      // Drift: a dimension column disappears, so the next apply must refuse.
      await owner((q) => q('ALTER TABLE public.orders RENAME COLUMN status TO state'));
      try {
        const result = await cli(goodDir, ['tenant', 'add', 'initech', '--attr', 'region=West'], env());
        const error = errorOf(result);
        expect({ exit: result.exit, code: error.code }).toEqual({ exit: 2, code: 'DATASET_COLUMN_MISSING' });
        expect(error.location?.file).toBe(join(goodDir, 'tenantgate.yaml'));
        expect(error.location?.key).toBe('datasets.0.dimensions.1');
        expect(error.location?.line).toBe(lineOf(config(ORDERS), 'dimensions: [region, status]'));
        expect(readdirSync(join(goodDir, 'tenants'))).toEqual([]);
        expect(await state()).toEqual(provisioned);
      } finally {
        await owner((q) => q('ALTER TABLE public.orders RENAME COLUMN state TO status'));
      }
      // With the column back, the same command goes through.
      const ok = await cli(goodDir, ['tenant', 'add', 'initech', '--attr', 'region=West'], env());
      expect(ok.exit, ok.stdout + ok.stderr).toBe(0);
      expect(readdirSync(join(goodDir, 'tenants'))).toEqual(['initech.yaml']);
      expect((await state()).tenants).toEqual(['acme_corp', 'globex_inc', 'initech']);
    });
  });
});
