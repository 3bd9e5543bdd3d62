import { Command, CommanderError, Option } from 'commander';
import { ERROR_CODES, TenantGateError, isTenantGateError } from '../errors/index.ts';
import { configPath, printJson, processIO, progress, table, withConfig, withOwnerDb, type CliIO, type GlobalOptions } from './io.ts';

// Each command loads what it needs when it runs: `--help` and a typo never pay for the SQL
// parser, the database drivers or the HTTP server (startup is a budget: docs/benchmarks.md).
async function core() {
  const [provision, secret, keys, tenants, configDump, planApply] = await Promise.all([
    import('../provision/apply.ts'),
    import('../security/secret.ts'),
    import('../identify/api-keys.ts'),
    import('../lifecycle/tenants.ts'),
    import('./commands/config-dump.ts'),
    import('./commands/plan-apply.ts'),
  ]);
  return { ...provision, ...secret, ...keys, ...tenants, ...configDump, ...planApply };
}

/** Run the CLI; returns the exit code (0 ok, 1 findings or failures, 2 usage or config error). */
export async function main(argv: string[], io: CliIO = processIO()): Promise<number> {
  let exit = 0;
  const program = createProgram(io, (code) => {
    exit = code;
  });
  const globals = (): GlobalOptions => program.opts<GlobalOptions>();
  try {
    await program.parseAsync(argv, { from: 'user' });
  } catch (err) {
    exit = await report(io, err, Boolean(globals().json), () => configPath(io, globals()));
  }
  return exit;
}

/**
 * The command tree: definitions only, nothing is loaded or run until an action is (docs/cli.md
 * is checked against it). Actions report findings through `setExit(1)`; errors are thrown.
 */
