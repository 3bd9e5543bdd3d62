/**
 * Export (issue 14 §3): one snapshot, a file per dataset, values kept exactly, the tenant view
 * (restricted and overridden columns absent, masks applied, row filters) and the full view, the
 * signed manifest and `export verify`, canaries of other tenants in every tier never exported,
 * and the refusals (unknown tenant, a non-empty folder, a moving tenant, a full disk).
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runExport, verifyExport, type ExportOptions, type SignedManifest } from '../../../src/lifecycle/export/export.ts';
import { exportKind, useExportEnvironment } from '../../../src/lifecycle/export/job.ts';
import { parquetColumns } from '../../../src/lifecycle/export/parquet.ts';
import { JobRegistry } from '../../../src/lifecycle/jobs/registry.ts';
import { JobRunner } from '../../../src/lifecycle/jobs/runner.ts';
import { beginMove, setPhase } from '../../../src/tiers/move/state.ts';
import { ownerDatabases, type DatabaseSet } from '../../../src/tiers/databases.ts';
import { BACKENDS, pgliteFactory, type Fixture } from '../../support/backends.ts';
import { BIG_INT, BIG_NUMERIC, canary, exportFixture, parseCsv, signingKeyPem, UNICODE } from './support.ts';

describe.each(BACKENDS)('export on %s', (kind) => {
  let fx: Fixture;
  let dbs: DatabaseSet;
  const root = mkdtempSync(join(tmpdir(), 'tg-export-'));
  const env = { TENANTGATE_SIGNING_KEY: signingKeyPem() };
  let n = 0;
  const exportOf = (tenant: string, o: Partial<ExportOptions> = {}) =>
    runExport({ config: fx.config, main: fx.db, env, tenant, out: join(root, `out${++n}`), format: 'ndjson', view: 'tenant', databases: dbs, ...o });
  const ndjson = (file: string) =>
    readFileSync(file, 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as Record<string, unknown>);

  beforeAll(async () => {
    fx = await exportFixture(kind);
    dbs = ownerDatabases(fx.config, fx.db, {}, pgliteFactory);
  }, 120_000);
  afterAll(async () => {
    await dbs?.close();
    await fx?.cleanup();
    rmSync(root, { recursive: true, force: true });
  });

  it('NDJSON keeps every value: 30-digit numeric and bigint as strings, timestamps with their offset, bytea base64, NULL apart from ""', async () => {
    const r = await exportOf('globex_inc');
    expect(readdirSync(r.out).sort()).toEqual(['manifest.json', 'orders.ndjson', 'vals.ndjson']);
    const rows = ndjson(join(r.out, 'vals.ndjson'));
    expect(rows).toHaveLength(3);
    const [a, b, c] = rows as [Record<string, unknown>, Record<string, unknown>, Record<string, unknown>];
    expect(a['n']).toBe(BIG_NUMERIC);
    expect(a['b']).toBe(BIG_INT);
    expect(Date.parse(a['ts'] as string)).toBe(Date.parse('2024-03-01T12:34:56.789+05:30'));
    expect(a['ts']).toMatch(/(\+00:00|Z)$/);
    expect(Buffer.from(a['raw'] as string, 'base64')).toEqual(Buffer.from([0x00, 0xff, 0x10]));
    expect(a['note']).toBe('');
    expect(a['uni']).toBe(UNICODE);
    expect(b['note']).toBeNull();
    expect(b['n']).toBeNull();
    expect(c['n']).toBe('-0.5');
    expect(c['raw']).toBe('');
    // The tenant view: restricted columns are absent.
    expect(Object.keys(a)).not.toContain('secret');
    expect(Object.keys(a)).toContain('tenant_id');
  });

  it('CSV keeps every value; NULL is an unquoted empty field, "" a quoted one', async () => {
    const r = await exportOf('globex_inc', { format: 'csv' });
    const [header, ...rows] = parseCsv(readFileSync(join(r.out, 'vals.csv'), 'utf8'));
    expect(header).toEqual(['id', 'tenant_id', 'n', 'b', 'ts', 'raw', 'note', 'uni', 'price']);
    const col = (row: Array<string | null>, name: string) => row[header!.indexOf(name)];
    expect(rows).toHaveLength(3);
    expect(col(rows[0]!, 'n')).toBe(BIG_NUMERIC);
    expect(col(rows[0]!, 'b')).toBe(BIG_INT);
    expect(Date.parse((col(rows[0]!, 'ts') as string).replace(' ', 'T').replace(/\+00$/, 'Z'))).toBe(Date.parse('2024-03-01T12:34:56.789+05:30'));
    expect(col(rows[0]!, 'ts')).toMatch(/\+00$/);
    expect(Buffer.from(col(rows[0]!, 'raw') as string, 'base64')).toEqual(Buffer.from([0x00, 0xff, 0x10]));
    expect(col(rows[0]!, 'note')).toBe('');
    expect(col(rows[1]!, 'note')).toBeNull();
    expect(col(rows[0]!, 'uni')).toBe(UNICODE);
    const m = JSON.parse(readFileSync(join(r.out, 'manifest.json'), 'utf8')) as SignedManifest;
    expect(m.files.find((f) => f.dataset === 'vals')?.rows).toBe(3);
  });

  it('Parquet keeps every value with its logical type: DECIMAL, INT64, TIMESTAMP(UTC, micros), bytes, NULL apart from ""', async () => {
    const r = await exportOf('globex_inc', { format: 'parquet' });
    expect(readdirSync(r.out).sort()).toEqual(['manifest.json', 'orders.parquet', 'vals.parquet']);
    const { asyncBufferFromFile, parquetMetadataAsync, parquetReadObjects } = await import('hyparquet');
    const file = await asyncBufferFromFile(join(r.out, 'vals.parquet'));
    const meta = await parquetMetadataAsync(file);
    const types = Object.fromEntries(meta.schema.slice(1).map((e) => [e.name, e]));
    expect(types['b']).toMatchObject({ type: 'INT64' });
    expect(types['n']).toMatchObject({ type: 'BYTE_ARRAY', converted_type: 'UTF8' }); // numeric without a scale: text, every digit
    expect(types['ts']).toMatchObject({ type: 'INT64', logical_type: { type: 'TIMESTAMP', isAdjustedToUTC: true, unit: 'MICROS' } });
    const rows = await parquetReadObjects({ file, utf8: false });
    expect(rows).toHaveLength(3);
    expect(rows[0]!['n']).toBe(BIG_NUMERIC);
    expect(rows[0]!['b']).toBe(BigInt(BIG_INT));
    expect(new Date(rows[0]!['ts'] as Date).toISOString()).toBe(new Date('2024-03-01T12:34:56.789+05:30').toISOString());
    expect(Buffer.from(rows[0]!['raw'] as Uint8Array)).toEqual(Buffer.from([0x00, 0xff, 0x10]));
    expect(rows[0]!['note']).toBe('');
    expect(rows[1]!['note']).toBeNull();
    expect(rows[0]!['uni']).toBe(UNICODE);
    expect(types['price']).toMatchObject({ type: 'BYTE_ARRAY', converted_type: 'DECIMAL', precision: 40, scale: 10 });
    // The reader turns DECIMAL into a float; the file holds the unscaled integer, which the writer is given exactly:
    expect(rows[0]!['price']).toBeCloseTo(Number(BIG_NUMERIC), -16);
    expect(rows[2]!['price']).toBe(-0.5);
    const price = parquetColumns([{ name: 'price', type: 'numeric(40,10)' }])[0]!;
    expect(price.convert(`${BIG_NUMERIC}0`)).toBe(BigInt(`${BIG_NUMERIC.replace('.', '')}0`));
    expect(price.convert('-0.5000000000')).toBe(-5_000_000_000n);
    expect(price.convert(null)).toBeNull();
    const orders = await parquetMetadataAsync(await asyncBufferFromFile(join(r.out, 'orders.parquet')));
    expect(Number(orders.num_rows)).toBe(2);
    const v = await verifyExport(r.out);
    expect(v.ok, JSON.stringify(v.problems)).toBe(true);
    expect(v.rows).toBe(5);
  });

  it("the tenant view: restricted, overridden and soft-deleted out, masks applied; the full view: every column and row raw", async () => {
    const t = await exportOf('acme_corp');
    const vals = ndjson(join(t.out, 'vals.ndjson'));
    expect(Object.keys(vals[0]!)).not.toContain('uni'); // acme_corp's access_override
    expect(Object.keys(vals[0]!)).not.toContain('secret');
    const orders = ndjson(join(t.out, 'orders.ndjson'));
    expect(orders).toHaveLength(2); // the soft-deleted row is filtered like the read role's
    expect(Object.keys(orders[0]!)).not.toContain('internal_cost');
    const emails = orders.map((o) => o['email']);
    expect(emails).toContain(null);
    expect(emails.find((e) => e !== null)).toMatch(/^[0-9a-f]{64}$/); // hashed
    const m = JSON.parse(readFileSync(join(t.out, 'manifest.json'), 'utf8')) as SignedManifest;
    expect(m.files.find((f) => f.dataset === 'orders')?.columns.find((c) => c.name === 'email')?.type).toBe('text');
    expect(m.files.find((f) => f.dataset === 'vals')?.columns.find((c) => c.name === 'n')?.type).toBe('numeric');

    const f = await exportOf('acme_corp', { view: 'full' });
    const fo = ndjson(join(f.out, 'orders.ndjson'));
    expect(fo).toHaveLength(3);
    expect(fo.map((o) => o['email'])).toContain(`${canary('acme_corp')}@mail`);
    expect(Object.keys(fo[0]!)).toContain('internal_cost');
    expect(fo[0]!['internal_cost']).toBe('7'); // numeric as a string
    const fv = ndjson(join(f.out, 'vals.ndjson'));
    expect(Object.keys(fv[0]!)).toEqual(expect.arrayContaining(['uni', 'secret']));
  });

  it('the manifest has the tenant, snapshot, version, per-file counts, bytes and SHA-256, and a signature; verify catches edits', async () => {
    const r = await exportOf('hooli', { datasets: ['vals'] });
    const m = JSON.parse(readFileSync(join(r.out, 'manifest.json'), 'utf8')) as SignedManifest;
    expect(m).toMatchObject({ tenant: 'hooli', tier: 'schema', view: 'tenant', format: 'ndjson', tool: { name: 'tenantgate' } });
    expect(m.snapshot_at).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+Z$/);
    expect(m.files).toHaveLength(1);
    expect(m.files[0]).toMatchObject({ file: 'vals.ndjson', dataset: 'vals', table: 'public.vals', rows: 3 });
    expect(m.signature.algorithm).toBe('Ed25519');
    expect((await verifyExport(r.out)).ok).toBe(true);

    const file = join(r.out, 'vals.ndjson');
    const original = readFileSync(file);
    writeFileSync(file, original.toString().replace('plain', 'plaiN'));
    let v = await verifyExport(r.out);
    expect(v.ok).toBe(false);
    expect(v.problems.map((p) => p.file)).toEqual(['vals.ndjson']);
    writeFileSync(file, original.subarray(0, original.length - 10));
    v = await verifyExport(r.out);
    expect(v.problems.map((p) => p.file)).toContain('vals.ndjson');
    expect(v.problems.some((p) => /rows/.test(p.problem))).toBe(true);
    writeFileSync(file, original);
    expect((await verifyExport(r.out)).ok).toBe(true);

    const mf = join(r.out, 'manifest.json');
    const text = readFileSync(mf, 'utf8');
    writeFileSync(mf, text.replace('"rows": 3', '"rows": 4'));
    v = await verifyExport(r.out);
    expect(v.signature).toBe('invalid');
    expect(v.problems.map((p) => p.file)).toContain('manifest.json');
    writeFileSync(mf, text);
  });

  it("no value of another tenant reaches an export, in any tier, view or format", async () => {
    const tenants = [...fx.config.tenants.keys()];
    for (const t of tenants) {
      for (const view of ['tenant', 'full'] as const) {
        for (const format of ['ndjson', 'csv'] as const) {
          const r = await exportOf(t, { view, format });
          const all = readdirSync(r.out)
            .map((f) => readFileSync(join(r.out, f), 'utf8'))
            .join('\n');
          for (const other of tenants.filter((o) => o !== t)) expect(all, `${other} in ${t}'s ${view} ${format} export`).not.toContain(other);
          expect(all).toContain(t);
          if (view === 'full') expect(all).toContain(canary(t));
        }
      }
    }
  }, 120_000);

  it('refuses an unknown tenant, an unknown dataset, an unknown format, a non-empty folder (unless --force) and a moving tenant', async () => {
    await expect(exportOf('nobody_here')).rejects.toMatchObject({ code: 'TENANT_UNKNOWN' });
    await expect(exportOf('acme_corp', { datasets: ['nope'] })).rejects.toMatchObject({ code: 'EXPORT_INVALID' });
    await expect(exportOf('acme_corp', { format: 'xml' as never })).rejects.toMatchObject({ code: 'EXPORT_INVALID' });
    const out = join(root, 'busy');
    (await import('node:fs')).mkdirSync(out);
    writeFileSync(join(out, 'keep.txt'), 'mine');
    await expect(exportOf('acme_corp', { out })).rejects.toMatchObject({ code: 'EXPORT_TARGET_NOT_EMPTY' });
    const forced = await exportOf('acme_corp', { out, force: true });
    expect(readdirSync(forced.out).sort()).toEqual(['keep.txt', 'manifest.json', 'orders.ndjson', 'vals.ndjson']);
    const m = await beginMove(fx.db, 'globex_inc', { tier: 'pooled', placement: 'default' }, { tier: 'schema', placement: 'default' });
    try {
      await expect(exportOf('globex_inc')).rejects.toMatchObject({ code: 'TENANT_MOVING' });
    } finally {
      await setPhase(fx.db, m, 'aborted');
    }
    expect((await exportOf('globex_inc')).rows).toBeGreaterThan(0);
  });

  it('a full disk fails with EXPORT_WRITE_FAILED and leaves no partial files', async () => {
    const out = join(root, 'full-disk');
    let opened = 0;
    const full = () =>
      new Writable({
        write(_chunk, _enc, cb) {
          if (++opened > 1) cb(Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC', syscall: 'write' }));
          else cb();
        },
      });
    await expect(exportOf('globex_inc', { out, openFile: full, fetchRows: 1 })).rejects.toMatchObject({ code: 'EXPORT_WRITE_FAILED' });
    expect(readdirSync(out)).toEqual([]);
    // The connection is usable afterwards.
    expect((await exportOf('globex_inc')).rows).toBeGreaterThan(0);
  });

  it('runs as a job: done once, with the result; a resumed job rewrites its files under a new snapshot', async () => {
    const registry = new JobRegistry();
    registry.register(exportKind);
    useExportEnvironment({ config: fx.config, env });
    try {
      const runner = new JobRunner({ db: fx.db, registry });
      const out = join(root, 'job');
      const job = await runner.submit({ kind: 'export', tenant: 'hooli', params: { out, format: 'csv' }, requestedBy: 'test' });
      const done = await runner.follow(job.id);
      expect(done.state, JSON.stringify(done.error)).toBe('done');
      expect(done.result).toMatchObject({ tenant: 'hooli', format: 'csv', rows: 5 });
      expect((await verifyExport(out)).ok).toBe(true);
      // A job that died mid-way (checkpoint `writing`) resumes: its own files are rewritten, the folder is not refused.
      await fx.db.query(`UPDATE tenantgate.jobs SET state = 'queued', checkpoint = '{"phase":"writing","attempt":1}'::jsonb, result = NULL, finished_at = NULL WHERE id = $1`, [job.id]);
      writeFileSync(join(out, 'orders.csv'), 'half a fi');
      rmSync(join(out, 'manifest.json'));
      const again = await runner.follow(job.id);
      expect(again.state, JSON.stringify(again.error)).toBe('done');
      expect((await verifyExport(out)).ok).toBe(true);
    } finally {
      useExportEnvironment(undefined);
    }
  });
});
