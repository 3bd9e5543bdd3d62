/**
 * `kill -9` of `tenantgate erase` (issue 14 §4): the CLI is killed with SIGKILL at eight points
 * (after the suspension, after the inventory, inside a delete batch's transaction, after a batch
 * committed, after the rows before the place, after the keys before the catalog, after the catalog
 * before the file, after the file before the certificate); each rerun of the same command resumes
 * the same job from its checkpoint once the dead runner's lease lapsed, and the last one finishes:
 * one job, every row deleted exactly once (rows deleted = rows before), the neighbours
 * byte-identical, the certificate valid. Then the same for a schema-tier tenant (its schema goes)
 * and a database-tier one (its database goes), five points each. Server only: the embedded
 * database lives in one process.
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
`);
const ROWS = 20;
const POINTS = ['suspended', 'inventoried', 'in-batch:2', 'batch:3', 'rows-deleted', 'keys-removed', 'catalog-removed', 'file-removed'];

describe.skipIf(!SERVER_URL)('tenantgate erase killed with SIGKILL', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tg-erase-crash-'));
  const file = join(dir, 'tenantgate.yaml');
  let server: ServerDatabase;
  let db: Database;
  let initech: Database | undefined;
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

  beforeAll(async () => {
    server = await createServerDatabase(ERASE_SQL);
    writeFileSync(file, YAML);
    mkdirSync(join(dir, 'tenants'));
    writeFileSync(join(dir, 'tenants', 'acme_corp.yaml'), 'id: acme_corp\n');
    const applied = await cli(['apply']);
    expect(applied.code, applied.out).toBe(0);
    const key = await cli(['key', 'create', '--tenant', 'acme_corp', '--role', 'analyst', '--db-login']);
    expect(key.code, key.out).toBe(0);
    db = await openDatabase(server.url, { max: 2 });
    for (const t of ['acme_corp', 'globex_inc']) {
      for (let i = 0; i < ROWS; i++) {
        const o = await db.query<{ id: number }>(`INSERT INTO public.orders (tenant_id, region, amount) VALUES ($1, 'North', $2) RETURNING id`, [t, i]);
        await db.query(`INSERT INTO public.order_items (tenant_id, order_id, sku) VALUES ($1, $2, 'x')`, [t, o.rows[0]!.id]);
      }
    }
    await db.query(`INSERT INTO t_hooli.orders (tenant_id, region, amount) VALUES ('hooli', 'South', 7)`);
    initech = await openDatabase(server.url.replace(/\/[^/?]+(\?|$)/, `/${server.prefix}_initech$1`), { max: 1 });
    await initech.query(`INSERT INTO public.orders (tenant_id, region, amount) VALUES ('initech', 'West', 9)`);
  }, 120_000);
  afterAll(async () => {
    await initech?.close().catch(() => {});
    await db?.close();
    await server?.drop();
    rmSync(dir, { recursive: true, force: true });
  });

  it(`resumes after a kill at each of ${POINTS.length} points and finishes exactly once`, { timeout: 240_000 }, async () => {
    const neighbours = [await checksum('globex_inc'), await checksum('hooli', 't_hooli')];
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
    expect([await checksum('globex_inc'), await checksum('hooli', 't_hooli')]).toEqual(neighbours);
    const verify = await cli(['erase', 'verify-certificate', join(dir, 'cert.json')]);
    expect(verify.code, verify.out).toBe(0);
    expect((await cli(['audit', 'verify'])).code).toBe(0);
  });

  /** Kill `erase ID` at each point, then run it to the end: one job, its place gone, the certificate valid, the others untouched. */
  const killedAtEach = async (id: string, points: string[], gone: () => Promise<boolean>, others: () => Promise<unknown>) => {
    const before = await others();
    const args = ['erase', id, '--confirm', id, '--certificate', join(dir, `cert-${id}.json`)];
    for (const point of points) {
      const r = await cli(args, point);
      expect(r.signal, `${point}: ${r.out}`).toBe('SIGKILL');
    }
    const last = await cli(args);
    expect(last.code, last.out).toBe(0);
    const jobs = (await db.query<{ state: string; attempts: number }>(`SELECT state, attempts FROM tenantgate.jobs WHERE kind = 'erase' AND tenant = $1`, [id])).rows;
    expect(jobs).toEqual([{ state: 'done', attempts: points.length + 1 }]);
    expect(await gone()).toBe(true);
    expect(await others()).toEqual(before);
    const verify = await cli(['erase', 'verify-certificate', join(dir, `cert-${id}.json`)]);
    expect(verify.code, verify.out).toBe(0);
  };

  it('a schema-tier tenant: killed at five points, its schema and roles go exactly once, the others byte-identical', { timeout: 240_000 }, async () => {
    await killedAtEach(
      'hooli',
      ['suspended', 'inventoried', 'rows-deleted', 'place-removed', 'catalog-removed'],
      async () => (await db.query(`SELECT count(*)::int AS n FROM pg_namespace WHERE nspname = 't_hooli'`)).rows[0]!['n'] === 0,
      async () => [await checksum('globex_inc'), String((await initech!.query(`SELECT count(*)::text || md5(string_agg(o::text, ',' ORDER BY o.id)) AS c FROM public.orders o`)).rows[0]!['c'])],
    );
  });

  it('a database-tier tenant: killed at five points (its database dropped in one of them), it goes exactly once, the others byte-identical', { timeout: 240_000 }, async () => {
    await initech!.close();
    initech = undefined;
    await killedAtEach(
      'initech',
      ['suspended', 'inventoried', 'place-removed', 'keys-removed', 'catalog-removed'],
      async () => (await db.query(`SELECT count(*)::int AS n FROM pg_database WHERE datname = $1`, [`${server.prefix}_initech`])).rows[0]!['n'] === 0,
      async () => [await checksum('globex_inc')],
    );
  });
});
