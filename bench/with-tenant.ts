/**
 * Benchmark 1: a point query by id through `withTenant` (RLS, signed tenant context, one
 * transaction) against the same query with no RLS and no transaction, interleaved A/B rounds.
 */
import pg from 'pg';
import { openDatabase, type Database } from '../src/db/database.ts';
import { createTenantGate, type TenantGate } from '../src/gate.ts';
import { contextMac, deriveKey } from '../src/security/secret.ts';
import { rowId, ROWS_PER_TENANT, TENANTS, type Dataset } from './dataset.ts';
import { corkedTransaction, oneRoundTrip, oneSync, type Context } from './prototypes.ts';
import { closedLoop, concat, CpuMeter, keepConnections, log, median, percentile, type LoadResult } from './support.ts';

export const POINT_SQL = 'SELECT id, tenant_id, region, amount FROM public.orders WHERE id = $1';
export const NO_RLS_SQL = 'SELECT id, tenant_id, region, amount FROM public.orders WHERE tenant_id = $1 AND id = $2';

export interface Variant {
  key: string;
  label: string;
  /** A prototype of a change (bench/prototypes.ts), not the library as it is. */
  prototype?: boolean;
  op: () => Promise<unknown>;
  /** Around each of the variant's runs (e.g. swap the policy in, and back out). */
  before?: () => Promise<void>;
  after?: () => Promise<void>;
  close: () => Promise<void>;
}

export interface VariantResult {
  key: string;
  label: string;
  prototype: boolean;
  rounds: number[];
  tps: number;
  p50: number;
  p99: number;
  ops: number;
  /** CPU per operation in microseconds (medians over rounds): this Node process, and the server backends. */
  nodeUs: number;
  serverUs: number | undefined;
  /** Share of the whole machine's CPU in use during the rounds (everything on it included). */
  machineBusy: number | undefined;
}

export interface PointQueryResult {
  concurrency: number;
  seconds: number;
  rounds: number;
  variants: VariantResult[];
}

const randomTarget = (): [string, number] => {
  const i = Math.floor(Math.random() * TENANTS);
  return [tenantIds[i] as string, rowId(i, Math.floor(Math.random() * ROWS_PER_TENANT))];
};
let tenantIds: string[] = [];

function expectOne(r: pg.QueryResult): void {
  if (r.rowCount !== 1) throw new Error(`point query returned ${r.rowCount} rows, expected 1`);
}

/** A and C: the library path. One gate per pool so the two never share connections. */
function gateVariant(key: string, label: string, gate: TenantGate, extra?: Database): Variant {
  return {
    key,
    label,
    op: () => {
      const [tenant, id] = randomTarget();
      return gate.withTenant({ tenant, access: 'read' }, (db) => db.query({ name: 'pt', text: POINT_SQL, values: [id] })).then(expectOne);
    },
    close: async () => {
      await gate.close();
      await extra?.close();
    },
  };
}

/** The gateway SELECT policy without the HMAC check: what the signature costs the server. */
export const UNSIGNED_POLICY = `tenant_id = (SELECT current_setting('tenantgate.tenant', true))`;

/** Swap the gateway SELECT policy's expression for `expr`; returns the function that puts it back. */
async function swapPolicy(ds: Dataset, expr: string): Promise<() => Promise<void>> {
  const policy = ds.names.policy('gw_select');
  const { rows } = await ds.owner.query<{ qual: string }>(
    `SELECT pg_get_expr(p.polqual, p.polrelid) AS qual FROM pg_policy p WHERE p.polname = $1 AND p.polrelid = 'public.orders'::regclass`,
    [policy],
  );
  const original = rows[0]?.qual;
  if (!original) throw new Error(`policy ${policy} not found`);
  await ds.owner.query(`ALTER POLICY "${policy}" ON public.orders USING (${expr})`);
  return async () => {
    await ds.owner.query(`ALTER POLICY "${policy}" ON public.orders USING (${original})`);
  };
}

export function policySwapper(ds: Dataset, expr: string): { before: () => Promise<void>; after: () => Promise<void> } {
  let restore: (() => Promise<void>) | undefined;
  return {
    before: async () => {
      restore = await swapPolicy(ds, expr);
    },
    after: async () => {
      await restore?.();
      restore = undefined;
    },
  };
}

