import { createHash, randomBytes } from 'node:crypto';
import type { AccessLevel, Config, Dataset, Tenant } from '../config/types.ts';
import { renderRowExpression, type RowExpression } from '../config/expressions.ts';
import { ident, literal, qualified } from '../db/sql.ts';
import { AUDIT_TABLE, CATALOG_FUNCTIONS, CATALOG_SCHEMA, CATALOG_TABLES } from './catalog.ts';
import { ALL_TENANTS_CONTEXT, gatewayRoles, type Names } from './names.ts';
import type { Snapshot, TableInfo } from './introspect.ts';
import { tableDdl, type TableShape } from './table-ddl.ts';
import { inheritLedgerSql, targetKey } from '../migrate/ledger.ts';
import { tenantSchema } from '../tiers/location.ts';

/** One difference between the database and the config, and the SQL that removes it. */
export interface Change {
  /** Stable id of the object, e.g. `policy public.orders tenantgate_gw_select`. */
  object: string;
  action: 'create' | 'update' | 'drop' | 'grant' | 'revoke';
  /** Why: what plan prints. */
  reason: string;
  sql: string[];
  /** For policies: the spec hash recorded after apply, to tell config changes from manual edits. */
  record?: { object: string; specHash: string; table: string; policy: string };
  /** Set when apply generated a secret the operator must see once (the gateway password). */
  reveal?: { gatewayPassword: string };
}

const ACCESS: AccessLevel[] = ['read', 'write', 'admin', 'platform'];
const POLICY_CMD: Record<string, string> = { SELECT: 'r', INSERT: 'a', UPDATE: 'w', DELETE: 'd', ALL: '*' };

export function specHash(text: string): string {
  return createHash('sha256').update(text).digest('hex').slice(0, 32);
}

/** Compute every change needed to make the database match the config. Pure, given the snapshot. */
export function computeChanges(config: Config, snap: Snapshot, n: Names, contextPads: { ipad: Buffer; opad: Buffer }): Change[] {
  const out: Change[] = [];
  out.push(...roleChanges(config, snap, n));
  out.push(...catalogChanges(snap, n, contextPads));
  out.push(...tenantChanges(config, snap, n));
  out.push(...auditChanges(config, snap, n));
  const schemas = [...new Set(config.datasets.map((d) => d.schema))];
  out.push(...schemaChanges(schemas, snap, n));
  for (const d of config.datasets) {
    const table = snap.tables.get(`${d.schema}.${d.table}`);
    if (table) out.push(...tableChanges(config, d, table, snap, n));
  }
  out.push(...schemaTierChanges(config, snap, n));
  return out;
}

/** Where a tenant's rows are: the database's word when it has a row for the tenant, else the config's. */
export function tierOf(t: Tenant, snap: Snapshot): Tenant['tier'] {
  return (snap.tenantRows.get(t.id)?.tier as Tenant['tier'] | undefined) ?? t.tier;
}

/**
 * Schema-tier tenants: a schema `t_<id>` only the gateway's access roles and the tenant's own
 * group may use, holding a copy of every dataset table with the same RLS, policies and grants as
 * the pooled table (so the gateway's plans and the signed context work unchanged there).
 */
function schemaTierChanges(config: Config, snap: Snapshot, n: Names): Change[] {
  return schemaPlaceChanges(config, snap, n, [...config.tenants.values()].filter((t) => tierOf(t, snap) === 'schema').map((t) => t.id));
}

