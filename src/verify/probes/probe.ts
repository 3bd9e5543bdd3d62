/**
 * What every probe of `tenantgate verify` shares: the context it runs in, its outcome, and the
 * small helpers for "run this as tenant A and count tenant B's rows". Each probe acts as tenant A
 * and looks for (or writes into) tenant B's rows by one path.
 */
import type { AccessLevel, Config } from '../../config/types.ts';
import type { Database } from '../../db/database.ts';
import type { TenantClient } from '../../execute/tenant-transaction.ts';
import type { TenantGate } from '../../gate.ts';
import type { QueryPlanner } from '../../plan/planner.ts';
import type { Names } from '../../provision/names.ts';
import type { Canaries, DatasetTarget } from '../canaries.ts';
import type { TenantLocation } from '../../tiers/location.ts';

export type ProbePath = 'library' | 'pool' | 'statement' | 'gateway-wall' | 'direct' | 'http';
export type Outcome = { status: 'pass' } | { status: 'LEAK'; detail: string } | { status: 'skipped' | 'error'; reason: string };

export const PGLITE_GAP = 'PGlite has one superuser session (role and session-user changes escape there; use PostgreSQL)';

export interface HttpContext {
  url: string;
  header: string;
  /** An API key of `tenant` at `access` (made once per run, revoked afterwards); undefined when no role of the tenant has it. */
  key(tenant: string, access: 'read' | 'write' | 'admin'): Promise<string | undefined>;
  /** Signs JWTs when identity.jwt uses an HS secret verify can read. */
  jwt?: JwtMinter;
}

export interface JwtMinter {
  /** A token with the configured issuer and audience, the given claims, and exp in `expiresIn` seconds (negative: expired). */
  sign(claims: Record<string, unknown>, options?: { expiresIn?: number; key?: Uint8Array }): Promise<string>;
  claims: { tenant: string; tenants: string; role: string };
  /** A configured role with read access (for tokens). */
  readRole: string | undefined;
}

export interface ProbeContext {
  a: string;
  b: string;
  /** A tenant id no configuration knows (for the no-oracle probes). */
  unknown: string;
  t: DatasetTarget;
  canaries: Canaries;
  config: Config;
  gate: TenantGate;
  names: Names;
  kind: 'pglite' | 'postgres';
  /** Owner connection: checks what writes did, runs write plans with the database's wall open. */
  owner: Database;
  /** Whether the owner login bypasses row level security (superuser or BYPASSRLS). */
  ownerBypassesRls: boolean;
  /** The gateway's planner for this config (in-process). */
  planner?: QueryPlanner;
  direct?: Database | { skipped: string };
  /** B in a database of its own: A's direct login trying to connect there (undefined when A has no login). */
  connectOther?: () => Promise<Database | undefined>;
  /** Where A and B live. */
  tiers?: { a: TenantLocation; b: TenantLocation };
  http?: HttpContext;
}

export interface Probe {
  id: string;
  path: ProbePath;
  tries: string;
  run(ctx: ProbeContext): Promise<Outcome>;
}

export const pass: Outcome = { status: 'pass' };
export const leak = (detail: string): Outcome => ({ status: 'LEAK', detail });
export const skip = (reason: string): Outcome => ({ status: 'skipped', reason });
export const seen = (n: number, what: string): Outcome => (n > 0 ? leak(`${n} row(s) of tenant B visible ${what}`) : pass);
export const CONTROL_FAILED = "control failed: A cannot see its own canary (filters or expression hide it), so this path proves nothing";

export interface Queryable {
  query(text: string, values?: unknown[]): Promise<{ rows: Record<string, unknown>[]; rowCount: number | null }>;
}

export type Attempt = { ok: true; rowCount: number; rows: Record<string, unknown>[] } | { ok: false; error: unknown };

/** Run one statement under a savepoint: a failure does not abort the transaction. */
export async function attempt(c: Queryable, text: string, values: unknown[] = []): Promise<Attempt> {
  await c.query('SAVEPOINT tg_verify');
  try {
    const r = await c.query(text, values);
    await c.query('RELEASE SAVEPOINT tg_verify');
    return { ok: true, rowCount: r.rowCount ?? 0, rows: r.rows };
  } catch (error) {
    await c.query('ROLLBACK TO SAVEPOINT tg_verify');
    return { ok: false, error };
  }
}

/** Rows of B this client can see: by B's canary marker and by B's tenant id. */
export async function look(c: Queryable, x: ProbeContext, by: 'marker' | 'tenant' = 'marker'): Promise<number> {
  const where = by === 'marker' ? `${x.t.markerSql}::text = $1` : `${x.t.tenantCol}::text = $1`;
  const r = await attempt(c, `SELECT ${x.t.tenantCol}::text AS t FROM ${x.t.table} WHERE ${where}`, [by === 'marker' ? x.canaries.marker(x.b) : x.b]);
  return r.ok ? r.rows.filter((row) => row['t'] === x.b).length : 0;
}

class Rollback extends Error {}

/** Run `fn` in `tenant`'s withTenant transaction at `access`, always rolled back. */
export async function rolledBack(x: ProbeContext, tenant: string, access: AccessLevel, fn: (c: TenantClient) => Promise<Outcome>): Promise<Outcome> {
  let out: Outcome = pass;
  try {
    await x.gate.withTenant({ tenant, access }, async (c) => {
      out = await fn(c);
      throw new Rollback();
    });
  } catch (err) {
    if (!(err instanceof Rollback)) throw err;
  }
  return out;
}

/** Whether `text` (an answer, rows as JSON) carries tenant B's canary. */
export const showsMarker = (x: ProbeContext, text: string, tenant = x.b): boolean => text.includes(x.canaries.marker(tenant));

/** A SQL string literal (the probes build SQL text the way a caller would). */
export const lit = (s: string): string => `'${s.replace(/'/g, "''")}'`;
