import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { Transform, type Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { fileURLToPath } from 'node:url';
import type pg from 'pg';
import { to as copyTo } from 'pg-copy-streams';
import type { Config, Tenant } from '../../config/types.ts';
import type { Database } from '../../db/database.ts';
import { ident, qualified } from '../../db/sql.ts';
import { TenantGateError, isTenantGateError } from '../../errors/index.ts';
import { resolveNames } from '../../provision/apply.ts';
import { loadSigningKey, signDocument, verifyDocument, type Signature } from '../../security/signing.ts';
import { ownerDatabases, type DatabaseSet } from '../../tiers/databases.ts';
import { physicalTable, tenantDatabase, type TenantLocation } from '../../tiers/location.ts';
import { readMove, unfinished } from '../../tiers/move/state.ts';
import { CopyTextToNdjson, ndjsonCopySelect } from './ndjson.ts';
import { parquetRows, writeParquet } from './parquet.ts';
import { csvField, csvHeader, CsvCounter, datasetQuery, EXPORT_FORMATS, EXPORT_VIEWS, extensionOf, type ExportFormat, type ExportView, type TableColumn } from './formats.ts';

export const MANIFEST = 'manifest.json';

export interface ManifestFile {
  file: string;
  dataset: string;
  table: string;
  columns: TableColumn[];
  rows: number;
  bytes: number;
  sha256: string;
}

export interface Manifest {
  manifest_version: 1;
  tool: { name: 'tenantgate'; version: string };
  tenant: string;
  view: ExportView;
  format: ExportFormat;
  /** When the one snapshot every file was read from was taken (ISO 8601, UTC). */
  snapshot_at: string;
  tier: string;
  placement: string;
  job: string | null;
  files: ManifestFile[];
  [k: string]: unknown;
}

export type SignedManifest = Manifest & { signature: Signature };

export interface ExportRequest {
  tenant: string;
  /** The output folder (absolute). */
  out: string;
  format: ExportFormat;
  /** Dataset names (default: every dataset). */
  datasets?: string[] | undefined;
  view: ExportView;
  force?: boolean | undefined;
}

export interface ExportOptions extends ExportRequest {
  config: Config;
  /** The owner connection to the main database (database.url). */
  main: Database;
  env: Record<string, string | undefined>;
  jobId?: string | null;
  /** Check that the folder is empty (unless force); false on a resume, whose own files are already there. */
  fresh?: boolean;
  signal?: AbortSignal;
  onProgress?: (done: number, total: number, phase: string) => void;
  /** Called after each dataset file and after the manifest (a test hook: kill points). */
  point?: (name: 'dataset' | 'manifest') => void;
  /** The owner's tenant databases (default: opened here and closed at the end). */
  databases?: DatabaseSet;
  /** How a file is opened for writing (tests inject a full disk). */
  openFile?: (path: string) => Writable;
  /** Rows per FETCH on the embedded database. */
  fetchRows?: number;
  /** After the folder is checked, before anything is read or written (the job saves its first checkpoint here). */
  beforeWrite?: () => Promise<void>;
}

export interface ExportResult {
  tenant: string;
  out: string;
  format: ExportFormat;
  view: ExportView;
  snapshot_at: string;
  files: Array<{ file: string; dataset: string; rows: number; bytes: number; sha256: string }>;
  rows: number;
  bytes: number;
}

let toolVersion: string | undefined;
/** tenantgate's own version (package.json, found from this file up: src/ or dist/). */
export function version(): string {
  if (toolVersion) return toolVersion;
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++) {
    const f = join(dir, 'package.json');
    if (existsSync(f)) {
      const p = JSON.parse(readFileSync(f, 'utf8')) as { name?: string; version?: string };
      if (p.name === 'tenantgate' && p.version) return (toolVersion = p.version);
    }
    dir = dirname(dir);
  }
  return (toolVersion = '0.0.0');
}