export function createProgram(io: CliIO, setExit: (code: 1) => void = () => {}): Command {
  const program = new Command('tenantgate')
    .description('A tenant wall in front of PostgreSQL')
    .addOption(new Option('-c, --config <file>', 'configuration file (default ./tenantgate.yaml or $TENANTGATE_CONFIG)'))
    .option('--json', 'print one machine-readable document')
    .exitOverride()
    .configureOutput({ writeOut: io.stdout, writeErr: io.stderr })
    .showHelpAfterError();
  const globals = (): GlobalOptions => program.opts<GlobalOptions>();

  program
    .command('config')
    .description('configuration tools')
    .command('dump')
    .description('print the effective configuration (defaults filled in, secrets masked)')
    .action(async () => {
      const { dumpConfig, maskedEffective } = await core();
      const config = await withConfig(io, globals());
      if (globals().json) printJson(io, maskedEffective(config, io.env));
      else io.stdout(dumpConfig(config, io.env));
    });

  program
    .command('plan')
    .description('show what apply would change, including drift')
    .action(async () => {
      const { planProvision, loadServerSecret, printProvision } = await core();
      const config = await withConfig(io, globals());
      const result = await withOwnerDb(config, (db) => planProvision(config, db, loadServerSecret(config, io.env), io.env));
      printProvision(io, result, 'plan', Boolean(globals().json), config.effective.database.gateway_url_env);
    });

  program
    .command('apply')
    .description('make the roles, policies, grants and catalog the configuration needs (idempotent)')
    .option('--dry-run', 'show the changes without making them')
    .option('--rotate-gateway-password', 'set a new random password for the existing gateway login and print its full URL once')
    .action(async (opts: { dryRun?: boolean; rotateGatewayPassword?: boolean }) => {
      const { applyProvision, loadServerSecret, printProvision } = await core();
      const config = await withConfig(io, globals());
      const result = await withOwnerDb(config, (db) =>
        applyProvision(config, db, loadServerSecret(config, io.env), { dryRun: opts.dryRun, rotateGatewayPassword: opts.rotateGatewayPassword, env: io.env, onProgress: globals().json ? undefined : progress(io, 'apply') }),
      );
      printProvision(io, result, opts.dryRun ? 'dry-run' : 'apply', Boolean(globals().json), config.effective.database.gateway_url_env);
    });

  program
    .command('doctor')
    .description('security audit of the database against the config (first checks; see docs/security.md)')
    .option('--sarif', 'print SARIF 2.1.0')
    .option('--fail-on <severity>', 'exit 1 on findings at or above this severity (info, low, medium, high, critical)', 'medium')
    .action(async (opts: { sarif?: boolean; failOn: string }) => {
      const { resolveNames } = await core();
      const { runDoctor } = await import('../doctor/run.ts');
      const { toSarif } = await import('../doctor/sarif.ts');
      const { SEVERITIES, atLeast } = await import('../doctor/finding.ts');
      if (!(SEVERITIES as readonly string[]).includes(opts.failOn)) throw new TenantGateError('USAGE', `--fail-on takes one of ${SEVERITIES.join(', ')}`);
      const config = await withConfig(io, globals());
      const names = resolveNames(config, io.env);
      const findings = await withOwnerDb(config, (db) => runDoctor({ db, main: db, env: io.env, config, names, gatewayRole: names.gateway }));
      if (opts.sarif) printJson(io, toSarif(findings));
      else if (globals().json) printJson(io, { findings });
      else io.stdout(findings.length ? table([['ID', 'SEVERITY', 'OBJECT', 'MESSAGE', 'FIX'], ...findings.map((f) => [f.id, f.severity, f.object, f.message, f.fix])]) : 'No findings.\n');
      if (findings.some((f) => atLeast(f.severity, opts.failOn as never))) setExit(1);
    });

  program
    .command('verify')
    .description('plant canary rows and probe every path for cross-tenant leaks (see docs/security.md)')
    .option('--url <url>', 'a running gateway to probe over HTTP too')
    .option('--pairs <n>', 'probe at most this many tenant pairs (sampled; default 100)', (v) => Number(v))
    .option('--budget <seconds>', 'start no new tenant pair past this many seconds (0: no limit)', (v) => Number(v), 60)
    .action(async (opts: { url?: string; pairs?: number; budget: number }) => {
      const { resolveNames, loadServerSecret } = await core();
      if (opts.pairs !== undefined && !(Number.isInteger(opts.pairs) && opts.pairs > 0)) throw new TenantGateError('USAGE', '--pairs takes a positive integer');
      if (!(Number.isFinite(opts.budget) && opts.budget >= 0)) throw new TenantGateError('USAGE', '--budget takes a number of seconds (0: no limit)');
      const { runVerify } = await import('../verify/run.ts');
      const { formatReport } = await import('../verify/report.ts');
      const { createTenantGate } = await import('../gate.ts');
      const config = await withConfig(io, globals());
      const secret = loadServerSecret(config, io.env);
      const report = await withOwnerDb(config, async (owner) => {
        const gate = await createTenantGate({ config, secret, env: io.env, ...(owner.kind === 'pglite' ? { database: owner } : {}) });
        try {
          return await runVerify({
            config,
            names: resolveNames(config, io.env),
            owner,
            gate,
            secret,
            env: io.env,
            ...(opts.url ? { url: opts.url } : {}),
            ...(opts.pairs ? { pairs: opts.pairs } : {}),
            ...(opts.budget > 0 ? { budgetMs: opts.budget * 1000 } : {}),
            ...(globals().json ? {} : { onProgress: progress(io, 'verify: tenant pairs') }),
          });
        } finally {
          await gate.close();
        }
      });
      if (globals().json) printJson(io, report);
      else io.stdout(formatReport(report));
      if (!report.ok) setExit(1);
    });

  const tenant = program.command('tenant').description('tenant lifecycle');
  tenant
    .command('add <id>')
    .description('onboard a tenant: write tenants/<id>.yaml and apply it')
    .option('--name <name>', 'display name')
    .option('--tier <tier>', 'pooled (default), schema or database: its place is made at the current migration version')
    .option('--placement <placement>', 'named placement (database.placements)')
    .option('--attr <key=value...>', 'tenant attribute (repeatable)')
    .option('--roles <roles>', 'comma-separated roles its keys may use')
    .option('--dry-run', 'validate and show the changes without writing anything')
    .option('--reuse-erased-id', 'onboard an id that belonged to an erased tenant, on purpose (its tombstone is marked reused)')
    .action(async (id: string, opts: { name?: string; tier?: string; placement?: string; attr?: string[]; roles?: string; dryRun?: boolean; reuseErasedId?: boolean }) => {
      const { applyProvision, loadServerSecret, writeTenantFile } = await core();
      if (opts.tier !== undefined && !['pooled', 'schema', 'database'].includes(opts.tier)) throw new TenantGateError('USAGE', '--tier takes pooled, schema or database');
      const before = await withConfig(io, globals());
      const attributes = Object.fromEntries(
        (opts.attr ?? []).map((kv) => {
          const i = kv.indexOf('=');
          if (i < 1) throw new TenantGateError('USAGE', `--attr takes key=value, got "${kv}"`);
          return [kv.slice(0, i), kv.slice(i + 1)];
        }),
      );
      const file = writeTenantFile(before, {
        id,
        ...(opts.name ? { name: opts.name } : {}),
        ...(opts.tier ? { tier: opts.tier } : {}),
        ...(opts.placement ? { placement: opts.placement } : {}),
        ...(Object.keys(attributes).length ? { attributes } : {}),
        ...(opts.roles ? { roles: opts.roles.split(',').map((r) => r.trim()) } : {}),
      });
      try {
        const config = await withConfig(io, globals());
        const result = await withOwnerDb(config, async (db) => {
          const { reuseErasedId } = await import('../provision/erased.ts');
          const reused = opts.reuseErasedId && !opts.dryRun ? await reuseErasedId(db, id) : false;
          try {
            return await applyProvision(config, db, loadServerSecret(config, io.env), { dryRun: opts.dryRun, env: io.env });
          } catch (err) {
            if (reused) await db.query(`UPDATE tenantgate.erased_tenants SET reused_at = NULL WHERE tenant = $1`, [id]).catch(() => {});
            throw err;
          }
        });
        if (opts.dryRun) (await import('node:fs')).rmSync(file);
        if (globals().json) printJson(io, { tenant: id, file: opts.dryRun ? null : file, applied: result.applied, changes: result.changes.map((c) => ({ action: c.action, object: c.object, reason: c.reason })) });
        else io.stdout(`${opts.dryRun ? 'Would write' : 'Wrote'} ${file} and ${opts.dryRun ? 'would apply' : 'applied'} ${result.changes.length} change(s).\n`);
      } catch (err) {
        (await import('node:fs')).rmSync(file, { force: true }); // nothing half-applied: the file goes when apply refuses it
        throw err;
      }
    });
  tenant
    .command('list')
    .description('list tenants')
    .action(async () => {
      const { resolveNames, describeTenants } = await core();
      const config = await withConfig(io, globals());
      const views = await withOwnerDb(config, (db) => describeTenants(db, config, resolveNames(config, io.env)));
      if (globals().json) printJson(io, { tenants: views });
      else io.stdout(table([['ID', 'NAME', 'TIER', 'PLACEMENT', 'STATUS', 'KEYS'], ...views.map((v) => [v.id, v.name, v.tier, v.placement, v.provisioned ? v.status : 'not applied', String(v.usage.api_keys)])]));
    });
  tenant
    .command('show <id>')
    .description('show one tenant: tier, placement, status, database roles, usage')
    .action(async (id: string) => {
      const { resolveNames, describeTenants } = await core();
      const config = await withConfig(io, globals());
      const [view] = await withOwnerDb(config, (db) => describeTenants(db, config, resolveNames(config, io.env), id));
      if (globals().json) printJson(io, view);
      else io.stdout(table(Object.entries(view!).map(([k, v]) => [k, typeof v === 'object' ? JSON.stringify(v) : String(v)])));
    });

  for (const action of ['suspend', 'resume'] as const) {
    tenant
      .command(`${action} <id>`)
      .description(
        action === 'suspend'
          ? 'suspend a tenant: every gateway refuses it within a second, its direct logins stop and their sessions end (idempotent)'
          : 'resume a suspended tenant: its requests and direct logins work again (idempotent)',
      )
      .option('--reason <text>', 'why (kept with the suspension and in the audit trail)')
      .option('--dry-run', 'show what would change; change nothing')
      .action(async (id: string, opts: { reason?: string; dryRun?: boolean }) => {
        const { runSuspendCommand, formatSuspension } = await import('./commands/suspend.ts');
        const config = await withConfig(io, globals());
        const result = await withOwnerDb(config, (db) => runSuspendCommand(io, config, db, id, action, opts));
        if (globals().json) printJson(io, result);
        else io.stdout(formatSuspension(result, action));
        if (!('dry_run' in result) && (result.logins.failed.length > 0 || result.own_database?.ok === false)) setExit(1);
      });
  }

  tenant
    .command('offboard <id>')
    .description('offboard a tenant: export it, verify the export, then erase it (the manifest hash goes into the certificate); resumable')
    .option('--export-to <dir>', 'the folder for the export (new or empty); required')
    .option('--confirm <id>', 'the same tenant id again (required)')
    .option('--format <format>', 'export format: ndjson, csv or parquet (default ndjson)')
    .option('--certificate <file>', 'where to write the certificate (default erasure-<id>-<UTC time>.json here)')
    .option('--batch-rows <n>', 'rows per delete batch in the shared tables (default 5000)')
    .option('--pause-ratio <r>', 'after each batch, pause r times as long as it took (default 1; 0: no pause)')
    .action(async (id: string, opts: import('./commands/erase.ts').OffboardFlags) => {
      const { runOffboardCommand, formatErase } = await import('./commands/erase.ts');
      const config = await withConfig(io, globals());
      const out = await withOwnerDb(config, (db) => runOffboardCommand(io, config, db, configPath(io, globals()), id, opts, Boolean(globals().json)), 4);
      if (out.kind !== 'erased') return;
      if (globals().json) printJson(io, { export: out.export, certificate: out.certificate });
      else io.stdout(`Exported ${id} to ${out.export.dir} (manifest sha256 ${out.export.manifest_sha256 ?? 'unknown'}).\n${formatErase(out)}`);
    });

  tenant
    .command('quotas <id>')
    .description("show a tenant's quotas, or change them at runtime (every gateway follows within quota_refresh.overrides_ms)")
    .option('--set <quota=value...>', 'change a quota, e.g. --set requests_per_minute=1200 (repeatable)')
    .option('--clear <quota...>', 'drop a runtime change: back to the config (repeatable)')
    .action(async (id: string, opts: { set?: string[]; clear?: string[] }) => {
      const { QuotaBook, setQuotas } = await import('../quota/quota-book.ts');
      const config = await withConfig(io, globals());
      const t = config.tenants.get(id);
      if (!t) throw new TenantGateError('TENANT_UNKNOWN', `no tenant "${id}" in the configuration`);
      const change: Record<string, number | null> = {};
      for (const kv of opts.set ?? []) {
        const i = kv.indexOf('=');
        const value = Number(kv.slice(i + 1));
        if (i < 1 || !Number.isFinite(value)) throw new TenantGateError('USAGE', `--set takes quota=number, got "${kv}"`);
        change[kv.slice(0, i)] = value;
      }
      for (const k of opts.clear ?? []) change[k] = null;
      const result = await withOwnerDb(config, async (db) => {
        if (Object.keys(change).length) await setQuotas(db, id, change, `cli:${io.env['USER'] ?? 'owner'}`);
        const book = new QuotaBook(db);
        await book.refresh();
        return { tenant: id, quotas: book.quotas(t), overrides: book.override(id) };
      });
      if (globals().json) printJson(io, result);
      else io.stdout(table([['QUOTA', 'VALUE', 'SOURCE'], ...Object.entries(result.quotas).map(([k, v]) => [k, String(v), k in result.overrides ? 'runtime' : 'config'])]));
    });

  tenant
    .command('move <id>')
    .description('move a tenant to another tier (and placement) online: copy, verify, cut over, clean up; resumable')
    .option('--tier <tier>', 'pooled, schema or database')
    .option('--placement <placement>', 'a placement under database.placements (tier database only)')
    .option('--dry-run', 'print the plan; change nothing')
    .option('--abort', 'abandon an unfinished move (before its cut-over): the tenant stays where it was')
    .option('--status', "show the tenant's current or last move")
    .option('--grace <seconds>', 'how long the old place stays after the cut-over (default 5)')
    .option('--chunk-rows <n>', 'rows per copy chunk (default 100000; 20000 embedded)')
    .action(async (id: string, opts: { tier?: string; placement?: string; dryRun?: boolean; abort?: boolean; status?: boolean; grace?: string; chunkRows?: string }) => {
      const { loadServerSecret } = await core();
      const { runMoveCommand, formatMove } = await import('./commands/move.ts');
      const { moveReportJson } = await import('../tiers/move/move.ts');
      if (!opts.tier && !opts.abort && !opts.status) throw new TenantGateError('USAGE', 'tenant move needs --tier (or --abort, --status)');
      const config = await withConfig(io, globals());
      if (!config.tenants.has(id)) throw new TenantGateError('TENANT_UNKNOWN', `no tenant "${id}" in the configuration`);
      const result = await withOwnerDb(config, (db) => runMoveCommand(io, config, db, loadServerSecret(config, io.env), id, opts), 6);
      if (globals().json) printJson(io, result.report ? { ...result, report: moveReportJson(result.report) } : result);
      else io.stdout(formatMove(result, id));
    });

  const key = program.command('key').description('API keys and direct database logins');
  key
    .command('create')
    .description('create an API key (shown once); --db-login adds a PostgreSQL login for BI tools')
    .option('--tenant <id>', 'tenant the key acts for (omit for a platform role)')
    .requiredOption('--role <role>', 'role from the configuration')
    .option('--db-login', 'also create a read-only database login isolated by the database alone')
    .action(async (opts: { tenant?: string; role: string; dbLogin?: boolean }) => {
      const { resolveNames, loadServerSecret, createApiKey } = await core();
      const config = await withConfig(io, globals());
      const created = await withOwnerDb(config, async (db) => {
        if (opts.dbLogin && db.kind === 'pglite') {
          io.stderr('warning: on the embedded database a login is not a security boundary (one superuser session); use PostgreSQL for BI logins.\n');
        }
        return createApiKey(db, config, resolveNames(config, io.env), loadServerSecret(config, io.env), { role: opts.role, ...(opts.tenant ? { tenant: opts.tenant } : {}), dbLogin: Boolean(opts.dbLogin) });
      });
      if (globals().json) printJson(io, created);
      else {
        io.stdout(`key_id  ${created.key_id}\nkey     ${created.key}\ntenant  ${created.tenant ?? '(platform)'}\nrole    ${created.role}\n`);
        const l = created.db_login;
        if (l) {
          io.stdout(`db user ${l.user}\ndb pass ${l.password}\ndb name ${l.database}${l.placement ? ` (on placement ${l.placement})` : ''}\n`);
          if (l.schema) io.stdout(`schema  ${l.schema} (the tenant's tables: SET search_path TO ${l.schema}, or qualify them)\n`);
        }
        io.stdout('The key (and password) are shown once; only a hash is stored.\n');
      }
    });
  key
    .command('list')
    .description('list keys (never their secrets)')
    .option('--tenant <id>', 'only this tenant')
    .action(async (opts: { tenant?: string }) => {
      const { listApiKeys } = await core();
      const config = await withConfig(io, globals());
      const keys = await withOwnerDb(config, (db) => listApiKeys(db, opts.tenant ? { tenant: opts.tenant } : {}));
      if (globals().json) printJson(io, { keys });
      else io.stdout(table([['KEY_ID', 'TENANT', 'ROLE', 'DB_LOGIN', 'CREATED', 'REVOKED'], ...keys.map((k) => [k.key_id, k.tenant ?? '(platform)', k.role, k.db_login ?? '', k.created_at, k.revoked_at ?? ''])]));
    });
  key
    .command('revoke <key_id>')
    .description('revoke a key; its database login is dropped and its sessions ended')
    .action(async (keyId: string) => {
      const { revokeApiKey } = await core();
      const config = await withConfig(io, globals());
      const record = await withOwnerDb(config, (db) => revokeApiKey(db, keyId));
      if (globals().json) printJson(io, record);
      else io.stdout(`Revoked ${record.key_id}${record.db_login ? ` and dropped login ${record.db_login}` : ''}.\n`);
    });

  const audit = program
    .command('audit')
    .description('search the audit trail (newest first); `audit verify` checks every hash chain')
    .option('--tenant <id>', 'one tenant, all (default), or * (requests that named no tenant)')
    .option('--since <time>', 'ISO time or age (15m, 2h, 7d)')
    .option('--until <time>', 'ISO time or age')
    .option('--code <code>', 'error code, e.g. TENANT_MISMATCH')
    .option('--principal <principal>', 'key:<key id> or jwt:<subject>')
    .option('--decision <decision>', 'allow, deny or error')
    .option('--request-id <id>', 'one request')
    .option('--limit <n>', 'at most this many events (default 100; the output says when more exist); 0: every one, as NDJSON', (v) => Number(v))
    .option('--before <cursor>', 'the next page: the cursor a cut page names (`next` with --json)')
    .option('--all', 'every matching event, newest first, as NDJSON (one per line, read in pages)')
    .action(async (opts: import('./commands/audit.ts').AuditSearch) => {
      const { searchAudit, streamAudit, streams, formatEvents, eventsJson } = await import('./commands/audit.ts');
      const streaming = streams(opts);
      const config = await withConfig(io, globals());
      if (streaming) {
        await withOwnerDb(config, (db) => streamAudit(db, config, opts, io));
        return;
      }
      const page = await withOwnerDb(config, (db) => searchAudit(db, config, opts));
      if (globals().json) printJson(io, eventsJson(page));
      else io.stdout(formatEvents(page));
    });
  audit
    .command('verify')
    .description('recompute every hash chain: exit 1 naming each edited, removed or reordered record')
    .option('--tenant <id>', 'only this chain')
    .action(async (opts: { tenant?: string }) => {
      const { verifyChains, formatChainReport } = await import('./commands/audit.ts');
      const config = await withConfig(io, globals());
      const report = await withOwnerDb(config, (db) =>
        verifyChains(db, { ...(opts.tenant ? { tenant: opts.tenant } : {}), ...(globals().json ? {} : { onProgress: (n) => io.isTTY && io.stderr(`\raudit verify: ${n} records`) }) }),
      );
      if (io.isTTY && !globals().json) io.stderr('\n');
      if (globals().json) printJson(io, report);
      else io.stdout(formatChainReport(report));
      if (!report.ok) setExit(1);
    });
  audit
    .command('prune')
    .description('drop records older than audit.retention_days now (the gateway also does it hourly); chains stay verifiable')
    .option('--dry-run', 'count what would go')
    .action(async (opts: { dryRun?: boolean }) => {
      const { pruneAudit } = await import('../audit/store.ts');
      const config = await withConfig(io, globals());
      const removed = await withOwnerDb(config, async (db) => {
        if (opts.dryRun) {
          const r = await db.query<{ n: string }>(`SELECT count(*) AS n FROM tenantgate.audit_log WHERE at < now() - make_interval(days => $1)`, [config.effective.audit.retention_days]);
          return Number(r.rows[0]?.n ?? 0);
        }
        return pruneAudit(db);
      });
      if (globals().json) printJson(io, { removed, dry_run: Boolean(opts.dryRun), retention_days: config.effective.audit.retention_days });
      else io.stdout(`${opts.dryRun ? 'Would remove' : 'Removed'} ${removed} audit record(s) older than ${config.effective.audit.retention_days} days.\n`);
    });

  const exportCmd = program
    .command('export')
    .description("one tenant's data from one snapshot: a file per dataset and a signed manifest (a job; `export verify DIR` checks a folder)")
    .argument('<id>', 'the tenant')
    .option('--out <dir>', 'the folder to write (new or empty); required')
    .option('--format <format>', 'ndjson, csv or parquet', 'ndjson')
    .option('--datasets <names>', 'comma-separated datasets (default: every dataset)')
    .option('--view <view>', "tenant (what the tenant's read role sees) or full (every column raw; platform, audited)", 'tenant')
    .option('--force', 'write into a folder that is not empty (the export files in it are replaced)')
    .option('--detach', "queue the job for serve's runner and print its id")
    .action(async (id: string, opts: import('./commands/export.ts').ExportFlags) => {
      const { runExportCommand, formatExport } = await import('./commands/export.ts');
      if (!opts.out) throw new TenantGateError('USAGE', 'export needs --out <dir>');
      const config = await withConfig(io, globals());
      const result = await withOwnerDb(config, (db) => runExportCommand(io, config, db, configPath(io, globals()), id, opts, Boolean(globals().json)), 4);
      if (globals().json) {
        if (!opts.detach) printJson(io, result);
      } else io.stdout(formatExport(result));
    });
  exportCmd
    .command('verify <dir>')
    .description("check an export folder: the manifest's signature, every file's size, SHA-256 and row count (exit 1 naming each file that fails)")
    .option('--public-key <file>', 'require the manifest to be signed by this Ed25519 public key (PEM)')
    .action(async (dir: string, opts: { publicKey?: string }) => {
      const { runVerifyCommand, formatVerify } = await import('./commands/export.ts');
      const report = await runVerifyCommand(io, dir, opts.publicKey);
      if (globals().json) printJson(io, report.ok ? report : { ...report, error: { code: 'EXPORT_VERIFY_FAILED', message: `${report.problems.map((p) => p.file).join(', ')} failed`, hint: ERROR_CODES.EXPORT_VERIFY_FAILED.hint } });
      else io.stdout(formatVerify(report));
      if (!report.ok) setExit(1);
    });

  const jobs = program.command('jobs').description('lifecycle jobs (export, erase, backup, …): list, show, cancel');
  jobs
    .command('list')
    .description('jobs, newest first (the output says when more match)')
    .option('--tenant <id>', "one tenant's jobs")
    .option('--state <state>', 'queued, running, done, failed or cancelled')
    .option('--kind <kind>', 'one kind of job')
    .option('--limit <n>', 'at most this many (default 100)', (v) => Number(v))
    .option('--before <cursor>', 'the next page: the cursor a cut page names (`next` with --json)')
    .action(async (opts: import('./commands/jobs.ts').JobListFlags) => {
      const { listJobsCommand, formatJobs } = await import('./commands/jobs.ts');
      const { jobJson } = await import('../lifecycle/jobs/store.ts');
      const config = await withConfig(io, globals());
      const page = await withOwnerDb(config, (db) => listJobsCommand(db, opts));
      if (globals().json) printJson(io, { jobs: page.jobs.map((j) => jobJson(j, { detail: true })), truncated: page.truncated, next: page.next });
      else io.stdout(formatJobs(page));
    });
  jobs
    .command('show <id>')
    .description('one job: state, progress, attempts, result or error')
    .action(async (id: string) => {
      const { showJobCommand, formatJob } = await import('./commands/jobs.ts');
      const { jobJson } = await import('../lifecycle/jobs/store.ts');
      const config = await withConfig(io, globals());
      const job = await withOwnerDb(config, (db) => showJobCommand(db, id));
      if (globals().json) printJson(io, { job: jobJson(job, { detail: true }) });
      else io.stdout(formatJob(job));
    });
  jobs
    .command('cancel <id>')
    .description('cancel a job: a queued one at once, a running one at its next checkpoint')
    .action(async (id: string) => {
      const { cancelJobCommand, formatCancel } = await import('./commands/jobs.ts');
      const { jobJson } = await import('../lifecycle/jobs/store.ts');
      const config = await withConfig(io, globals());
      const job = await withOwnerDb(config, (db) => cancelJobCommand(db, id));
      if (globals().json) printJson(io, { job: jobJson(job, { detail: true }) });
      else io.stdout(formatCancel(job));
    });

  const migrate = program.command('migrate').description("schema migrations for every place a tenant's rows live: the pooled tables, each schema and each tenant database");
  migrate
    .command('new <name>')
    .description('make the next migration file (NNNN_<name>.sql) in database.migrations_dir')
    .action(async (name: string) => {
      const { runMigrateNew } = await import('./commands/migrate.ts');
      const config = await withConfig(io, globals());
      const file = runMigrateNew(io, config, name);
      if (globals().json) printJson(io, { file });
      else io.stdout(`Created ${file}: write it against the pooled tables' names (public.orders); \`tenantgate migrate up\` applies it everywhere.\n`);
    });
  migrate
    .command('status')
    .description('per migration, how many targets have it and which do not (--json: every target)')
    .action(async () => {
      const { runMigrateStatus, formatMigrateStatus } = await import('./commands/migrate.ts');
      const config = await withConfig(io, globals());
      const status = await withOwnerDb(config, (db) => runMigrateStatus(io, config, db));
      if (globals().json) printJson(io, status);
      else io.stdout(formatMigrateStatus(status));
      if (!status.upToDate) setExit(1);
    });
  migrate
    .command('up')
    .description('apply the pending migrations: the main database, then the canaries, then the rest N at a time; then provision every target (resumable: a rerun does what is left)')
    .option('--to <version>', 'stop after this migration (its number, e.g. 0003)')
    .option('--canary <tenants>', 'comma-separated schema/database-tier tenants to migrate first, after the main database')
    .option('--canary-percent <p>', 'or this share of the tenant targets, spread evenly')
    .option('--concurrency <n>', 'targets at once after the canaries (default 2)')
    .option('--lock-timeout <duration>', "how long a migration may wait for a lock before it gives up and retries (default 5s): live queries never queue behind it for longer")
    .option('--retries <k>', 'tries after a lock timeout (default 3)')
    .option('--continue-on-error', 'go on with the other targets after one fails (exit 1 at the end)')
    .option('--dry-run', 'print the plan (which targets get which migrations); change nothing')
    .action(async (opts: import('./commands/migrate.ts').MigrateUpFlags) => {
      const { loadServerSecret, applyProvision } = await core();
      const { runMigrateUp, formatMigrateUp } = await import('./commands/migrate.ts');
      const config = await withConfig(io, globals());
      const report = await withOwnerDb(
        config,
        async (db) => {
          const r = await runMigrateUp(io, config, db, opts);
          // New dataset tables get RLS, policies and grants in every tier (apply is idempotent).
          if (!r.dryRun && r.failures.length === 0 && r.applied > 0) await applyProvision(config, db, loadServerSecret(config, io.env), { env: io.env });
          return r;
        },
        Math.max(2, Number(opts.concurrency ?? 2) + 1),
      );
      if (globals().json) printJson(io, report);
      else io.stdout(formatMigrateUp(report));
      if (report.failures.length || report.blocked.length) setExit(1);
    });

  const erase = program
    .command('erase')
    .description('erase a tenant (GDPR Art. 17): suspend it, remove its rows, schema or database, keys, logins, quota overrides and file, tombstone its id; resumable; ends with a signed certificate')
    .argument('<id>', 'the tenant to erase')
    .option('--confirm <id>', 'the same tenant id again (required)')
    .option('--dry-run', 'list what would be removed; change nothing')
    .option('--certificate <file>', 'where to write the certificate (default erasure-<id>-<UTC time>.json here)')
    .option('--detach', 'queue the job for `serve` and print its id')
    .option('--batch-rows <n>', 'rows per delete batch in the shared tables (default 5000)')
    .option('--pause-ratio <r>', 'after each batch, pause r times as long as it took (default 1; 0: no pause)')
    .action(async (id: string, opts: import('./commands/erase.ts').EraseFlags) => {
      const { runEraseCommand, formatErase } = await import('./commands/erase.ts');
      const config = await withConfig(io, globals());
      const out = await withOwnerDb(config, (db) => runEraseCommand(io, config, db, id, opts, Boolean(globals().json)), 4);
      if (out.kind === 'queued') return;
      if (globals().json) printJson(io, out.kind === 'dry-run' ? { dry_run: true, tenant: out.tenant, would_remove: out.would_remove } : out.certificate);
      else io.stdout(formatErase(out));
    });
  erase
    .command('verify-certificate <file>')
    .description('check a certificate of deletion: its signature, and that nothing of the tenant is back (exit 1 naming what fails)')
    .action(async (file: string) => {
      const { verifyCertificateCommand, formatVerdict } = await import('./commands/erase.ts');
      const config = await withConfig(io, globals());
      const verdict = await withOwnerDb(config, (db) => verifyCertificateCommand(io, config, db, file));
      if (globals().json) printJson(io, verdict);
      else io.stdout(formatVerdict(verdict, file));
      if (!verdict.ok) setExit(1);
    });

  program
    .command('start')
    .description('provision the demo catalog on the embedded database, then serve the gateway')
    .option('--dir <dir>', 'where the demo lives', '.tenantgate/demo')
    .option('--port <port>', 'port for the gateway (default server.port, 8080)', (v) => Number(v))
    .option('--no-serve', 'provision and print, then exit')
    .action(async (opts: { dir: string; port?: number; serve: boolean }) => {
      const { runDemo } = await import('./commands/start.ts');
      await runDemo(io, opts.dir, Boolean(globals().json), { enabled: opts.serve, ...(opts.port !== undefined ? { port: opts.port } : {}) });
    });

  program
    .command('serve')
    .description('run the HTTP gateway as the gateway login ($TENANTGATE_GATEWAY_URL, or the embedded database)')
    .option('--port <port>', 'port (default server.port)', (v) => Number(v))
    .option('--host <host>', 'address to bind (default server.host)')
    .action(async (opts: { port?: number; host?: string }) => {
      const { loadServerSecret } = await core();
      const config = await withConfig(io, globals());
      const secret = loadServerSecret(config, io.env);
      const { createTenantGate } = await import('../gate.ts');
      const { serveGateway } = await import('./commands/serve.ts');
      const gate = await createTenantGate({ config, secret, env: io.env });
      const server = await serveGateway(io, config, gate, secret, { ...(opts.port !== undefined ? { port: opts.port } : {}), ...(opts.host ? { host: opts.host } : {}) });
      io.stdout(`tenantgate gateway listening on ${server.url}\n`);
    });

  return program;
}

