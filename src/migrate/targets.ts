import type { Config } from '../config/types.ts';
import type { Database } from '../db/database.ts';
import type { Tier } from '../config/schema.ts';
import { resolveNames } from '../provision/apply.ts';
import { ownerDatabases, type DatabaseSet, type PgliteFactory } from '../tiers/databases.ts';
import { tenantDatabase, tenantSchema } from '../tiers/location.ts';

/**
 * A place that holds a copy of the dataset tables and so takes every migration: the main database's
 * pooled tables (`main`), a schema-tier tenant's schema (`schema:<id>`, in the main database) or a
 * database-tier tenant's own database (`database:<id>`, on its placement).
 */
export interface Target {
  key: string;
  tier: Tier;
  tenant: string | null;
  placement: string;
  /** The schema-tier tenant's schema. */
  schema?: string;
  /** The database-tier tenant's database. */
  database?: string;
}

export const MAIN: Target = { key: 'main', tier: 'pooled', tenant: null, placement: 'default' };

/** Every target, main first, then the tenants' places by id: where the catalog says each tenant is now. */
export async function listTargets(config: Config, main: Pick<Database, 'query'>, env: Record<string, string | undefined>): Promise<Target[]> {
  const prefix = resolveNames(config, env).prefix;
  const r = await main.query<{ id: string; tier: Tier; placement: string }>(`SELECT id, tier, placement FROM tenantgate.tenants WHERE tier <> 'pooled' ORDER BY id`);
  return [
    MAIN,
    ...r.rows.map((t): Target =>
      t.tier === 'schema'
        ? { key: `schema:${t.id}`, tier: 'schema', tenant: t.id, placement: t.placement, schema: tenantSchema(t.id) }
        : { key: `database:${t.id}`, tier: 'database', tenant: t.id, placement: t.placement, database: tenantDatabase(prefix, t.id) },
    ),
  ];
}

/**
 * The targets a move that has not ended touches: they wait for it (a migration would change one side
 * of the copy). The moving tenant's own place, and the main database when the move leaves or enters
 * the pooled tables (the new place was made, and its rows are copied, at the old version).
 */
export async function movingTargets(main: Pick<Database, 'query'>): Promise<{ tenants: Set<string>; main: boolean }> {
  const r = await main
    .query<{ tenant: string; pooled: boolean }>(`SELECT tenant, (from_tier = 'pooled' OR to_tier = 'pooled') AS pooled FROM tenantgate.moves WHERE phase NOT IN ('done', 'aborted')`)
    .catch((err: { code?: string }) => (err.code === '42P01' ? { rows: [] as Array<{ tenant: string; pooled: boolean }> } : Promise.reject(err)));
  return { tenants: new Set(r.rows.map((x) => x.tenant)), main: r.rows.some((x) => x.pooled) };
}

/** The owner's connection to each target's database: the main one, or the tenant's own (opened on demand, closed with `close`). */
export class TargetDatabases {
  private readonly set: DatabaseSet;
  constructor(
    private readonly main: Database,
    config: Config,
    env: Record<string, string | undefined>,
    pglite?: PgliteFactory,
    databases?: DatabaseSet,
  ) {
    this.set = databases ?? ownerDatabases(config, main, env, pglite);
    this.owned = !databases;
  }
  private readonly owned: boolean;

  db(t: Target): Promise<Database> {
    return t.tier === 'database' ? this.set.get(t.placement, t.database!) : Promise.resolve(this.main);
  }

  /** The place whose ledger holds this target's rows: the same database as `db`. */
  placeKey(t: Target): string {
    return t.tier === 'database' ? `${t.placement}/${t.database}` : 'main';
  }

  async close(): Promise<void> {
    if (this.owned) await this.set.close();
  }
}
