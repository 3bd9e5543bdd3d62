import type pg from 'pg';
import type { Config } from '../config/types.ts';
import type { Database } from '../db/database.ts';
import { deriveKey, hmacPads } from '../security/secret.ts';
import { computeChanges, observedText, type Change } from './changes.ts';
import { introspect } from './introspect.ts';
import { names, type Names } from './names.ts';
import { validateAgainstDatabase } from './validate.ts';

export interface ProvisionResult {
  changes: Change[];
  applied: boolean;
  /** Shown once when apply created the gateway login. */
  gatewayPassword?: string;
  names: Names;
}

/** The names for this config: the gateway login is the user in the gateway URL when one is set. */
export function resolveNames(config: Config, env: Record<string, string | undefined> = process.env): Names {
  const url = env[config.effective.database.gateway_url_env];
  let gatewayRole: string | undefined;
  if (url && /^postgres(ql)?:\/\//.test(url)) gatewayRole = decodeURIComponent(new URL(url).username) || undefined;
  return names(config.effective.database.role_prefix, gatewayRole);
}

async function snapshotFor(db: Pick<pg.PoolClient, 'query'>, config: Config, n: Names) {
  // The audit table too: its policies and grants are managed like a dataset's.
  const tables = [...config.datasets.map((d) => ({ schema: d.schema, table: d.table })), { schema: 'tenantgate', table: 'audit_log' }];
  const schemas = [...new Set(config.datasets.map((d) => d.schema))];
  return introspect(db, n, tables, schemas);
}

/** What apply would change (drift included). Validates first: a bad config never reaches DDL. */
export async function planProvision(config: Config, db: Database, secret: Buffer, env?: Record<string, string | undefined>): Promise<ProvisionResult> {
  const n = resolveNames(config, env);
  const client = await db.pool.connect();
  try {
    const snap = await snapshotFor(client, config, n);
    validateAgainstDatabase(config, snap, n);
    return { changes: computeChanges(config, snap, n, hmacPads(deriveKey(secret, 'context'))), applied: false, names: n };
  } finally {
    client.release();
  }
}

const STATEMENTS_PER_BATCH = 400;

/**
 * Make the database match the config, in one transaction (DDL and roles included), under an
 * advisory lock so two applies never interleave. A second apply finds nothing to do.
 */
export async function applyProvision(
  config: Config,
  db: Database,
  secret: Buffer,
  options: { dryRun?: boolean; env?: Record<string, string | undefined>; onProgress?: (done: number, total: number) => void } = {},
): Promise<ProvisionResult> {
  if (options.dryRun) return planProvision(config, db, secret, options.env);
  const n = resolveNames(config, options.env);
  const client = await db.pool.connect();
  try {
    await client.query('BEGIN');
    await client.query(`SELECT pg_advisory_xact_lock(hashtext('tenantgate.apply'))`);
    const snap = await snapshotFor(client, config, n);
    validateAgainstDatabase(config, snap, n);
    const changes = computeChanges(config, snap, n, hmacPads(deriveKey(secret, 'context')));
    const statements = changes.flatMap((c) => c.sql);
    for (let i = 0; i < statements.length; i += STATEMENTS_PER_BATCH) {
      await client.query(statements.slice(i, i + STATEMENTS_PER_BATCH).join(';\n'));
      options.onProgress?.(Math.min(i + STATEMENTS_PER_BATCH, statements.length), statements.length);
    }
    const records = changes.flatMap((c) => (c.record ? [c.record] : []));
    if (records.length > 0) {
      // Remember how PostgreSQL itself printed each policy, so a later manual edit shows as drift.
      const observed = await client.query(
        `SELECT s.nspname || '.' || c.relname AS tbl, p.polname, pg_get_expr(p.polqual, p.polrelid) AS qual, pg_get_expr(p.polwithcheck, p.polrelid) AS chk
           FROM pg_policy p JOIN pg_class c ON c.oid = p.polrelid JOIN pg_namespace s ON s.oid = c.relnamespace
          WHERE (s.nspname || '.' || c.relname) = ANY($1)`,
        [[...new Set(records.map((r) => r.table))]],
      );
      const text = new Map(observed.rows.map((r) => [`${r.tbl} ${r.polname}`, observedText(r.qual, r.chk)]));
      await client.query(
        `INSERT INTO tenantgate.applied (object, spec_hash, observed)
         SELECT * FROM unnest($1::text[], $2::text[], $3::text[])
         ON CONFLICT (object) DO UPDATE SET spec_hash = EXCLUDED.spec_hash, observed = EXCLUDED.observed, applied_at = now()`,
        [records.map((r) => r.object), records.map((r) => r.specHash), records.map((r) => text.get(`${r.table} ${r.policy}`) ?? null)],
      );
    }
    await client.query('COMMIT');
    const reveal = changes.find((c) => c.reveal)?.reveal;
    return { changes, applied: true, names: n, ...(reveal ? { gatewayPassword: reveal.gatewayPassword } : {}) };
  } catch (err) {
    await client.query('ROLLBACK').catch(() => {});
    throw err;
  } finally {
    client.release();
  }
}
