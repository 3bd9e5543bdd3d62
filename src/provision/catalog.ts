import { SETTING_MAC, SETTING_TENANT } from './names.ts';

/**
 * The `tenantgate` schema: what apply made, tenants, keys, and the functions the policies call.
 * No role but the owner reads these tables; the functions are SECURITY DEFINER with a pinned
 * search_path and return only the caller's own tenant (or nothing).
 */
export const CATALOG_SCHEMA = 'tenantgate';

export const CATALOG_TABLES: Record<string, string> = {
  meta: `CREATE TABLE tenantgate.meta (key text PRIMARY KEY, value text NOT NULL)`,
  tenants: `CREATE TABLE tenantgate.tenants (
  id text PRIMARY KEY CHECK (id ~ '^[a-z][a-z0-9_-]{1,39}$'),
  name text NOT NULL,
  tier text NOT NULL,
  placement text NOT NULL,
  status text NOT NULL DEFAULT 'active',
  attributes jsonb NOT NULL DEFAULT '{}',
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now())`,
  api_keys: `CREATE TABLE tenantgate.api_keys (
  key_id text PRIMARY KEY,
  tenant_id text REFERENCES tenantgate.tenants(id),
  role text NOT NULL,
  access text NOT NULL,
  hash bytea NOT NULL,
  db_login text,
  created_at timestamptz NOT NULL DEFAULT now(),
  revoked_at timestamptz)`,
  db_roles: `CREATE TABLE tenantgate.db_roles (
  role_name text PRIMARY KEY,
  tenant_id text NOT NULL REFERENCES tenantgate.tenants(id),
  kind text NOT NULL CHECK (kind IN ('tenant', 'login')))`,
  applied: `CREATE TABLE tenantgate.applied (
  object text PRIMARY KEY,
  spec_hash text NOT NULL,
  observed text,
  applied_at timestamptz NOT NULL DEFAULT now())`,
  context_key: `CREATE TABLE tenantgate.context_key (
  id int PRIMARY KEY CHECK (id = 1),
  k_ipad bytea NOT NULL,
  k_opad bytea NOT NULL)`,
  // The audit trail: one hash chain per tenant ('*': platform-wide and unauthenticated requests).
  // hash = sha256(prev || tenant ':' seq ':' || sha256(event)): a record moved, edited or removed
  // breaks it. The event is kept as the exact text that was hashed (JSON; read as jsonb when filtered).
  // Only tenantgate.audit_append writes it; no tenantgate role may insert, update or delete it.
  // One tenant's records are read along its chain (seq follows arrival), across tenants by time:
  // two indexes, not three, because every request writes here.
  audit_log: `CREATE TABLE tenantgate.audit_log (
  tenant text NOT NULL,
  seq bigint NOT NULL,
  at timestamptz NOT NULL,
  event text NOT NULL,
  prev bytea NOT NULL,
  hash bytea NOT NULL,
  PRIMARY KEY (tenant, seq));
CREATE INDEX audit_log_at ON tenantgate.audit_log (at)`,
  // Quotas changed at runtime (admin API, `tenantgate tenant quotas`), over the config's; every
  // gateway process re-reads the rows changed since its last look.
  tenant_quotas: `CREATE TABLE tenantgate.tenant_quotas (
  tenant text PRIMARY KEY REFERENCES tenantgate.tenants(id),
  quotas jsonb NOT NULL DEFAULT '{}',
  updated_at timestamptz NOT NULL DEFAULT clock_timestamp(),
  updated_by text)`,
  // Tenants suspended at runtime (tenant suspend, POST /v1/admin/tenants/{id}/suspend): a row while
  // suspended, gone once resumed. apply never writes it, so apply never undoes a suspension; a
  // tenant is suspended when this row exists or its config says `status: suspended` (tenants.status).
  suspensions: `CREATE TABLE tenantgate.suspensions (
  tenant text PRIMARY KEY REFERENCES tenantgate.tenants(id),
  reason text,
  suspended_by text NOT NULL,
  suspended_at timestamptz NOT NULL DEFAULT clock_timestamp())`,
  // Tenant moves (main database): one row per tenant, its current or last move and where it got to,
  // so a rerun after a crash picks up from the phase it stopped in.
  moves: `CREATE TABLE tenantgate.moves (
  tenant text PRIMARY KEY REFERENCES tenantgate.tenants(id),
  from_tier text NOT NULL,
  from_placement text NOT NULL,
  to_tier text NOT NULL,
  to_placement text NOT NULL,
  phase text NOT NULL,
  progress jsonb NOT NULL DEFAULT '{}',
  started_at timestamptz NOT NULL DEFAULT clock_timestamp(),
  updated_at timestamptz NOT NULL DEFAULT clock_timestamp(),
  finished_at timestamptz,
  error text)`,
  // Where a moving tenant's rows come from (every database): the seal that pauses its writes there
  // until sealed_until ('infinity' once the tenant lives elsewhere).
  move_state: `CREATE TABLE tenantgate.move_state (
  tenant text PRIMARY KEY,
  sealed_until timestamptz NOT NULL DEFAULT '-infinity')`,
  // The keys of a moving tenant's rows written since the move began (filled by move_capture; the
  // mover deletes each entry once the row is replayed at the new place).
  move_log: `CREATE TABLE tenantgate.move_log (
  tenant text NOT NULL,
  seq bigserial,
  tbl text NOT NULL,
  key jsonb NOT NULL,
  PRIMARY KEY (tenant, seq))`,
  // The head of each chain (a removed tail shows against it) and where retention cut its start.
  audit_heads: `CREATE TABLE tenantgate.audit_heads (
  tenant text PRIMARY KEY,
  seq bigint NOT NULL,
  hash bytea NOT NULL,
  pruned_seq bigint NOT NULL DEFAULT 0,
  pruned_hash bytea NOT NULL DEFAULT '\\x')`,
  // Lifecycle jobs (export, erase, backup, …; src/lifecycle/jobs/): a FOR UPDATE SKIP LOCKED queue.
  // A runner owns a running job while its lease holds (heartbeats extend it); checkpoints and the
  // outcome are written only while (runner, attempts) is still its claim. At most one running job
  // per exclusive_key.
  jobs: `CREATE TABLE tenantgate.jobs (
  seq bigserial PRIMARY KEY,
  id uuid NOT NULL UNIQUE,
  kind text NOT NULL,
  tenant text,
  params jsonb NOT NULL DEFAULT '{}',
  state text NOT NULL DEFAULT 'queued' CHECK (state IN ('queued', 'running', 'done', 'failed', 'cancelled')),
  cancel_requested boolean NOT NULL DEFAULT false,
  exclusive_key text,
  progress_done bigint NOT NULL DEFAULT 0,
  progress_total bigint,
  phase text,
  checkpoint jsonb,
  result jsonb,
  error_code text,
  error_message text,
  error_detail text,
  requested_by text NOT NULL,
  runner text,
  lease_until timestamptz,
  attempts int NOT NULL DEFAULT 0,
  max_attempts int NOT NULL DEFAULT 5,
  run_after timestamptz NOT NULL DEFAULT clock_timestamp(),
  created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
  started_at timestamptz,
  heartbeat_at timestamptz,
  finished_at timestamptz,
  updated_at timestamptz NOT NULL DEFAULT clock_timestamp());
CREATE INDEX jobs_open ON tenantgate.jobs (seq) WHERE state IN ('queued', 'running');
CREATE INDEX jobs_tenant ON tenantgate.jobs (tenant, seq);
CREATE UNIQUE INDEX jobs_exclusive ON tenantgate.jobs (exclusive_key) WHERE state = 'running' AND exclusive_key IS NOT NULL`,
  // Erased tenants (tenantgate erase; src/lifecycle/erase/): the tombstone that keeps an erased id from
  // being onboarded again by accident (apply refuses it; `tenant add --reuse-erased-id` sets reused_at),
  // with the signed certificate of deletion. No foreign key: the tenant's own row is gone.
  erased_tenants: `CREATE TABLE tenantgate.erased_tenants (
  tenant text PRIMARY KEY,
  erased_at timestamptz NOT NULL DEFAULT clock_timestamp(),
  erased_by text NOT NULL,
  job_id uuid,
  certificate jsonb,
  reused_at timestamptz)`,
  // Schema migrations applied (tenantgate migrate; src/migrate/): one row per target and version, in
  // the database of the target's place (main and schema targets here, a database-tier tenant's in its
  // own database), written in the migration's own transaction.
  migrations: `CREATE TABLE tenantgate.migrations (
  target text NOT NULL,
  version text NOT NULL,
  name text NOT NULL,
  checksum text NOT NULL,
  applied_at timestamptz NOT NULL DEFAULT clock_timestamp(),
  duration_ms integer NOT NULL,
  PRIMARY KEY (target, version))`,
  // Audit records pseudonymised by an erasure (audit.on_erase: pseudonymise): the sha256 of the event
  // text as it was hashed into the chain, so the chain still verifies over the pseudonymised text.
  audit_pseudonymised: `CREATE TABLE tenantgate.audit_pseudonymised (
  tenant text NOT NULL,
  seq bigint NOT NULL,
  digest bytea NOT NULL,
  pseudonymised_digest bytea,
  PRIMARY KEY (tenant, seq))`,
};

