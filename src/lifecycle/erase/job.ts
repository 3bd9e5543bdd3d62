import { existsSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { basename, dirname } from 'node:path';
import type pg from 'pg';
import { isMap, isSeq, parseDocument } from 'yaml';
import { loadConfig } from '../../config/load.ts';
import { inTransaction, type Database } from '../../db/database.ts';
import { ident } from '../../db/sql.ts';
import { TenantGateError } from '../../errors/index.ts';
import { dropTenantDatabase, serverAccess } from '../../provision/tenant-databases.ts';
import { loadSigningKey } from '../../security/signing.ts';
import { tenantDatabase } from '../../tiers/location.ts';
import type { JobContext, JobKind } from '../jobs/registry.ts';
import { registerJobKind } from '../jobs/registry.ts';
import { changeSuspension, lifecycleEvent } from '../suspend.ts';
import { appendEvents } from '../../audit/store.ts';
import { NO_TENANT } from '../../audit/event.ts';
import { buildCertificate, signCertificate, type Certificate } from './certificate.ts';
import { checkErased } from './check.ts';
import { ownerSet, takeInventory, type EraseEnvironment, type EraseInventory } from './inventory.ts';
import { datasetTables, deleteBatch, foreignKeyOrder } from './pooled.ts';
import { targetKey } from '../../migrate/ledger.ts';

export const ERASE_KIND = 'erase';

/** The job's parameters (JSON in tenantgate.jobs.params). */
export interface EraseParams {
  /** The config file, for a runner that has no environment bound (`serve`'s runner picking up a CLI's job). */
  config_file?: string;
  /** Rows per delete batch in the shared tables (default 5000: each batch is a short transaction). */
  batch_rows?: number;
  /**
   * After each delete batch, pause this many times as long as the batch took (default 1: the erase
   * uses the database at most half the time, so neighbours keep their latency; 0: no pause).
   */
  pause_ratio?: number;
  /** The export manifest's SHA-256 when the tenant was exported first (tenant offboard). */
  export_manifest_sha256?: string | null;
}

export const PHASES = ['suspend', 'inventory', 'rows', 'place', 'keys', 'catalog', 'file', 'certificate', 'done'] as const;
export type ErasePhase = (typeof PHASES)[number];

/** The checkpoint: the phase to do next, the inventory taken before anything was removed, and the rows deleted so far. */
export interface EraseCheckpoint {
  phase: ErasePhase;
  inventory?: EraseInventory;
  on_erase?: 'keep' | 'pseudonymise' | 'delete';
  /** The index (in foreign-key order) of the shared table being emptied. */
  table?: number;
  deleted: Record<string, number>;
  certificate?: Certificate;
}

export interface EraseResult {
  certificate: Certificate;
}

const environments = new WeakMap<Database, EraseEnvironment>();

/** Tell erase jobs run on `db` (a CLI's or a gateway's owner connection) which config and environment to use. */
export function bindEraseEnvironment(db: Database, e: EraseEnvironment): void {
  environments.set(db, e);
}

async function environmentOf(ctx: JobContext<EraseParams, EraseCheckpoint>): Promise<EraseEnvironment> {
  const bound = environments.get(ctx.db);
  if (bound) return bound;
  const file = ctx.params.config_file;
  if (!file) throw new TenantGateError('USAGE', 'the erase job names no configuration file and this runner has none bound');
  return { config: await loadConfig(file, { env: process.env }), env: process.env };
}

/**
 * Test hook (test/lifecycle/erase/crash.test.ts): with TENANTGATE_TEST_ERASE_KILL_AT=<point> the
 * process ends itself with SIGKILL when the job reaches that point, as a crash would.
 */
function at(point: string): void {
  if (process.env['TENANTGATE_TEST_ERASE_KILL_AT'] === point) process.kill(process.pid, 'SIGKILL');
}

/**
 * Erase one tenant (GDPR Art. 17), in phases that each end with a checkpoint: suspend; take the
 * inventory (what it has, row counts before); delete its rows from the shared tables in short
 * batches (children before parents), each batch committed with its checkpoint; drop its schema or
 * database; drop its direct logins and group role and delete its keys; remove its catalog rows (quota
 * overrides, suspension, moves), treat its audit chain (audit.on_erase) and leave a tombstone; remove
 * its tenant file; check nothing is left; sign the certificate. A rerun resumes at the saved phase.
 */
export async function runErase(ctx: JobContext<EraseParams, EraseCheckpoint>): Promise<EraseResult> {
  const tenant = ctx.job.tenant;
  if (!tenant) throw new TenantGateError('USAGE', 'an erase job needs a tenant');
  const e = await environmentOf(ctx);
  const main = ctx.db;
  let cp: EraseCheckpoint = ctx.saved ?? { phase: 'suspend', deleted: {} };
  const by = ctx.job.requestedBy;
  const phaseNo = () => PHASES.indexOf(cp.phase);
  const next = async (phase: ErasePhase, point: string) => {
    cp = { ...cp, phase };
    await ctx.checkpoint(cp);
    at(point);
  };

  if (cp.phase === 'suspend') {
    ctx.progress(0, null, 'suspend');
    const place = (await main.query<{ tier: string; placement: string }>(`SELECT tier, placement FROM tenantgate.tenants WHERE id = $1`, [tenant])).rows[0];
    if (!place) throw new TenantGateError('TENANT_UNKNOWN', `tenant "${tenant}" is not provisioned (no row in tenantgate.tenants)`);
    // A move half done has the tenant in two places: finish or abort it first (nothing is changed yet).
    const move = (await main.query<{ phase: string }>(`SELECT phase FROM tenantgate.moves WHERE tenant = $1 AND phase NOT IN ('done', 'aborted')`, [tenant])).rows[0];
    if (move) throw new TenantGateError('MOVE_CONFLICT', `${tenant} has an unfinished move (phase ${move.phase}): finish it (rerun the move) or \`tenantgate tenant move ${tenant} --abort\`, then erase`);
    const dbs = place.tier === 'database' ? ownerSet(e, main) : undefined;
    try {
      const own = dbs ? () => dbs.get(place.placement, tenantDatabase(e.config.effective.database.role_prefix, tenant)) : undefined;
      await changeSuspension(main, own, tenant, true, `erasure (job ${ctx.job.id})`, by);
    } finally {
      await dbs?.close();
    }
    await next('inventory', 'suspended');
  }

  if (cp.phase === 'inventory') {
    ctx.progress(0, null, 'inventory');
    const inventory = await takeInventory(e, main, tenant);
    cp = { ...cp, inventory, on_erase: e.config.effective.audit.on_erase, table: 0, deleted: {} };
    await next('rows', 'inventoried');
  }
  const inv = cp.inventory!;

  if (cp.phase === 'rows') {
    const batch = Math.max(1, Math.floor(Number(ctx.params.batch_rows ?? 5_000)));
    const tables = await foreignKeyOrder(main, datasetTables(e.config));
    const total = inv.tables.filter((t) => t.place === 'shared').reduce((s, t) => s + t.rows_before, 0);
    const done = () => Object.values(cp.deleted).reduce((s, n) => s + n, 0);
    const pause = Math.max(0, Math.min(10, Number(ctx.params.pause_ratio ?? 1)));
    let batches = 0;
    for (let i = cp.table ?? 0; i < tables.length; ) {
      const t = tables[i]!;
      ctx.throwIfAborted();
      const started = performance.now();
      cp = await ctx.step(async (tx) => {
        const n = await deleteBatch(tx, t, tenant, batch);
        at(`in-batch:${batches + 1}`);
        return { ...cp, deleted: { ...cp.deleted, [t.name]: (cp.deleted[t.name] ?? 0) + n }, table: n < batch ? i + 1 : i };
      });
      batches++;
      ctx.progress(done(), total, 'delete rows');
      at(`batch:${batches}`);
      i = cp.table ?? i + 1;
      if (pause > 0 && i < tables.length) await new Promise((r) => setTimeout(r, (performance.now() - started) * pause));
    }
    await next('place', 'rows-deleted');
  }

  if (cp.phase === 'place') {
    ctx.progress(0, null, 'drop schema or database');
    if (inv.schemas.length) {
      cp = await ctx.step(async (tx) => {
        for (const s of inv.schemas) await tx.query(`DROP SCHEMA IF EXISTS ${ident(s)} CASCADE`);
        return { ...cp, phase: 'keys' };
      });
      at('place-removed');
    } else {
      if (inv.databases.length) {
        const dbs = ownerSet(e, main);
        const access = serverAccess(e.config, main, e.env, dbs);
        try {
          for (const d of inv.databases) await dropTenantDatabase(access, d.placement, d.name);
        } finally {
          await access.close();
          await dbs.close();
        }
        // Dropped, not yet checkpointed: a rerun drops it again (IF EXISTS) and goes on.
        at('database-dropped');
      }
      await next('keys', 'place-removed');
    }
  }

  if (cp.phase === 'keys') {
    ctx.progress(0, null, 'keys and logins');
    // A named placement's server has roles of its own: the tenant's there go first (idempotent).
    for (const d of inv.databases.filter((x) => x.placement !== 'default')) {
      const access = serverAccess(e.config, main, e.env, ownerSet(e, main));
      try {
        const server = await access.server(d.placement);
        if (server) await inTransaction(server, (c) => dropRoles(c, [...inv.logins, ...inv.roles]));
      } finally {
        await access.close();
      }
    }
    cp = await ctx.step(async (tx) => {
      const current = await tx.query<{ r: string }>(
        `SELECT db_login AS r FROM tenantgate.api_keys WHERE tenant_id = $1 AND db_login IS NOT NULL UNION SELECT role_name FROM tenantgate.db_roles WHERE tenant_id = $1`,
        [tenant],
      );
      await dropRoles(tx, [...new Set([...inv.logins, ...current.rows.map((x) => x.r), ...inv.roles])]);
      await tx.query(`DELETE FROM tenantgate.db_roles WHERE tenant_id = $1`, [tenant]);
      await tx.query(`DELETE FROM tenantgate.api_keys WHERE tenant_id = $1`, [tenant]);
      return { ...cp, phase: 'catalog' };
    });
    at('keys-removed');
  }

  if (cp.phase === 'catalog') {
    ctx.progress(0, null, 'catalog and audit trail');
    const mode = cp.on_erase ?? 'pseudonymise';
    cp = await ctx.step(async (tx) => {
      await treatAudit(tx, tenant, mode, ctx.job.id);
      for (const table of ['tenant_quotas', 'suspensions', 'moves', 'move_state', 'move_log']) await tx.query(`DELETE FROM tenantgate.${table} WHERE tenant = $1`, [tenant]);
      // Its schema's migration ledger (a tenant database's went with the database).
      const ledger = await tx.query<{ ok: boolean }>(`SELECT to_regclass('tenantgate.migrations') IS NOT NULL AS ok`);
      if (ledger.rows[0]?.ok) await tx.query(`DELETE FROM tenantgate.migrations WHERE target = ANY($1)`, [[targetKey('schema', tenant), targetKey('database', tenant)]]);
      await tx.query(`DELETE FROM tenantgate.tenants WHERE id = $1`, [tenant]);
      // The erasure's own record, on the platform chain ('*'): the tenant's chain may be gone (audit.on_erase: delete).
      await appendEvents(tx, [{ ...lifecycleEvent(NO_TENANT, by, { action: 'erase', reason: `tenant ${tenant} (job ${ctx.job.id})`, changed: true }, Date.now()), endpoint: 'tenant erase' }]);
      await tx.query(
        `INSERT INTO tenantgate.erased_tenants (tenant, erased_at, erased_by, job_id) VALUES ($1, clock_timestamp(), $2, $3)
         ON CONFLICT (tenant) DO UPDATE SET erased_at = EXCLUDED.erased_at, erased_by = EXCLUDED.erased_by, job_id = EXCLUDED.job_id, certificate = NULL, reused_at = NULL`,
        [tenant, by, ctx.job.id],
      );
      return { ...cp, phase: 'file' };
    });
    at('catalog-removed');
  }

  if (cp.phase === 'file') {
    for (const f of inv.files) removeTenantFromFile(f, tenant);
    await next('certificate', 'file-removed');
  }

  if (cp.phase === 'certificate') {
    ctx.progress(0, null, 'check and certificate');
    const check = await checkErased(e, main, { tenant, role_prefix: inv.role_prefix, placement: inv.placement, logins: inv.logins, roles: inv.roles, files: inv.files });
    if (!check.ok) throw new TenantGateError('ERASE_INCOMPLETE', `the post-erasure check found: ${check.problems.join('; ')}`);
    const key = loadSigningKey(e.config, e.env);
    const certificate = signCertificate(
      buildCertificate(
        inv,
        { deleted: cp.deleted, erasedAt: new Date().toISOString(), requestedBy: by, jobId: ctx.job.id, onErase: cp.on_erase ?? 'pseudonymise', manifest: ctx.params.export_manifest_sha256 ?? null },
        check,
      ),
      key,
    );
    cp = await ctx.step(async (tx) => {
      await tx.query(`UPDATE tenantgate.erased_tenants SET certificate = $2::jsonb WHERE tenant = $1`, [tenant, JSON.stringify(certificate)]);
      return { ...cp, phase: 'done', certificate };
    });
    at('certified');
  }
  if (phaseNo() !== PHASES.indexOf('done') || !cp.certificate) throw new TenantGateError('INTERNAL', `erase ended in phase ${cp.phase}`);
  return { certificate: cp.certificate };
}

type Tx = Pick<pg.PoolClient, 'query'>;

/** Drop these roles where they exist: no login first, their sessions ended (needs pg_signal_backend; skipped without), what they own or were granted dropped. */
async function dropRoles(db: Tx, roles: string[]): Promise<void> {
  const there = (await db.query<{ rolname: string }>(`SELECT rolname::text FROM pg_roles WHERE rolname = ANY($1)`, [roles])).rows.map((r) => r.rolname);
  for (const role of there) {
    await db.query(`ALTER ROLE ${ident(role)} NOLOGIN`);
    await db.query('SAVEPOINT erase_terminate');
    await db.query(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1`, [role]).then(
      () => db.query('RELEASE SAVEPOINT erase_terminate'),
      () => db.query('ROLLBACK TO SAVEPOINT erase_terminate'),
    );
    await db.query(`DROP OWNED BY ${ident(role)}`);
    await db.query(`DROP ROLE ${ident(role)}`);
  }
}

/**
 * The erased tenant's audit chain (audit.on_erase). `pseudonymise`: each record's sha256 as it was
 * chained is kept in tenantgate.audit_pseudonymised, then the text loses its principal (a pseudonym:
 * the same principal gives the same one within this erasure, nothing links it to the key or
 * subject) and client, and is marked `pseudonymised`; `audit verify` chains over the kept digests.
 * `delete`: the chain and its head go. Other tenants' chains are not touched.
 */
async function treatAudit(tx: Tx, tenant: string, mode: 'keep' | 'pseudonymise' | 'delete', job: string): Promise<void> {
  if (mode === 'keep') return;
  if (mode === 'delete') {
    await tx.query(`DELETE FROM tenantgate.audit_log WHERE tenant = $1`, [tenant]);
    await tx.query(`DELETE FROM tenantgate.audit_heads WHERE tenant = $1`, [tenant]);
    await tx.query(`DELETE FROM tenantgate.audit_pseudonymised WHERE tenant = $1`, [tenant]);
    return;
  }
  await tx.query(
    `INSERT INTO tenantgate.audit_pseudonymised (tenant, seq, digest)
     SELECT tenant, seq, sha256(convert_to(event, 'UTF8')) FROM tenantgate.audit_log WHERE tenant = $1
     ON CONFLICT (tenant, seq) DO NOTHING`,
    [tenant],
  );
  await tx.query(
    `UPDATE tenantgate.audit_log SET event = (event::jsonb || jsonb_build_object(
        'principal', CASE WHEN event::jsonb ->> 'principal' IS NULL THEN NULL ELSE 'erased:' || substr(encode(sha256(convert_to($2 || ':' || (event::jsonb ->> 'principal'), 'UTF8')), 'hex'), 1, 16) END,
        'client', NULL,
        'pseudonymised', jsonb_build_object('job', $2::text, 'at', to_json(clock_timestamp()) #>> '{}')))::text
      WHERE tenant = $1 AND NOT (event::jsonb ? 'pseudonymised')`,
    [tenant, job],
  );
  await tx.query(
    `UPDATE tenantgate.audit_pseudonymised p SET pseudonymised_digest = sha256(convert_to(l.event, 'UTF8'))
       FROM tenantgate.audit_log l WHERE p.tenant = $1 AND l.tenant = p.tenant AND l.seq = p.seq`,
    [tenant],
  );
}

/** Remove the tenant's declaration: its file tenants/<id>.yaml, or its entry in the config file's `tenants:` (comments kept). Idempotent. */
export function removeTenantFromFile(file: string, tenant: string): void {
  if (!existsSync(file)) return;
  if (basename(dirname(file)) === 'tenants' && basename(file) === `${tenant}.yaml`) {
    rmSync(file, { force: true });
    return;
  }
  const doc = parseDocument(readFileSync(file, 'utf8'));
  const list = doc.get('tenants');
  if (!isSeq(list)) return;
  const i = list.items.findIndex((item) => isMap(item) && item.get('id') === tenant);
  if (i < 0) return;
  list.items.splice(i, 1);
  writeFileSync(`${file}.tmp`, doc.toString());
  renameSync(`${file}.tmp`, file);
}

export const eraseJobKind: JobKind<EraseParams, EraseCheckpoint, EraseResult> = {
  kind: ERASE_KIND,
  exclusive: 'tenant',
  // Every phase resumes from its checkpoint: a runner killed at any point leaves the job to the next one.
  maxAttempts: 10,
  run: runErase,
};

registerJobKind(eraseJobKind);
