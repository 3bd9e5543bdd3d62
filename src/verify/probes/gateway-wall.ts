import type { Tenant } from '../../config/types.ts';
import type { QueryPlan } from '../../plan/types.ts';
import type { QueryPlanner } from '../../plan/planner.ts';
import { ALL_TENANTS } from '../../tenancy/tenant-id.ts';
import { leak, lit, pass, showsMarker, skip, type Outcome, type Probe, type ProbeContext } from './probe.ts';

/**
 * The gateway's own wall, alone. SPEC §3 promises two walls, each sufficient for the paths it
 * guards: these probes plan A's requests with the gateway's planner, then run the plans with
 * the database's wall opened (reads under the all-tenants platform context, whose policy admits
 * every row; writes as the owner, when it bypasses RLS, rolled back). Only the tenant predicate
 * the planner wrote stands between A and B's canary: a dataset compiled without it shows here,
 * where the HTTP probes would be saved by RLS.
 */
type Planned = { plan: QueryPlan } | { refused: string };

function planAs(x: ProbeContext, planner: QueryPlanner, make: (p: QueryPlanner, tenant: Tenant) => QueryPlan): Planned {
  const tenant = x.config.tenants.get(x.a)!;
  try {
    return { plan: make(planner, tenant) };
  } catch (err) {
    // A request the planner refuses never reaches the database: nothing to leak.
    return { refused: (err as { code?: string }).code ?? (err as Error).message };
  }
}

/** Rows of a read plan with only the gateway's predicate in force, as JSON text. */
async function wallOnly(x: ProbeContext, plan: QueryPlan): Promise<string> {
  const r = await x.gate.statement({ tenant: ALL_TENANTS, access: 'platform' }, { text: plan.sql, values: plan.params, rowMode: 'array' });
  return JSON.stringify(r.rows);
}

/** Rows a write plan reaches with only the gateway's predicate in force (owner, rolled back). */
async function wallOnlyWrite(x: ProbeContext, plan: QueryPlan): Promise<number> {
  const c = await x.owner.pool.connect();
  try {
    await c.query('BEGIN');
    // The probes' writes name only B's canary, so every row the plan reaches is B's.
    return (await c.query(plan.sql, plan.params as unknown[])).rowCount ?? 0;
  } finally {
    await c.query('ROLLBACK').catch(() => {});
    c.release();
  }
}

