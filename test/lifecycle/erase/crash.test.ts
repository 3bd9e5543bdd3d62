/**
 * `kill -9` of `tenantgate erase` (issue 14 §4): the CLI is killed with SIGKILL at eight points
 * (after the suspension, after the inventory, inside a delete batch's transaction, after a batch
 * committed, after the rows before the place, after the keys before the catalog, after the catalog
 * before the file, after the file before the certificate); each rerun of the same command resumes
 * the same job from its checkpoint once the dead runner's lease lapsed, and the last one finishes:
 * one job, every row deleted exactly once (rows deleted = rows before), the neighbours
 * byte-identical, the certificate valid. Then the same for a schema-tier tenant (its schema goes)
 * and a database-tier one (its database goes; one kill falls between the DROP DATABASE and its
 * checkpoint), six and seven points: each kill leaves the job one phase further, the last run
 * ends it, no role of theirs is left, and the neighbours that stay in every tier (umbrella in a
 * schema, vandelay in a database of its own, globex_inc pooled) are byte-identical and keep their
 * roles. Server only: the embedded database lives in one process.
 */
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDatabase, type Database } from '../../../src/db/database.ts';
import { createServerDatabase, SERVER_URL, TEST_SECRET, type ServerDatabase } from '../../support/backends.ts';
import { cliYaml, ERASE_SQL, SIGNING_PEM } from './support.ts';

const ROOT = join(import.meta.dirname, '..', '..', '..');
const YAML = cliYaml(`tenants:
  - { id: globex_inc, tier: pooled }
  - { id: hooli, tier: schema }
  - { id: initech, tier: database }
  - { id: umbrella, tier: schema }
  - { id: vandelay, tier: database }
`);
const ROWS = 20;
const POINTS = ['suspended', 'inventoried', 'in-batch:2', 'batch:3', 'rows-deleted', 'keys-removed', 'catalog-removed', 'file-removed'];

