import { ident } from '../../db/sql.ts';
import { leak, pass, skip, type Outcome, type Probe, type ProbeContext } from './probe.ts';

/**
 * Pooled-connection leftovers: A's transaction commits session-level state on its connection,
 * then B's next transaction on the same connection must run as B, see only B's rows, and leave
 * nothing A can read back. Poison statements that fail are skipped (the role may not have the
 * privilege); what matters is what the next transaction sees.
 */
interface Seen {
  pid: number;
  setting: string | null;
  role: string;
  foreign: number;
  own: number;
}

/** B's view through its next transaction: its context and the rows it reads (by the unqualified table name too). */
async function viewOf(x: ProbeContext, tenant: string): Promise<Seen> {
  return x.gate.withTenant({ tenant, access: 'read' }, async (c) => {
    const ctx = (await c.query<{ pid: number; setting: string | null; role: string }>(`SELECT pg_backend_pid() AS pid, current_setting('tenantgate.tenant', true) AS setting, current_user::text AS role`)).rows[0]!;
    const rows = await c.query<{ t: string }>(`SELECT ${x.t.tenantCol}::text AS t FROM ${x.t.table} WHERE left(${x.t.markerSql}, $1) = $2`, [x.canaries.prefix.length, x.canaries.prefix]);
    return { ...ctx, foreign: rows.rows.filter((r) => r.t !== tenant).length, own: rows.rows.filter((r) => r.t === tenant).length };
  });
}

/** A commits `poison` (each statement tried on its own), returning its backend pid. */
async function poisonAsA(x: ProbeContext, poison: string[]): Promise<number> {
  return x.gate.withTenant({ tenant: x.a, access: 'write' }, async (c) => {
    const mac = (await c.query<{ m: string }>(`SELECT current_setting('tenantgate.mac', true) AS m`)).rows[0]?.m ?? '';
    for (const s of poison) {
      await c.query('SAVEPOINT tg_poison');
      try {
        await c.query(s.replaceAll('{mac}', mac).replaceAll('{a}', x.a));
        await c.query('RELEASE SAVEPOINT tg_poison');
      } catch {
        await c.query('ROLLBACK TO SAVEPOINT tg_poison');
      }
    }
    return (await c.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid;
  });
}

/** Poison as A, then read as B on the same connection (retried a few times: the pool decides which connection). */
async function afterPoison(x: ProbeContext, poison: string[], check: (b: Seen) => Promise<Outcome>): Promise<Outcome> {
  for (let i = 0; i < 5; i++) {
    const pid = await poisonAsA(x, poison);
    const b = await viewOf(x, x.b);
    if (b.pid !== pid) continue;
    if (b.setting !== x.b) return leak(`B's next transaction runs with tenant setting ${JSON.stringify(b.setting)}`);
    if (b.role !== x.names.access.read) return leak(`B's next transaction runs as role ${b.role}`);
    if (b.foreign > 0) return leak(`B's next transaction sees ${b.foreign} canary row(s) of another tenant`);
    if (b.own === 0) return skip("control failed: B's next transaction does not see B's own canary");
    return check(b);
  }
  return skip('the pool did not hand the same connection to the next transaction');
}

export function poolProbes(): Probe[] {
  const p = (s: string, tries: string, run: (x: ProbeContext) => Promise<Outcome>): Probe => ({
    id: `P-${s}`,
    path: 'pool',
    tries: `A commits ${tries}; B's next transaction on that connection`,
    // Pools are per database: tenants in different databases never share a connection.
    run: (x) => (x.tiers && (x.tiers.a.tier === 'database' || x.tiers.b.tier === 'database') ? Promise.resolve(skip('A and B live in different databases: they never share a connection')) : run(x)),
  });
  const same = (poison: (x: ProbeContext) => string[]) => (x: ProbeContext) => afterPoison(x, poison(x), async () => pass);
  return [
    p('session-setting', "a session-level copy of its signed context (tenant and MAC, set_config(…, false))", same(() => [`SELECT set_config('tenantgate.tenant', '{a}', false), set_config('tenantgate.mac', '{mac}', false)`])),
    p('session-role', 'SET ROLE (session level) to the all-tenants platform role and to its own write role', same((x) => [`SET ROLE ${ident(x.names.platformAll)}`, `SET ROLE ${ident(x.names.access.write)}`])),
    p(
      'prepared-context',
      "DEALLOCATE of the driver's context statements and PREPARE of look-alikes that pin A's signed context",
      same(() => [
        `DEALLOCATE tenantgate_context`,
        `PREPARE tenantgate_context(text,text,text,text) AS SELECT set_config('role', $1, true), set_config('tenantgate.tenant', '{a}', true), set_config('tenantgate.mac', '{mac}', true), set_config('statement_timeout', $4, true), $2::text || $3::text`,
        `DEALLOCATE tenantgate_context_1`,
        `PREPARE tenantgate_context_1(text,text,text,text,text) AS SELECT set_config('role', $1, true), set_config('tenantgate.tenant', '{a}', true), set_config('tenantgate.mac', '{mac}', true), set_config('statement_timeout', $4, true), set_config('transaction_read_only', $5, true), $2::text || $3::text`,
      ]),
    ),
    p('deallocate-all', 'DEALLOCATE ALL (the driver still believes its statements are prepared)', same(() => ['DEALLOCATE ALL'])),
    p('search-path', 'a session search_path that puts pg_temp and its own schema first', same(() => [`SET search_path = pg_temp, public`])),
    p('holdable-cursor', "a WITH HOLD cursor over its rows, which B then fetches", (x) =>
      afterPoison(x, [`DECLARE tg_verify_held CURSOR WITH HOLD FOR SELECT ${x.t.tenantCol}::text AS t FROM ${x.t.table}`], async () => {
        const fetched = await x.gate
          .withTenant({ tenant: x.b, access: 'read' }, async (c) => (await c.query<{ t: string }>('FETCH ALL FROM tg_verify_held')).rows)
          .catch(() => []);
        const foreign = fetched.filter((r) => r.t !== x.b).length;
        return foreign ? leak(`B fetched ${foreign} row(s) of another tenant from A's held cursor`) : pass;
      }),
    ),
    p('temp-shadow', "a temp table named like the dataset table, which would capture B's unqualified writes for A to read back", (x) =>
      afterPoison(x, [`CREATE TEMP TABLE ${ident(x.t.dataset.table)} AS SELECT * FROM ${x.t.table} WHERE false`], async () => {
        const marker = `${x.canaries.prefix}cap`;
        // B writes through the unqualified name, as application code does (the real row is removed with the canaries).
        const wrote = await x.gate
          .withTenant({ tenant: x.b, access: 'write' }, async (c) => {
            await c.query(`INSERT INTO ${ident(x.t.dataset.table)} (${x.t.tenantCol}, ${x.t.markerSql}${x.t.required.map((r) => `, ${ident(r.column)}`).join('')}) VALUES ($1, $2${x.t.required.map((r) => `, ${r.value}`).join('')})`, [x.b, marker]);
            return true;
          })
          .catch(() => false);
        if (!wrote) return pass;
        const captured = await x.gate
          .withTenant({ tenant: x.a, access: 'read' }, async (c) => (await c.query(`SELECT 1 FROM pg_temp.${ident(x.t.dataset.table)} WHERE ${x.t.markerSql} = $1`, [marker])).rowCount ?? 0)
          .catch(() => 0);
        return captured ? leak("A read B's write back from its temp table") : pass;
      }),
    ),
  ];
}