/** The request checked: format, view, datasets (every refusal here is EXPORT_INVALID, before anything is written). */
export function checkRequest(config: Config, r: { tenant: string; format?: unknown; view?: unknown; datasets?: unknown }): { tenant: Tenant; format: ExportFormat; view: ExportView; datasets: string[] } {
  const tenant = config.tenants.get(r.tenant);
  if (!tenant) throw new TenantGateError('TENANT_UNKNOWN', `no tenant "${r.tenant}" in the configuration`);
  const format = (r.format ?? 'ndjson') as ExportFormat;
  if (!EXPORT_FORMATS.includes(format)) {
    throw new TenantGateError('EXPORT_INVALID', `format takes one of ${EXPORT_FORMATS.join(', ')}`);
  }
  const view = (r.view ?? 'tenant') as ExportView;
  if (!EXPORT_VIEWS.includes(view)) throw new TenantGateError('EXPORT_INVALID', `view takes one of ${EXPORT_VIEWS.join(', ')}`);
  const all = config.datasets.map((d) => d.name);
  const datasets = r.datasets === undefined || r.datasets === null ? all : (r.datasets as string[]);
  if (!Array.isArray(datasets) || datasets.length === 0) throw new TenantGateError('EXPORT_INVALID', 'name at least one dataset');
  for (const d of datasets) if (typeof d !== 'string' || !all.includes(d)) throw new TenantGateError('EXPORT_INVALID', `no dataset "${String(d)}" (datasets: ${all.join(', ')})`);
  return { tenant, format, view, datasets: [...new Set(datasets)] };
}

/** Refuse a non-empty folder unless forced (EXPORT_TARGET_NOT_EMPTY); make it when missing. */
export function prepareTarget(out: string, force: boolean | undefined): void {
  try {
    if (existsSync(out)) {
      if (!statSync(out).isDirectory()) throw new TenantGateError('EXPORT_TARGET_NOT_EMPTY', `${out} exists and is not a folder`);
      if (!force && readdirSync(out).length > 0) throw new TenantGateError('EXPORT_TARGET_NOT_EMPTY', `${out} is not empty`);
    } else mkdirSync(out, { recursive: true });
  } catch (err) {
    if (isTenantGateError(err)) throw err;
    throw writeFailed(err, out);
  }
}

/** The files an export of these datasets writes into its folder (a resume rewrites them). */
export function plannedFiles(datasets: string[], format: ExportFormat): string[] {
  return [...datasets.map((d) => `${d}.${extensionOf(format)}`), MANIFEST, `${MANIFEST}.tmp`];
}

export function removeFiles(out: string, files: string[]): void {
  for (const f of files) rmSync(join(out, f), { force: true });
}

/** Refuse while the tenant is being moved (its place is changing under the snapshot). */
export async function checkNotMoving(main: Pick<Database, 'query'>, tenant: string): Promise<void> {
  const m = await readMove(main, tenant).catch((err: unknown) => {
    if ((err as { code?: string }).code === '42P01') return undefined; // no catalog of moves yet
    throw err;
  });
  if (unfinished(m)) throw new TenantGateError('TENANT_MOVING', `${tenant} is being moved (${m.from.tier} → ${m.to.tier}, phase ${m.phase}): export it once the move is done`);
}

export async function tenantPlace(main: Pick<Database, 'query'>, t: Tenant): Promise<TenantLocation> {
  const r = await main.query<{ tier: TenantLocation['tier']; placement: string }>(`SELECT tier, placement FROM tenantgate.tenants WHERE id = $1`, [t.id]);
  const row = r.rows[0];
  return row ? { tier: row.tier, placement: row.placement } : { tier: t.tier, placement: t.placement };
}

const WRITE_ERRORS = new Set(['ENOSPC', 'EDQUOT', 'EFBIG', 'EIO', 'EROFS', 'EACCES', 'EPERM', 'ENOENT', 'EISDIR', 'ENOTDIR', 'EMFILE']);
const isWriteError = (err: unknown) => {
  const e = err as { code?: string; syscall?: string };
  return typeof e?.syscall === 'string' || (typeof e?.code === 'string' && WRITE_ERRORS.has(e.code));
};
function writeFailed(err: unknown, where: string): TenantGateError {
  const code = (err as { code?: string }).code;
  const why = code === 'ENOSPC' || code === 'EDQUOT' ? 'the disk is full' : (err as Error).message;
  return new TenantGateError('EXPORT_WRITE_FAILED', `could not write ${where}: ${why} (${code ?? 'error'}); the partial files were removed`, { cause: err });
}

