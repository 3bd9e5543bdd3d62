import { randomUUID } from 'node:crypto';
import { z } from 'zod';
import type { AuditEvent, LifecycleChange } from '../audit/event.ts';
import { TenantGateError, isTenantGateError } from '../errors/index.ts';
import { toGatewayError } from '../execute/run-plan.ts';
import type { Gateway, RequestRecord } from '../gateway/gateway.ts';
import { parseBody } from '../plan/planner.ts';

/**
 * Suspend and resume a tenant at runtime (issue 14). The catalog of the main database is the
 * source of truth: a row in tenantgate.suspensions while suspended (reason, who, since when),
 * written by tenantgate.set_suspension. Every gateway process learns it from its once-a-second read
 * of tenantgate.tenant_routes (src/tiers/routes.ts) and refuses the tenant's requests with
 * TENANT_SUSPENDED from then on; withTenant does the same. The tenant's direct logins are made
 * NOLOGIN and their sessions ended (tenantgate.sync_logins), and given LOGIN back on resume.
 * A database-tier tenant's own database gets the same row, so its direct-login policy agrees.
 *
 * Not blocked: the admin API (`/v1/admin/tenants/{id}/…`: resume, status, quotas, move, audit) and
 * the owner's connection (database.url), which lifecycle jobs (export, erase) use, or withTenant
 * with `allowSuspended: true`.
 */

type Queryable = { query(text: string, params?: unknown[]): Promise<{ rows: Array<Record<string, unknown>> }> };

/** POST /v1/admin/tenants/{id}/suspend and …/resume: the body (optional). */
export const suspendBodySchema = z.strictObject({
  reason: z.string().trim().min(1).max(500).optional().describe('why: kept with the suspension and in the audit trail'),
});

export interface TenantStatus {
  tenant: string;
  /** suspended when its config says `status: suspended` or it was suspended at runtime. */
  status: 'active' | 'suspended';
  /** What the config said when apply last ran (`status:` in the tenant's file). */
  config_status: 'active' | 'suspended';
  /** The runtime suspension, if any. */
  suspension: { reason: string | null; by: string; since: string } | null;
}

/** What tenantgate.sync_logins did to the tenant's direct logins. */
export interface LoginSync {
  suspended: boolean;
  logins: string[];
  /** Logins whose LOGIN attribute it changed. */
  changed: number;
  sessions_ended: number;
  /** Logins it could not alter, or `pg_terminate_backend` when the owner may not end sessions. */
  failed: string[];
}

export interface SuspensionResult extends TenantStatus {
  /** false: it already was (suspend) or was not (resume) suspended at runtime; nothing changed. */
  changed: boolean;
  logins: LoginSync;
  /** A database-tier tenant: its own database's copy of the suspension (rerun on an error). */
  own_database?: { ok: true } | { ok: false; error: string };
}

/** Missing catalog objects: apply has not run since tenantgate learned suspensions. */
function catalogError(err: unknown): unknown {
  const code = (err as { code?: string })?.code;
  if (code === '42883' || code === '42P01' || code === '3F000') {
    return new TenantGateError('CATALOG_OUTDATED', 'the tenantgate catalog has no suspensions yet: run `tenantgate apply`', { cause: err });
  }
  if (code === '22023') return new TenantGateError('TENANT_UNKNOWN', 'the tenant is not provisioned yet: run `tenantgate apply`', { cause: err });
  return isTenantGateError(err) ? err : toGatewayError(err);
}

function statusOf(v: Record<string, unknown>): TenantStatus {
  const s = v['suspension'] as { reason: string | null; by: string; since: string } | null;
  return {
    tenant: v['tenant'] as string,
    status: v['status'] as TenantStatus['status'],
    config_status: v['config_status'] as TenantStatus['config_status'],
    suspension: s ? { reason: s.reason, by: s.by, since: new Date(s.since).toISOString() } : null,
  };
}

/** The tenant's status as the catalog says; TENANT_UNKNOWN when it has no row. */
export async function readTenantStatus(db: Queryable, tenant: string): Promise<TenantStatus> {
  const r = await db.query(`SELECT tenantgate.tenant_status($1) AS s`, [tenant]).catch((err: unknown) => {
    throw catalogError(err);
  });
  const v = r.rows[0]?.['s'] as Record<string, unknown> | null | undefined;
  if (!v) throw new TenantGateError('TENANT_UNKNOWN', 'the tenant is not provisioned yet: run `tenantgate apply`');
  return statusOf(v);
}

/**
 * Suspend (or resume) `tenant` in the main database's catalog, then in its own database when it has
 * one (`own`). Idempotent. Once committed, sessions of its logins are ended once more: one that
 * logged in between the first end and the commit (NOLOGIN counts from the commit) goes too.
 */
