import type { Config, Tenant } from '../../config/types.ts';
import { TIERS } from '../../config/schema.ts';
import type { Database } from '../../db/database.ts';
import { inTransaction } from '../../db/database.ts';
import type pg from 'pg';
import { ident, literal } from '../../db/sql.ts';
import { TenantGateError } from '../../errors/index.ts';
import { provisionPlace, resolveNames } from '../../provision/apply.ts';
import { dropTenantDatabase, serverAccess } from '../../provision/tenant-databases.ts';
import { schemaTierClash } from '../../provision/validate.ts';
import { ownerDatabases, type DatabaseSet } from '../databases.ts';
import { tenantDatabase, tenantSchema, type TenantLocation } from '../location.ts';
import { ddlWithRetry, readLog, dropEntries, seal, startCapture, stopCapture, unseal, backlog } from './capture.ts';
import { rowHashes, STABLE_TEXT, tableChecksum, type TableChecksum } from './checksum.ts';
import { beginMove, noteError, readMove, setPhase, unfinished, type MoveRecord, type Phase } from './state.ts';
import { moveTables, tableSql, type MoveTable } from './tables.ts';
import { advanceSequences, copyTable, deleteRows, replayKeys } from './transfer.ts';
import { appliedVersions, targetKey } from '../../migrate/ledger.ts';

export interface MoveOptions {
  config: Config;
  /** The owner's connection to the main database (embedded: the very instance the gateway uses, if one runs in this process). */
  main: Database;
  secret: Buffer;
  env?: Record<string, string | undefined>;
  /** The owner's view of tenant databases (default: made from the config, closed after). */
  databases?: DatabaseSet;
  tenant: string;
  to: TenantLocation;
  /** Say what would happen; change nothing. */
  dryRun?: boolean;
  /** How long the old place stays after the cut-over before it is removed (gateways still reading it finish): default 5 s. */
  graceMs?: number;
  /** Rows per copy chunk (default 100,000 on a server, 20,000 embedded). */
  chunkRows?: number;
  onProgress?: (p: MoveProgress) => void;
  /** Called at named points (prepared, copy-chunk, caught-up, verified, sealed, switched, cleaned): tests stop the process there. */
  checkpoint?: (point: string) => void | Promise<void>;
}

export interface MoveProgress {
  phase: Phase;
  message: string;
  table?: string;
  done?: number;
  total?: number;
}

export interface MoveReport {
  tenant: string;
  from: TenantLocation;
  to: TenantLocation;
  dryRun: boolean;
  /** `done`; for a dry run, the phase the move would start (or resume) at. */
  phase: Phase;
  /** What was done, or would be. */
  steps: string[];
  tables: Array<{ table: string; rows: number; checksum?: TableChecksum }>;
  rows: number;
  copySeconds: number;
  rowsPerSecond: number;
  /** Rows replayed from the change log (written while the move ran). */
  replayed: number;
  /** How long the tenant's writes were paused at the cut-over (seal → switch), ms. */
  pauseMs: number | null;
  /** Time spent in each phase this run, ms (cleanup includes the grace period). */
  phaseMs: Partial<Record<Phase, number>>;
}

/** A report as JSON (CLI --json, the admin API's dry run): snake_case like every other JSON tenantgate writes. */
export function moveReportJson(r: MoveReport) {
  const { dryRun, copySeconds, rowsPerSecond, pauseMs, phaseMs, ...rest } = r;
  return { ...rest, dry_run: dryRun, copy_seconds: copySeconds, rows_per_second: rowsPerSecond, pause_ms: pauseMs, phase_ms: phaseMs };
}

/** The seal is a lease: a mover that dies holding it stops pausing the tenant's writes after this long. */
const SEAL_SECONDS = 10;
/** Catch-up stops once the backlog is this small: the rest is replayed while sealed. */
const CATCHUP_TARGET = 500;
const LOG_BATCH = 5_000;

const where = (l: TenantLocation) => `tier ${l.tier}${l.placement === 'default' ? '' : ` on ${l.placement}`}`;

/** One move of one tenant, run to its end (or to an error that leaves the tenant whole at its old place). */
class Mover {
  readonly n;
  readonly dbs: DatabaseSet;
  readonly report: MoveReport;
  tables: MoveTable[] = [];
  private fromDb!: Database;
  private toDb!: Database;