export function gatewayWallProbes(): Probe[] {
  const p = (s: string, tries: string, run: (x: ProbeContext, planner: QueryPlanner) => Promise<Outcome>): Probe => ({
    id: `G-${s}`,
    path: 'gateway-wall',
    tries: `the gateway's planner as A, run with the database's wall open: ${tries}`,
    run: (x) => (x.planner ? run(x, x.planner) : Promise.resolve(skip('no planner'))),
  });
  const read = (control: boolean, make: (x: ProbeContext, p: QueryPlanner, tenant: Tenant) => QueryPlan, what: string) => async (x: ProbeContext, planner: QueryPlanner) => {
    const planned = planAs(x, planner, (pl, t) => make(x, pl, t));
    if ('refused' in planned) return control ? skip(`control failed: the planner refused A's own query (${planned.refused})`) : pass;
    const rows = await wallOnly(x, planned.plan);
    if (control && !showsMarker(x, rows, x.a)) return skip("control failed: A's own canary is not in the answer, so this path proves nothing");
    return showsMarker(x, rows) ? leak(`B's canary in A's plan ${what}: the plan carries no tenant predicate for A`) : pass;
  };
  const write = (make: (x: ProbeContext) => string, what: string) => async (x: ProbeContext, planner: QueryPlanner) => {
    if (!x.ownerBypassesRls) return skip('the owner login is subject to row level security, so write plans cannot run with the database wall open');
    if (!x.config.tenants.get(x.a)!.roles.some((r) => ['write', 'admin'].includes(x.config.roles[r]?.access ?? ''))) return skip('A has no role with write access');
    const planned = planAs(x, planner, (pl, t) => pl.sql({ sql: make(x) }, t, 'write'));
    if ('refused' in planned) return pass;
    const n = await wallOnlyWrite(x, planned.plan);
    return n > 0 ? leak(`A's ${what} plan reached ${n} canary row(s) of B (rolled back)`) : pass;
  };
  const semantic = (x: ProbeContext, filters: unknown[] = []) => ({ dataset: x.t.dataset.name, dimensions: [x.t.markerCol], filters });
  const select = (x: ProbeContext) => `SELECT ${x.t.markerSql} FROM ${x.t.dataset.name}`;
  return [
    p('semantic-plain', "semantic query of the canary dimension (control: A's own canary must be in the answer)", read(true, (x, pl, t) => pl.semantic(semantic(x), t), 'of a plain semantic query')),
    p('semantic-filter-tenant', 'semantic query with filter tenant column = B', read(false, (x, pl, t) => pl.semantic(semantic(x, [{ field: x.t.dataset.tenantColumn, op: '=', value: x.b }]), t), 'filtered on tenant B')),
    p('semantic-filter-marker', "semantic query with filter = B's canary", read(false, (x, pl, t) => pl.semantic(semantic(x, [{ field: x.t.markerCol, op: '=', value: x.canaries.marker(x.b) }]), t), "filtered on B's canary")),
    p('semantic-not-in', "semantic query with NOT IN (A's canary): everything else", read(false, (x, pl, t) => pl.semantic(semantic(x, [{ field: x.t.markerCol, op: 'not_in', value: [x.canaries.marker(x.a)] }]), t), 'with NOT IN')),
    p('sql-select', "SQL select of the canary column (control: A's own canary must be in the answer)", read(true, (x, pl, t) => pl.sql({ sql: select(x) }, t, 'read'), 'of a plain SQL select')),
    p('sql-where-tenant', 'SQL with WHERE tenant column = B', read(false, (x, pl, t) => pl.sql({ sql: `${select(x)} WHERE ${x.t.tenantCol} = ${lit(x.b)}` }, t, 'read'), 'with WHERE tenant = B')),
    p('sql-or-true', 'SQL with WHERE … OR true', read(false, (x, pl, t) => pl.sql({ sql: `${select(x)} WHERE ${x.t.markerSql} = 'x' OR true` }, t, 'read'), 'with OR true')),
    p('sql-cte', 'SQL through a CTE over the dataset', read(false, (x, pl, t) => pl.sql({ sql: `WITH d AS (SELECT * FROM ${x.t.dataset.name}) SELECT ${x.t.markerSql} FROM d` }, t, 'read'), 'through a CTE')),
    p('sql-self-join', "SQL joining the dataset to itself on B's canary", read(false, (x, pl, t) => pl.sql({ sql: `SELECT o2.${x.t.markerSql} FROM ${x.t.dataset.name} o1 JOIN ${x.t.dataset.name} o2 ON true WHERE o2.${x.t.markerSql} = ${lit(x.canaries.marker(x.b))}` }, t, 'read'), 'through a self-join')),
    p('sql-subquery', "SQL with B's canary asked for in a scalar subquery", read(false, (x, pl, t) => pl.sql({ sql: `SELECT (SELECT max(${x.t.markerSql}) FROM ${x.t.dataset.name} WHERE ${x.t.markerSql} = ${lit(x.canaries.marker(x.b))})` }, t, 'read'), 'through a subquery')),
    p('sql-cache', "SQL text planned for B first (filling the plan cache), then for A (control: A's own canary)", read(true, (x, pl, t) => {
      const text = `${select(x)} WHERE ${x.t.markerSql} LIKE ${lit(`${x.canaries.prefix}%`)}`;
      const b = x.config.tenants.get(x.b);
      if (b) pl.sql({ sql: text }, b, 'read');
      return pl.sql({ sql: text }, t, 'read');
    }, 'after the same text was planned for B')),
    p('sql-update-b', "SQL UPDATE of B's canary (write plan, owner, rolled back)", write((x) => `UPDATE ${x.t.dataset.name} SET ${x.t.markerSql} = ${x.t.markerSql} WHERE ${x.t.markerSql} = ${lit(x.canaries.marker(x.b))}`, 'UPDATE')),
    p('sql-delete-b', "SQL DELETE of B's canary (write plan, owner, rolled back)", write((x) => `DELETE FROM ${x.t.dataset.name} WHERE ${x.t.markerSql} = ${lit(x.canaries.marker(x.b))}`, 'DELETE')),
  ];
}