describe.skipIf(!SERVER_URL)('tenantgate erase killed with SIGKILL', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tg-erase-crash-'));
  const file = join(dir, 'tenantgate.yaml');
  let server: ServerDatabase;
  let db: Database;
  let initech: Database | undefined;
  let vandelay: Database;
  const env = () => ({ ...process.env, TG_TEST_DB: server.url, TG_TEST_PREFIX: server.prefix, TENANTGATE_SECRET: TEST_SECRET.toString(), TENANTGATE_SIGNING_KEY: SIGNING_PEM, TENANTGATE_TEST_JOB_LEASE_MS: '1000' });
  const cli = (args: string[], killAt?: string) =>
    new Promise<{ code: number | null; signal: NodeJS.Signals | null; out: string }>((resolve) => {
      const child = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'src/cli/main.ts'), '--config', file, ...args], {
        cwd: ROOT,
        env: { ...env(), ...(killAt ? { TENANTGATE_TEST_ERASE_KILL_AT: killAt } : {}) },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let out = '';
      child.stdout.on('data', (d: Buffer) => (out += d.toString()));
      child.stderr.on('data', (d: Buffer) => (out += d.toString()));
      child.on('exit', (code, signal) => resolve({ code, signal, out }));
    });
  const checksum = async (tenant: string, schema = 'public') => {
    const out: string[] = [];
    for (const t of ['orders', 'order_items']) {
      out.push(String((await db.query(`SELECT count(*)::text || ':' || coalesce(string_agg(md5(x::text), ',' ORDER BY x.id), '') AS c FROM "${schema}"."${t}" x WHERE tenant_id = $1`, [tenant])).rows[0]!['c']));
    }
    return out;
  };

  const ownDatabase = (tenant: string) => openDatabase(server.url.replace(/\/[^/?]+(\?|$)/, `/${server.prefix}_${tenant}$1`), { max: 1 });
  /** Count and hash of every row of a database-tier tenant's own orders. */
  const ownChecksum = async (own: Database) => String((await own.query(`SELECT count(*)::text || ':' || md5(string_agg(o::text, ',' ORDER BY o.id)) AS c FROM public.orders o`)).rows[0]!['c']);
  /** The tenant's roles as the catalog knows them: its group and each direct login of its keys. */
  const rolesOf = async (tenant: string) =>
    (
      await db.query<{ r: string }>(
        `SELECT $2::text AS r UNION SELECT role_name FROM tenantgate.db_roles WHERE tenant_id = $1 UNION SELECT db_login FROM tenantgate.api_keys WHERE tenant_id = $1 AND db_login IS NOT NULL ORDER BY 1`,
        [tenant, `${server.prefix}_t_${tenant}`],
      )
    ).rows.map((x) => x.r);
  const rolesThere = async (roles: string[]) => (await db.query<{ rolname: string }>(`SELECT rolname::text FROM pg_roles WHERE rolname = ANY($1) ORDER BY 1`, [roles])).rows.map((x) => x.rolname);
  /** The tenants that stay, one per tier: their rows byte for byte and their roles. */
  const stayers = async () => ({
    globex_inc: await checksum('globex_inc'),
    umbrella: await checksum('umbrella', 't_umbrella'),
    vandelay: await ownChecksum(vandelay),
    roles: await rolesThere([...(await rolesOf('globex_inc')), ...(await rolesOf('umbrella')), ...(await rolesOf('vandelay'))]),
  });

  beforeAll(async () => {
    server = await createServerDatabase(ERASE_SQL);
    writeFileSync(file, YAML);
    mkdirSync(join(dir, 'tenants'));
    writeFileSync(join(dir, 'tenants', 'acme_corp.yaml'), 'id: acme_corp\n');
    const applied = await cli(['apply']);
    expect(applied.code, applied.out).toBe(0);
    for (const t of ['acme_corp', 'hooli', 'initech', 'globex_inc', 'umbrella', 'vandelay']) {
      const key = await cli(['key', 'create', '--tenant', t, '--role', 'analyst', '--db-login']);
      expect(key.code, `${t}: ${key.out}`).toBe(0);
    }
    db = await openDatabase(server.url, { max: 2 });
    for (const t of ['acme_corp', 'globex_inc']) {
      for (let i = 0; i < ROWS; i++) {
        const o = await db.query<{ id: number }>(`INSERT INTO public.orders (tenant_id, region, amount) VALUES ($1, 'North', $2) RETURNING id`, [t, i]);
        await db.query(`INSERT INTO public.order_items (tenant_id, order_id, sku) VALUES ($1, $2, 'x')`, [t, o.rows[0]!.id]);
      }
    }
    await db.query(`INSERT INTO t_hooli.orders (tenant_id, region, amount) VALUES ('hooli', 'South', 7), ('hooli', 'East', 8)`);
    await db.query(`INSERT INTO t_umbrella.orders (tenant_id, region, amount) VALUES ('umbrella', 'South', 5), ('umbrella', 'North', 6)`);
    initech = await ownDatabase('initech');
    await initech.query(`INSERT INTO public.orders (tenant_id, region, amount) VALUES ('initech', 'West', 9), ('initech', 'East', 10), ('initech', 'North', 11)`);
    vandelay = await ownDatabase('vandelay');
    await vandelay.query(`INSERT INTO public.orders (tenant_id, region, amount) VALUES ('vandelay', 'West', 12)`);
  }, 120_000);
  afterAll(async () => {
    await initech?.close().catch(() => {});
    await vandelay?.close().catch(() => {});
    await db?.close();
    await server?.drop();
    rmSync(dir, { recursive: true, force: true });
  });

  it(`resumes after a kill at each of ${POINTS.length} points and finishes exactly once`, { timeout: 240_000 }, async () => {
    // The neighbours: those that stay, and the schema- and database-tier tenants erased next.
    const neighbours = async () => [await stayers(), await checksum('hooli', 't_hooli'), await ownChecksum(initech!)];
    const before = await neighbours();
    const args = ['erase', 'acme_corp', '--confirm', 'acme_corp', '--batch-rows', '3', '--certificate', join(dir, 'cert.json')];
    const phases: string[] = [];
    for (const point of POINTS) {
      const r = await cli(args, point);
      expect(r.signal, `${point}: ${r.out}`).toBe('SIGKILL');
      const job = (await db.query<{ state: string; phase: string; checkpoint: { phase: string } | null }>(`SELECT state, phase, checkpoint FROM tenantgate.jobs WHERE kind = 'erase' AND tenant = 'acme_corp'`)).rows;
      expect(job.length, point).toBe(1);
      expect(job[0]!.state).toBe('running');
      phases.push(job[0]!.checkpoint?.phase ?? 'none');
    }
    // Each kill left the job further along (or in the same phase for the two inside the rows).
    expect(phases).toEqual(['inventory', 'rows', 'rows', 'rows', 'place', 'catalog', 'file', 'certificate']);
    const last = await cli(args);
    expect(last.code, last.out).toBe(0);
    expect(last.out).toMatch(/Erased acme_corp/);
    const jobs = (await db.query<{ state: string; attempts: number }>(`SELECT state, attempts FROM tenantgate.jobs WHERE kind = 'erase' AND tenant = 'acme_corp'`)).rows;
    expect(jobs).toEqual([{ state: 'done', attempts: POINTS.length + 1 }]);
    const cert = JSON.parse(readFileSync(join(dir, 'cert.json'), 'utf8'));
    // Exactly once: every row counted before was deleted once, none twice, none missed.
    expect(cert.removed.tables.filter((t: { place: string }) => t.place === 'shared')).toEqual([
      { table: 'public.order_items', place: 'shared', rows_before: ROWS, rows_deleted: ROWS },
      { table: 'public.orders', place: 'shared', rows_before: ROWS, rows_deleted: ROWS },
    ]);
    expect(cert.removed.logins.length).toBe(1);
    expect(cert.check.ok).toBe(true);
    expect(await neighbours()).toEqual(before);
    expect(await rolesThere(cert.removed.logins)).toEqual([]);
    const verify = await cli(['erase', 'verify-certificate', join(dir, 'cert.json')]);
    expect(verify.code, verify.out).toBe(0);
    expect((await cli(['audit', 'verify'])).code).toBe(0);
  });

  /**
   * Kill `erase ID` at each point (checking the job moved on to `phases[i]`, or stayed in it), then run
   * it to the end: one job, its place gone, none of its roles left, the certificate valid and saying
   * what was there, the tenants that stay untouched.
   */
  const killedAtEach = async (id: string, points: string[], phases: string[], place: { schemas: string[]; databases: Array<{ name: string; placement: string }>; rows: number }, gone: () => Promise<boolean>) => {
    const before = await stayers();
    const roles = await rolesOf(id);
    expect(roles.length, 'a group and a direct login').toBe(2);
    expect(await rolesThere(roles)).toEqual(roles);
    expect(await gone()).toBe(false);
    const args = ['erase', id, '--confirm', id, '--certificate', join(dir, `cert-${id}.json`)];
    const seen: string[] = [];
    for (const point of points) {
      const r = await cli(args, point);
      expect(r.signal, `${point}: ${r.out}`).toBe('SIGKILL');
      const job = (await db.query<{ state: string; checkpoint: { phase: string } | null }>(`SELECT state, checkpoint FROM tenantgate.jobs WHERE kind = 'erase' AND tenant = $1`, [id])).rows;
      expect(job.length, point).toBe(1);
      expect(job[0]!.state, point).toBe('running');
      seen.push(job[0]!.checkpoint?.phase ?? 'none');
    }
    expect(seen).toEqual(phases);
    const last = await cli(args);
    expect(last.code, last.out).toBe(0);
    expect(last.out).toMatch(new RegExp(`Erased ${id}`));
    const jobs = (await db.query<{ state: string; attempts: number }>(`SELECT state, attempts FROM tenantgate.jobs WHERE kind = 'erase' AND tenant = $1`, [id])).rows;
    expect(jobs).toEqual([{ state: 'done', attempts: points.length + 1 }]);
    expect(await gone()).toBe(true);
    expect(await rolesThere(roles)).toEqual([]);
    expect((await db.query(`SELECT count(*)::int AS n FROM tenantgate.db_roles WHERE tenant_id = $1`, [id])).rows[0]).toEqual({ n: 0 });
    expect((await db.query(`SELECT count(*)::int AS n FROM tenantgate.tenants WHERE id = $1`, [id])).rows[0]).toEqual({ n: 0 });
    expect((await db.query(`SELECT job_id IS NOT NULL AND certificate IS NOT NULL AS ok FROM tenantgate.erased_tenants WHERE tenant = $1`, [id])).rows).toEqual([{ ok: true }]);
    expect(await stayers()).toEqual(before);
    const cert = JSON.parse(readFileSync(join(dir, `cert-${id}.json`), 'utf8'));
    // The inventory the certificate carries was taken once, before anything went (a later one would find nothing).
    expect(cert.removed.schemas).toEqual(place.schemas);
    expect(cert.removed.databases).toEqual(place.databases);
    expect(cert.removed.logins.length).toBe(1);
    expect([...cert.removed.logins, ...cert.removed.roles].sort()).toEqual(roles);
    expect(cert.removed.tables.filter((t: { place: string }) => t.place !== 'shared').find((t: { table: string }) => t.table === 'public.orders').rows_before).toBe(place.rows);
    expect(cert.check).toMatchObject({ ok: true, schema_left: null, database_left: null, roles_left: [], problems: [] });
    const verify = await cli(['erase', 'verify-certificate', join(dir, `cert-${id}.json`)]);
    expect(verify.code, verify.out).toBe(0);
  };

  it('a schema-tier tenant: killed at six points, its schema and roles go exactly once, the others byte-identical', { timeout: 240_000 }, async () => {
    await killedAtEach(
      'hooli',
      ['suspended', 'inventoried', 'rows-deleted', 'place-removed', 'keys-removed', 'catalog-removed'],
      ['inventory', 'rows', 'place', 'keys', 'catalog', 'file'],
      { schemas: ['t_hooli'], databases: [], rows: 2 },
      async () => (await db.query(`SELECT count(*)::int AS n FROM pg_namespace WHERE nspname = 't_hooli'`)).rows[0]!['n'] === 0,
    );
  });

  it('a database-tier tenant: killed at seven points (one between its DROP DATABASE and the checkpoint), it goes exactly once, the others byte-identical', { timeout: 240_000 }, async () => {
    await initech!.close();
    initech = undefined;
    await killedAtEach(
      'initech',
      ['suspended', 'inventoried', 'rows-deleted', 'database-dropped', 'place-removed', 'keys-removed', 'catalog-removed'],
      ['inventory', 'rows', 'place', 'place', 'keys', 'catalog', 'file'],
      { schemas: [], databases: [{ name: `${server.prefix}_initech`, placement: 'default' }], rows: 3 },
      async () => (await db.query(`SELECT count(*)::int AS n FROM pg_database WHERE datname = $1`, [`${server.prefix}_initech`])).rows[0]!['n'] === 0,
    );
  });
});