  constructor(
    readonly o: MoveOptions,
    readonly tenant: Tenant,
    readonly m: MoveRecord,
  ) {
    this.n = resolveNames(o.config, o.env);
    this.dbs = o.databases ?? ownerDatabases(o.config, o.main, o.env ?? process.env);
    this.report = { tenant: tenant.id, from: m.from, to: m.to, dryRun: !!o.dryRun, phase: m.phase, steps: [], tables: [], rows: 0, copySeconds: 0, rowsPerSecond: 0, replayed: 0, pauseMs: null, phaseMs: {} };
  }

  private dbAt(l: TenantLocation): Promise<Database> {
    return l.tier === 'database' ? this.dbs.get(l.placement, tenantDatabase(this.n.prefix, this.tenant.id)) : Promise.resolve(this.o.main);
  }

  private say(message: string, extra: Partial<MoveProgress> = {}): void {
    this.report.steps.push(message);
    this.o.onProgress?.({ phase: this.m.phase, message, ...extra });
  }

  private async at(point: string): Promise<void> {
    await this.o.checkpoint?.(point);
  }

  async open(): Promise<void> {
    this.fromDb = await this.dbAt(this.m.from);
    this.tables = await moveTables(this.o.config, this.fromDb, this.tenant.id, this.m.from.tier, this.m.to.tier);
  }

  async openTarget(): Promise<void> {
    this.toDb = await this.dbAt(this.m.to);
    // Rows hashed by value when both places run one server version and every column can be hashed; by text otherwise.
    const version = async (db: Database) => (await db.query<{ v: string }>(`SELECT current_setting('server_version_num') AS v`)).rows[0]?.v;
    const same = (await version(this.fromDb)) === (await version(this.toDb));
    for (const t of this.tables) t.hashValues = same && t.hashable;
  }

  async close(): Promise<void> {
    if (!this.o.databases) await this.dbs.close();
  }

  /** The new place: made (schema and tables, or a database of its own), empty of the tenant's rows, and the old place logging its writes. */
  async prepare(): Promise<void> {
    const changes = await provisionPlace(this.o.config, this.o.main, this.o.secret, this.tenant, this.m.to, { ...(this.o.env ? { env: this.o.env } : {}), databases: this.dbs });
    this.say(`prepare: ${changes.length ? `made the new place (${changes.length} change(s))` : 'the new place exists'}`);
    await this.openTarget();
    for (const t of this.tables) {
      const s = tableSql(t, 'to', this.tenant.id);
      const there = await this.toDb.query(`SELECT 1 FROM ${s.rel} WHERE ${s.mine} LIMIT 1`).catch((err: { code?: string }) => {
        if (err.code === '42P01') throw new TenantGateError('MOVE_UNSUPPORTED', `${s.rel} is missing at the new place (run tenantgate apply)`, { cause: err });
        throw err;
      });
      if (there.rows.length) throw new TenantGateError('MOVE_CONFLICT', `the new place already holds rows of ${this.tenant.id} in ${s.rel} (left by an earlier move?): --abort removes them`);
    }
    await startCapture(this.fromDb, this.tenant.id, this.tables);
    await setPhase(this.o.main, this.m, 'copy');
    this.say(`prepare: logging ${this.tenant.id}'s writes at its old place`);
    await this.at('prepared');
  }

  async copy(): Promise<void> {
    const started = performance.now();
    const chunkRows = this.o.chunkRows ?? (this.fromDb.kind === 'postgres' && this.toDb.kind === 'postgres' ? 100_000 : 20_000);
    let copied = 0;
    for (const t of this.tables) {
      const s = tableSql(t, 'from', this.tenant.id);
      const total = Number((await this.fromDb.query<{ n: string }>(`SELECT count(*) AS n FROM ${s.rel} WHERE ${s.mine}`)).rows[0]?.n ?? 0);
      // Resuming: what the new place holds already (fresh: nothing, no need to count).
      const to = tableSql(t, 'to', this.tenant.id);
      const started = (await this.toDb.query(`SELECT 1 FROM ${to.rel} WHERE ${to.mine} LIMIT 1`)).rows.length > 0;
      const already = started ? Number((await this.toDb.query<{ n: string }>(`SELECT count(*) AS n FROM ${to.rel} WHERE ${to.mine}`)).rows[0]?.n ?? 0) : 0;
      let done = already;
      const rows = await copyTable(this.fromDb, this.toDb, t, this.tenant.id, {
        chunkRows,
        onChunk: async (n) => {
          done += n;
          this.o.onProgress?.({ phase: 'copy', message: `copy ${t.name}`, table: t.name, done, total });
          await this.at('copy-chunk');
        },
      });
      copied += rows;
      this.report.tables.push({ table: t.name, rows: done });
    }
    const seconds = (performance.now() - started) / 1000;
    // Statistics for the new place before anything plans against it (the catch-up's lookups, the tenant after the cut-over).
    for (const t of this.tables) await this.toDb.query(`ANALYZE ${tableSql(t, 'to', this.tenant.id).rel}`);
    this.report.rows = copied;
    this.report.copySeconds = seconds;
    this.report.rowsPerSecond = seconds > 0 ? Math.round(copied / seconds) : 0;
    this.say(`copy: ${copied.toLocaleString('en-US')} row(s) in ${seconds.toFixed(1)} s`);
    await setPhase(this.o.main, this.m, 'catchup', { copied, copy_seconds: seconds });
  }

