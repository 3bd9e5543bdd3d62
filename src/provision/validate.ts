import type { Config } from '../config/types.ts';
import { TenantGateError } from '../errors/index.ts';
import type { Names } from './names.ts';
import type { Snapshot } from './introspect.ts';

const TENANT_COLUMN_TYPES = new Set(['text', 'varchar', 'bpchar', 'citext']);

/**
 * Everything that must hold before apply writes anything. Each failure names the config
 * file and line, so nothing is ever half-applied because of bad input.
 */
export function validateAgainstDatabase(config: Config, snap: Snapshot, n: Names): void {
  for (const t of config.tenants.values()) {
    // Placements are servers of their own: only a database of the tenant's own can live there.
    if (t.placement !== 'default' && t.tier !== 'database') {
      throw new TenantGateError('TIER_UNSUPPORTED', `tenant "${t.id}" names placement ${t.placement} with tier ${t.tier}: only tier database can live on a named placement`, {
        location: config.locate(`${t.source.key}.placement`),
      });
    }
  }
  if ([...config.tenants.values()].some((t) => t.tier === 'schema')) {
    // A tenant's schema holds every dataset table by its name: two datasets may not share one.
    const problem = schemaTierClash(config);
    if (problem) throw new TenantGateError('CONFIG_INVALID', problem, { location: config.locate(`datasets`) });
  }
  config.datasets.forEach((d, i) => {
    const where = `datasets.${i}`;
    const table = snap.tables.get(`${d.schema}.${d.table}`);
    if (!table || !['r', 'p'].includes(table.kind)) {
      throw new TenantGateError('DATASET_TABLE_MISSING', `dataset "${d.name}": table ${d.schema}.${d.table} does not exist`, {
        location: config.locate(`${where}.table`),
      });
    }
    const col = table.columns.get(d.tenantColumn);
    if (!col) {
      throw new TenantGateError('DATASET_COLUMN_MISSING', `dataset "${d.name}": tenant column ${d.tenantColumn} does not exist in ${d.schema}.${d.table}`, {
        location: config.locate(`${where}.tenant_column`),
      });
    }
    if (!TENANT_COLUMN_TYPES.has(col.typname)) {
      throw new TenantGateError('DATASET_COLUMN_TYPE', `dataset "${d.name}": tenant column ${d.tenantColumn} is ${col.type}`, {
        location: config.locate(`${where}.tenant_column`),
      });
    }
    const named: Array<[string, string]> = [
      ...d.dimensions.map((c, j): [string, string] => [c, `${where}.dimensions.${j}`]),
      ...Object.keys(d.columns).map((c): [string, string] => [c, `${where}.columns.${c}`]),
      ...d.filters.flatMap((f, j) => f.columns.map((c): [string, string] => [c, `${where}.rls.additional_filters.${j}`])),
      ...(d.expression?.columns ?? []).map((c): [string, string] => [c, `${where}.rls.expression`]),
      ...Object.entries(d.metrics).flatMap(([m, e]) => e.columns.map((c): [string, string] => [c, `${where}.metrics.${m}`])),
    ];
    for (const [c, at] of named) {
      if (!table.columns.has(c)) {
        throw new TenantGateError('DATASET_COLUMN_MISSING', `dataset "${d.name}": column ${c} does not exist in ${d.schema}.${d.table}`, {
          location: config.locate(at),
        });
      }
    }
    for (const t of config.tenants.values()) {
      for (const c of Object.keys(t.accessOverrides[d.name] ?? {})) {
        if (!table.columns.has(c)) {
          throw new TenantGateError('DATASET_COLUMN_MISSING', `tenant "${t.id}" overrides column ${c}, which ${d.schema}.${d.table} does not have`, {
            location: config.locate(`${t.source.key}.access_overrides.${d.name}.${c}`),
          });
        }
        if (t.accessOverrides[d.name]?.[c] === 'read' && d.columns[c]?.access === 'restricted') {
          throw new TenantGateError('CONFIG_INVALID', `tenant "${t.id}" cannot open restricted column ${d.name}.${c}: restricted columns are never readable by tenants`, {
            location: config.locate(`${t.source.key}.access_overrides.${d.name}.${c}`),
          });
        }
      }
    }
    // A table owned by one of our roles could have RLS switched off by that role: refuse.
    if (table.owner === n.gateway || table.owner.startsWith(`${n.prefix}_`)) {
      throw new TenantGateError('GATEWAY_ROLE_UNSAFE', `table ${d.schema}.${d.table} is owned by ${table.owner}, a tenantgate role; the owner must be a separate role`, {
        location: config.locate(`${where}.table`),
      });
    }
  });
  const gw = snap.roles.get(n.gateway);
  if (gw && (gw.superuser || gw.bypassrls)) {
    throw new TenantGateError('GATEWAY_ROLE_UNSAFE', `the gateway login ${n.gateway} is ${gw.superuser ? 'superuser' : 'BYPASSRLS'}: it would see every tenant's rows`, {
      location: config.locate('database'),
    });
  }
  if (snap.currentUser === n.gateway) {
    throw new TenantGateError('GATEWAY_ROLE_UNSAFE', `apply is connected as the gateway login ${n.gateway}; connect as the owner (database.url)`, {
      location: config.locate('database.url'),
    });
  }
  for (const [role, info] of snap.roles) {
    if (role !== n.gateway && (info.superuser || info.bypassrls)) {
      throw new TenantGateError('GATEWAY_ROLE_UNSAFE', `role ${role} (under the tenantgate prefix) is ${info.superuser ? 'superuser' : 'BYPASSRLS'}`, {
        location: config.locate('database.role_prefix'),
      });
    }
  }
}

/** Two dataset tables of one name in different schemas cannot both live in a tenant's schema. */
export function schemaTierClash(config: Config): string | undefined {
  const seen = new Map<string, string>();
  for (const d of config.datasets) {
    const other = seen.get(d.table);
    if (other && other !== `${d.schema}.${d.table}`) return `${other} and ${d.schema}.${d.table} share the name ${d.table}: tier schema keeps every dataset table in the tenant's one schema`;
    seen.set(d.table, `${d.schema}.${d.table}`);
  }
  return undefined;
}