/** Counts bytes, lines and the SHA-256 of what passes through. */
class Digest extends Transform {
  readonly hash = createHash('sha256');
  bytes = 0;
  lines = 0;
  readonly csv: CsvCounter | undefined;
  /** `csv`: count CSV records; `lines`: count newlines; `none`: the rows are counted elsewhere (COPY's own count). */
  constructor(private readonly count: 'csv' | 'lines' | 'none') {
    super();
    this.csv = count === 'csv' ? new CsvCounter() : undefined;
  }
  override _transform(chunk: Buffer, _enc: BufferEncoding, done: (err?: Error | null, data?: Buffer) => void): void {
    this.hash.update(chunk);
    this.bytes += chunk.length;
    if (this.csv) this.csv.feed(chunk);
    else if (this.count === 'lines') for (let i = chunk.indexOf(10); i !== -1; i = chunk.indexOf(10, i + 1)) this.lines++;
    done(null, chunk);
  }
}

const tag = (err: unknown) => {
  if (err && typeof err === 'object') (err as { exportWrite?: boolean }).exportWrite = true;
  return err;
};

/**
 * Export one tenant: every chosen dataset from ONE snapshot (a single REPEATABLE READ, READ ONLY
 * transaction at the tenant's place: the main database for pooled and schema tenants, its own
 * database for database-tier ones), a file per dataset, streamed (COPY on a server, a cursor on the
 * embedded database), then the signed manifest (written last, by rename: a folder with a manifest
 * is complete). A failure removes the files it wrote.
 */
