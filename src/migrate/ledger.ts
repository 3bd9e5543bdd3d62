import type { Database } from '../db/database.ts';
import { CATALOG_TABLES } from '../provision/catalog.ts';

type Queryable = Pick<Database, 'query'>;

/** One migration applied to one target (a row of tenantgate.migrations at the target's place). */
export interface Applied {
  target: string;
  version: string;
  name: string;
  checksum: string;
  applied_at: string;
  duration_ms: number;
}

/**
 * Make the ledger where `apply` has not yet (a catalog older than migrations, a tenant database
 * made before). Two runners may race here: the loser's duplicate error means the table is there.
 */
export async function ensureLedger(db: Queryable): Promise<void> {
  const there = await db.query<{ ok: boolean }>(`SELECT to_regclass('tenantgate.migrations') IS NOT NULL AS ok`);
  if (there.rows[0]?.ok) return;
  const ddl = CATALOG_TABLES['migrations']!.replace('CREATE TABLE', 'CREATE TABLE IF NOT EXISTS');
  await db.query(`CREATE SCHEMA IF NOT EXISTS tenantgate; ${ddl}`).catch((err: { code?: string }) => {
    if (err.code !== '42P07' && err.code !== '23505' && err.code !== '42P06') throw err;
  });
}

/** The ledger rows of these targets at one place (every target there when `targets` is not given). */
export async function readLedger(db: Queryable, targets?: string[]): Promise<Map<string, Applied[]>> {
  await ensureLedger(db);
  const r = await db.query<Applied>(
    `SELECT target, version, name, checksum, to_char(applied_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"') AS applied_at, duration_ms
       FROM tenantgate.migrations ${targets ? 'WHERE target = ANY($1)' : ''} ORDER BY target, version`,
    targets ? [targets] : [],
  );
  const out = new Map<string, Applied[]>();
  for (const t of targets ?? []) out.set(t, []);
  for (const row of r.rows) {
    const list = out.get(row.target) ?? [];
    list.push(row);
    out.set(row.target, list);
  }
  return out;
}

/** A target's key: `main`, `schema:<id>` or `database:<id>`. */
export function targetKey(tier: 'pooled' | 'schema' | 'database', tenant: string | null): string {
  return tier === 'pooled' || !tenant ? 'main' : `${tier}:${tenant}`;
}

/**
 * A new place is made from the pooled tables as they are now, so it starts with every migration the
 * main database has: the SQL that records that for a new schema (same database as main's ledger;
 * nothing when the catalog has no ledger yet).
 */
export function inheritLedgerSql(target: string): string {
  const t = target.replace(/'/g, "''");
  return `DO $tg$ BEGIN IF to_regclass('tenantgate.migrations') IS NOT NULL THEN
  INSERT INTO tenantgate.migrations (target, version, name, checksum, duration_ms)
  SELECT '${t}', version, name, checksum, 0 FROM tenantgate.migrations WHERE target = 'main' ON CONFLICT DO NOTHING;
END IF; END $tg$`;
}

/** The same for a new tenant database: main's rows (read from the main database) written into its own ledger. */
export async function inheritLedger(main: Queryable, place: Queryable, target: string): Promise<void> {
  const rows = await main
    .query<Applied>(`SELECT version, name, checksum FROM tenantgate.migrations WHERE target = 'main' ORDER BY version`)
    .catch((err: { code?: string }) => (err.code === '42P01' ? { rows: [] as Applied[] } : Promise.reject(err)));
  if (rows.rows.length === 0) return;
  await ensureLedger(place);
  await place.query(
    `INSERT INTO tenantgate.migrations (target, version, name, checksum, duration_ms)
     SELECT $1, v, n, c, 0 FROM unnest($2::text[], $3::text[], $4::text[]) AS x(v, n, c) ON CONFLICT DO NOTHING`,
    [target, rows.rows.map((r) => r.version), rows.rows.map((r) => r.name), rows.rows.map((r) => r.checksum)],
  );
}

/** The versions a target has applied (none when its place has no ledger yet). */
export async function appliedVersions(db: Queryable, target: string): Promise<string[]> {
  const r = await db
    .query<{ version: string }>(`SELECT version FROM tenantgate.migrations WHERE target = $1 ORDER BY version`, [target])
    .catch((err: { code?: string }) => (err.code === '42P01' || err.code === '3F000' ? { rows: [] as Array<{ version: string }> } : Promise.reject(err)));
  return r.rows.map((x) => x.version);
}
