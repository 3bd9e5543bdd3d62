/**
 * pgbench on the exact SQL the gateway sends, as the gateway login, against the one-statement
 * no-RLS query as the owner: what the database itself can do on this machine, with no Node in
 * the way. pgbench has no string arithmetic, so each script file is one tenant with its context
 * (tenant and MAC) written in, and pgbench picks among the files at random.
 */
import { execFile } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { SETTING_MAC, SETTING_TENANT } from '../src/provision/names.ts';
import { contextMac, deriveKey } from '../src/security/secret.ts';
import { rowId, ROWS_PER_TENANT, TENANTS, tenantId, type Dataset } from './dataset.ts';
import { log, median } from './support.ts';
import { policySwapper, UNSIGNED_POLICY } from './with-tenant.ts';

const run = promisify(execFile);

/** pgbench allows at most 128 scripts; 32 tenants spread over the table are plenty for a point query. */
const SCRIPT_TENANTS = 32;

export interface PgbenchVariant {
  key: string;
  label: string;
  user: 'gateway' | 'owner';
  /** Script text for tenant index i. */
  script: (i: number) => string;
  /** Around each run (P3 swaps the policy in and back out). */
  before?: () => Promise<void>;
  after?: () => Promise<void>;
}

export interface PgbenchResult {
  key: string;
  label: string;
  rounds: number[];
  tps: number;
  latencyMs: number;
}

export function pgbenchVariants(ds: Dataset): PgbenchVariant[] {
  const key = deriveKey(ds.secret, 'context');
  const timeout = ds.config.defaultQuotas.statement_timeout_ms;
  const idLine = (i: number) => `\\set id ${rowId(i, 0)} + random(0, ${ROWS_PER_TENANT - 1})`;
  const context = (i: number) =>
    `SELECT set_config('role', '${ds.names.access.read}', true), set_config('${SETTING_TENANT}', '${tenantId(i)}', true), set_config('${SETTING_MAC}', '${contextMac(key, tenantId(i))}', true), set_config('statement_timeout', '${timeout}', true);`;
  const select = 'SELECT id, tenant_id, region, amount FROM public.orders WHERE id = :id;';
  const p1 = (i: number) => [idLine(i), '\\startpipeline', 'BEGIN READ ONLY;', context(i), select, 'COMMIT;', '\\endpipeline'].join('\n');
  const contextReadOnly = (i: number) => context(i).replace(/;$/, ", set_config('transaction_read_only', 'on', true);");
  return [
    {
      key: 'P0',
      label: 'no RLS, one statement: SELECT … WHERE tenant_id = … AND id = … (owner)',
      user: 'owner',
      script: (i) => [idLine(i), `SELECT id, tenant_id, region, amount FROM public.orders WHERE tenant_id = '${tenantId(i)}' AND id = :id;`].join('\n'),
    },
    {
      key: 'P1',
      label: 'gateway SQL in one pipeline: BEGIN READ ONLY; set_config ×4; SELECT; COMMIT (one round trip)',
      user: 'gateway',
      script: p1,
    },
    {
      key: 'P2',
      label: 'gateway SQL as withTenant sends it: pipeline (BEGIN; set_config ×4; SELECT), then COMMIT (two round trips)',
      user: 'gateway',
      script: (i) => [idLine(i), '\\startpipeline', 'BEGIN READ ONLY;', context(i), select, '\\endpipeline', 'COMMIT;'].join('\n'),
    },
    {
      key: 'P3',
      label: 'P1 with the policy checking no HMAC: `tenant_id = (SELECT current_setting(…))` (swapped in for these runs only)',
      user: 'gateway',
      script: p1,
      ...policySwapper(ds, UNSIGNED_POLICY),
    },
    {
      key: 'P4',
      label: 'what prototype E sends: set_config ×4 + transaction_read_only; SELECT, one pipeline, no BEGIN/COMMIT (implicit transaction)',
      user: 'gateway',
      script: (i) => [idLine(i), '\\startpipeline', contextReadOnly(i), select, '\\endpipeline'].join('\n'),
    },
  ];
}

/** tps (without connection time) and average latency from pgbench's summary. */
export function parsePgbench(out: string): { tps: number; latencyMs: number } {
  const tps = /tps = ([\d.]+) \(without initial connection time\)/.exec(out);
  const lat = /latency average = ([\d.]+) ms/.exec(out);
  if (!tps || !lat) throw new Error(`could not read pgbench output:\n${out}`);
  return { tps: Number(tps[1]), latencyMs: Number(lat[1]) };
}

export async function runPgbench(
  binary: string,
  ds: Dataset,
  dir: string,
  opts: { rounds: number; seconds: number; clients: number; threads: number },
): Promise<PgbenchResult[]> {
  const variants = pgbenchVariants(ds);
  const tenants = Array.from({ length: SCRIPT_TENANTS }, (_, j) => Math.floor(((j + 0.5) * TENANTS) / SCRIPT_TENANTS));
  const files = new Map<string, string[]>();
  for (const v of variants) {
    const vdir = join(dir, v.key);
    mkdirSync(vdir, { recursive: true });
    files.set(
      v.key,
      tenants.map((i) => {
        const f = join(vdir, `${tenantId(i)}.sql`);
        writeFileSync(f, `${v.script(i)}\n`);
        return f;
      }),
    );
  }
  const server = new URL(ds.ownerUrl);
  const invoke = async (v: PgbenchVariant, seconds: number) => {
    await v.before?.();
    try {
      return await invokeOnce(v, seconds);
    } finally {
      await v.after?.();
    }
  };
  const invokeOnce = async (v: PgbenchVariant, seconds: number) => {
    const user = v.user === 'gateway' ? ds.names.gateway : decodeURIComponent(server.username) || 'postgres';
    const env = { ...process.env, PGPASSWORD: v.user === 'gateway' ? ds.gatewayPassword : decodeURIComponent(server.password) };
    const args = ['-n', '-M', 'prepared', '-c', String(opts.clients), '-j', String(opts.threads), '-T', String(seconds)];
    for (const f of files.get(v.key) ?? []) args.push('-f', `${f}@1`);
    args.push('-h', '127.0.0.1', '-p', server.port || '5432', '-U', user, ds.dbName);
    const { stdout, stderr } = await run(binary, args, { env, maxBuffer: 16 * 1024 * 1024 });
    if (/aborted|error/i.test(stderr)) throw new Error(`pgbench ${v.key} failed:\n${stderr}`);
    return parsePgbench(stdout);
  };
  const tps = new Map<string, number[]>(variants.map((v) => [v.key, []]));
  const lat = new Map<string, number[]>(variants.map((v) => [v.key, []]));
  for (const v of variants) await invoke(v, 1); // warm-up: caches, and a failing script fails fast
  for (let r = 0; r < opts.rounds; r++) {
    const order = variants.map((_, i) => variants[(i + r) % variants.length] as PgbenchVariant);
    for (const v of order) {
      const res = await invoke(v, opts.seconds);
      tps.get(v.key)?.push(res.tps);
      lat.get(v.key)?.push(res.latencyMs);
      log(`pgbench round ${r + 1}/${opts.rounds} ${v.key}: ${Math.round(res.tps)} tps`);
    }
  }
  return variants.map((v) => ({
    key: v.key,
    label: v.label,
    rounds: tps.get(v.key) ?? [],
    tps: median(tps.get(v.key) ?? []),
    latencyMs: median(lat.get(v.key) ?? []),
  }));
}
