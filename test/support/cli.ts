/** The CLI run in-process against a fixture, with seed003.yaml as its config (it opens database.url itself). */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { main } from '../../src/cli/main.ts';
import { fixture, type Fixture } from './backends.ts';

export async function runCli(fx: Fixture, args: string[]): Promise<{ code: number; out: string }> {
  const dir = mkdtempSync(join(tmpdir(), 'tg-cli-'));
  try {
    writeFileSync(join(dir, 'tenantgate.yaml'), fixture('seed003.yaml'));
    const out: string[] = [];
    const code = await main(['--config', join(dir, 'tenantgate.yaml'), ...args], {
      stdout: (t) => out.push(t),
      stderr: (t) => out.push(t),
      env: { TG_TEST_DB: fx.url, TG_TEST_PREFIX: fx.prefix, TENANTGATE_SECRET: fx.secret.toString() },
      cwd: dir,
      isTTY: false,
    });
    return { code, out: out.join('') };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
