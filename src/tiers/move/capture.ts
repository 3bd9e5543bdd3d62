import { inTransaction, type Database } from '../../db/database.ts';
import { ident, literal } from '../../db/sql.ts';
import { TenantGateError } from '../../errors/index.ts';
import { tableSql, type MoveTable } from './tables.ts';

/**
 * Change capture at a moving tenant's old place. Triggers on its tables (firing for its rows only)
 * log the key of every row it writes once the move began; the mover replays those rows at the new
 * place. The seal (tenantgate.move_state.sealed_until) pauses its writes there: while sealed, the
 * trigger refuses them with SQLSTATE TGMOV (TENANT_MOVING, a retryable 503), and sealing waits for
 * every writer already past the trigger (its FOR SHARE on the state row), so once sealed nothing
 * more can change at the old place.
 */

const triggerName = (tenant: string, op: 'i' | 'u' | 'd') => ident(`tenantgate_move_${tenant}_${op}`);

/** Run DDL that takes a table lock with a short lock timeout, retrying: never queue every tenant's queries behind a long transaction. */
export async function ddlWithRetry(db: Database, statements: string[], what: string): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    try {
      await inTransaction(db, (c) => c.query(`SET LOCAL lock_timeout = '2s';\n${statements.join(';\n')}`));
      return;
    } catch (err) {
      if ((err as { code?: string }).code !== '55P03') throw err;
      if (attempt >= 30) throw new TenantGateError('MOVE_CONFLICT', `${what}: a long transaction kept the table locked for a minute; rerun the move`, { cause: err });
      // Wait out the long transaction holding the table, then try again.
      await new Promise((r) => setTimeout(r, 250 * Math.min(attempt, 8)));
    }
  }
}

/** Start logging: the state row (unsealed) and the triggers on each table. Safe to run again. */
export async function startCapture(db: Database, tenant: string, tables: MoveTable[]): Promise<void> {
  await db.query(`INSERT INTO tenantgate.move_state (tenant) VALUES ($1) ON CONFLICT (tenant) DO NOTHING`, [tenant]);
  for (const t of tables) {
    const s = tableSql(t, 'from', tenant);
    const col = ident(t.tenantColumn);
    const args = [tenant, ...t.key].map(literal).join(', ');
    const me = literal(tenant);
    await ddlWithRetry(
      db,
      [
        `CREATE OR REPLACE TRIGGER ${triggerName(tenant, 'i')} AFTER INSERT ON ${s.rel} FOR EACH ROW WHEN (NEW.${col} = ${me}) EXECUTE FUNCTION tenantgate.move_capture(${args})`,
        `CREATE OR REPLACE TRIGGER ${triggerName(tenant, 'u')} AFTER UPDATE ON ${s.rel} FOR EACH ROW WHEN (OLD.${col} = ${me} OR NEW.${col} = ${me}) EXECUTE FUNCTION tenantgate.move_capture(${args})`,
        `CREATE OR REPLACE TRIGGER ${triggerName(tenant, 'd')} AFTER DELETE ON ${s.rel} FOR EACH ROW WHEN (OLD.${col} = ${me}) EXECUTE FUNCTION tenantgate.move_capture(${args})`,
      ],
      `triggers on ${s.rel}`,
    );
  }
}

/** Stop logging and forget the tenant's log and seal (the move is over, or abandoned). */
export async function stopCapture(db: Database, tenant: string, tables: MoveTable[]): Promise<void> {
  for (const t of tables) {
    const s = tableSql(t, 'from', tenant);
    const exists = await db.query<{ e: boolean }>(`SELECT to_regclass($1) IS NOT NULL AS e`, [s.rel]);
    if (!exists.rows[0]?.e) continue;
    await ddlWithRetry(db, (['i', 'u', 'd'] as const).map((op) => `DROP TRIGGER IF EXISTS ${triggerName(tenant, op)} ON ${s.rel}`), `triggers on ${s.rel}`);
  }
  await db.query(`DELETE FROM tenantgate.move_log WHERE tenant = $1`, [tenant]);
  await db.query(`DELETE FROM tenantgate.move_state WHERE tenant = $1`, [tenant]);
}

/**
 * Pause the tenant's writes at the old place until `until` (a lease: if the mover dies, writes
 * resume by themselves) or for good ('infinity': the tenant lives elsewhere now). Returns once
 * every write already under way there has finished.
 */
export async function seal(db: Database, tenant: string, until: { seconds: number } | 'infinity'): Promise<void> {
  const to = until === 'infinity' ? `'infinity'::timestamptz` : `clock_timestamp() + make_interval(secs => ${Number(until.seconds)})`;
  try {
    await inTransaction(db, (c) => c.query(`SET LOCAL lock_timeout = '10s'; UPDATE tenantgate.move_state SET sealed_until = greatest(sealed_until, ${to}) WHERE tenant = ${literal(tenant)}`));
  } catch (err) {
    if ((err as { code?: string }).code === '55P03') throw new TenantGateError('MOVE_CONFLICT', 'a write of the tenant held its rows for over 10 s: could not pause its writes; rerun the move', { cause: err });
    throw err;
  }
}

/** Let writes through again (the lease ends early), unless the tenant already lives elsewhere. */
export async function unseal(db: Database, tenant: string): Promise<void> {
  await db.query(`UPDATE tenantgate.move_state SET sealed_until = '-infinity' WHERE tenant = $1 AND sealed_until <> 'infinity'`, [tenant]);
}

export interface LogEntry {
  seq: string;
  tbl: string;
  key: Record<string, unknown>;
}

/** The oldest `limit` entries of the tenant's log (committed ones: entries commit with their rows). */
export async function readLog(db: Database, tenant: string, limit: number): Promise<LogEntry[]> {
  return (await db.query<LogEntry>(`SELECT seq::text AS seq, tbl, key FROM tenantgate.move_log WHERE tenant = $1 ORDER BY seq LIMIT $2`, [tenant, limit])).rows;
}

/** How many entries wait to be replayed. */
export async function backlog(db: Database, tenant: string): Promise<number> {
  return Number((await db.query<{ n: string }>(`SELECT count(*) AS n FROM tenantgate.move_log WHERE tenant = $1`, [tenant])).rows[0]?.n ?? 0);
}

/** Forget entries once their rows are at the new place (by seq: entries that commit later stay). */
export async function dropEntries(db: Database, tenant: string, seqs: string[]): Promise<void> {
  if (seqs.length) await db.query(`DELETE FROM tenantgate.move_log WHERE tenant = $1 AND seq = ANY($2::bigint[])`, [tenant, seqs]);
}
