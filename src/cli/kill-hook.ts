/**
 * A test hook, not a feature: with `<variable>=<point>[:<n>]` set, the command ends its own process
 * with SIGKILL the n-th time it reaches that point, as a crash would (the kill -9 tests of moves
 * and exports use it to stop a command at an exact step).
 */
export function killHook(env: Record<string, string | undefined>, variable: string): ((point: string) => void) | undefined {
  const spec = env[variable];
  if (!spec) return undefined;
  // Only a final `:<digits>` is the count: points may hold ':' themselves (`schema:acme@0002`).
  const [, point, nth] = /^(.*?)(?::(\d+))?$/.exec(spec)!;
  let seen = 0;
  return (p) => {
    if (p === point && ++seen >= Number(nth ?? 1)) process.kill(process.pid, 'SIGKILL');
  };
}