  /**
   * Replay logged rows at the new place until the log is down to `until` entries (0: empty).
   * Returns the keys replayed, per table, when asked to collect them.
   */
  async drain(until: number, collect = false): Promise<Map<string, Map<string, Record<string, unknown>>>> {
    const seen = new Map<string, Map<string, Record<string, unknown>>>();
    const byName = new Map(this.tables.map((t) => [`${t.from.schema}.${t.from.table}`, t]));
    for (;;) {
      const entries = await readLog(this.fromDb, this.tenant.id, LOG_BATCH);
      if (entries.length === 0) break;
      const groups = new Map<string, Map<string, Record<string, unknown>>>();
      for (const e of entries) {
        const g = groups.get(e.tbl) ?? new Map<string, Record<string, unknown>>();
        g.set(JSON.stringify(e.key), e.key);
        groups.set(e.tbl, g);
      }
      for (const [tbl, keys] of groups) {
        const t = byName.get(tbl);
        if (!t) continue;
        await replayKeys(this.fromDb, this.toDb, t, this.tenant.id, [...keys.values()]);
        this.report.replayed += keys.size;
        if (collect) {
          const all = seen.get(tbl) ?? new Map();
          for (const [k, v] of keys) all.set(k, v);
          seen.set(tbl, all);
        }
      }
      await dropEntries(this.fromDb, this.tenant.id, entries.map((e) => e.seq));
      if (entries.length < LOG_BATCH && (until === 0 ? false : (await backlog(this.fromDb, this.tenant.id)) <= until)) break;
    }
    return seen;
  }

  async catchup(): Promise<void> {
    await this.drain(CATCHUP_TARGET);
    this.say(`catch-up: replayed ${this.report.replayed.toLocaleString('en-US')} row(s) written meanwhile`);
    await setPhase(this.o.main, this.m, 'verify');
    await this.at('caught-up');
  }

  /**
   * Checksums of every table at both places on one consistent view: snapshots taken while the old
   * place is sealed and fully replayed (on a server the sums then run on the snapshots while writes
   * go on; the embedded database is one session, so there they run sealed).
   */
  async verify(): Promise<void> {
    let sums: Array<[TableChecksum, TableChecksum]> | undefined;
    for (let attempt = 1; !sums; attempt++) {
      await seal(this.fromDb, this.tenant.id, { seconds: SEAL_SECONDS });
      try {
        await this.drain(0);
        sums = this.fromDb.kind === 'postgres' && this.toDb.kind === 'postgres' ? await this.sumsOnSnapshots() : await this.sumsSealed();
      } finally {
        await unseal(this.fromDb, this.tenant.id);
      }
      if (!sums && attempt >= 3) throw new TenantGateError('MOVE_CONFLICT', `the seal ran out (${SEAL_SECONDS} s) before the snapshots were taken, three times: rerun the move`);
    }
    const bad = this.tables.filter((_, i) => sums[i]![0].rows !== sums[i]![1].rows || sums[i]![0].sum !== sums[i]![1].sum);
    if (bad.length) await this.mismatch(`checksums differ for ${bad.map((t) => t.name).join(', ')}`);
    const checksums = Object.fromEntries(this.tables.map((t, i) => [t.name, sums[i]![0]]));
    this.report.tables = this.tables.map((t, i) => ({ table: t.name, rows: Number(sums[i]![0].rows), checksum: sums[i]![0] }));
    this.say(`verify: ${this.tables.map((t, i) => `${t.name} ${Number(sums[i]![0].rows).toLocaleString('en-US')} rows, checksum equal`).join('; ')}`);
    await setPhase(this.o.main, this.m, 'cutover', { checksums });
    await this.at('verified');
  }