export async function openVariants(ds: Dataset, concurrency: number): Promise<Variant[]> {
  tenantIds = ds.tenants;
  // A: what createTenantGate does with a gateway URL (pipelining on).
  const gateA = await createTenantGate({ config: ds.config, gatewayUrl: ds.gatewayUrl, secret: ds.secret, poolSize: concurrency, env: {} });
  keepConnections(gateA.database.pool);
  // B: the owner (superuser, so no RLS), one prepared statement, no transaction.
  const plain = new pg.Pool({ connectionString: ds.ownerUrl, max: concurrency, idleTimeoutMillis: 0 });
  plain.on('error', () => {});
  // C: the library path on a pool without pipelining (each statement waits for the previous one).
  const serial = await openDatabase(ds.gatewayUrl, { max: concurrency });
  keepConnections(serial.pool);
  const gateC = await createTenantGate({ config: ds.config, database: serial, secret: ds.secret, env: {} });
  // Prototypes: the same context and statement, packed differently (bench/prototypes.ts).
  const proto = await openDatabase(ds.gatewayUrl, { max: concurrency, pipeline: true });
  keepConnections(proto.pool);
  const key = deriveKey(ds.secret, 'context');
  const macs = new Map(ds.tenants.map((t) => [t, contextMac(key, t)]));
  const timeoutMs = ds.config.defaultQuotas.statement_timeout_ms;
  const ctx = (tenant: string): Context => ({ role: ds.names.access.read, tenant, mac: macs.get(tenant) as string, timeoutMs });
  const protoOp = (send: typeof oneSync) => () => {
    const [tenant, id] = randomTarget();
    return send(proto.pool, ctx(tenant), { name: 'pt', text: POINT_SQL, values: [id] }).then(expectOne);
  };
  return [
    gateVariant('A', 'withTenant, pipelined (gateway login, RLS)', gateA),
    {
      key: 'B',
      label: 'plain pg.Pool, no RLS, no transaction',
      op: () => {
        const [tenant, id] = randomTarget();
        return plain.query({ name: 'pt_norls', text: NO_RLS_SQL, values: [tenant, id] }).then(expectOne);
      },
      close: () => plain.end(),
    },
    gateVariant('C', 'withTenant, pipeline off', gateC, serial),
    {
      key: 'S',
      label: 'gate.statement: context + statement under one Sync (the library path the gateway executes with)',
      op: () => {
        const [tenant, id] = randomTarget();
        return gateA.statement({ tenant, access: 'read' }, { text: POINT_SQL, values: [id] }).then(expectOne);
      },
      close: async () => {},
    },
    {
      key: 'D',
      label: 'prototype: BEGIN, context, SELECT, COMMIT corked into one socket write (one round trip, still four exchanges)',
      prototype: true,
      op: protoOp(oneRoundTrip),
      close: async () => {},
    },
    {
      key: 'E',
      label: 'prototype: context + SELECT under one Sync (one write, one implicit transaction)',
      prototype: true,
      op: protoOp(oneSync),
      close: async () => {},
    },
    {
      key: 'H',
      label: 'prototype: E with the policy checking no HMAC (`tenant_id = (SELECT current_setting(…))`)',
      prototype: true,
      op: protoOp(oneSync),
      ...policySwapper(ds, UNSIGNED_POLICY),
      close: () => proto.close(),
    },
  ];
}

