import { readdirSync, readFileSync, existsSync } from 'node:fs';
import { basename, dirname, extname, join, resolve } from 'node:path';
import type { z } from 'zod';
import { TenantGateError, type SourceLocation } from '../errors/index.ts';
import { loadParser } from '../plan/sql/parser.ts';
import { tenantIdProblem } from '../tenancy/tenant-id.ts';
import { DEFAULTS } from './defaults.ts';
import { compileMetric, compileRowExpression, ExpressionError } from './expressions.ts';
import { configSchema, type RawConfig } from './schema.ts';
import type { Config, Dataset, Quotas, Tenant } from './types.ts';
import type { RowExpression } from './expressions.ts';
import { readYaml } from './yaml-source.ts';

export interface LoadOptions {
  env?: Record<string, string | undefined>;
}

/** Load `tenantgate.yaml` and `tenants/*.yaml` beside it. Every error names file, line and key. */
export async function loadConfig(file: string, options: LoadOptions = {}): Promise<Config> {
  const path = resolve(file);
  if (!existsSync(path)) {
    throw new TenantGateError('CONFIG_NOT_FOUND', `no configuration at ${path}`, { location: { file: path } });
  }
  return parseConfig(readFileSync(path, 'utf8'), path, options);
}

/** Same as loadConfig, from text (the tenants/ folder is still read from beside `file`). */
export async function parseConfig(text: string, file: string, options: LoadOptions = {}): Promise<Config> {
  await loadParser();
  const env = options.env ?? process.env;
  const main = readYaml(text, file, env);
  const locations = main.locations;
  const raw = (main.value ?? {}) as Record<string, unknown>;
  if (typeof raw !== 'object' || Array.isArray(raw)) {
    throw new TenantGateError('CONFIG_INVALID', 'the file must be a YAML mapping', { location: { file, line: 1 } });
  }
  const tenants = Array.isArray(raw['tenants']) ? [...(raw['tenants'] as unknown[])] : raw['tenants'] === undefined ? [] : raw['tenants'];
  const tenantFiles = new Map<number, string>();
  const dir = join(dirname(file), 'tenants');
  if (Array.isArray(tenants) && existsSync(dir)) {
    for (const name of readdirSync(dir).filter((n) => /\.ya?ml$/.test(n)).sort()) {
      const tenantFile = join(dir, name);
      const index = tenants.length;
      const sourced = readYaml(readFileSync(tenantFile, 'utf8'), tenantFile, env, `tenants.${index}`);
      for (const [k, v] of sourced.locations) locations.set(k, v);
      tenants.push(sourced.value);
      tenantFiles.set(index, tenantFile);
    }
    raw['tenants'] = tenants;
  }
  const locate = (p: string): SourceLocation => {
    const parts = p.split('.');
    while (parts.length > 0) {
      const hit = locations.get(parts.join('.'));
      if (hit) return { ...hit, key: p };
      parts.pop();
    }
    return { file, line: 1, key: p };
  };

  const parsed = configSchema.safeParse(raw);
  // An unknown key is usually the cause of a "missing" one (a typo): report it first.
  if (!parsed.success) throw issueError(parsed.error.issues.find((i) => i.code === 'unrecognized_keys') ?? (parsed.error.issues[0] as z.core.$ZodIssue), locate);
  const effective = parsed.data;

  // Tenant files must be named for the tenant they hold: one file, one tenant, no surprises in review.
  for (const [index, tenantFile] of tenantFiles) {
    const id = effective.tenants[index]?.id;
    const problem = tenantIdProblem(id);
    if (problem) throw new TenantGateError('TENANT_ID_INVALID', `invalid tenant id: ${problem}`, { location: locate(`tenants.${index}.id`) });
    const stem = basename(tenantFile, extname(tenantFile));
    if (id !== stem) {
      throw new TenantGateError('CONFIG_INVALID', `tenant file ${basename(tenantFile)} holds tenant "${id}"; name it ${id}.yaml`, {
        location: locate(`tenants.${index}.id`),
      });
    }
  }
  return resolveConfig(effective, file, locate);
}

function issueError(issue: z.core.$ZodIssue, locate: (p: string) => SourceLocation): TenantGateError {
  const path = issue.path.map(String).join('.');
  if (issue.code === 'unrecognized_keys') {
    const key = issue.keys[0] as string;
    const full = path ? `${path}.${key}` : key;
    return new TenantGateError('CONFIG_INVALID', `unknown key "${key}"${path ? ` under ${path}` : ''}`, { location: locate(full) });
  }
  if (path.match(/^tenants\.\d+\.id$/)) {
    return new TenantGateError('TENANT_ID_INVALID', `invalid tenant id: ${issue.message}`, { location: locate(path) });
  }
  return new TenantGateError('CONFIG_INVALID', `${path || '(root)'}: ${issue.message}`, { location: locate(path) });
}

