import type { Database } from '../../db/database.ts';
import { TenantGateError } from '../../errors/index.ts';
import { tenantIdProblem } from '../../tenancy/tenant-id.ts';
import { jobFromRow, type Job } from '../jobs/store.ts';
import type { Certificate } from './certificate.ts';
import { ERASE_KIND } from './job.ts';

/** The refusals every way in shares: the id is a tenant id and `confirm` repeats it exactly. */
export function checkEraseRequest(id: string, confirm: string | undefined): void {
  const problem = tenantIdProblem(id);
  if (problem) throw new TenantGateError('TENANT_ID_INVALID', `invalid tenant id: ${problem}`);
  if (confirm !== id) throw new TenantGateError('ERASE_CONFIRM_MISMATCH', confirm === undefined ? `erasing ${id} needs --confirm ${id}` : `--confirm "${confirm}" is not the tenant being erased (${id})`);
}

/** The tombstone of an erased id (not reused), or undefined. */
export async function erasedTenant(db: Pick<Database, 'query'>, id: string): Promise<{ certificate: Certificate | null; erased_at: Date } | undefined> {
  const r = await db
    .query<{ certificate: Certificate | null; erased_at: Date }>(`SELECT certificate, erased_at FROM tenantgate.erased_tenants WHERE tenant = $1 AND reused_at IS NULL`, [id])
    .catch((err: { code?: string }) => {
      if (err.code === '42P01' || err.code === '3F000') throw new TenantGateError('CATALOG_OUTDATED', 'the tenantgate catalog has no erasures yet: run `tenantgate apply`');
      throw err;
    });
  return r.rows[0];
}

/** An erase job of this tenant that has not finished (its runner died, or it is queued). */
export async function openEraseJob(db: Pick<Database, 'query'>, id: string): Promise<Job | undefined> {
  const r = await db.query(`SELECT * FROM tenantgate.jobs WHERE kind = $1 AND tenant = $2 AND state IN ('queued', 'running') ORDER BY seq LIMIT 1`, [ERASE_KIND, id]);
  return r.rows[0] ? jobFromRow(r.rows[0]) : undefined;
}
