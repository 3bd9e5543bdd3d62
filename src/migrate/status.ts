import type { Config } from '../config/types.ts';
import type { Database } from '../db/database.ts';
import type { DatabaseSet, PgliteFactory } from '../tiers/databases.ts';
import { readMigrations } from './files.ts';
import { readLedger, type Applied } from './ledger.ts';
import { listTargets, movingTargets, TargetDatabases } from './targets.ts';

export interface TargetStatus {
  target: string;
  tier: string;
  tenant: string | null;
  placement: string;
  applied: string[];
  pending: string[];
  /** Applied versions whose file changed since (or is gone). */
  changed: string[];
  moving: boolean;
  /** The ledger could not be read (the tenant's database is unreachable): the message. */
  error?: string;
}

export interface MigrationStatus {
  dir: string;
  migrations: Array<{ version: string; name: string; applied: number; targets: number; missing: string[] }>;
  targets: TargetStatus[];
  /** Every target has every migration, none changed. */
  upToDate: boolean;
}

/** `migrate status`: per migration, how many targets have it and which do not; per target, what it has. */
export async function migrationStatus(o: { config: Config; main: Database; env: Record<string, string | undefined>; dir: string; pglite?: PgliteFactory; databases?: DatabaseSet }): Promise<MigrationStatus> {
  const files = readMigrations(o.dir);
  const targets = await listTargets(o.config, o.main, o.env);
  const moving = await movingTargets(o.main);
  const dbs = new TargetDatabases(o.main, o.config, o.env, o.pglite, o.databases);
  const ledgers = new Map<string, Applied[] | string>();
  try {
    for (const [k, v] of await readLedger(o.main, targets.filter((t) => t.tier !== 'database').map((t) => t.key))) ledgers.set(k, v);
    for (const t of targets.filter((x) => x.tier === 'database')) {
      try {
        for (const [k, v] of await readLedger(await dbs.db(t), [t.key])) ledgers.set(k, v);
      } catch (err) {
        ledgers.set(t.key, (err as Error).message);
      }
    }
  } finally {
    await dbs.close();
  }
  const byVersion = new Map(files.map((f) => [f.version, f]));
  const status: TargetStatus[] = targets.map((t) => {
    const l = ledgers.get(t.key) ?? [];
    const base = { target: t.key, tier: t.tier, tenant: t.tenant, placement: t.placement, moving: t.tenant ? moving.tenants.has(t.tenant) : moving.main };
    if (typeof l === 'string') return { ...base, applied: [], pending: files.map((f) => f.version), changed: [], error: l };
    const applied = new Set(l.map((a) => a.version));
    return {
      ...base,
      applied: [...applied],
      pending: files.filter((f) => !applied.has(f.version)).map((f) => f.version),
      changed: l.filter((a) => byVersion.get(a.version)?.checksum !== a.checksum).map((a) => a.version),
    };
  });
  const migrations = files.map((f) => {
    const missing = status.filter((s) => !s.applied.includes(f.version)).map((s) => s.target);
    return { version: f.version, name: f.name, applied: status.length - missing.length, targets: status.length, missing };
  });
  return { dir: o.dir, migrations, targets: status, upToDate: status.every((s) => s.pending.length === 0 && s.changed.length === 0 && !s.error) };
}