  /** Snapshots of both places (undefined if the seal ran out before they were taken), then the sums on them. */
  private async sumsOnSnapshots(): Promise<Array<[TableChecksum, TableChecksum]> | undefined> {
    const open: pg.PoolClient[] = [];
    try {
      const a = await this.snapshot(this.fromDb);
      open.push(a);
      // Taken in the old place's snapshot: still sealed then, so nothing was written after the last replay.
      const held = await a.query<{ held: boolean; snap: string }>(`SELECT sealed_until > clock_timestamp() AS held, pg_export_snapshot() AS snap FROM tenantgate.move_state WHERE tenant = $1`, [this.tenant.id]);
      if (!held.rows[0]?.held) return undefined;
      // The new place's own snapshot (taken while sealed), or, in the same database, a second session on the very same one: both sides sum at once.
      const b = await this.snapshot(this.toDb, this.fromDb === this.toDb ? held.rows[0].snap : undefined);
      open.push(b);
      await unseal(this.fromDb, this.tenant.id);
      const sums: Array<[TableChecksum, TableChecksum]> = [];
      for (const t of this.tables) sums.push(await Promise.all([tableChecksum(a, t, 'from', this.tenant.id), tableChecksum(b, t, 'to', this.tenant.id)]));
      return sums;
    } finally {
      for (const c of open) {
        await c.query('COMMIT').catch(() => {});
        c.release();
      }
    }
  }

  private async sumsSealed(): Promise<Array<[TableChecksum, TableChecksum]>> {
    const sums: Array<[TableChecksum, TableChecksum]> = [];
    for (const t of this.tables) {
      const from = await inTransaction(this.fromDb, async (c) => (await c.query(STABLE_TEXT), tableChecksum(c, t, 'from', this.tenant.id)));
      const to = await inTransaction(this.toDb, async (c) => (await c.query(STABLE_TEXT), tableChecksum(c, t, 'to', this.tenant.id)));
      sums.push([from, to]);
    }
    return sums;
  }

  /** A repeatable-read transaction whose snapshot is taken now (or is `imported`, exported by another session). */
  private async snapshot(db: Database, imported?: string) {
    const c = await db.pool.connect();
    try {
      await c.query('BEGIN ISOLATION LEVEL REPEATABLE READ');
      if (imported) await c.query(`SET TRANSACTION SNAPSHOT ${literal(imported)}`);
      await c.query(STABLE_TEXT);
      await c.query('SELECT count(*) FROM tenantgate.move_state');
      return c;
    } catch (err) {
      await c.query('ROLLBACK').catch(() => {});
      c.release();
      throw err;
    }
  }

  /** The copy is wrong: clear it, start over at copy on the next run, and stop here (the tenant stays put). */
  private async mismatch(why: string): Promise<never> {
    for (const t of this.tables) await deleteRows(this.toDb, t, 'to', this.tenant.id);
    await setPhase(this.o.main, this.m, 'copy', {}, why);
    throw new TenantGateError('MOVE_VERIFY_FAILED', `${why}: the tenant stays at its old place; rerun the move to copy again`);
  }

