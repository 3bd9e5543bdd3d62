/**
 * `tenantgate erase ID --confirm ID [--dry-run] [--certificate FILE]`, `erase verify-certificate FILE`
 * and `tenant add --reuse-erased-id` as an operator types them (the CLI in-process, on a data
 * directory or a server database), with the tenant declared in tenants/<id>.yaml.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cliFolder } from '../../support/cli.ts';
import { BACKENDS } from '../../support/backends.ts';
import { cliYaml, ERASE_SQL, SIGNING_PEM } from './support.ts';

const YAML = cliYaml();


describe.each(BACKENDS)('tenantgate erase through the CLI on %s', (kind) => {
  const cli = cliFolder(kind, { sql: ERASE_SQL, yaml: YAML, env: { TENANTGATE_SIGNING_KEY: SIGNING_PEM }, name: 'erase-cli' });
  const { dir, run, owner } = cli;
  const count = (tenant: string) => owner(async (db) => Number((await db.query<{ n: string }>(`SELECT (SELECT count(*) FROM public.orders WHERE tenant_id = $1) + (SELECT count(*) FROM public.order_items WHERE tenant_id = $1) AS n`, [tenant])).rows[0]!.n));
  const tenantFile = (id: string) => join(dir, 'tenants', `${id}.yaml`);

  beforeAll(async () => {
    await cli.setup();
    mkdirSync(join(dir, 'tenants'));
    for (const t of ['acme_corp', 'globex_inc']) writeFileSync(tenantFile(t), `id: ${t}\n`);
    const applied = await run('apply', '--json');
    expect(applied.code, applied.out + applied.err).toBe(0);
    await owner(async (db) => {
      for (const t of ['acme_corp', 'globex_inc']) {
        for (let i = 0; i < 5; i++) {
          const o = await db.query<{ id: number }>(`INSERT INTO public.orders (tenant_id, region, amount) VALUES ($1, 'North', $2) RETURNING id`, [t, i]);
          await db.query(`INSERT INTO public.order_items (tenant_id, order_id, sku) VALUES ($1, $2, 'x')`, [t, o.rows[0]!.id]);
        }
      }
    });
  }, 120_000);
  afterAll(() => cli.cleanup());

  it('refuses without --confirm or with another id; --dry-run changes nothing', { timeout: 120_000 }, async () => {
    const none = await run('erase', 'acme_corp', '--json');
    expect(none.code).toBe(2);
    expect(none.json().error.code).toBe('ERASE_CONFIRM_MISMATCH');
    const other = await run('erase', 'acme_corp', '--confirm', 'globex_inc');
    expect(other.code).toBe(2);
    expect(other.err).toMatch(/ERASE_CONFIRM_MISMATCH|--confirm "globex_inc" is not the tenant being erased/);
    const dry = await run('erase', 'acme_corp', '--confirm', 'acme_corp', '--dry-run', '--json');
    expect(dry.code, dry.out + dry.err).toBe(0);
    expect(dry.json()).toMatchObject({ dry_run: true, tenant: 'acme_corp', would_remove: { tier: 'pooled', tables: [{ table: 'public.order_items', rows_before: 5 }, { table: 'public.orders', rows_before: 5 }], files: [tenantFile('acme_corp')] } });
    const text = await run('erase', 'acme_corp', '--confirm', 'acme_corp', '--dry-run');
    expect(text.out).toMatch(/^Would erase acme_corp \(tier pooled\)/);
    expect(text.out).toMatch(/Nothing was changed\.\n$/);
    expect(await count('acme_corp')).toBe(10);
    expect(existsSync(tenantFile('acme_corp'))).toBe(true);
    const unknown = await run('erase', 'nobody_here', '--confirm', 'nobody_here', '--json');
    expect(unknown.code).toBe(2);
    expect(unknown.json().error.code).toBe('TENANT_UNKNOWN');
  });

  it('erases, writes the certificate, verify-certificate passes then fails on a planted row; a rerun changes nothing; the id is tombstoned', { timeout: 300_000 }, async () => {
    const done = await run('erase', 'acme_corp', '--confirm', 'acme_corp');
    expect(done.code, done.out + done.err).toBe(0);
    expect(done.out).toMatch(/^Erased acme_corp: 10 row\(s\)/);
    const path = /Certificate of deletion: (.*)$/m.exec(done.out)![1]!;
    expect(path.startsWith(join(dir, 'erasure-acme_corp-'))).toBe(true);
    const cert = JSON.parse(readFileSync(path, 'utf8'));
    expect(cert).toMatchObject({ tenant: 'acme_corp', requested_by: 'cli:alice', check: { ok: true }, signature: { algorithm: 'Ed25519' } });
    expect(await count('acme_corp')).toBe(0);
    expect(await count('globex_inc')).toBe(10);
    expect(existsSync(tenantFile('acme_corp'))).toBe(false);

    const ok = await run('erase', 'verify-certificate', path);
    expect(ok.code, ok.out + ok.err).toBe(0);
    expect(ok.out).toMatch(/valid\. Signature by the configured signing key/);
    await owner((db) => db.query(`INSERT INTO public.orders (tenant_id, region, amount) VALUES ('acme_corp', 'North', 1)`));
    const bad = await run('erase', 'verify-certificate', path, '--json');
    expect(bad.code).toBe(1);
    expect(bad.json()).toMatchObject({ ok: false, problems: ['1 row(s) of acme_corp in public.orders'] });
    await owner((db) => db.query(`DELETE FROM public.orders WHERE tenant_id = 'acme_corp'`));
    writeFileSync(join(dir, 'edited.json'), JSON.stringify({ ...cert, erased_at: '2020-01-01T00:00:00.000Z' }));
    const edited = await run('erase', 'verify-certificate', 'edited.json');
    expect(edited.code).toBe(1);
    expect(edited.out).toMatch(/signature: the signature does not match the content/);

    // A rerun finds the erasure done: the same certificate again, nothing changed.
    const again = await run('erase', 'acme_corp', '--confirm', 'acme_corp', '--certificate', 'again.json', '--json');
    expect(again.code, again.out + again.err).toBe(0);
    expect(again.json().signature.value).toBe(cert.signature.value);
    expect(readdirSync(dir).filter((f) => f.startsWith('erasure-acme_corp-')).length).toBe(1);
    expect((await run('jobs', 'list', '--tenant', 'acme_corp', '--json')).json().jobs.length).toBe(1);

    // The id is tombstoned: a file naming it again is refused by apply and by tenant add, until --reuse-erased-id.
    writeFileSync(tenantFile('acme_corp'), 'id: acme_corp\n');
    const applied = await run('apply', '--json');
    expect(applied.code).toBe(2);
    expect(applied.json().error.code).toBe('TENANT_ERASED');
    rmSync(tenantFile('acme_corp'));
    const add = await run('tenant', 'add', 'acme_corp', '--json');
    expect(add.code).toBe(2);
    expect(add.json().error.code).toBe('TENANT_ERASED');
    expect(existsSync(tenantFile('acme_corp'))).toBe(false);
    const reuse = await run('tenant', 'add', 'acme_corp', '--reuse-erased-id', '--json');
    expect(reuse.code, reuse.out + reuse.err).toBe(0);
    expect((await run('tenant', 'show', 'acme_corp', '--json')).json()).toMatchObject({ id: 'acme_corp', provisioned: true });
    expect((await run('audit', 'verify')).code).toBe(0);
  });

  it('tenant offboard: export, export verify, then erase with the manifest hash in the certificate', { timeout: 300_000 }, async () => {
    const out = join(dir, 'offboard-globex');
    const wrong = await run('tenant', 'offboard', 'globex_inc', '--export-to', out, '--confirm', 'acme_corp', '--json');
    expect(wrong.code).toBe(2);
    expect(wrong.json().error.code).toBe('ERASE_CONFIRM_MISMATCH');
    expect(existsSync(out)).toBe(false);
    const done = await run('tenant', 'offboard', 'globex_inc', '--export-to', out, '--confirm', 'globex_inc', '--certificate', 'globex.json', '--json');
    expect(done.code, done.out + done.err).toBe(0);
    const manifest = createHash('sha256').update(readFileSync(join(out, 'manifest.json'))).digest('hex');
    expect(done.json()).toMatchObject({ export: { dir: out, manifest_sha256: manifest, resumed: false }, certificate: { tenant: 'globex_inc', export_manifest_sha256: manifest, check: { ok: true } } });
    expect((await run('export', 'verify', out)).code).toBe(0);
    expect(await count('globex_inc')).toBe(0);
    expect((await run('erase', 'verify-certificate', 'globex.json')).code).toBe(0);
  });
});