export async function runExport(o: ExportOptions): Promise<ExportResult> {
  const { tenant, format, view, datasets } = checkRequest(o.config, o);
  const key = loadSigningKey(o.config, o.env); // before anything is read: a missing key is refused at once
  await checkNotMoving(o.main, tenant.id);
  if (o.fresh !== false) prepareTarget(o.out, o.force);
  else mkdirSync(o.out, { recursive: true });
  await o.beforeWrite?.();
  const place = await tenantPlace(o.main, tenant);
  const own = o.databases ?? (place.tier === 'database' ? ownerDatabases(o.config, o.main, o.env) : undefined);
  const written: string[] = [];
  try {
    const db = place.tier === 'database' ? await own!.get(place.placement, tenantDatabase(resolveNames(o.config, o.env).prefix, tenant.id)) : o.main;
    const c = await db.pool.connect();
    let broken = false;
    const files: ManifestFile[] = [];
    let snapshotAt: string;
    try {
      await c.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
      await c.query(`SET LOCAL TimeZone = 'UTC'; SET LOCAL DateStyle = 'ISO, YMD'; SET LOCAL IntervalStyle = 'iso_8601'; SET LOCAL extra_float_digits = 1; SET LOCAL statement_timeout = 0`);
      // The snapshot is taken by this first statement: every file below reads it.
      snapshotAt = (await c.query<{ at: string }>(`SELECT to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS at`)).rows[0]!.at;
      let done = 0;
      for (const name of datasets) {
        o.signal?.throwIfAborted();
        o.onProgress?.(done, datasets.length, name);
        const d = o.config.datasets.find((x) => x.name === name)!;
        const at = physicalTable(d, tenant.id, place.tier);
        const rel = qualified(at.schema, at.table);
        const cols = (
          await c.query<TableColumn>(
            `SELECT a.attname::text AS name, format_type(a.atttypid, a.atttypmod) AS type FROM pg_attribute a
              WHERE a.attrelid = to_regclass($1) AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum`,
            [rel],
          )
        ).rows;
        if (cols.length === 0) throw new TenantGateError('DATASET_TABLE_MISSING', `${rel} does not exist at the tenant's place (run tenantgate apply)`);
        const q = datasetQuery(d, rel, cols, tenant, view, format);
        const file = `${name}.${extensionOf(format)}`;
        const path = join(o.out, file);
        written.push(file);
        if (format === 'parquet') {
          let rows: number;
          try {
            rows = await writeParquet(c, q.columns, q.select, path, `tenantgate version ${version()}`, o.fetchRows ?? 10_000, o.signal);
          } catch (err) {
            throw isTenantGateError(err) || !isWriteError(err) ? err : tag(err);
          }
          const digest = new Digest('none');
          await pipeline(createReadStream(path), digest, async function* (src) {
            for await (const _ of src);
          });
          files.push({ file, dataset: name, table: `${d.schema}.${d.table}`, columns: q.columns, rows, bytes: digest.bytes, sha256: digest.hash.digest('hex') });
          done++;
          o.onProgress?.(done, datasets.length, name);
          o.point?.('dataset');
          continue;
        }
        const digest = new Digest(db.kind === 'postgres' ? 'none' : 'lines');
        const sink = (o.openFile ?? ((p: string) => createWriteStream(p)))(path);
        sink.on('error', tag);
        let rows: number;
        if (db.kind === 'postgres') {
          // CSV is PostgreSQL's own; NDJSON is COPY text made JSON in this process (ndjson.ts: faster than row_to_json).
          const json = format === 'ndjson' ? new CopyTextToNdjson(q.columns) : undefined;
          const src = c.query(copyTo(json ? `COPY (${ndjsonCopySelect(q.columns, q.select)}) TO STDOUT` : `COPY (${q.select}) TO STDOUT (FORMAT csv, HEADER true)`));
          try {
            await pipeline([src, ...(json ? [json] : []), digest, sink], ...(o.signal ? [{ signal: o.signal }] : []));
          } catch (err) {
            broken = true; // the COPY may be mid-stream: this connection is not reused
            throw err;
          }
          rows = src.rowCount; // COPY's own count of the rows it sent
          if (json && json.rows !== rows) throw new TenantGateError('INTERNAL', `${file}: COPY sent ${rows} rows, ${json.rows} were written`);
        } else {
          rows = await fetchInto(c, q, format, digest, sink, o.fetchRows ?? 2000, o.signal);
        }
        files.push({ file, dataset: name, table: `${d.schema}.${d.table}`, columns: q.columns, rows, bytes: digest.bytes, sha256: digest.hash.digest('hex') });
        done++;
        o.onProgress?.(done, datasets.length, name);
        o.point?.('dataset');
      }
      await c.query('COMMIT');
    } catch (err) {
      // A connection left mid-COPY is destroyed, not rolled back (its server session ends the transaction).
      if (!broken) await c.query('ROLLBACK').catch(() => (broken = db.kind === 'postgres'));
      throw err;
    } finally {
      c.release(broken && db.kind === 'postgres');
    }
    const manifest: Manifest = {
      manifest_version: 1,
      tool: { name: 'tenantgate', version: version() },
      tenant: tenant.id,
      view,
      format,
      snapshot_at: snapshotAt,
      tier: place.tier,
      placement: place.placement,
      job: o.jobId ?? null,
      files,
    };
    const signed = signDocument(manifest, key);
    const tmp = join(o.out, `${MANIFEST}.tmp`);
    written.push(`${MANIFEST}.tmp`);
    try {
      writeFileSync(tmp, `${JSON.stringify(signed, null, 2)}\n`);
      renameSync(tmp, join(o.out, MANIFEST));
    } catch (err) {
      throw tag(err);
    }
    o.point?.('manifest');
    return {
      tenant: tenant.id,
      out: o.out,
      format,
      view,
      snapshot_at: snapshotAt,
      files: files.map((f) => ({ file: f.file, dataset: f.dataset, rows: f.rows, bytes: f.bytes, sha256: f.sha256 })),
      rows: files.reduce((n, f) => n + f.rows, 0),
      bytes: files.reduce((n, f) => n + f.bytes, 0),
    };
  } catch (err) {
    const fileError = (err as { exportWrite?: boolean })?.exportWrite || (isWriteError(err) && !isTenantGateError(err));
    // A cancelled or failed export leaves no partial files behind (a crash leaves them to the resume).
    removeFiles(o.out, written);
    if (fileError) throw writeFailed(err, o.out);
    throw err;
  } finally {
    if (!o.databases) await own?.close();
  }
}