/** The schema-tier places of these tenants: their schemas and table copies, made or mended. */
export function schemaPlaceChanges(config: Config, snap: Snapshot, n: Names, tenants: string[]): Change[] {
  const out: Change[] = [];
  for (const id of tenants) {
    const t = config.tenants.get(id);
    if (!t) continue;
    const s = tenantSchema(t.id);
    if (!snap.schemaUsage.has(s)) {
      // Its copies are made from the pooled tables as they are: it has every migration main has.
      out.push({ object: `schema ${s}`, action: 'create', reason: `tenant ${t.id} is in tier schema`, sql: [`CREATE SCHEMA ${ident(s)}`, `REVOKE ALL ON SCHEMA ${ident(s)} FROM PUBLIC`, inheritLedgerSql(targetKey('schema', t.id))] });
    }
    const want = new Set([...gatewayRoles(n).map((g) => g.role), n.tenant(t.id)]);
    const have = snap.schemaUsage.get(s) ?? new Set<string>();
    const missing = [...want].filter((r) => !have.has(r));
    const extra = [...have].filter((r) => !want.has(r) && r !== snap.currentUser);
    if (missing.length) out.push({ object: `grant usage schema ${s}`, action: 'grant', reason: `only the gateway's roles and ${n.tenant(t.id)} may use ${s}`, sql: [`GRANT USAGE ON SCHEMA ${ident(s)} TO ${missing.map(ident).join(', ')}`] });
    if (extra.length) out.push({ object: `revoke usage schema ${s}`, action: 'revoke', reason: `${extra.join(', ')} may not use ${s} (another tenant's or PUBLIC)`, sql: extra.map((r) => `REVOKE ALL ON SCHEMA ${ident(s)} FROM ${r === 'public' ? 'PUBLIC' : ident(r)}`) });
    for (const d of config.datasets) {
      const copy = { ...d, schema: s };
      let info = snap.tables.get(`${s}.${d.table}`);
      if (!info) {
        const shape = snap.shapes.get(`${d.schema}.${d.table}`);
        if (!shape) continue;
        const ddl = tableDdl(shape, s);
        out.push({ object: `table ${s}.${d.table}`, action: 'create', reason: `copy of ${d.schema}.${d.table} for tenant ${t.id}${ddl.notes.length ? ` (${ddl.notes.join('; ')})` : ''}`, sql: ddl.statements });
        info = skeletonOf(shape, s);
      }
      out.push(...tableChanges(config, copy, info, snap, n));
    }
  }
  return out;
}