  /**
   * Pause writes (a lease on the seal: if the mover dies, writes resume by themselves), replay the
   * last rows, compare them row by row, move the sequences on, then switch: the tenant's row says
   * its new place and the old place stays sealed for good. Where the old place is the main database
   * the switch and the seal for good are one transaction; else the seal is made for good right
   * after, with the lease checked to outlast that moment.
   */
  async cutover(): Promise<void> {
    const sealedAt = performance.now();
    const sameDb = this.fromDb === this.o.main;
    await seal(this.fromDb, this.tenant.id, { seconds: SEAL_SECONDS });
    let switched = false;
    try {
      const changed = await this.drain(0, true);
      const bad: string[] = [];
      for (const t of this.tables) {
        const keys = [...(changed.get(`${t.from.schema}.${t.from.table}`)?.values() ?? [])];
        if (keys.length === 0) continue;
        const [a, b] = [
          await inTransaction(this.fromDb, async (c) => (await c.query(STABLE_TEXT), rowHashes(c, t, 'from', this.tenant.id, keys))),
          await inTransaction(this.toDb, async (c) => (await c.query(STABLE_TEXT), rowHashes(c, t, 'to', this.tenant.id, keys))),
        ];
        if (JSON.stringify(a) !== JSON.stringify(b)) bad.push(t.name);
      }
      if (bad.length) {
        await unseal(this.fromDb, this.tenant.id);
        await this.mismatch(`rows written during the move differ for ${bad.join(', ')}`);
      }
      for (const t of this.tables) await advanceSequences(this.fromDb, this.toDb, t, this.tenant.id);
      await this.at('sealed');
      // The point of no return: only while the seal still holds (no write can have slipped past the last replay).
      const margin = sameDb ? 0 : 2;
      await inTransaction(this.o.main, async (c) => {
        const check = `SELECT sealed_until > clock_timestamp() + make_interval(secs => ${margin}) AS held FROM tenantgate.move_state WHERE tenant = $1${sameDb ? ' FOR UPDATE' : ''}`;
        const held = sameDb ? await c.query<{ held: boolean }>(check, [this.tenant.id]) : await this.fromDb.query<{ held: boolean }>(check, [this.tenant.id]);
        if (!held.rows[0]?.held) throw new TenantGateError('MOVE_CONFLICT', `the seal ran out (${SEAL_SECONDS} s) before the switch: rerun the move`);
        if (sameDb) await c.query(`UPDATE tenantgate.move_state SET sealed_until = 'infinity' WHERE tenant = $1`, [this.tenant.id]);
        await c.query(`UPDATE tenantgate.tenants SET tier = $2, placement = $3, updated_at = clock_timestamp() WHERE id = $1`, [this.tenant.id, this.m.to.tier, this.m.to.placement]);
        await c.query(`UPDATE tenantgate.moves SET phase = 'cleanup', progress = progress || jsonb_build_object('cutover_at', clock_timestamp()), updated_at = clock_timestamp(), error = NULL WHERE tenant = $1`, [this.tenant.id]);
      });
      switched = true;
      if (!sameDb) await seal(this.fromDb, this.tenant.id, 'infinity');
    } catch (err) {
      if (!switched) await unseal(this.fromDb, this.tenant.id).catch(() => {});
      throw err;
    }
    this.m.phase = 'cleanup';
    this.report.pauseMs = Math.round(performance.now() - sealedAt);
    await setPhase(this.o.main, this.m, 'cleanup', { pause_ms: this.report.pauseMs });
    this.say(`cut-over: ${this.tenant.id} lives in ${where(this.m.to)} now (writes paused ${this.report.pauseMs} ms)`);
    await this.at('switched');
  }

  /** After the grace period, remove the old place: the tenant's rows from the shared tables, its schema, or its database. */
  async cleanup(graceMs: number): Promise<void> {
    if (this.m.from.tier === 'pooled' || (await this.placeExists(this.m.from))) {
      // Sealed for good (again: a mover that died right after the switch left it to this run), and any
      // write that reached the old place past a lapsed seal is carried over, not dropped.
      this.fromDb = await this.dbFor(this.m.from);
      this.toDb = await this.dbFor(this.m.to);
      if (this.tables.length === 0) this.tables = await moveTables(this.o.config, this.fromDb, this.tenant.id, this.m.from.tier, this.m.to.tier);
      await seal(this.fromDb, this.tenant.id, 'infinity');
      const late = await backlog(this.fromDb, this.tenant.id);
      if (late > 0) {
        await this.drain(0);
        this.say(`cleanup: carried over ${late} write(s) that reached the old place after the switch`);
      }
    }
    const since = await this.o.main.query<{ ms: number }>(`SELECT extract(epoch FROM clock_timestamp() - (progress->>'cutover_at')::timestamptz) * 1000 AS ms FROM tenantgate.moves WHERE tenant = $1`, [this.tenant.id]);
    const wait = graceMs - Number(since.rows[0]?.ms ?? graceMs);
    if (wait > 0) {
      this.say(`cleanup: waiting ${(wait / 1000).toFixed(1)} s for gateways still reading the old place`);
      await new Promise((r) => setTimeout(r, wait));
    }
    await removePlace(this, this.m.from, 'from');
    await setPhase(this.o.main, this.m, 'done');
    this.say(`cleanup: removed the old place (${where(this.m.from)})`);
    await this.at('cleaned');
  }

  /** Remove everything of a move at one of its two places (the old one after a cut-over, the new one on abort). */
  async remove(l: TenantLocation, side: 'from' | 'to'): Promise<void> {
    await removePlace(this, l, side);
  }

