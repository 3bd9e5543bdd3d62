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
          ...(result.gatewayPassword ? { gateway: { user: result.names.gateway, password: result.gatewayPassword } } : {}),
        },
        null,
        2,
      )}\n`,
    );
    return;
  }
  if (changes.length === 0) {
    io.stdout(mode === 'apply' ? 'Nothing to do: the database matches the configuration.\n' : 'No changes: the database matches the configuration.\n');
    return;
  }
  io.stdout(table(changeRows(changes)));
  const verb = mode === 'apply' ? 'Applied' : 'Would apply';
  const executable = changes.filter((c) => c.sql.length > 0).length;
  io.stdout(`\n${verb} ${executable} change(s)${changes.length > executable ? `; ${changes.length - executable} need a deliberate step (see WHY)` : ''}.\n`);
  if (result.gatewayPassword) {
    io.stdout(
      `\nCreated the gateway login ${result.names.gateway}. Its password is shown once:\n` +
        `  export ${gatewayUrlEnv}='postgres://${result.names.gateway}:${result.gatewayPassword}@HOST:PORT/DATABASE'\n`,
    );
  }
}