/** A table about to be created, as introspection would see it: its columns and serial sequences, nothing granted yet. */
function skeletonOf(shape: TableShape, schema: string): TableInfo {
  return {
    oid: 0,
    schema,
    name: shape.table,
    kind: 'r',
    owner: '',
    rls: false,
    force: false,
    columns: new Map(shape.columns.map((c) => [c.name, { type: c.type, typname: c.type }])),
    policies: new Map(),
    privileges: new Map(),
    sequences: new Map(shape.columns.filter((c) => c.def && /^nextval\('/.test(c.def) && !c.identity).map((c) => [`${schema}.${shape.table}_${c.name}_seq`, new Set<string>()])),
  };
}

function roleChanges(config: Config, snap: Snapshot, n: Names): Change[] {
  const out: Change[] = [];
  const nologin = (role: string, why: string) => {
    const info = snap.roles.get(role);
    if (!info) {
      out.push({ object: `role ${role}`, action: 'create', reason: why, sql: [`CREATE ROLE ${ident(role)} NOLOGIN`] });
    } else if (info.login) {
      out.push({ object: `role ${role}`, action: 'update', reason: `${role} can log in; it must not`, sql: [`ALTER ROLE ${ident(role)} NOLOGIN`] });
    }
  };
  for (const g of gatewayRoles(n)) nologin(g.role, `gateway role (${g.privileges.join(', ')})`);
  nologin(n.direct, 'group of direct database logins (their policies attach here)');
  nologin(n.directDefault, 'default column grants of direct logins');
  const gw = snap.roles.get(n.gateway);
  if (!gw) {
    const password = randomBytes(18).toString('base64url');
    out.push({
      object: `role ${n.gateway}`,
      action: 'create',
      reason: 'the low-privilege login the gateway uses (no table privileges of its own)',
      sql: [`CREATE ROLE ${ident(n.gateway)} LOGIN NOINHERIT PASSWORD ${literal(password)}`],
      reveal: { gatewayPassword: password },
    });
  } else if (gw.inherit || !gw.login) {
    out.push({
      object: `role ${n.gateway}`,
      action: 'update',
      reason: `${n.gateway} must be LOGIN NOINHERIT so it holds no privileges outside a tenant transaction`,
      sql: [`ALTER ROLE ${ident(n.gateway)} LOGIN NOINHERIT`],
    });
  }
  for (const g of gatewayRoles(n)) membership(out, snap, n.gateway, g.role);
  return out;
}

function membership(out: Change[], snap: Snapshot, member: string, role: string, want = true): void {
  const has = snap.memberships.has(`${member}>${role}`);
  if (want && !has) {
    out.push({ object: `membership ${member} in ${role}`, action: 'grant', reason: `${member} must be a member of ${role}`, sql: [`GRANT ${ident(role)} TO ${ident(member)}`] });
  } else if (!want && has) {
    out.push({ object: `membership ${member} in ${role}`, action: 'revoke', reason: `${member} must not be a member of ${role}`, sql: [`REVOKE ${ident(role)} FROM ${ident(member)}`] });
  }
}

function catalogChanges(snap: Snapshot, n: Names, pads: { ipad: Buffer; opad: Buffer }): Change[] {
  const out: Change[] = [];
  if (!snap.schemaUsage.has(CATALOG_SCHEMA)) {
    out.push({
      object: `schema ${CATALOG_SCHEMA}`,
      action: 'create',
      reason: 'the tenantgate catalog (tenants, keys, what apply made)',
      sql: [`CREATE SCHEMA ${CATALOG_SCHEMA}`, `REVOKE ALL ON SCHEMA ${CATALOG_SCHEMA} FROM PUBLIC`],
    });
  }
  for (const [name, ddl] of Object.entries(CATALOG_TABLES)) {
    if (!snap.catalogTables.has(name)) {
      out.push({ object: `table ${CATALOG_SCHEMA}.${name}`, action: 'create', reason: 'catalog table', sql: [ddl, `REVOKE ALL ON ${CATALOG_SCHEMA}.${name} FROM PUBLIC`] });
    }
  }
  const keyOk = snap.contextKey && snap.contextKey.ipad.equals(pads.ipad) && snap.contextKey.opad.equals(pads.opad);
  if (!keyOk) {
    out.push({
      object: `row ${CATALOG_SCHEMA}.context_key`,
      action: snap.contextKey ? 'update' : 'create',
      reason: snap.contextKey ? 'the tenant-context key does not match the server secret (was the secret rotated?)' : 'the key that signs tenant contexts',
      sql: [
        `INSERT INTO ${CATALOG_SCHEMA}.context_key (id, k_ipad, k_opad) VALUES (1, '\\x${pads.ipad.toString('hex')}', '\\x${pads.opad.toString('hex')}')
         ON CONFLICT (id) DO UPDATE SET k_ipad = EXCLUDED.k_ipad, k_opad = EXCLUDED.k_opad`,
      ],
    });
  }
  const executors: Record<string, string[]> = {
    gateway_tenant: gatewayRoles(n).map((g) => g.role),
    gateway_attr: gatewayRoles(n).map((g) => g.role),
    login_tenant: [n.direct],
    login_attr: [n.direct],
    role_tenant: [n.direct],
    role_attr: [n.direct],
    lookup_key: [n.gateway],
    // Batched writes come from the gateway login; durable ones from inside the tenant transaction.
    audit_append: [n.gateway, ...gatewayRoles(n).map((g) => g.role)],
    audit_prune: [n.gateway],
    quota_overrides: [n.gateway],
    tenant_routes: [n.gateway],
    set_quotas: [n.gateway],
    // Suspend and resume through the admin API (src/lifecycle/suspend.ts); only platform admins reach them.
    tenant_status: [n.gateway],
    set_suspension: [n.gateway],
    sync_logins: [n.gateway],
  };
  for (const [name, fn] of Object.entries(CATALOG_FUNCTIONS)) {
    const actual = snap.functions.get(name);
    const signature = `${CATALOG_SCHEMA}.${name}(${fn.args.replace(/\w+ (\w+)/g, '$1')})`;
    const want = executors[name] ?? [];
    if (!actual || actual.src !== fn.body) {
      out.push({
        object: `function ${signature}`,
        action: actual ? 'update' : 'create',
        reason: actual ? 'the function body differs from the one tenantgate installs' : 'policy helper',
        sql: [fn.create, `REVOKE ALL ON FUNCTION ${signature} FROM PUBLIC`, ...want.map((r) => `GRANT EXECUTE ON FUNCTION ${signature} TO ${ident(r)}`)],
      });
      continue;
    }
    if (actual.executors === 'public' || want.some((r) => !(actual.executors as Set<string>).has(r))) {
      out.push({
        object: `grant execute ${signature}`,
        action: 'grant',
        reason: 'only tenantgate roles may execute the policy helpers',
        sql: [`REVOKE ALL ON FUNCTION ${signature} FROM PUBLIC`, ...want.map((r) => `GRANT EXECUTE ON FUNCTION ${signature} TO ${ident(r)}`)],
      });
    }
  }
  return out;
}

function tenantChanges(config: Config, snap: Snapshot, n: Names): Change[] {
  const out: Change[] = [];
  for (const t of config.tenants.values()) {
    const row = snap.tenantRows.get(t.id);
    const attrs = JSON.stringify(t.attributes);
    const same = row && row.name === t.name && row.status === t.status && JSON.stringify(row.attributes) === JSON.stringify(sortKeys(t.attributes));
    if (!same) {
      out.push({
        object: `tenant ${t.id}`,
        action: row ? 'update' : 'create',
        reason: row ? 'tenant catalog row differs from the config' : `tenant catalog row (${t.tier}${t.placement === 'default' ? '' : ` on ${t.placement}`})`,
        // Tier and placement say where the rows are: set once here, changed only by tenant move.
        sql: [
          `INSERT INTO ${CATALOG_SCHEMA}.tenants (id, name, tier, placement, status, attributes) VALUES (${literal(t.id)}, ${literal(t.name)}, ${literal(t.tier)}, ${literal(t.placement)}, ${literal(t.status)}, ${literal(attrs)}::jsonb)
           ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name, status = EXCLUDED.status, attributes = EXCLUDED.attributes, updated_at = now()`,
          // The config's status changed: its direct logins follow (NOLOGIN and sessions ended, or LOGIN
          // again unless a runtime suspension still holds; tenantgate.sync_logins decides).
          ...(row && row.status !== t.status ? [`SELECT ${CATALOG_SCHEMA}.sync_logins(${literal(t.id)})`] : []),
        ],
      });
    }
    if (row && (row.tier !== t.tier || row.placement !== t.placement)) {
      out.push({
        object: `tenant ${t.id} location`,
        action: 'update',
        reason: `the config puts ${t.id} in tier ${t.tier}${t.placement === 'default' ? '' : ` on ${t.placement}`}, its rows are in tier ${row.tier}${row.placement === 'default' ? '' : ` on ${row.placement}`}: apply never moves data; run \`tenantgate tenant move ${t.id} --tier ${t.tier}${t.placement === 'default' ? '' : ` --placement ${t.placement}`}\``,
        sql: [],
      });
    }
    const role = n.tenant(t.id);
    const info = snap.roles.get(role);
    if (!info) {
      out.push({ object: `role ${role}`, action: 'create', reason: `direct-login group of tenant ${t.id}`, sql: [`CREATE ROLE ${ident(role)} NOLOGIN`] });
    } else if (info.login) {
      out.push({ object: `role ${role}`, action: 'update', reason: `${role} can log in; it must not`, sql: [`ALTER ROLE ${ident(role)} NOLOGIN`] });
    }
    membership(out, snap, role, n.direct);
    membership(out, snap, role, n.directDefault, !hasOverrides(t));
    const mapped = snap.dbRoles.get(role);
    if (!mapped || mapped.tenant !== t.id || mapped.kind !== 'tenant') {
      out.push({
        object: `row ${CATALOG_SCHEMA}.db_roles ${role}`,
        action: mapped ? 'update' : 'create',
        reason: `maps ${role} to tenant ${t.id} for the direct-login policies`,
        sql: [
          `INSERT INTO ${CATALOG_SCHEMA}.db_roles (role_name, tenant_id, kind) VALUES (${literal(role)}, ${literal(t.id)}, 'tenant')
           ON CONFLICT (role_name) DO UPDATE SET tenant_id = EXCLUDED.tenant_id, kind = EXCLUDED.kind`,
        ],
      });
    }
  }
  for (const id of snap.tenantRows.keys()) {
    if (!config.tenants.has(id)) {
      out.push({ object: `tenant ${id}`, action: 'drop', reason: 'in the database but not in the config: offboard it deliberately (tenant lifecycle), apply never deletes tenants', sql: [] });
    }
  }
  return out;
}

function sortKeys(o: Record<string, unknown>): Record<string, unknown> {
  // jsonb stores keys sorted by length then bytes; compare in the same order.
  return Object.fromEntries(Object.entries(o).sort(([a], [b]) => a.length - b.length || (a < b ? -1 : a > b ? 1 : 0)));
}

function hasOverrides(t: Tenant): boolean {
  return Object.values(t.accessOverrides).some((cols) => Object.values(cols).includes('restricted'));
}

function schemaChanges(schemas: string[], snap: Snapshot, n: Names): Change[] {
  const out: Change[] = [];
  const users = [...gatewayRoles(n).map((g) => g.role), n.direct];
  for (const s of [...schemas, CATALOG_SCHEMA]) {
    const have = snap.schemaUsage.get(s) ?? new Set<string>();
    // The gateway login itself calls tenantgate.lookup_key before any tenant transaction.
    const missing = [...users, ...(s === CATALOG_SCHEMA ? [n.gateway] : [])].filter((u) => !have.has(u));
    if (missing.length > 0) {
      out.push({
        object: `grant usage schema ${s}`,
        action: 'grant',
        reason: `${missing.join(', ')} need USAGE on schema ${s}`,
        sql: [`GRANT USAGE ON SCHEMA ${ident(s)} TO ${missing.map(ident).join(', ')}`],
      });
    }
  }
  return out;
}

/** Columns a role may read on a dataset table: all but restricted ones (and masked ones for direct logins). */
function readableColumns(d: Dataset, table: TableInfo, opts: { direct: boolean; tenant?: Tenant }): string[] {
  return [...table.columns.keys()].filter((c) => {
    const rule = d.columns[c];
    if (rule?.access === 'restricted') return false;
    if (opts.direct && rule?.mask) return false;
    if (opts.tenant?.accessOverrides[d.name]?.[c] === 'restricted') return false;
    return true;
  });
}

function tableChanges(config: Config, d: Dataset, table: TableInfo, snap: Snapshot, n: Names): Change[] {
  const out: Change[] = [];
  const t = qualified(d.schema, d.table);
  const key = `${d.schema}.${d.table}`;
  if (!table.rls) out.push({ object: `rls ${key}`, action: 'update', reason: 'row level security is not enabled', sql: [`ALTER TABLE ${t} ENABLE ROW LEVEL SECURITY`] });
  if (!table.force) out.push({ object: `force rls ${key}`, action: 'update', reason: 'row level security is not forced (the owner would bypass it)', sql: [`ALTER TABLE ${t} FORCE ROW LEVEL SECURITY`] });

  // Grants: exactly the desired set per role, nothing table-wide that would cover restricted columns.
  const want = new Map<string, Set<string>>();
  const gatewayCols = readableColumns(d, table, { direct: false });
  for (const g of gatewayRoles(n)) {
    const set = new Set<string>();
    for (const p of g.privileges) {
      if (p === 'DELETE') set.add('DELETE');
      else for (const c of gatewayCols) set.add(`${p}(${c})`);
    }
    want.set(g.role, set);
  }
  want.set(n.directDefault, new Set(readableColumns(d, table, { direct: true }).map((c) => `SELECT(${c})`)));
  for (const tenant of config.tenants.values()) {
    if (hasOverrides(tenant)) {
      want.set(n.tenant(tenant.id), new Set(readableColumns(d, table, { direct: true, tenant }).map((c) => `SELECT(${c})`)));
    }
  }
  // Roles under our prefix that hold grants they should not (e.g. a tenant whose overrides were removed).
  for (const role of table.privileges.keys()) {
    if (!want.has(role) && (role.startsWith(`${n.prefix}_`) || role === n.gateway)) want.set(role, new Set());
  }
  for (const [role, desired] of want) {
    const actual = table.privileges.get(role) ?? new Set<string>();
    if (sameSet(actual, desired)) continue;
    const byPriv = new Map<string, string[]>();
    let tableLevel = '';
    for (const p of desired) {
      const m = /^(\w+)\((.+)\)$/.exec(p);
      if (m) byPriv.set(m[1] as string, [...(byPriv.get(m[1] as string) ?? []), m[2] as string]);
      else tableLevel = p;
    }
    const sql = [`REVOKE ALL ON TABLE ${t} FROM ${ident(role)}`];
    for (const [p, cols] of byPriv) sql.push(`GRANT ${p} (${cols.map(ident).join(', ')}) ON TABLE ${t} TO ${ident(role)}`);
    if (tableLevel) sql.push(`GRANT ${tableLevel} ON TABLE ${t} TO ${ident(role)}`);
    out.push({ object: `grants ${key} ${role}`, action: desired.size ? 'grant' : 'revoke', reason: describeGrantDiff(actual, desired), sql });
  }
  for (const [seq, users] of table.sequences) {
    const writers = [n.access.write, n.access.admin].filter((r) => !users.has(r));
    if (writers.length) {
      const [s, q] = seq.split('.') as [string, string];
      out.push({ object: `grant usage ${seq}`, action: 'grant', reason: 'writers need the serial sequence to insert', sql: [`GRANT USAGE ON SEQUENCE ${qualified(s, q)} TO ${writers.map(ident).join(', ')}`] });
    }
  }

  out.push(...policyChanges(key, t, desiredPolicies(d, n), table, snap, n));
  return out;
}

/**
 * Make a table's policies exactly `desired` (by name, command, roles, mode, and the SQL apply ran,
 * recorded with how PostgreSQL printed it back so a hand edit shows), and drop permissive policies
 * tenantgate did not make that apply to PUBLIC or a tenantgate role (they would widen what a tenant sees).
 */
function policyChanges(key: string, t: string, desired: DesiredPolicy[], table: TableInfo | undefined, snap: Snapshot, n: Names): Change[] {
  const out: Change[] = [];
  for (const p of desired) {
    const actual = table?.policies.get(p.name);
    const rec = snap.applied.get(`policy ${key} ${p.name}`);
    const hash = specHash(p.sql);
    let problem: string | undefined;
    if (!actual) problem = 'missing';
    else if (actual.cmd !== POLICY_CMD[p.cmd] || !actual.permissive || !sameSet(new Set(actual.roles), new Set(p.roles))) problem = 'its command, roles or mode were changed';
    else if (!rec || rec.specHash !== hash) problem = 'the config changed its definition';
    else if (rec.observed !== observedText(actual.qual, actual.check)) problem = 'its expression was changed outside tenantgate';
    if (problem) {
      out.push({
        object: `policy ${key} ${p.name}`,
        action: actual ? 'update' : 'create',
        reason: `${p.cmd} policy: ${problem}`,
        sql: [`DROP POLICY IF EXISTS ${ident(p.name)} ON ${t}`, p.sql],
        record: { object: `policy ${key} ${p.name}`, specHash: hash, table: key, policy: p.name },
      });
    }
  }
  const ours = new Set([...gatewayRoles(n).map((g) => g.role), n.direct, n.gateway]);
  for (const [name, p] of table?.policies ?? []) {
    if (desired.some((x) => x.name === name) || !p.permissive) continue;
    if (p.roles.includes('public') || p.roles.some((r) => ours.has(r) || r.startsWith(`${n.prefix}_`))) {
      out.push({
        object: `policy ${key} ${name}`,
        action: 'drop',
        reason: `permissive policy ${name} applies to tenantgate roles and would widen what a tenant sees`,
        sql: [`DROP POLICY ${ident(name)} ON ${t}`],
      });
    }
  }
  return out;
}

/**
 * The audit trail's access: RLS on (not forced: its owner appends through audit_append), a tenant
 * admin or platform-for-one reads its own chain, platform-all reads all; SELECT only, to those
 * roles only. And the retention audit_prune reads.
 */
function auditChanges(config: Config, snap: Snapshot, n: Names): Change[] {
  const out: Change[] = [];
  const [schema, name] = AUDIT_TABLE.split('.') as [string, string];
  const table = snap.tables.get(AUDIT_TABLE);
  const t = qualified(schema, name);
  if (!table?.rls) out.push({ object: `rls ${AUDIT_TABLE}`, action: 'update', reason: 'the audit trail is read under row level security', sql: [`ALTER TABLE ${t} ENABLE ROW LEVEL SECURITY`] });
  const gwTenant = `(SELECT ${CATALOG_SCHEMA}.gateway_tenant())`;
  const own = [n.access.admin, n.access.platform];
  out.push(
    ...policyChanges(
      AUDIT_TABLE,
      t,
      [
        { name: n.policy('audit_own'), cmd: 'SELECT', roles: own, sql: `CREATE POLICY ${ident(n.policy('audit_own'))} ON ${t} AS PERMISSIVE FOR SELECT TO ${own.map(ident).join(', ')} USING (tenant = ${gwTenant})` },
        { name: n.policy('audit_all'), cmd: 'SELECT', roles: [n.platformAll], sql: `CREATE POLICY ${ident(n.policy('audit_all'))} ON ${t} AS PERMISSIVE FOR SELECT TO ${ident(n.platformAll)} USING (${gwTenant} = ${literal(ALL_TENANTS_CONTEXT)})` },
      ],
      table,
      snap,
      n,
    ),
  );
  const readers = new Set([...own, n.platformAll]);
  for (const role of new Set([...readers, ...(table?.privileges.keys() ?? [])])) {
    if (!readers.has(role) && !role.startsWith(`${n.prefix}_`) && role !== n.gateway) continue;
    const want = readers.has(role) ? new Set(['SELECT']) : new Set<string>();
    const actual = table?.privileges.get(role) ?? new Set<string>();
    if (sameSet(actual, want)) continue;
    out.push({
      object: `grants ${AUDIT_TABLE} ${role}`,
      action: want.size ? 'grant' : 'revoke',
      reason: `${role} may ${want.size ? 'only read' : 'not touch'} the audit trail (${describeGrantDiff(actual, want)})`,
      sql: [`REVOKE ALL ON TABLE ${t} FROM ${ident(role)}`, ...(want.size ? [`GRANT SELECT ON TABLE ${t} TO ${ident(role)}`] : [])],
    });
  }
  const days = String(config.effective.audit.retention_days);
  if (snap.meta.get('audit.retention_days') !== days) {
    out.push({
      object: `row ${CATALOG_SCHEMA}.meta audit.retention_days`,
      action: snap.meta.has('audit.retention_days') ? 'update' : 'create',
      reason: `audit retention is ${days} days (audit.retention_days)`,
      sql: [`INSERT INTO ${CATALOG_SCHEMA}.meta (key, value) VALUES ('audit.retention_days', ${literal(days)}) ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value`],
    });
  }
  return out;
}

function describeGrantDiff(actual: Set<string>, desired: Set<string>): string {
  const extra = [...actual].filter((p) => !desired.has(p));
  const missing = [...desired].filter((p) => !actual.has(p));
  const parts = [];
  if (missing.length) parts.push(`missing ${summarise(missing)}`);
  if (extra.length) parts.push(`extra ${summarise(extra)}`);
  return parts.join('; ');
}

function summarise(list: string[]): string {
  return list.length > 4 ? `${list.slice(0, 4).join(', ')} and ${list.length - 4} more` : list.join(', ');
}

function sameSet(a: Set<string>, b: Set<string>): boolean {
  return a.size === b.size && [...a].every((x) => b.has(x));
}

export function observedText(qual: string | null, check: string | null): string {
  return `USING ${qual ?? '-'} CHECK ${check ?? '-'}`;
}

interface DesiredPolicy {
  name: string;
  cmd: 'SELECT' | 'INSERT' | 'UPDATE' | 'DELETE';
  roles: string[];
  sql: string;
}

/** The policies of one dataset table: gateway path (signed setting), platform read-all, direct path (login role). */
export function desiredPolicies(d: Dataset, n: Names): DesiredPolicy[] {
  const t = qualified(d.schema, d.table);
  const col = ident(d.tenantColumn);
  const gwTenant = `(SELECT ${CATALOG_SCHEMA}.gateway_tenant())`;
  const loginTenant = `(SELECT ${CATALOG_SCHEMA}.login_tenant())`;
  const fill = (tenantExpr: string, attrFn: string) => (name: string) =>
    name === 'tenant' ? tenantExpr : `(SELECT ${CATALOG_SCHEMA}.${attrFn}(${literal(name)}))`;
  const expr = (e: RowExpression | undefined, f: (name: string) => string) => (e ? [`(${renderRowExpression(e, f)})`] : []);
  const filters = d.filters.map((f) => `(${renderRowExpression(f, () => 'NULL')})`);
  const gwFill = fill(gwTenant, 'gateway_attr');
  const gwRead = [`${col} = ${gwTenant}`, ...filters, ...expr(d.expression, gwFill)].join(' AND ');
  const gwWrite = [`${col} = ${gwTenant}`, ...expr(d.expression, gwFill)].join(' AND ');
  const readers = ACCESS.map((a) => n.access[a]);
  const writers = [n.access.write, n.access.admin];
  const roles = (list: string[]) => list.map(ident).join(', ');
  const policies: DesiredPolicy[] = [
    { name: n.policy('gw_select'), cmd: 'SELECT', roles: readers, sql: `CREATE POLICY ${ident(n.policy('gw_select'))} ON ${t} AS PERMISSIVE FOR SELECT TO ${roles(readers)} USING (${gwRead})` },
    { name: n.policy('gw_insert'), cmd: 'INSERT', roles: writers, sql: `CREATE POLICY ${ident(n.policy('gw_insert'))} ON ${t} AS PERMISSIVE FOR INSERT TO ${roles(writers)} WITH CHECK (${gwWrite})` },
    { name: n.policy('gw_update'), cmd: 'UPDATE', roles: writers, sql: `CREATE POLICY ${ident(n.policy('gw_update'))} ON ${t} AS PERMISSIVE FOR UPDATE TO ${roles(writers)} USING (${gwRead}) WITH CHECK (${gwWrite})` },
    { name: n.policy('gw_delete'), cmd: 'DELETE', roles: writers, sql: `CREATE POLICY ${ident(n.policy('gw_delete'))} ON ${t} AS PERMISSIVE FOR DELETE TO ${roles(writers)} USING (${gwRead})` },
    {
      name: n.policy('platform_all'),
      cmd: 'SELECT',
      roles: [n.platformAll],
      sql: `CREATE POLICY ${ident(n.policy('platform_all'))} ON ${t} AS PERMISSIVE FOR SELECT TO ${ident(n.platformAll)} USING (${[`${gwTenant} = ${literal(ALL_TENANTS_CONTEXT)}`, ...filters].join(' AND ')})`,
    },
    {
      name: n.policy('direct_select'),
      cmd: 'SELECT',
      roles: [n.direct],
      sql: `CREATE POLICY ${ident(n.policy('direct_select'))} ON ${t} AS PERMISSIVE FOR SELECT TO ${ident(n.direct)} USING (${[`${col} = ${loginTenant}`, ...filters, ...expr(d.expression, fill(loginTenant, 'login_attr'))].join(' AND ')})`,
    },
  ];
  return policies;
}