  /** Whether a schema or database place is still there (cleanup may have removed it before a crash). */
  async placeExists(l: TenantLocation): Promise<boolean> {
    if (l.tier === 'schema') return (await this.o.main.query<{ e: boolean }>(`SELECT to_regnamespace($1) IS NOT NULL AS e`, [tenantSchema(this.tenant.id)])).rows[0]?.e === true;
    if (l.tier === 'database') {
      const name = tenantDatabase(this.n.prefix, this.tenant.id);
      const access = serverAccess(this.o.config, this.o.main, this.o.env ?? process.env, this.dbs);
      try {
        const server = await access.server(l.placement);
        return server ? ((await server.query(`SELECT 1 FROM pg_database WHERE datname = $1`, [name])).rowCount ?? 0) > 0 : this.dbs.embeddedExists(l.placement, name);
      } finally {
        await access.close();
      }
    }
    return true;
  }

  dbFor(l: TenantLocation): Promise<Database> {
    return this.dbAt(l);
  }
}

async function removePlace(mv: Mover, l: TenantLocation, side: 'from' | 'to'): Promise<void> {
  const id = mv.tenant.id;
  const main = mv.o.main;
  if (l.tier === 'pooled') {
    const db = main;
    const tables = mv.tables.length ? mv.tables : await moveTables(mv.o.config, db, id, 'pooled', 'pooled');
    for (const t of tables) {
      await deleteRows(db, t, side, id);
      // The shared table just lost a tenant's rows: make the space reusable and the statistics true.
      await db.query(`VACUUM (ANALYZE) ${tableSql(t, side, id).rel}`);
    }
    if (side === 'from') await stopCapture(db, id, tables);
    return;
  }
  if (l.tier === 'schema') {
    await ddlWithRetry(main, [`DROP SCHEMA IF EXISTS ${ident(tenantSchema(id))} CASCADE`], `schema ${tenantSchema(id)}`);
    if (side === 'from') await stopCapture(main, id, []);
    return;
  }
  const access = serverAccess(mv.o.config, main, mv.o.env ?? process.env, mv.dbs);
  try {
    await dropTenantDatabase(access, l.placement, tenantDatabase(mv.n.prefix, id));
  } finally {
    await access.close();
  }
}

/** Running moves in this process, per main database (the embedded database has no session locks to tell). */
const running = new WeakMap<Database, Set<string>>();

async function lockMove(main: Database, tenant: string): Promise<() => Promise<void>> {
  const mine = running.get(main) ?? new Set<string>();
  running.set(main, mine);
  if (mine.has(tenant)) throw new TenantGateError('MOVE_CONFLICT', `a move of ${tenant} is running`);
  if (main.kind !== 'postgres') {
    mine.add(tenant);
    return async () => void mine.delete(tenant);
  }
  // A session lock: it goes with the mover's connection if the mover dies.
  const c = await main.pool.connect();
  const ok = (await c.query<{ ok: boolean }>(`SELECT pg_try_advisory_lock(hashtext('tenantgate.move'), hashtext($1)) AS ok`, [tenant])).rows[0]?.ok;
  if (!ok) {
    c.release();
    throw new TenantGateError('MOVE_CONFLICT', `a move of ${tenant} is running in another process`);
  }
  mine.add(tenant);
  return async () => {
    mine.delete(tenant);
    await c.query(`SELECT pg_advisory_unlock(hashtext('tenantgate.move'), hashtext($1))`, [tenant]).catch(() => {});
    c.release();
  };
}

async function checkReady(main: Database, o: MoveOptions): Promise<Tenant> {
  const tenant = o.config.tenants.get(o.tenant);
  if (!tenant) throw new TenantGateError('TENANT_UNKNOWN', `no tenant "${o.tenant}" in the configuration`);
  if (!(TIERS as readonly string[]).includes(o.to.tier)) throw new TenantGateError('USAGE', `--tier takes ${TIERS.join(', ')}`);
  if (o.to.placement !== 'default' && o.to.tier !== 'database') throw new TenantGateError('TIER_UNSUPPORTED', `only tier database can live on placement ${o.to.placement}`);
  if (o.to.placement !== 'default' && !o.config.effective.database.placements[o.to.placement]) throw new TenantGateError('PLACEMENT_UNKNOWN', `no placement "${o.to.placement}" under database.placements`);
  if (o.to.tier === 'schema') {
    const clash = schemaTierClash(o.config);
    if (clash) throw new TenantGateError('MOVE_UNSUPPORTED', clash);
  }
  const ready = await main.query<{ ok: boolean; bypass: boolean }>(
    `SELECT to_regclass('tenantgate.moves') IS NOT NULL AND to_regclass('tenantgate.move_log') IS NOT NULL AND to_regprocedure('tenantgate.move_capture()') IS NOT NULL AS ok,
            (SELECT rolsuper OR rolbypassrls FROM pg_roles WHERE rolname = current_user) AS bypass`,
  );
  if (!ready.rows[0]?.ok) throw new TenantGateError('MOVE_UNSUPPORTED', 'the move tables are not there yet: run tenantgate apply');
  if (!ready.rows[0]?.bypass) throw new TenantGateError('MOVE_UNSUPPORTED', `the owner login ${main.user} cannot bypass RLS: a move reads and writes every row of the tenant as the owner (superuser or BYPASSRLS)`);
  return tenant;
}

