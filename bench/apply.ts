/**
 * Benchmark 2: provisioning. The real operator path: tenantgate.yaml plus one tenants/<id>.yaml
 * per tenant (written by writeTenantFile, as `tenant add` does), then loadConfig + applyProvision
 * on a fresh database with its own role prefix.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { loadConfig } from '../src/config/load.ts';
import { openDatabase } from '../src/db/database.ts';
import { writeTenantFile } from '../src/lifecycle/tenants.ts';
import { applyProvision } from '../src/provision/apply.ts';
import { configYaml, ORDERS_DDL, TENANTS, tenantId } from './dataset.ts';
import { log, median, timed, urlFor, type Scratch } from './support.ts';

const run = promisify(execFile);

export interface Step {
  label: string;
  loadMs: number;
  applyMs: number;
  totalMs: number;
  changes: number;
}

export interface ApplyResult {
  tenants: number;
  writeFilesMs: number;
  fresh: Step;
  noop: Step;
  /** Adding tenants 1,001, 1,002, 1,003 in turn: write the file, reload, apply. */
  adds: Step[];
  addMedianMs: number;
  /** `tenantgate tenant add` as a new process (node start, tsx, connect), for reference. */
  cliAddMs?: number;
  /** `tenantgate --help` as a new process: what starting the CLI alone costs. */
  cliStartMs?: number;
}

export async function runApplyBench(scratch: Scratch, secretText: string): Promise<ApplyResult> {
  const secret = Buffer.from(secretText, 'utf8');
  const dbName = await scratch.database('apply');
  const prefix = scratch.prefix('a');
  const url = urlFor(dbName);
  const db = await openDatabase(url, { max: 2 });
  const dir = mkdtempSync(join(tmpdir(), 'tg-bench-apply-'));
  try {
    await db.query(`${ORDERS_DDL}; ALTER TABLE public.orders ADD PRIMARY KEY (id); CREATE INDEX ON public.orders (tenant_id, id)`);
    const file = join(dir, 'tenantgate.yaml');
    writeFileSync(file, configYaml({ url, prefix, tenants: [] }));
    const env = {};
    // The first load also loads the SQL parser (WASM) once per process; keep that out of the timings.
    const empty = await loadConfig(file, { env });
    const written = await timed(async () => {
      for (let i = 0; i < TENANTS; i++) writeTenantFile(empty, { id: tenantId(i) });
    });

    const step = async (label: string, before?: () => void): Promise<Step> => {
      const t0 = performance.now();
      before?.();
      const load = await timed(() => loadConfig(file, { env }));
      const applied = await timed(() => applyProvision(load.value, db, secret, { env }));
      const totalMs = performance.now() - t0;
      log(`${label}: load ${Math.round(load.ms)} ms, apply ${Math.round(applied.ms)} ms, ${applied.value.changes.length} change(s)`);
      return { label, loadMs: load.ms, applyMs: applied.ms, totalMs, changes: applied.value.changes.length };
    };

    const fresh = await step(`apply ${TENANTS.toLocaleString('en-US')} tenants, fresh database`);
    if (fresh.changes === 0) throw new Error('the first apply changed nothing');
    const noop = await step('second apply, nothing to do');
    if (noop.changes !== 0) throw new Error(`the second apply still made ${noop.changes} change(s)`);
    const adds: Step[] = [];
    for (let i = TENANTS; i < TENANTS + 3; i++) {
      const current = await loadConfig(file, { env });
      adds.push(await step(`add tenant #${(i + 1).toLocaleString('en-US')} (write file + reload + apply)`, () => writeTenantFile(current, { id: tenantId(i) })));
    }

    let cliAddMs: number | undefined;
    let cliStartMs: number | undefined;
    try {
      const bin = resolve(import.meta.dirname, '..', 'bin', 'tenantgate.js');
      cliStartMs = (await timed(() => run(process.execPath, [bin, '--help'], { cwd: dir }))).ms;
      const t = await timed(() =>
        run(process.execPath, [bin, '-c', file, 'tenant', 'add', tenantId(TENANTS + 3)], {
          env: { ...process.env, TENANTGATE_SECRET: secretText, TENANTGATE_CONFIG: file },
          cwd: dir,
        }),
      );
      cliAddMs = t.ms;
      log(`tenantgate tenant add (new process): ${Math.round(t.ms)} ms`);
    } catch (err) {
      log(`tenantgate tenant add failed, left out of the report: ${(err as Error).message.split('\n')[0]}`);
    }

    return {
      tenants: TENANTS,
      writeFilesMs: written.ms,
      fresh,
      noop,
      adds,
      addMedianMs: median(adds.map((a) => a.totalMs)),
      ...(cliAddMs !== undefined ? { cliAddMs } : {}),
      ...(cliStartMs !== undefined ? { cliStartMs } : {}),
    };
  } finally {
    await db.close();
    rmSync(dir, { recursive: true, force: true });
  }
}
