import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Config } from '../../config/types.ts';
import type { Database } from '../../db/database.ts';
import { TenantGateError } from '../../errors/index.ts';
import { verifyCertificate, type Certificate, type CertificateVerdict } from '../../lifecycle/erase/certificate.ts';
import { takeInventory, type EraseInventory } from '../../lifecycle/erase/inventory.ts';
import { bindEraseEnvironment, ERASE_KIND, type EraseResult } from '../../lifecycle/erase/job.ts';
import type { Job } from '../../lifecycle/jobs/store.ts';
import { checkEraseRequest, erasedTenant, openEraseJob } from '../../lifecycle/erase/requests.ts';
import type { CliIO } from '../io.ts';
import { runJobCommand } from './jobs.ts';

export interface EraseFlags {
  confirm?: string;
  dryRun?: boolean;
  certificate?: string;
  detach?: boolean;
  batchRows?: string;
  pauseRatio?: string;
  /** Not a flag: `tenant offboard` passes the hash of the export manifest it made and verified. */
  exportManifestSha256?: string;
}

export type EraseOutcome =
  | { kind: 'dry-run'; tenant: string; would_remove: EraseInventory }
  | { kind: 'queued'; job: Job }
  | { kind: 'erased'; tenant: string; already: boolean; certificate: Certificate; file: string };

const defaultFile = (io: CliIO, id: string, at: string) => resolve(io.cwd, `erasure-${id}-${at.replace(/[:.]/g, '-')}.json`);

/**
 * `tenantgate erase ID --confirm ID`: run (or resume) the tenant's erase job here, then write its
 * certificate. A rerun after a crash carries on the unfinished job; a rerun after it finished
 * writes the stored certificate again and changes nothing.
 */
export async function runEraseCommand(io: CliIO, config: Config, db: Database, id: string, flags: EraseFlags, json: boolean): Promise<EraseOutcome> {
  checkEraseRequest(id, flags.confirm);
  const batch = flags.batchRows === undefined ? undefined : Number(flags.batchRows);
  if (batch !== undefined && !(Number.isInteger(batch) && batch >= 1 && batch <= 1_000_000)) throw new TenantGateError('USAGE', '--batch-rows takes a whole number from 1 to 1000000');
  const pause = flags.pauseRatio === undefined ? undefined : Number(flags.pauseRatio);
  if (pause !== undefined && !(Number.isFinite(pause) && pause >= 0 && pause <= 10)) throw new TenantGateError('USAGE', '--pause-ratio takes a number from 0 to 10');
  bindEraseEnvironment(db, { config, env: io.env });
  const erased = await erasedTenant(db, id);
  const open = await openEraseJob(db, id);
  if (flags.dryRun) {
    if (erased && !open) throw new TenantGateError('TENANT_ERASED', `${id} was erased on ${new Date(erased.erased_at).toISOString()}: nothing is left to erase`);
    return { kind: 'dry-run', tenant: id, would_remove: await takeInventory({ config, env: io.env }, db, id) };
  }
  if (erased && !open) {
    if (!erased.certificate) throw new TenantGateError('TENANT_ERASED', `${id} was erased but its certificate was not stored (an erasure from before certificates?)`);
    const file = flags.certificate ? resolve(io.cwd, flags.certificate) : defaultFile(io, id, erased.certificate.erased_at);
    writeFileSync(file, `${JSON.stringify(erased.certificate, null, 2)}\n`);
    return { kind: 'erased', tenant: id, already: true, certificate: erased.certificate, file };
  }
  if (!open) {
    const known = await db.query(`SELECT 1 FROM tenantgate.tenants WHERE id = $1`, [id]);
    if (!known.rowCount) throw new TenantGateError('TENANT_UNKNOWN', `tenant "${id}" is not provisioned (no row in tenantgate.tenants)`);
  }
  const leaseMs = Number(io.env['TENANTGATE_TEST_JOB_LEASE_MS'] ?? '') || undefined;
  const job = await runJobCommand(
    io,
    db,
    { kind: ERASE_KIND, tenant: id, params: { config_file: config.file, ...(batch ? { batch_rows: batch } : {}), ...(pause !== undefined ? { pause_ratio: pause } : {}), ...(flags.exportManifestSha256 ? { export_manifest_sha256: flags.exportManifestSha256 } : {}) } },
    { detach: Boolean(flags.detach), json, label: `erase ${id}`, ...(open ? { resume: open } : {}), ...(leaseMs ? { runner: { leaseMs, heartbeatMs: Math.max(50, Math.floor(leaseMs / 4)), pollMs: 100 } } : {}) },
  );
  if (flags.detach) return { kind: 'queued', job };
  const certificate = (job.result as EraseResult).certificate;
  const file = flags.certificate ? resolve(io.cwd, flags.certificate) : defaultFile(io, id, certificate.erased_at);
  writeFileSync(file, `${JSON.stringify(certificate, null, 2)}\n`);
  return { kind: 'erased', tenant: id, already: false, certificate, file };
}