/**
 * The new place is made from the pooled tables as they are (at the main database's migration
 * version): a tenant whose place is behind (or ahead) would arrive with other columns. Refused
 * until `migrate up` has brought every place to one version.
 */
async function checkSameVersion(o: MoveOptions, tenant: string, from: TenantLocation): Promise<void> {
  if (from.tier === 'pooled') return;
  const main = await appliedVersions(o.main, 'main');
  let own: string[];
  if (from.tier === 'schema') own = await appliedVersions(o.main, targetKey('schema', tenant));
  else {
    const dbs = o.databases ?? ownerDatabases(o.config, o.main, o.env ?? process.env);
    try {
      own = await appliedVersions(await dbs.get(from.placement, tenantDatabase(resolveNames(o.config, o.env).prefix, tenant)), targetKey('database', tenant));
    } finally {
      if (!o.databases) await dbs.close();
    }
  }
  if (main.join() !== own.join()) {
    throw new TenantGateError('MIGRATION_PENDING', `${tenant}'s place has migrations ${own.join(', ') || '(none)'} and the main database ${main.join(', ') || '(none)'}: run \`tenantgate migrate up\` first, then move it`);
  }
}

async function currentPlace(main: Database, tenant: string): Promise<TenantLocation> {
  const r = await main.query<{ tier: TenantLocation['tier']; placement: string }>(`SELECT tier, placement FROM tenantgate.tenants WHERE id = $1`, [tenant]);
  const row = r.rows[0];
  if (!row) throw new TenantGateError('TENANT_UNKNOWN', `tenant "${tenant}" is not provisioned: run tenantgate apply`);
  return row;
}

/**
 * Move a tenant to another tier (and placement): prepare the new place, copy (streamed, in key
 * order), replay what was written meanwhile, verify (row counts and a checksum per table, on
 * snapshots taken while its writes paused), cut over (writes pause for the last replay, a row-by-row
 * check of those rows, and the switch), then remove the old place after a grace period. Resumable:
 * a rerun after a crash goes on from the phase recorded in tenantgate.moves; before the cut-over the
 * tenant stays whole at its old place.
 */
export async function moveTenant(o: MoveOptions): Promise<MoveReport> {
  const tenant = await checkReady(o.main, o);
  const unlock = o.dryRun ? async () => {} : await lockMove(o.main, tenant.id);
  let mv: Mover | undefined;
  try {
    const existing = await readMove(o.main, tenant.id);
    let m: MoveRecord;
    if (unfinished(existing)) {
      if (existing.to.tier !== o.to.tier || existing.to.placement !== o.to.placement) {
        throw new TenantGateError('MOVE_CONFLICT', `an unfinished move takes ${tenant.id} to ${where(existing.to)} (phase ${existing.phase}): rerun that move, or --abort it`);
      }
      m = existing;
    } else {
      const from = await currentPlace(o.main, tenant.id);
      if (from.tier === o.to.tier && from.placement === o.to.placement) throw new TenantGateError('MOVE_UNSUPPORTED', `${tenant.id} is in ${where(from)} already`);
      await checkSameVersion(o, tenant.id, from);
      m = o.dryRun ? { tenant: tenant.id, from, to: o.to, phase: 'prepare', progress: {}, started_at: '', updated_at: '', finished_at: null, error: null } : await beginMove(o.main, tenant.id, from, o.to);
    }
    mv = new Mover(o, tenant, m);
    if (o.dryRun) return await plan(mv);
    const resumed = existing !== undefined && unfinished(existing);
    if (resumed) mv.report.steps.push(`resuming the move to ${where(m.to)} at phase ${m.phase}`);
    if (m.phase !== 'cleanup') await mv.open();
    if (m.phase !== 'prepare' && m.phase !== 'cleanup') await mv.openTarget();
    let verifiedNow = false;
    try {
      for (;;) {
        const phase = m.phase;
        const began = performance.now();
        const timed = () => (mv!.report.phaseMs[phase] = Math.round((mv!.report.phaseMs[phase] ?? 0) + performance.now() - began));
        switch (phase) {
          case 'prepare':
            await mv.prepare();
            break;
          case 'copy':
            await mv.copy();
            break;
          case 'catchup':
            await mv.catchup();
            break;
          case 'verify':
            await mv.verify();
            verifiedNow = true;
            break;
          case 'cutover':
            // The last replay is checked row by row against the sums of this run: a rerun verifies again.
            if (!verifiedNow) await setPhase(o.main, m, 'verify');
            else await mv.cutover();
            break;
          case 'cleanup':
            await mv.cleanup(o.graceMs ?? 5_000);
            break;
          case 'done':
          case 'aborted':
            mv.report.phase = m.phase;
            return mv.report;
        }
        timed();
      }
    } catch (err) {
      await noteError(o.main, tenant.id, err instanceof Error ? err.message : String(err)).catch(() => {});
      throw err;
    }
  } finally {
    await mv?.close();
    await unlock();
  }
}

