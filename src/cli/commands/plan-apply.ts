import type { Change } from '../../provision/changes.ts';
import type { ProvisionResult } from '../../provision/apply.ts';
import { table, type CliIO } from '../io.ts';

export function changeRows(changes: Change[]): string[][] {
  return [['ACTION', 'OBJECT', 'WHY'], ...changes.map((c) => [c.action, c.object, c.reason])];
}

export function printProvision(io: CliIO, result: ProvisionResult, mode: 'plan' | 'apply' | 'dry-run', json: boolean, gatewayUrlEnv: string): void {
  const changes = result.changes;
  if (json) {
    io.stdout(
      `${JSON.stringify(
        {
          mode,
          applied: result.applied,
          changes: changes.map((c) => ({ action: c.action, object: c.object, reason: c.reason, sql: c.sql })),
          ...(result.gateway ? { gateway: { ...result.gateway, ...(result.gateway.state === 'exists' ? { rotate: ROTATE } : {}) } } : {}),
          ...(result.placementLogins ? { placement_gateways: result.placementLogins } : {}),
        },
        null,
        2,
      )}\n`,
    );
    return;
  }
  if (changes.length === 0) {
    io.stdout(mode === 'apply' ? 'Nothing to do: the database matches the configuration.\n' : 'No changes: the database matches the configuration.\n');
  } else {
    io.stdout(table(changeRows(changes)));
    const verb = mode === 'apply' ? 'Applied' : 'Would apply';
    const executable = changes.filter((c) => c.sql.length > 0).length;
    io.stdout(`\n${verb} ${executable} change(s)${changes.length > executable ? `; ${changes.length - executable} need a deliberate step (see WHY)` : ''}.\n`);
  }
  const gateway = mode === 'apply' ? gatewayLines(result, gatewayUrlEnv, io.env) : '';
  if (gateway) io.stdout(gateway);
}

const ROTATE = 'tenantgate apply --rotate-gateway-password';

/** `text` in single quotes for a POSIX shell: pasted, the variable holds exactly `text`. */
export function shellQuote(text: string): string {
  return `'${text.replace(/'/g, `'\\''`)}'`;
}

/**
 * What apply says about the gateway login: the URL to export, in full, when it made the login or
 * gave it a new password; that it exists and how to reset it otherwise. Nothing on the embedded
 * database, where serve uses the database itself and no login URL exists.
 */
export function gatewayLines(result: ProvisionResult, gatewayUrlEnv: string, env: Record<string, string | undefined>): string {
  const out: string[] = [];
  const g = result.gateway;
  if (g?.password) {
    out.push(
      g.state === 'rotated'
        ? `Set a new password for the gateway login ${g.user}: the old one no longer opens new connections (restart gateways that use it). It is shown once:`
        : `Created the gateway login ${g.user}. Its password is shown once; serve (and createTenantGate) connect with:`,
      `  export ${gatewayUrlEnv}=${shellQuote(g.url ?? `postgres://${g.user}:${g.password}@HOST:PORT/DATABASE`)}`,
      g.url
        ? `This is database.url's host, port, database and parameters with the gateway login; to connect another way (through PgBouncer, another host name), change the host and port and keep the rest.`
        : `Put the server's host, port and database in place of HOST:PORT/DATABASE (the user and password are percent-encoded already).`,
    );
  } else if (g) {
    out.push(
      `The gateway login ${g.user} exists already; its password was shown once, by the apply that made it${env[gatewayUrlEnv] ? ` (${gatewayUrlEnv} is set here)` : ''}.`,
      `To set a new one: \`${ROTATE}\` (prints the full ${gatewayUrlEnv} once; restart gateways that use the old one).`,
    );
  }
  for (const p of result.placementLogins ?? []) {
    const url = p.url ?? `postgres://${p.user}:${p.password}@HOST:PORT/DATABASE`;
    out.push(
      `Created the gateway login ${p.user} on placement ${p.placement}'s server. Its password is shown once:`,
      p.env ? `  export ${p.env}=${shellQuote(url)}` : `  ${url}`,
      ...(p.env ? [] : [`Set database.placements.${p.placement}.gateway_url_env to the name of a variable holding it: serve needs it for that placement.`]),
    );
  }
  return out.length ? `\n${out.join('\n')}\n` : '';
}