async function report(io: CliIO, err: unknown, json: boolean, configFile: () => string): Promise<number> {
  if (err instanceof CommanderError) {
    if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version' || err.code === 'commander.help') return 0;
    if (json) io.stdout(`${JSON.stringify({ error: { code: 'USAGE', message: err.message.replace(/^error: /, ''), hint: ERROR_CODES.USAGE.hint } }, null, 2)}\n`);
    return 2;
  }
  // Only a failure that is not ours needs the database error map (and the driver it loads).
  const mapped = isTenantGateError(err) ? err : (await import('../execute/tenant-transaction.ts')).mapDatabaseError(err);
  let e: TenantGateError;
  if (isTenantGateError(mapped)) e = mapped;
  else if ((mapped as { code?: string })?.code === 'ECONNREFUSED' || (mapped as { code?: string })?.code === '28P01' || (mapped as { code?: string })?.code === '3D000') {
    e = new TenantGateError('DB_UNAVAILABLE', `cannot connect to the database: ${(mapped as Error).message}`);
  } else {
    e = new TenantGateError('INTERNAL', (mapped as Error)?.message ?? String(mapped), { cause: mapped });
  }
  if (e.code === 'CONFIG_NOT_FOUND' && !e.location) e = new TenantGateError('CONFIG_NOT_FOUND', `no configuration at ${configFile()}`);
  if (json) {
    io.stdout(`${JSON.stringify({ error: { code: e.code, message: e.message, hint: e.hint, ...(e.location ? { location: e.location } : {}) } }, null, 2)}\n`);
  } else {
    io.stderr(`error: ${e.describe()}\nhint: ${e.hint}\n`);
  }
  return e.exitCode;
}

const invokedDirectly = import.meta.url === `file://${process.argv[1]}`;
if (invokedDirectly) {
  process.exitCode = await main(process.argv.slice(2));
}