function resolveConfig(effective: RawConfig, file: string, locate: (p: string) => SourceLocation): Config {
  const roles = effective.roles;
  const datasets: Dataset[] = [];
  const seenDatasets = new Set<string>();
  const attributesNeeded = new Map<string, string>(); // attribute → dataset that needs it
  effective.datasets.forEach((d, i) => {
    const where = `datasets.${i}`;
    if (seenDatasets.has(d.name)) throw new TenantGateError('CONFIG_INVALID', `dataset "${d.name}" is defined twice`, { location: locate(`${where}.name`) });
    seenDatasets.add(d.name);
    const [schema, table] = d.table.includes('.') ? (d.table.split('.') as [string, string]) : ['public', d.table];
    if (schema === 'tenantgate' || schema.startsWith('pg_') || schema === 'information_schema') {
      throw new TenantGateError('CONFIG_INVALID', `dataset table may not live in schema ${schema}`, { location: locate(`${where}.table`) });
    }
    const compile = <T>(source: string, at: string, fn: (s: string) => T = compileRowExpression as (s: string) => T): T => {
      try {
        return fn(source);
      } catch (err) {
        if (err instanceof ExpressionError) throw new TenantGateError('CONFIG_INVALID', `${at}: ${err.message}`, { location: locate(at) });
        throw err;
      }
    };
    const filters = d.rls.additional_filters.map((f, j) => {
      const at = `${where}.rls.additional_filters.${j}`;
      const expr = compile<RowExpression>(`${f.column} ${f.condition}`, at);
      if (expr.placeholders.length > 0) throw new TenantGateError('CONFIG_INVALID', `${at}: filters take no placeholders; use rls.expression`, { location: locate(at) });
      return expr;
    });
    const expression = d.rls.expression === undefined ? undefined : compile<RowExpression>(d.rls.expression, `${where}.rls.expression`);
    const metrics = Object.fromEntries(Object.entries(d.metrics).map(([name, src]) => [name, compile(src, `${where}.metrics.${name}`, compileMetric)]));
    for (const name of Object.keys(metrics)) {
      if (d.dimensions.includes(name)) throw new TenantGateError('CONFIG_INVALID', `"${name}" is both a dimension and a metric`, { location: locate(`${where}.metrics.${name}`) });
    }
    for (const name of expression?.placeholders ?? []) if (name !== 'tenant') attributesNeeded.set(name, d.name);
    const dataset: Dataset = {
      name: d.name,
      schema,
      table,
      tenantColumn: d.tenant_column ?? effective.defaults.tenant_column,
      filters,
      dimensions: d.dimensions,
      metrics,
      columns: d.columns,
      source: locate(where),
    };
    if (expression) dataset.expression = expression;
    if (dataset.columns[dataset.tenantColumn]?.access === 'restricted') {
      throw new TenantGateError('CONFIG_INVALID', `the tenant column ${dataset.tenantColumn} cannot be restricted`, { location: locate(`${where}.columns`) });
    }
    datasets.push(dataset);
  });

  const defaultQuotas: Quotas = { ...DEFAULTS.defaults.quotas, ...effective.defaults.quotas };
  const tenants = new Map<string, Tenant>();
  const nonPlatformRoles = Object.keys(roles).filter((r) => roles[r]?.access !== 'platform');
  effective.tenants.forEach((t, i) => {
    const where = `tenants.${i}`;
    const problem = tenantIdProblem(t.id);
    if (problem) throw new TenantGateError('TENANT_ID_INVALID', `invalid tenant id: ${problem}`, { location: locate(`${where}.id`) });
    if (tenants.has(t.id)) throw new TenantGateError('CONFIG_INVALID', `tenant "${t.id}" is defined twice`, { location: locate(`${where}.id`) });
    for (const [j, role] of (t.roles ?? []).entries()) {
      if (!Object.hasOwn(roles, role)) throw new TenantGateError('ROLE_UNKNOWN', `tenant "${t.id}" names role "${role}", which is not defined under roles:`, { location: locate(`${where}.roles.${j}`) });
      if (roles[role]?.access === 'platform') throw new TenantGateError('CONFIG_INVALID', `role "${role}" is a platform role and cannot belong to a tenant`, { location: locate(`${where}.roles.${j}`) });
    }
    if (t.placement !== 'default' && !Object.hasOwn(effective.database.placements, t.placement)) {
      throw new TenantGateError('PLACEMENT_UNKNOWN', `tenant "${t.id}" names placement "${t.placement}", which is not defined under database.placements`, { location: locate(`${where}.placement`) });
    }
    for (const [ds, cols] of Object.entries(t.access_overrides)) {
      const dataset = datasets.find((d) => d.name === ds);
      if (!dataset) throw new TenantGateError('CONFIG_INVALID', `access_overrides names unknown dataset "${ds}"`, { location: locate(`${where}.access_overrides.${ds}`) });
      if (Object.keys(cols).includes(dataset.tenantColumn)) throw new TenantGateError('CONFIG_INVALID', `the tenant column cannot be overridden`, { location: locate(`${where}.access_overrides.${ds}`) });
    }
    for (const [attr, ds] of attributesNeeded) {
      if (t.attributes[attr] === undefined) {
        throw new TenantGateError('CONFIG_INVALID', `dataset "${ds}" filters on {${attr}} but tenant "${t.id}" has no attributes.${attr}`, { location: locate(`${where}`) });
      }
    }
    tenants.set(t.id, {
      id: t.id,
      name: t.name ?? t.id,
      tier: t.tier ?? effective.defaults.tier,
      placement: t.placement,
      status: t.status,
      attributes: t.attributes,
      roles: t.roles ?? nonPlatformRoles,
      // Defaults, then the tier's, then the tenant's own (runtime changes go on top: src/quota/quota-book.ts).
      quotas: { ...defaultQuotas, ...effective.defaults.tier_quotas[t.tier ?? effective.defaults.tier], ...t.quotas },
      features: t.features,
      accessOverrides: t.access_overrides,
      source: locate(where),
    });
  });
  return { effective, file, dir: dirname(file), datasets, tenants, defaultQuotas, roles, locate };
}
