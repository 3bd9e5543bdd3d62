import { randomBytes } from 'node:crypto';
import type { Config } from '../config/types.ts';
import { isEmbeddedUrl, openDatabase, type Database } from '../db/database.ts';
import type { TenantGate } from '../gate.ts';
import { createApiKey, revokeApiKey } from '../identify/api-keys.ts';
import type { Names } from '../provision/names.ts';
import { Canaries, describeTarget, type DatasetTarget, type PlaceOf } from './canaries.ts';
import { qualified } from '../db/sql.ts';
import { ownerDatabases } from '../tiers/databases.ts';
import { physicalTable, tenantDatabase } from '../tiers/location.ts';
import { QueryCatalog } from '../plan/catalog.ts';
import { QueryPlanner } from '../plan/planner.ts';
import { jwtMinter } from './jwt-minter.ts';
import { PGLITE_GAP, PROBES, type HttpContext, type Outcome, type Probe, type ProbeContext, type ProbePath } from './probes/index.ts';

export interface VerifyOptions {
  config: Config;
  names: Names;
  /** Owner connection (database.url): plants and removes canaries, creates and revokes probe keys. */
  owner: Database;
  /** The library engine as the gateway login. */
  gate: TenantGate;
  secret: Buffer;
  /** A running gateway to probe over HTTP. */
  url?: string;
  /** At most this many ordered tenant pairs (default 100); all pairs when there are fewer. */
  pairs?: number;
  /** Stop starting new pairs once the next one would end past this many ms from the start (the CLI's default is 60 s). */
  budgetMs?: number;
  /** Progress after each pair (done, of). */
  onProgress?: (done: number, total: number) => void;
  /** Log in as a direct login (default: the owner URL with the login's user and password, and another database when given). */
  connectAs?: (user: string, password: string, database?: string) => Promise<Database>;
  /** Only these probe ids (default all). */
  only?: string[];
  /** The gateway's planner to test (default: built from the config and the live columns). */
  planner?: QueryPlanner;
  /** Environment (the JWT secret, when identity.jwt uses secret_env). */
  env?: Record<string, string | undefined>;
}

export interface ProbeResult {
  probe: string;
  path: ProbePath;
  a: string;
  b: string;
  dataset: string;
  status: Outcome['status'];
  detail?: string;
}

export interface VerifyReport {
  ok: boolean;
  probes: number;
  tenants: number;
  /** Pairs probed, of how many were sampled and how many exist; `stopped` when the time budget ended the run early. */
  pairs: { covered: number; sampled: number; total: number; list: Array<[string, string]>; stopped?: 'time budget' };
  datasets: Array<{ name: string; marker_column?: string; skipped?: string }>;
  canaries: { planted: number; removed: number };
  summary: { pass: number; leak: number; skipped: number; error: number };
  results: ProbeResult[];
  ms: number;
}

export const DEFAULT_PAIRS = 100;

/** Ordered pairs (A, B), A ≠ B: all of them, or a random sample of `cap`. */
export function samplePairs(tenants: string[], cap: number): { list: Array<[string, string]>; total: number } {
  const all: Array<[string, string]> = [];
  const total = tenants.length * (tenants.length - 1);
  if (total <= cap) {
    for (const a of tenants) for (const b of tenants) if (a !== b) all.push([a, b]);
    return { list: all, total };
  }
  const seen = new Set<string>();
  // Each tenant acts as A once before any repeats, so a sample covers as many tenants as it can.
  const order = [...tenants].sort(() => Math.random() - 0.5);
  let i = 0;
  while (all.length < cap) {
    const a = order[i++ % order.length]!;
    const b = tenants[Math.floor(Math.random() * tenants.length)]!;
    if (a === b || seen.has(`${a}\u0000${b}`)) continue;
    seen.add(`${a}\u0000${b}`);
    all.push([a, b]);
  }
  return { list: all, total };
}