/** The wall holds before anything is timed: a tenant reads its own row and not its neighbour's. */
export async function checkIsolation(ds: Dataset): Promise<void> {
  const gate = await createTenantGate({ config: ds.config, gatewayUrl: ds.gatewayUrl, secret: ds.secret, poolSize: 1, env: {} });
  try {
    const own = await gate.withTenant({ tenant: 't0001', access: 'read' }, (db) => db.query({ name: 'pt', text: POINT_SQL, values: [rowId(1, 5)] }));
    const other = await gate.withTenant({ tenant: 't0001', access: 'read' }, (db) => db.query({ name: 'pt', text: POINT_SQL, values: [rowId(2, 5)] }));
    if (own.rowCount !== 1 || other.rowCount !== 0) throw new Error(`isolation check failed: own ${own.rowCount} row(s), other tenant's ${other.rowCount}`);
    const plan = await gate.withTenant({ tenant: 't0001', access: 'read' }, (db) => db.query(`EXPLAIN (COSTS OFF) ${POINT_SQL.replace('$1', String(rowId(1, 5)))}`));
    const text = plan.rows.map((r) => r['QUERY PLAN']).join('\n');
    if (!/Index Scan/.test(text)) throw new Error(`the gateway point query does not use an index:\n${text}`);
  } finally {
    await gate.close();
  }
  // The prototypes enforce the same wall, or their numbers mean nothing.
  const proto = await openDatabase(ds.gatewayUrl, { max: 1, pipeline: true });
  try {
    const mac = contextMac(deriveKey(ds.secret, 'context'), 't0001');
    const ctx: Context = { role: ds.names.access.read, tenant: 't0001', mac, timeoutMs: 5000 };
    const corked = (pool: pg.Pool, c: Context, st: { name: string; text: string; values: unknown[] }) => corkedTransaction(pool, c, (db) => db.query(st));
    for (const send of [oneSync, oneRoundTrip, corked]) {
      const own = await send(proto.pool, ctx, { name: 'pt', text: POINT_SQL, values: [rowId(1, 5)] });
      const other = await send(proto.pool, ctx, { name: 'pt', text: POINT_SQL, values: [rowId(2, 5)] });
      const forged = await send(proto.pool, { ...ctx, tenant: 't0002' }, { name: 'pt', text: POINT_SQL, values: [rowId(2, 5)] });
      if (own.rowCount !== 1 || other.rowCount !== 0 || forged.rowCount !== 0) throw new Error(`prototype ${send.name || 'corkedTransaction'} does not isolate tenants`);
    }
    const write = await oneSync(proto.pool, ctx, { name: 'upd', text: 'UPDATE public.orders SET amount = amount WHERE id = $1', values: [rowId(1, 5)] }).then(
      () => 'allowed',
      (err: { code?: string }) => err.code,
    );
    if (write !== '25006') throw new Error(`prototype oneSync is not read only (${write})`);
  } finally {
    await proto.close();
  }
}

/**
 * Interleaved rounds: in round r every variant runs once for `seconds`, the order rotated by r so
 * no variant always runs first or last. Throughput is the median of the rounds; latency
 * percentiles are over every operation of every round.
 */
export async function runPointQuery(
  ds: Dataset,
  variants: Variant[],
  opts: { rounds: number; seconds: number; concurrency: number; warmupSeconds: number },
): Promise<PointQueryResult> {
  const once = async (v: Variant, seconds: number) => {
    await v.before?.();
    try {
      // Every backend of the benchmark database; idle ones add nothing. Pools keep their connections.
      const pids = (await ds.owner.query<{ pid: number }>(`SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()`)).rows.map((r) => r.pid);
      const meter = new CpuMeter(pids);
      const res = await closedLoop(v.op, opts.concurrency, seconds);
      return { res, cpu: meter.stop() };
    } finally {
      await v.after?.();
    }
  };
  for (const v of variants) {
    log(`warm-up ${v.key} (${opts.warmupSeconds}s)`);
    await once(v, opts.warmupSeconds);
  }
  const runs = new Map<string, LoadResult[]>(variants.map((v) => [v.key, []]));
  const cpu = new Map<string, Array<{ node: number; server: number | undefined; busy: number | undefined }>>(variants.map((v) => [v.key, []]));
  for (let r = 0; r < opts.rounds; r++) {
    const order = variants.map((_, i) => variants[(i + r) % variants.length] as Variant);
    for (const v of order) {
      const { res, cpu: c } = await once(v, opts.seconds);
      runs.get(v.key)?.push(res);
      cpu.get(v.key)?.push({ node: (c.nodeSeconds / res.ops) * 1e6, server: c.serverSeconds === undefined ? undefined : (c.serverSeconds / res.ops) * 1e6, busy: c.machineBusy });
      log(`round ${r + 1}/${opts.rounds} ${v.key}: ${Math.round(res.tps)} ops/s`);
    }
  }
  const med = (xs: Array<number | undefined>) => (xs.every((x) => x !== undefined) && xs.length > 0 ? median(xs as number[]) : undefined);
  return {
    concurrency: opts.concurrency,
    seconds: opts.seconds,
    rounds: opts.rounds,
    variants: variants.map((v) => {
      const rs = runs.get(v.key) ?? [];
      const all = concat(rs.map((x) => x.latencies));
      const cs = cpu.get(v.key) ?? [];
      return {
        key: v.key,
        label: v.label,
        prototype: v.prototype === true,
        nodeUs: median(cs.map((c) => c.node)),
        serverUs: med(cs.map((c) => c.server)),
        machineBusy: med(cs.map((c) => c.busy)),
        rounds: rs.map((x) => x.tps),
        tps: median(rs.map((x) => x.tps)),
        p50: percentile(all, 50),
        p99: percentile(all, 99),
        ops: all.length,
      };
    }),
  };
}