/** The embedded database (no COPY stream): a cursor in the snapshot's transaction, a batch of rows at a time, written with backpressure. */
async function fetchInto(c: pg.PoolClient, q: ReturnType<typeof datasetQuery>, format: ExportFormat, digest: Digest, sink: Writable, batch: number, signal?: AbortSignal): Promise<number> {
  const n = q.columns.length;
  const sql = format === 'csv' ? `SELECT ${q.columns.map((_, i) => `(r.${ident(q.columns[i]!.name)})::text AS c${i}`).join(', ')} FROM (${q.select}) r` : q.jsonSelect;
  const done = pipeline(digest, sink);
  done.catch(() => {});
  const write = async (text: string) => {
    if (!digest.write(Buffer.from(text, 'utf8'))) await new Promise<void>((resolve, reject) => {
      const fail = (e: unknown) => reject(tag(e));
      digest.once('drain', () => {
        sink.off('error', fail);
        resolve();
      });
      sink.once('error', fail);
    });
  };
  let rows = 0;
  try {
    if (format === 'csv') await write(csvHeader(q.columns));
    await c.query(`DECLARE tenantgate_export NO SCROLL CURSOR FOR ${sql}`);
    for (;;) {
      signal?.throwIfAborted();
      const r = await c.query<Record<string, string | null>>(`FETCH ${batch} FROM tenantgate_export`);
      if (r.rows.length === 0) break;
      let text = '';
      for (const row of r.rows) {
        if (format === 'csv') {
          for (let i = 0; i < n; i++) text += (i ? ',' : '') + csvField(row[`c${i}`] ?? null);
          text += '\n';
        } else text += `${row['line']}\n`;
      }
      rows += r.rows.length;
      await write(text);
    }
    await c.query('CLOSE tenantgate_export');
    digest.end();
    await done;
  } catch (err) {
    digest.destroy();
    await done.catch(() => {});
    throw err;
  }
  return rows;
}

export interface VerifyProblem {
  file: string;
  problem: string;
}
export interface VerifyReport {
  ok: boolean;
  dir: string;
  tenant: string | null;
  files: number;
  rows: number;
  signature: 'valid' | 'invalid';
  problems: VerifyProblem[];
}

/**
 * `export verify DIR`: the manifest's signature (with `trusted`, by that key only), then every
 * file's size, SHA-256 and row count against the manifest. Each problem names its file.
 */
export async function verifyExport(dir: string, trusted?: import('node:crypto').KeyObject): Promise<VerifyReport> {
  const problems: VerifyProblem[] = [];
  let doc: SignedManifest;
  try {
    doc = JSON.parse(readFileSync(join(dir, MANIFEST), 'utf8')) as SignedManifest;
  } catch (err) {
    return { ok: false, dir, tenant: null, files: 0, rows: 0, signature: 'invalid', problems: [{ file: MANIFEST, problem: existsSync(join(dir, MANIFEST)) ? `unreadable: ${(err as Error).message}` : 'missing' }] };
  }
  const sig = verifyDocument(doc, trusted);
  if (!sig.ok) problems.push({ file: MANIFEST, problem: sig.problem });
  const files = Array.isArray(doc.files) ? doc.files : [];
  let rows = 0;
  for (const f of files) {
    const name = String(f.file);
    if (!/^[A-Za-z0-9_.-]+$/.test(name) || name.startsWith('.')) {
      problems.push({ file: name, problem: 'not a plain file name' });
      continue;
    }
    const path = join(dir, name);
    if (!existsSync(path)) {
      problems.push({ file: name, problem: 'missing' });
      continue;
    }
    const digest = new Digest(doc.format === 'csv' ? 'csv' : doc.format === 'parquet' ? 'none' : 'lines');
    await pipeline(createReadStream(path), digest, async function* (src) {
      for await (const _ of src);
    });
    let rowsIn: number;
    if (doc.format === 'parquet') rowsIn = await parquetRows(path).catch(() => -1);
    else rowsIn = doc.format === 'csv' ? Math.max(0, digest.csv!.records - 1) : digest.lines;
    const got = { bytes: digest.bytes, sha256: digest.hash.digest('hex'), rows: rowsIn };
    if (rowsIn === -1) problems.push({ file: name, problem: 'not a readable Parquet file (no footer)' });
    if (got.bytes !== f.bytes) problems.push({ file: name, problem: `size ${got.bytes} bytes, the manifest says ${f.bytes}` });
    if (got.sha256 !== f.sha256) problems.push({ file: name, problem: 'SHA-256 differs from the manifest (the file was changed)' });
    if (got.rows !== f.rows) problems.push({ file: name, problem: `${got.rows} rows, the manifest says ${f.rows}` });
    rows += got.rows;
  }
  return { ok: problems.length === 0, dir, tenant: typeof doc.tenant === 'string' ? doc.tenant : null, files: files.length, rows, signature: sig.ok ? 'valid' : 'invalid', problems };
}