function defaultConnect(config: Config): (user: string, password: string, database?: string) => Promise<Database> {
  return (user, password, database) => {
    const u = new URL(config.effective.database.url);
    u.username = encodeURIComponent(user);
    u.password = encodeURIComponent(password);
    if (database) u.pathname = `/${encodeURIComponent(database)}`;
    return openDatabase(u.toString(), { max: 1 });
  };
}

export async function runVerify(o: VerifyOptions): Promise<VerifyReport> {
  const started = Date.now();
  // Suspended tenants (by the config or at runtime) answer nothing: no pair to probe.
  const tenants = [...o.config.tenants.values()].filter((t) => !o.gate.routes.suspended(t.id)).map((t) => t.id);
  const { list, total } = samplePairs(tenants, o.pairs ?? DEFAULT_PAIRS);
  const involved = [...new Set(list.flat())];
  const probes: Probe[] = o.only ? PROBES.filter((p) => o.only!.includes(p.id)) : PROBES;
  // Every tenant's rows at its place: the pooled table, its schema's copy, or its own database.
  const ownerDbs = ownerDatabases(o.config, o.owner, o.env ?? process.env);
  const tableOf = (t: DatasetTarget, tenant: string) => {
    const at = physicalTable(t.dataset, tenant, o.gate.routes.get(tenant).tier);
    return qualified(at.schema, at.table);
  };
  const inOwnDb = (tenant: string) => o.gate.routes.get(tenant).tier === 'database';
  const placeOf: PlaceOf = async (t, tenant) => {
    const at = o.gate.routes.get(tenant);
    return { db: at.tier === 'database' ? await ownerDbs.get(at.placement, tenantDatabase(o.names.prefix, tenant)) : o.owner, table: tableOf(t, tenant) };
  };
  const canaries = new Canaries(o.owner, placeOf);
  const targets: DatasetTarget[] = [];
  for (const d of o.config.datasets) targets.push(await describeTarget(o.owner, d, canaries.markerLength(involved.length)));
  const results: ProbeResult[] = [];
  const keyIds: string[] = [];
  const directs = new Map<string, Database | { skipped: string }>();
  const logins = new Map<string, { user: string; password: string }>();
  const kind = o.gate.database.kind;
  const planner = o.planner ?? new QueryPlanner(o.config, await QueryCatalog.load(o.config, o.owner));
  const ownerBypassesRls = Boolean(
    (await o.owner.query<{ b: boolean }>(`SELECT rolsuper OR rolbypassrls AS b FROM pg_roles WHERE rolname = current_user`)).rows[0]?.b,
  );
  let removed = 0;

  const roleFor = (tenant: string, access: 'read' | 'write' | 'admin') => {
    const t = o.config.tenants.get(tenant)!;
    return t.roles.find((r) => o.config.roles[r]?.access === access);
  };
  const directFor = async (a: string): Promise<Database | { skipped: string }> => {
    if (kind === 'pglite') return { skipped: PGLITE_GAP };
    let d = directs.get(a);
    if (d) return d;
    const role = roleFor(a, 'read') ?? o.config.tenants.get(a)!.roles.find((r) => o.config.roles[r]?.access !== 'platform');
    if (!role) d = { skipped: 'tenant A has no tenant role for a direct login' };
    else {
      const created = await createApiKey(o.owner, o.config, o.names, o.secret, { tenant: a, role, dbLogin: true });
      keyIds.push(created.key_id);
      logins.set(a, created.db_login!);
      d = await (o.connectAs ?? defaultConnect(o.config))(created.db_login!.user, created.db_login!.password, inOwnDb(a) ? tenantDatabase(o.names.prefix, a) : undefined);
    }
    directs.set(a, d);
    return d;
  };
  const minter = jwtMinter(o.config, o.env ?? {});
  // API keys for the HTTP probes, made once per tenant and access, revoked afterwards.
  const keys = new Map<string, Promise<string | undefined>>();
  const http: HttpContext | undefined = o.url
    ? {
        url: o.url,
        header: o.config.effective.identity.tenant_header,
        key: (tenant, access) => {
          const k = `${tenant}\u0000${access}`;
          let made = keys.get(k);
          if (!made) {
            const role = roleFor(tenant, access);
            made = role
              ? createApiKey(o.owner, o.config, o.names, o.secret, { tenant, role }).then((c) => {
                  keyIds.push(c.key_id);
                  return c.key;
                })
              : Promise.resolve(undefined);
            keys.set(k, made);
          }
          return made;
        },
        ...(minter ? { jwt: minter } : {}),
      }
    : undefined;

  const done: Array<[string, string]> = [];
  let stopped = false;
  try {
    for (const t of targets) await canaries.plant(t, involved);
    const probing = Date.now();
    // Cleanup (canaries, keys, logins) costs about what planting did: keep that much of the budget for it.
    const deadline = started + (o.budgetMs ?? Infinity) - 2 * (probing - started) - 1000;
    for (const [a, b] of list) {
      // Each pair costs about the same: stop before one that would overrun the budget.
      const perPair = done.length ? (Date.now() - probing) / done.length : 0;
      if (done.length > 0 && Date.now() + perPair > deadline) {
        stopped = true;
        break;
      }
      for (const t of targets) {
        const base = { a, b, dataset: t.dataset.name };
        if (t.skipped) {
          for (const p of probes) results.push({ ...base, probe: p.id, path: p.path, status: 'skipped', detail: t.skipped });
          continue;
        }
        const needsDirect = probes.some((p) => p.path === 'direct');
        // B's rows as A can name them: in one database, B's own table; else A's (B's are out of reach).
        const sameDb = !inOwnDb(a) && !inOwnDb(b);
        const ctx: ProbeContext = {
          a,
          b,
          unknown: `tgverify_${randomBytes(4).toString('hex')}`,
          t: { ...t, table: sameDb ? tableOf(t, b) : tableOf(t, a), own: tableOf(t, a) },
          tiers: { a: o.gate.routes.get(a), b: o.gate.routes.get(b) },
          ...(needsDirect && inOwnDb(b) && o.config.effective.database.url && !isEmbeddedUrl(o.config.effective.database.url)
            ? { connectOther: async () => {
                  const login = logins.get(a);
                  if (!login) return undefined;
                  return (o.connectAs ?? defaultConnect(o.config))(login.user, login.password, tenantDatabase(o.names.prefix, b));
                } }
            : {}),
          canaries,
          config: o.config,
          gate: o.gate,
          names: o.names,
          kind,
          owner: o.owner,
          ownerBypassesRls,
          planner,
          ...(needsDirect ? { direct: await directFor(a) } : {}),
          ...(http ? { http } : {}),
        };
        for (const p of probes) {
          let out: Outcome;
          try {
            out = await p.run(ctx);
          } catch (err) {
            // Fail closed: a probe that cannot run proves nothing, and a hole could be what breaks it.
            out = { status: 'error', reason: `probe failed to run: ${(err as Error).message}` };
          }
          results.push({ ...base, probe: p.id, path: p.path, status: out.status, ...(out.status === 'LEAK' ? { detail: out.detail } : out.status !== 'pass' ? { detail: out.reason } : {}) });
        }
      }
      done.push([a, b]);
      o.onProgress?.(done.length, list.length);
    }
  } finally {
    for (const d of directs.values()) if ('close' in d) await d.close().catch(() => {});
    for (const id of keyIds) await revokeApiKey(o.owner, id).catch(() => {});
    removed = await canaries.removeAll();
    await ownerDbs.close();
  }
  const summary = { pass: 0, leak: 0, skipped: 0, error: 0 };
  for (const r of results) summary[r.status === 'LEAK' ? 'leak' : r.status]++;
  return {
    ok: summary.leak === 0 && summary.error === 0,
    probes: probes.length,
    tenants: new Set(done.flat()).size,
    pairs: { covered: done.length, sampled: list.length, total, list: done, ...(stopped ? { stopped: 'time budget' as const } : {}) },
    datasets: targets.map((t) => ({ name: t.dataset.name, ...(t.skipped ? { skipped: t.skipped } : { marker_column: t.markerCol }) })),
    canaries: { planted: canaries.count, removed },
    summary,
    results,
    ms: Date.now() - started,
  };
}
