import type { AccessLevel } from '../../config/types.ts';
import { insertSql } from '../canaries.ts';
import { leak, pass, seen, type Outcome, type Probe, type ProbeContext } from './probe.ts';

/** gate.statement: the one-Sync path the gateway executes its checked plans with. */
async function stmt(x: ProbeContext, access: AccessLevel, text: string, values: unknown[]): Promise<{ ok: true; rowCount: number; rows: Record<string, unknown>[] } | { ok: false }> {
  try {
    const r = await x.gate.statement({ tenant: x.a, access }, { text, values });
    return { ok: true, rowCount: r.rowCount ?? 0, rows: r.rows as Record<string, unknown>[] };
  } catch {
    return { ok: false };
  }
}

export function statementProbes(access: AccessLevel): Probe[] {
  const p = (s: string, tries: string, run: (x: ProbeContext) => Promise<Outcome>): Probe => ({ id: `S-${access}-${s}`, path: 'statement', tries: `gate.statement(A, ${access}): ${tries}`, run });
  const count = (r: Awaited<ReturnType<typeof stmt>>) => (r.ok ? Number(r.rows[0]?.['n'] ?? 0) : 0);
  const probes = [
    p('where-tenant', 'select with WHERE tenant column = B', async (x) => seen(count(await stmt(x, access, `SELECT count(*)::int AS n FROM ${x.t.table} WHERE ${x.t.tenantCol}::text = $1`, [x.b])), 'with WHERE tenant = B')),
    p('marker', "select B's canary value", async (x) => seen(count(await stmt(x, access, `SELECT count(*)::int AS n FROM ${x.t.table} WHERE ${x.t.markerSql} = $1`, [x.canaries.marker(x.b)])), "by B's canary value")),
    p('set-config-cte', "set_config('tenantgate.tenant', B) in a CTE of the same statement", async (x) =>
      seen(
        count(
          await stmt(x, access, `WITH s AS MATERIALIZED (SELECT set_config('tenantgate.tenant', $1, true) AS v) SELECT (SELECT count(*)::int FROM ${x.t.table} WHERE ${x.t.tenantCol}::text = $1) AS n FROM s`, [x.b]),
        ),
        'after set_config in the statement',
      ),
    ),
    p('set-role-inline', "set_config('role', <all-tenants platform role>) inside the statement", async (x) =>
      seen(
        count(
          await stmt(x, access, `WITH s AS MATERIALIZED (SELECT set_config('role', $2, true) AS v) SELECT (SELECT count(*)::int FROM ${x.t.table} WHERE ${x.t.tenantCol}::text = $1) AS n FROM s`, [
            x.b,
            x.names.platformAll,
          ]),
        ),
        'after set_config(role) in the statement',
      ),
    ),
  ];
  if (access === 'write') {
    probes.push(
      p('insert-b', 'insert a row with tenant column = B (must fail)', async (x) => {
        const r = await stmt(x, access, insertSql(x.t), [x.b, `${x.canaries.prefix}ins`]);
        return r.ok ? leak('an INSERT with tenant B succeeded (committed; verify removes it)') : pass;
      }),
      p('update-b', "update B's canary (must touch none)", async (x) => {
        const r = await stmt(x, access, `UPDATE ${x.t.table} SET ${x.t.markerSql} = ${x.t.markerSql} WHERE ${x.t.markerSql} = $1`, [x.canaries.marker(x.b)]);
        return r.ok && r.rowCount > 0 ? leak(`an UPDATE reached ${r.rowCount} row(s) of B`) : pass;
      }),
      p('delete-b', "delete B's canary (must touch none)", async (x) => {
        const r = await stmt(x, access, `DELETE FROM ${x.t.table} WHERE ${x.t.markerSql} = $1`, [x.canaries.marker(x.b)]);
        return r.ok && r.rowCount > 0 ? leak(`a DELETE removed ${r.rowCount} canary row(s) of B`) : pass;
      }),
    );
  }
  return probes;
}