/** A dry run: the new place's changes, the rows to copy, and the phases ahead. */
async function plan(mv: Mover): Promise<MoveReport> {
  const { m, o } = mv;
  const r = mv.report;
  r.phase = m.phase;
  if (m.phase === 'cleanup') {
    r.steps.push(`cleanup: remove the old place (${where(m.from)}) after the grace period`);
    return r;
  }
  await mv.open();
  if (m.phase === 'prepare') {
    const changes = await provisionPlace(o.config, o.main, o.secret, mv.tenant, m.to, { dryRun: true, ...(o.env ? { env: o.env } : {}), databases: mv.dbs });
    r.steps.push(`prepare: ${changes.length ? changes.map((c) => `${c.action} ${c.object}`).join('; ') : 'the new place exists'}; log the tenant's writes at ${where(m.from)}`);
  }
  const from = await mv.dbFor(m.from);
  for (const t of mv.tables) {
    const s = tableSql(t, 'from', mv.tenant.id);
    const rows = Number((await from.query<{ n: string }>(`SELECT count(*) AS n FROM ${s.rel} WHERE ${s.mine}`)).rows[0]?.n ?? 0);
    r.tables.push({ table: t.name, rows });
    r.rows += rows;
  }
  if (['prepare', 'copy'].includes(m.phase)) r.steps.push(`copy: ${r.tables.map((t) => `${t.table} ${t.rows.toLocaleString('en-US')} row(s)`).join(', ')} to ${where(m.to)}`);
  r.steps.push('catch-up: replay the rows written meanwhile');
  r.steps.push('verify: row counts and a checksum per table, on snapshots taken while writes pause');
  r.steps.push('cut-over: pause the tenant\'s writes (answered 503 TENANT_MOVING, Retry-After: 1), replay and check the last rows, switch');
  r.steps.push(`cleanup: remove the old place (${where(m.from)}) after the grace period`);
  return r;
}

/** Abandon an unfinished move before its cut-over: writes resume at the old place, the new place goes. */
export async function abortMove(o: Omit<MoveOptions, 'to'>): Promise<MoveRecord> {
  const main = o.main;
  const existing = await readMove(main, o.tenant);
  if (!unfinished(existing)) throw new TenantGateError('MOVE_UNSUPPORTED', `no unfinished move of ${o.tenant}`);
  if (existing.phase === 'cleanup') throw new TenantGateError('MOVE_CONFLICT', `${o.tenant} already lives in ${where(existing.to)}: rerun the move to finish removing the old place`);
  const tenant = await checkReady(main, { ...o, to: existing.to });
  const unlock = await lockMove(main, tenant.id);
  const mv = new Mover({ ...o, to: existing.to }, tenant, existing);
  try {
    await mv.open();
    const from = await mv.dbFor(existing.from);
    await unseal(from, tenant.id).catch(() => {});
    await stopCapture(from, tenant.id, mv.tables);
    await mv.remove(existing.to, 'to');
    await setPhase(main, existing, 'aborted');
    return existing;
  } finally {
    await mv.close();
    await unlock();
  }
}
