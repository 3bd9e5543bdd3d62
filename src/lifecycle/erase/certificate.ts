import type { Database } from '../../db/database.ts';
import { loadSigningKey, signDocument, verifyDocument, type Signature, type SigningKey } from '../../security/signing.ts';
import { checkErased, type ErasureCheck } from './check.ts';
import type { EraseEnvironment, EraseInventory } from './inventory.ts';

export const CERTIFICATE_TYPE = 'tenantgate.erasure-certificate';

/** What was removed: the inventory taken before anything went, with what each step removed. */
export type Removed = Pick<EraseInventory, 'schemas' | 'databases' | 'keys' | 'logins' | 'roles' | 'quota_overrides' | 'files'> & {
  tables: Array<{ table: string; place: string; rows_before: number; rows_deleted: number | null }>;
  audit: { on_erase: 'keep' | 'pseudonymise' | 'delete'; records: number };
  /** Held by the gateway for the tenant; none are kept yet (async queries and export files are not built). */
  async_results: number;
  export_files: number;
};

/** The certificate of deletion (JSON, Ed25519-signed over its canonical form without `signature`). */
export interface Certificate {
  type: typeof CERTIFICATE_TYPE;
  version: 1;
  tenant: string;
  tier: string;
  placement: string;
  role_prefix: string;
  erased_at: string;
  requested_by: string;
  job_id: string;
  removed: Removed;
  check: ErasureCheck;
  /** The SHA-256 of the export manifest made before the erasure (tenant offboard), or null. */
  export_manifest_sha256: string | null;
  signature?: Signature;
}

export function buildCertificate(inv: EraseInventory, done: { deleted: Record<string, number>; erasedAt: string; requestedBy: string; jobId: string; onErase: Removed['audit']['on_erase']; manifest: string | null }, check: ErasureCheck): Certificate {
  return {
    type: CERTIFICATE_TYPE,
    version: 1,
    tenant: inv.tenant,
    tier: inv.tier,
    placement: inv.placement,
    role_prefix: inv.role_prefix,
    erased_at: done.erasedAt,
    requested_by: done.requestedBy,
    job_id: done.jobId,
    removed: {
      tables: inv.tables.map((t) => ({ ...t, rows_deleted: t.place === 'shared' ? (done.deleted[t.table] ?? 0) : null })),
      schemas: inv.schemas,
      databases: inv.databases,
      keys: inv.keys,
      logins: inv.logins,
      roles: inv.roles,
      quota_overrides: inv.quota_overrides,
      files: inv.files,
      audit: { on_erase: done.onErase, records: inv.audit_records },
      async_results: 0,
      export_files: 0,
    },
    check,
    export_manifest_sha256: done.manifest,
  };
}

export function signCertificate(c: Certificate, key: SigningKey): Certificate & { signature: Signature } {
  return signDocument(c as unknown as Record<string, unknown>, key) as unknown as Certificate & { signature: Signature };
}

export interface CertificateVerdict {
  ok: boolean;
  tenant: string | null;
  signature: { ok: boolean; signer?: 'configured' | 'embedded'; problem?: string };
  /** The zero-rows check run again now (null when the document is not a certificate). */
  check: ErasureCheck | null;
  problems: string[];
}

/**
 * `erase verify-certificate`: the signature (by the configured signing key when one is set, else
 * the key the certificate carries), then the post-erasure check again, against the database now.
 */
export async function verifyCertificate(e: EraseEnvironment, main: Database, doc: unknown): Promise<CertificateVerdict> {
  const problems: string[] = [];
  if (!doc || typeof doc !== 'object' || (doc as Record<string, unknown>)['type'] !== CERTIFICATE_TYPE || typeof (doc as Record<string, unknown>)['tenant'] !== 'string') {
    return { ok: false, tenant: null, signature: { ok: false, problem: 'not an erasure certificate' }, check: null, problems: ['the file is not a tenantgate erasure certificate'] };
  }
  const c = doc as Certificate;
  let trusted;
  try {
    trusted = loadSigningKey(e.config, e.env).publicKey;
  } catch {
    trusted = undefined; // no key configured here: check against the key the certificate carries
  }
  const sig = verifyDocument(doc as Record<string, unknown>, trusted);
  if (!sig.ok) problems.push(`signature: ${sig.problem}`);
  const check = await checkErased(e, main, {
    tenant: c.tenant,
    role_prefix: String(c.role_prefix ?? ''),
    placement: String(c.placement ?? 'default'),
    logins: Array.isArray(c.removed?.logins) ? c.removed.logins : [],
    roles: Array.isArray(c.removed?.roles) ? c.removed.roles : [],
    files: Array.isArray(c.removed?.files) ? c.removed.files : [],
  });
  problems.push(...check.problems);
  return { ok: problems.length === 0, tenant: c.tenant, signature: sig.ok ? { ok: true, signer: sig.signer } : { ok: false, problem: sig.problem }, check, problems };
}