export function formatErase(o: EraseOutcome): string {
  if (o.kind === 'queued') return '';
  if (o.kind === 'dry-run') {
    const w = o.would_remove;
    const lines = [`Would erase ${o.tenant} (tier ${w.tier}${w.placement === 'default' ? '' : ` on ${w.placement}`}): suspend it, then remove`];
    for (const t of w.tables) if (t.rows_before > 0 || t.place === 'shared') lines.push(`  ${t.rows_before} row(s) of ${t.table} (${t.place})`);
    for (const s of w.schemas) lines.push(`  schema ${s}`);
    for (const d of w.databases) lines.push(`  database ${d.name}${d.placement === 'default' ? '' : ` on ${d.placement}`}`);
    lines.push(`  ${w.keys.length} key(s), ${w.logins.length} direct login(s), role ${w.roles.join(', ')}`);
    if (w.quota_overrides) lines.push('  its runtime quota overrides');
    for (const f of w.files) lines.push(`  its declaration in ${f}`);
    lines.push(`  its catalog entry (a tombstone stays: the id cannot be onboarded again by accident); ${w.audit_records} audit record(s) treated per audit.on_erase`);
    lines.push('Nothing was changed.');
    return `${lines.join('\n')}\n`;
  }
  if (o.already) return `${o.tenant} was already erased (${o.certificate.erased_at}); its certificate: ${o.file}\n`;
  const rows = o.certificate.removed.tables.reduce((s, t) => s + (t.rows_deleted ?? t.rows_before), 0);
  return `Erased ${o.tenant}: ${rows} row(s), ${o.certificate.removed.schemas.length + o.certificate.removed.databases.length} schema/database(s), ${o.certificate.removed.keys.length} key(s), ${o.certificate.removed.logins.length} login(s).\nCertificate of deletion: ${o.file}\n`;
}

/** `tenantgate erase verify-certificate FILE`. */
export async function verifyCertificateCommand(io: CliIO, config: Config, db: Database, file: string): Promise<CertificateVerdict> {
  let doc: unknown;
  try {
    doc = JSON.parse(readFileSync(resolve(io.cwd, file), 'utf8'));
  } catch (err) {
    throw new TenantGateError('CERTIFICATE_INVALID', `cannot read ${file} as JSON: ${(err as Error).message}`);
  }
  return verifyCertificate({ config, env: io.env }, db, doc);
}

export function formatVerdict(v: CertificateVerdict, file: string): string {
  if (v.ok) return `${file}: valid. Signature ${v.signature.signer === 'configured' ? 'by the configured signing key' : 'matches the key it carries (no signing key configured here to compare)'}; nothing of ${v.tenant} is left (${v.check?.tables.length ?? 0} dataset table(s) checked).\n`;
  return `${file}: INVALID\n${v.problems.map((p) => `  - ${p}`).join('\n')}\n`;
}

export interface OffboardFlags extends Pick<EraseFlags, 'confirm' | 'certificate' | 'batchRows' | 'pauseRatio'> {
  exportTo?: string;
  format?: string;
}

/**
 * `tenantgate tenant offboard ID --export-to DIR --confirm ID`: export the tenant (a job), verify the
 * folder (`export verify`), then erase it with the manifest's SHA-256 in the certificate. Refusals
 * come before anything runs. A rerun after a crash during the erasure resumes the erasure (its job
 * carries the manifest's hash) and never exports again: the rows may be half gone by then.
 */
export async function runOffboardCommand(io: CliIO, config: Config, db: Database, configFile: string, id: string, flags: OffboardFlags, json: boolean): Promise<EraseOutcome & { export: { dir: string; manifest_sha256: string | null; resumed: boolean } }> {
  checkEraseRequest(id, flags.confirm);
  if (!flags.exportTo) throw new TenantGateError('USAGE', 'tenant offboard needs --export-to <dir>');
  const dir = resolve(io.cwd, flags.exportTo);
  const open = await openEraseJob(db, id);
  const erased = await erasedTenant(db, id);
  if (open || erased) {
    const manifest = ((open?.params as { export_manifest_sha256?: string } | undefined)?.export_manifest_sha256 ?? erased?.certificate?.export_manifest_sha256) || null;
    io.stderr(`${id}: its erasure has begun already; finishing it (no new export)\n`);
    const out = await runEraseCommand(io, config, db, id, { confirm: id, certificate: flags.certificate, batchRows: flags.batchRows, pauseRatio: flags.pauseRatio }, json);
    return { ...out, export: { dir, manifest_sha256: manifest, resumed: true } };
  }
  const { runExportCommand, runVerifyCommand } = await import('./export.ts');
  await runExportCommand(io, config, db, configFile, id, { out: dir, ...(flags.format ? { format: flags.format } : {}) }, json);
  const report = await runVerifyCommand(io, dir);
  if (!report.ok) throw new TenantGateError('EXPORT_VERIFY_FAILED', `the export in ${dir} does not verify (${report.problems.map((p) => `${p.file}: ${p.problem}`).join('; ')}): nothing was erased`);
  const manifest = createHash('sha256').update(readFileSync(join(dir, 'manifest.json'))).digest('hex');
  io.stderr(`export verified (${dir}, manifest sha256 ${manifest}); erasing ${id}\n`);
  const out = await runEraseCommand(io, config, db, id, { confirm: id, certificate: flags.certificate, batchRows: flags.batchRows, pauseRatio: flags.pauseRatio, exportManifestSha256: manifest }, json);
  return { ...out, export: { dir, manifest_sha256: manifest, resumed: false } };
}