/** The audit table's policies: its own tenant's chain for tenant admins and platform-for-one, everything for platform-all. */
export const AUDIT_TABLE = 'tenantgate.audit_log';

const definer = `LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp`;
const invoker = `LANGUAGE plpgsql STABLE SECURITY INVOKER SET search_path = pg_catalog, pg_temp`;
const INVOKER_FUNCTIONS = new Set(['login_tenant', 'login_attr']);
/** Functions that write (the audit trail): VOLATILE, still SECURITY DEFINER with a pinned search_path. */
const WRITING_FUNCTIONS = new Set(['audit_append', 'audit_prune', 'set_quotas', 'move_capture', 'set_suspension', 'sync_logins']);

/** Function name → full CREATE OR REPLACE statement. The body is compared with prosrc for drift. */
export const CATALOG_FUNCTIONS: Record<string, { args: string; create: string; body: string }> = (() => {
  const fns: Array<[string, string, string, string]> = [
    [
      'gateway_tenant',
      '',
      'text',
      // The gateway path: a tenant counts only with a valid HMAC of it. SQL that changes the
      // setting cannot forge the signature, so it sees no tenant at all (fail closed).
      `
DECLARE
  t text := current_setting('${SETTING_TENANT}', true);
  m text := current_setting('${SETTING_MAC}', true);
  ki bytea;
  ko bytea;
BEGIN
  IF t IS NULL OR t = '' OR m IS NULL OR m = '' THEN
    RETURN NULL;
  END IF;
  SELECT k_ipad, k_opad INTO ki, ko FROM tenantgate.context_key WHERE id = 1;
  IF encode(sha256(ko || sha256(ki || convert_to(t, 'UTF8'))), 'hex') = m THEN
    RETURN t;
  END IF;
  RETURN NULL;
END`,
    ],
    [
      'gateway_attr',
      'attr text',
      'text',
      `
BEGIN
  RETURN (SELECT attributes ->> attr FROM tenantgate.tenants WHERE id = tenantgate.gateway_tenant());
END`,
    ],
    [
      'role_tenant',
      'r text',
      'text',
      // Answers only for roles the session's login is (or belongs to), so no login can ask
      // which tenant another role serves. A role not listed itself (a login in a database-tier
      // tenant's own database, where only the tenant's group is) counts for the tenant group it is in.
      `
DECLARE
  found text;
BEGIN
  IF NOT pg_has_role(session_user, r, 'MEMBER') THEN
    RETURN NULL;
  END IF;
  SELECT d.tenant_id INTO found FROM tenantgate.db_roles d JOIN tenantgate.tenants t ON t.id = d.tenant_id
   WHERE d.role_name = r AND t.status = 'active' AND NOT EXISTS (SELECT 1 FROM tenantgate.suspensions s WHERE s.tenant = t.id);
  IF found IS NULL AND NOT EXISTS (SELECT 1 FROM tenantgate.db_roles WHERE role_name = r) THEN
    SELECT d.tenant_id INTO found FROM tenantgate.db_roles d JOIN tenantgate.tenants t ON t.id = d.tenant_id
     WHERE d.kind = 'tenant' AND t.status = 'active' AND NOT EXISTS (SELECT 1 FROM tenantgate.suspensions s WHERE s.tenant = t.id)
       AND pg_has_role(r, d.role_name, 'MEMBER') LIMIT 1;
  END IF;
  RETURN found;
END`,
    ],
    [
      'role_attr',
      'r text, attr text',
      'text',
      `
BEGIN
  RETURN (SELECT attributes ->> attr FROM tenantgate.tenants WHERE id = tenantgate.role_tenant(r));
END`,
    ],
    [
      'login_tenant',
      '',
      'text',
      // The direct path: keyed on the login role itself (current_user), never on a setting.
      // SECURITY INVOKER so current_user is the caller; zero arguments so the result has the
      // default collation and the tenant index stays usable (DESIGN.md, collation trap).
      `
BEGIN
  RETURN tenantgate.role_tenant(current_user::text);
END`,
    ],
    [
      'login_attr',
      'attr text',
      'text',
      `
BEGIN
  RETURN tenantgate.role_attr(current_user::text, attr);
END`,
    ],
    [
      'audit_append',
      'tenants text[], ats timestamptz[], events text[], digests bytea[]',
      'integer',
      // Appends a batch to the per-tenant chains: event i belongs to tenants[i], happened at ats[i],
      // and digests[i] is sha256(events[i]) (computed by the gateway; audit verify recomputes it).
      // Set-based but for the hash loop: one statement locks every head the batch touches, in tenant
      // order (concurrent writers never deadlock and each chain stays one sequence), one inserts the
      // records, one moves the heads. Inside a signed tenant context (durable mode) only that
      // tenant's chain may be written.
      `
DECLARE
  ctx text := tenantgate.gateway_tenant();
  tens text[] := tenants;
  dig bytea[] := digests;
  ord int[];
  ts text[];
  hs bigint[];
  hh bytea[];
  seqs bigint[];
  prevs bytea[];
  hashes bytea[];
  cur text;
  t text;
  i int;
  j int := 0;
  s bigint;
  p bytea;
BEGIN
  IF cardinality(tens) IS DISTINCT FROM cardinality(events) OR cardinality(ats) IS DISTINCT FROM cardinality(events) OR cardinality(dig) IS DISTINCT FROM cardinality(events) THEN
    RAISE EXCEPTION 'audit_append takes four arrays of one length' USING ERRCODE = '22023';
  END IF;
  IF cardinality(tens) = 0 THEN
    RETURN 0;
  END IF;
  IF EXISTS (SELECT 1 FROM unnest(tens) u WHERE u IS NULL OR u = '') THEN
    RAISE EXCEPTION 'every audit event needs a tenant' USING ERRCODE = '22023';
  END IF;
  IF ctx IS NOT NULL AND ctx <> '*' AND EXISTS (SELECT 1 FROM unnest(tens) u WHERE u <> ctx) THEN
    RAISE EXCEPTION 'a tenant transaction may only append to its own audit chain' USING ERRCODE = '42501';
  END IF;
  INSERT INTO tenantgate.audit_heads (tenant, seq, hash) SELECT DISTINCT u, 0, '\\x'::bytea FROM unnest(tens) u ON CONFLICT (tenant) DO NOTHING;
  SELECT array_agg(h.tenant ORDER BY h.tenant), array_agg(h.seq ORDER BY h.tenant), array_agg(h.hash ORDER BY h.tenant) INTO ts, hs, hh
    FROM (SELECT x.tenant, x.seq, x.hash FROM tenantgate.audit_heads x WHERE x.tenant = ANY (tens) ORDER BY x.tenant FOR UPDATE) h;
  SELECT array_agg(u.o::int ORDER BY u.t, u.o) INTO ord FROM unnest(tens) WITH ORDINALITY AS u(t, o);
  seqs := '{}'; prevs := '{}'; hashes := '{}';
  FOR k IN 1 .. cardinality(ord) LOOP
    i := ord[k];
    t := tens[i];
    IF cur IS DISTINCT FROM t THEN
      IF cur IS NOT NULL THEN
        hs[j] := s; hh[j] := p;
      END IF;
      j := j + 1;
      IF ts[j] IS DISTINCT FROM t THEN
        RAISE EXCEPTION 'audit_append: heads out of step' USING ERRCODE = 'XX000';
      END IF;
      cur := t; s := hs[j]; p := hh[j];
    END IF;
    s := s + 1;
    seqs[k] := s;
    prevs[k] := p;
    p := sha256(p || convert_to(t || ':' || s || ':', 'UTF8') || dig[i]);
    hashes[k] := p;
  END LOOP;
  hs[j] := s; hh[j] := p;
  INSERT INTO tenantgate.audit_log (tenant, seq, at, event, prev, hash)
    SELECT tens[u.i], u.seq, ats[u.i], events[u.i], u.prev, u.hash FROM unnest(ord, seqs, prevs, hashes) AS u(i, seq, prev, hash);
  UPDATE tenantgate.audit_heads h SET seq = u.s, hash = u.h FROM unnest(ts, hs, hh) AS u(t, s, h) WHERE h.tenant = u.t;
  RETURN cardinality(ord);
END`,
    ],
    [
      'audit_prune',
      '',
      'bigint',
      // Retention: drops the start of each chain older than the retention in tenantgate.meta (written
      // by apply from audit.retention_days) and remembers where it cut, so verify knows the new start.
      // Cuts at the first record still inside retention: rows after it stay even if their clocks differ.
      `
DECLARE
  days int := (SELECT value::int FROM tenantgate.meta WHERE key = 'audit.retention_days');
  cutoff timestamptz;
  r record;
  keep bigint;
  gone bigint := 0;
  last_hash bytea;
BEGIN
  IF days IS NULL THEN
    RETURN 0;
  END IF;
  cutoff := now() - make_interval(days => days);
  FOR r IN SELECT h.tenant, h.seq, h.pruned_seq FROM tenantgate.audit_heads h
            WHERE EXISTS (SELECT 1 FROM tenantgate.audit_log l WHERE l.tenant = h.tenant AND l.at < cutoff) FOR UPDATE LOOP
    keep := coalesce((SELECT min(l.seq) FROM tenantgate.audit_log l WHERE l.tenant = r.tenant AND l.at >= cutoff), r.seq + 1);
    IF keep - 1 > r.pruned_seq THEN
      SELECT l.hash INTO last_hash FROM tenantgate.audit_log l WHERE l.tenant = r.tenant AND l.seq = keep - 1;
      DELETE FROM tenantgate.audit_log l WHERE l.tenant = r.tenant AND l.seq < keep;
      gone := gone + (keep - 1 - r.pruned_seq);
      UPDATE tenantgate.audit_heads SET pruned_seq = keep - 1, pruned_hash = last_hash WHERE tenant = r.tenant;
    END IF;
  END LOOP;
  RETURN gone;
END`,
    ],
    [
      'quota_overrides',
      'since timestamptz',
      'TABLE(tenant text, quotas jsonb, updated_at timestamptz)',
      // What the gateway polls: runtime quota changes after since (none are secret).
      `
BEGIN
  RETURN QUERY SELECT q.tenant, q.quotas, q.updated_at FROM tenantgate.tenant_quotas q WHERE q.updated_at > since ORDER BY q.updated_at;
END`,
    ],
    [
      'set_quotas',
      't text, changes jsonb, changed_by text',
      'jsonb',
      // Merge runtime quota changes for one tenant (a null value removes that override); returns them.
      // The gateway validates names and values and lets only platform admins call it.
      `
DECLARE
  result jsonb;
BEGIN
  IF NOT EXISTS (SELECT 1 FROM tenantgate.tenants WHERE id = t) THEN
    RAISE EXCEPTION 'no such tenant' USING ERRCODE = '22023';
  END IF;
  INSERT INTO tenantgate.tenant_quotas AS q (tenant, quotas, updated_at, updated_by) VALUES (t, jsonb_strip_nulls(changes), clock_timestamp(), changed_by)
  ON CONFLICT (tenant) DO UPDATE SET quotas = jsonb_strip_nulls(q.quotas || changes), updated_at = clock_timestamp(), updated_by = changed_by
  RETURNING quotas INTO result;
  RETURN result;
END`,
    ],
    [
      'move_capture',
      '',
      'trigger',
      // The trigger on a moving tenant's tables at its old place (fired only for its rows: the
      // trigger's WHEN). Logs the key of each row written so the mover replays it at the new place;
      // refuses the write (SQLSTATE TGMOV, a retryable 503) while the move holds the seal. The
      // FOR SHARE lock is the barrier: sealing waits for every writer already past this point.
      // The mover cleaning up passes: the owner's own session, having said so for this tenant.
      // TG_ARGV: the tenant, then the primary key columns.
      `
DECLARE
  sealed boolean;
  keys text[] := TG_ARGV[1:TG_NARGS - 1];
BEGIN
  SELECT s.sealed_until > clock_timestamp() INTO sealed FROM tenantgate.move_state s WHERE s.tenant = TG_ARGV[0] FOR SHARE;
  IF sealed THEN
    IF session_user = current_user AND current_setting('tenantgate.move_cleanup', true) = TG_ARGV[0] THEN
      RETURN NULL;
    END IF;
    RAISE EXCEPTION 'the tenant is moving: writes pause briefly' USING ERRCODE = 'TGMOV';
  END IF;
  IF TG_OP = 'DELETE' OR (TG_OP = 'UPDATE' AND (SELECT bool_or(to_jsonb(OLD) -> k IS DISTINCT FROM to_jsonb(NEW) -> k) FROM unnest(keys) k)) THEN
    INSERT INTO tenantgate.move_log (tenant, tbl, key)
    SELECT TG_ARGV[0], TG_TABLE_SCHEMA || '.' || TG_TABLE_NAME, jsonb_object_agg(k, to_jsonb(OLD) -> k) FROM unnest(keys) k;
  END IF;
  IF TG_OP <> 'DELETE' THEN
    INSERT INTO tenantgate.move_log (tenant, tbl, key)
    SELECT TG_ARGV[0], TG_TABLE_SCHEMA || '.' || TG_TABLE_NAME, jsonb_object_agg(k, to_jsonb(NEW) -> k) FROM unnest(keys) k;
  END IF;
  RETURN NULL;
END`,
    ],
    [
      'tenant_routes',
      'since timestamptz',
      'TABLE(id text, tier text, placement text, status text, updated_at timestamptz)',
      // Where each tenant's rows are (the gateway routes by it; a move changes it) and whether it is
      // suspended (by the config or at runtime: suspend and resume touch updated_at), changed after
      // since; and the tenants erased since (status 'erased': gateways answer them as unknown ids).
      `
BEGIN
  RETURN QUERY SELECT x.id, x.tier, x.placement, x.status, x.updated_at FROM (
    SELECT t.id, t.tier, t.placement,
      CASE WHEN EXISTS (SELECT 1 FROM tenantgate.suspensions s WHERE s.tenant = t.id) THEN 'suspended' ELSE t.status END AS status,
      t.updated_at FROM tenantgate.tenants t WHERE t.updated_at > since
    UNION ALL
    SELECT e.tenant, 'pooled', 'default', 'erased', e.erased_at FROM tenantgate.erased_tenants e
     WHERE e.erased_at > since AND e.reused_at IS NULL AND NOT EXISTS (SELECT 1 FROM tenantgate.tenants t WHERE t.id = e.tenant)
  ) x ORDER BY x.updated_at;
END`,
    ],
    [
      'tenant_status',
      't text',
      'jsonb',
      // A tenant's status: suspended when the config says so (tenants.status, written by apply) or a
      // runtime suspension exists (its reason, who, since when). NULL for a tenant not in the catalog.
      `
DECLARE
  cfg text;
  s record;
BEGIN
  SELECT x.status INTO cfg FROM tenantgate.tenants x WHERE x.id = t;
  IF NOT FOUND THEN
    RETURN NULL;
  END IF;
  SELECT p.reason, p.suspended_by, p.suspended_at INTO s FROM tenantgate.suspensions p WHERE p.tenant = t;
  RETURN jsonb_build_object(
    'tenant', t,
    'status', CASE WHEN FOUND OR cfg = 'suspended' THEN 'suspended' ELSE 'active' END,
    'config_status', cfg,
    'suspension', CASE WHEN FOUND THEN jsonb_build_object('reason', s.reason, 'by', s.suspended_by, 'since', s.suspended_at) END);
END`,
    ],
    [
      'sync_logins',
      't text',
      'jsonb',
      // Make the tenant's direct logins match its status: NOLOGIN and their sessions ended while it
      // is suspended, LOGIN again (unless the key is revoked) once it is not. Its logins: those the
      // catalog lists, and the members of its group named <prefix>_l_… (roles are per server: in a
      // tenant's own database on another server the catalog lists none). Idempotent; privileges it
      // lacks are reported in 'failed', never half-raised.
      `
DECLARE
  off boolean;
  r record;
  logins text[] := '{}';
  failed text[] := '{}';
  changed int := 0;
  ended int := 0;
BEGIN
  off := EXISTS (SELECT 1 FROM tenantgate.tenants x WHERE x.id = t AND x.status = 'suspended')
      OR EXISTS (SELECT 1 FROM tenantgate.suspensions p WHERE p.tenant = t);
  FOR r IN
    SELECT m.rolname::text AS login, m.rolcanlogin AS can FROM pg_roles m
     WHERE m.rolname::text IN (
             SELECT d.role_name FROM tenantgate.db_roles d WHERE d.tenant_id = t AND d.kind = 'login'
             UNION
             SELECT l.rolname::text FROM tenantgate.db_roles g
               JOIN pg_roles gr ON gr.rolname = g.role_name
               JOIN pg_auth_members am ON am.roleid = gr.oid
               JOIN pg_roles l ON l.oid = am.member
              WHERE g.tenant_id = t AND g.kind = 'tenant'
                AND starts_with(l.rolname::text, left(g.role_name, length(g.role_name) - length(t) - 3) || '_l_'))
       AND NOT EXISTS (SELECT 1 FROM tenantgate.api_keys k WHERE k.db_login = m.rolname::text AND k.revoked_at IS NOT NULL)
     ORDER BY 1
  LOOP
    logins := logins || r.login;
    IF r.can = off THEN
      BEGIN
        EXECUTE format('ALTER ROLE %I %s', r.login, CASE WHEN off THEN 'NOLOGIN' ELSE 'LOGIN' END);
        changed := changed + 1;
      EXCEPTION WHEN insufficient_privilege THEN
        failed := failed || r.login;
      END;
    END IF;
  END LOOP;
  IF off AND cardinality(logins) > 0 THEN
    BEGIN
      FOR r IN SELECT a.pid FROM pg_stat_activity a WHERE a.usename::text = ANY (logins) AND a.pid <> pg_backend_pid() LOOP
        IF pg_terminate_backend(r.pid) THEN
          ended := ended + 1;
        END IF;
      END LOOP;
    EXCEPTION WHEN insufficient_privilege THEN
      failed := failed || 'pg_terminate_backend'::text;
    END;
  END IF;
  RETURN jsonb_build_object('suspended', off, 'logins', to_jsonb(logins), 'changed', changed, 'sessions_ended', ended, 'failed', to_jsonb(failed));
END`,
    ],
    [
      'set_suspension',
      't text, suspend boolean, why text, changed_by text',
      'jsonb',
      // Suspend or resume a tenant at runtime (idempotent: 'changed' says whether it did anything;
      // a second suspend keeps the first reason). Its logins follow (sync_logins). updated_at moves
      // last, so every gateway's poll of tenant_routes sees the change once it commits. The gateway
      // validates the request and lets only platform admins call it.
      `
DECLARE
  did boolean;
  logins jsonb;
BEGIN
  PERFORM 1 FROM tenantgate.tenants x WHERE x.id = t FOR UPDATE;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'no such tenant' USING ERRCODE = '22023';
  END IF;
  IF suspend THEN
    INSERT INTO tenantgate.suspensions (tenant, reason, suspended_by) VALUES (t, why, changed_by) ON CONFLICT (tenant) DO NOTHING;
  ELSE
    DELETE FROM tenantgate.suspensions p WHERE p.tenant = t;
  END IF;
  did := FOUND;
  logins := tenantgate.sync_logins(t);
  IF did THEN
    UPDATE tenantgate.tenants x SET updated_at = clock_timestamp() WHERE x.id = t;
  END IF;
  RETURN tenantgate.tenant_status(t) || jsonb_build_object('changed', did, 'logins', logins);
END`,
    ],
    [
      'lookup_key',
      'wanted_key text',
      'TABLE(hash bytea, tenant_id text, role text, access text, revoked boolean)',
      // The gateway login verifies API keys through this and nothing else: it can read one
      // key's hash by id, never list keys or tenants.
      `
BEGIN
  RETURN QUERY SELECT k.hash, k.tenant_id, k.role, k.access, k.revoked_at IS NOT NULL FROM tenantgate.api_keys k WHERE k.key_id = wanted_key;
END`,
    ],
  ];
  return Object.fromEntries(
    fns.map(([name, args, returns, body]) => [
      name,
      {
        args,
        body,
        create: `CREATE OR REPLACE FUNCTION tenantgate.${name}(${args}) RETURNS ${returns} ${INVOKER_FUNCTIONS.has(name) ? invoker : WRITING_FUNCTIONS.has(name) ? definer.replace('STABLE', 'VOLATILE') : definer} AS $fn$${body}$fn$`,
      },
    ]),
  );
})();