export async function changeSuspension(
  main: Queryable,
  ownDatabase: (() => Promise<Queryable>) | undefined,
  tenant: string,
  suspend: boolean,
  reason: string | null,
  by: string,
): Promise<SuspensionResult> {
  const set = (db: Queryable) =>
    db.query(`SELECT tenantgate.set_suspension($1, $2, $3, $4) AS s`, [tenant, suspend, reason, by]).catch((err: unknown) => {
      throw catalogError(err);
    });
  const v = (await set(main)).rows[0]?.['s'] as Record<string, unknown>;
  const logins = v['logins'] as LoginSync;
  const result: SuspensionResult = { ...statusOf(v), changed: v['changed'] === true, logins };
  let own: Queryable | undefined;
  if (ownDatabase) {
    try {
      own = await ownDatabase();
      const there = (await set(own)).rows[0]?.['s'] as Record<string, unknown>;
      merge(logins, there['logins'] as LoginSync);
      result.own_database = { ok: true };
    } catch (err) {
      result.own_database = { ok: false, error: (err as Error).message };
    }
  }
  if (suspend) {
    for (const db of own && result.own_database?.ok ? [main, own] : [main]) {
      const again = await db.query(`SELECT tenantgate.sync_logins($1) AS s`, [tenant]).catch(() => undefined);
      const s = again?.rows[0]?.['s'] as LoginSync | undefined;
      if (s) logins.sessions_ended += s.sessions_ended;
    }
  }
  return result;
}

function merge(into: LoginSync, more: LoginSync): void {
  for (const l of more.logins) if (!into.logins.includes(l)) into.logins.push(l);
  into.changed += more.changed;
  into.sessions_ended += more.sessions_ended;
  for (const f of more.failed) if (!into.failed.includes(f)) into.failed.push(f);
}

/**
 * The audit record of a change made outside the gateway (the CLI, as the owner): the tenant's chain,
 * the principal `cli:<user>`, the command as the endpoint, and the change with its reason.
 */
export function lifecycleEvent(tenant: string, by: string, change: LifecycleChange, startedAt: number): AuditEvent {
  return {
    at: new Date(startedAt).toISOString(),
    request_id: randomUUID(),
    tenant,
    principal: by,
    role: null,
    access: null,
    endpoint: `tenant ${change.action}`,
    tenant_from: null,
    named_tenant: null,
    datasets: [],
    tables: [],
    sql: null,
    fingerprint: null,
    rows: null,
    status: 200,
    decision: 'allow',
    code: null,
    duration_ms: Math.round((Date.now() - startedAt) * 1000) / 1000,
    stages: {},
    tenant_predicate: null,
    rls: null,
    client: null,
    lifecycle: change,
  };
}

/** How a principal is named in the catalog and the audit trail (never a secret). */
function principalName(rec: RequestRecord): string {
  const p = rec.principal!;
  return `${p.kind === 'api_key' ? 'key' : 'jwt'}:${p.id}`;
}

/**
 * POST /v1/admin/tenants/{id}/suspend | resume (platform admins). Answers at once for this process
 * (it re-reads the catalog before answering); every other gateway process follows within its
 * routes interval (1 s). The audit record of the request carries the change and its reason.
 */
export async function adminSuspension(gw: Gateway, rec: RequestRecord, id: string | undefined, body: unknown, action: 'suspend' | 'resume'): Promise<SuspensionResult> {
  const t = await gw.platformTenant(rec, id);
  rec.write = true;
  const { reason } = parseBody(suspendBodySchema, body ?? {});
  rec.timings.mark('plan');
  const gate = gw.gate;
  const own = gate.routes.get(t.id).tier === 'database' ? () => gate.databaseOf(t.id) : undefined;
  const result = await changeSuspension(gate.database, own, t.id, action === 'suspend', reason ?? null, principalName(rec));
  rec.lifecycle = { action, reason: reason ?? null, changed: result.changed };
  await gate.routes.refresh().catch((err: unknown) => gw.log.warn({ err: (err as Error)?.message }, 'reading tenant routes failed; will retry'));
  if (result.logins.failed.length) gw.log.warn({ tenant: t.id, failed: result.logins.failed }, `${action}: some direct logins could not be changed`);
  rec.timings.mark('execute');
  return result;
}

/** GET /v1/admin/tenants/{id} (platform admins): where the tenant is and its status, suspended or not. */
export async function adminTenant(gw: Gateway, rec: RequestRecord, id: string | undefined) {
  const t = await gw.platformTenant(rec, id);
  const s = await readTenantStatus(gw.gate.database, t.id);
  rec.timings.mark('execute');
  return { id: t.id, name: t.name, ...gw.gate.routes.get(t.id), status: s.status, config_status: s.config_status, suspension: s.suspension };
}
