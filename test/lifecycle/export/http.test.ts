/**
 * Export over HTTP: the admin job (POST /v1/admin/tenants/{id}/export), self-service for a tenant
 * admin (POST /v1/exports, GET /v1/exports/{id}, the archive streamed as tar), another tenant's
 * export id answered exactly like an unknown one, and refusals that never answer 500.
 */
import { createHash, randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startServeRunner } from '../../../src/lifecycle/jobs/service.ts';
import { verifyDocument } from '../../../src/security/signing.ts';
import { BACKENDS, type Fixture } from '../../support/backends.ts';
import { serve, type Served } from '../../http/support.ts';
import { canary, exportFixture, signingKeyPem } from './support.ts';

function untar(buf: Buffer): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  let at = 0;
  while (at + 512 <= buf.length) {
    const h = buf.subarray(at, at + 512);
    if (h.every((b) => b === 0)) break;
    const name = h.subarray(0, 100).toString('utf8').replace(/\0.*$/s, '');
    const size = parseInt(h.subarray(124, 136).toString('ascii').replace(/\0.*$/s, ''), 8);
    let sum = 0;
    for (let i = 0; i < 512; i++) sum += i >= 148 && i < 156 ? 0x20 : (h[i] as number);
    expect(parseInt(h.subarray(148, 156).toString('ascii'), 8), `checksum of ${name}`).toBe(sum);
    out.set(name, buf.subarray(at + 512, at + 512 + size));
    at += 512 + Math.ceil(size / 512) * 512;
  }
  return out;
}

describe.each(BACKENDS)('export over HTTP on %s', (kind) => {
  let fx: Fixture;
  let s: Served;
  const home = mkdtempSync(join(tmpdir(), 'tg-export-http-'));
  const savedKey = process.env['TENANTGATE_SIGNING_KEY'];
  const admin = () => ({ 'x-api-key': s.keys.acmeAdmin });
  const ops = () => ({ 'x-api-key': s.keys.ops });
  const until = async <T>(fn: () => Promise<T>, done: (t: T) => boolean): Promise<T> => {
    for (let i = 0; i < 300; i++) {
      const v = await fn();
      if (done(v)) return v;
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error('timed out');
  };

  beforeAll(async () => {
    process.env['TENANTGATE_SIGNING_KEY'] = signingKeyPem();
    fx = await exportFixture(kind, join(home, 'tenantgate.yaml'));
    s = await serve(fx);
    await startServeRunner(s.gateway, { pollMs: 100 });
  }, 120_000);
  afterAll(async () => {
    await s?.close();
    await fx?.cleanup();
    rmSync(home, { recursive: true, force: true });
    if (savedKey === undefined) delete process.env['TENANTGATE_SIGNING_KEY'];
    else process.env['TENANTGATE_SIGNING_KEY'] = savedKey;
  });

  it("a tenant admin exports its own tenant and downloads one tar archive that matches the signed manifest", async () => {
    const started = await s.post('/v1/exports', { format: 'csv' }, admin());
    expect(started.status, JSON.stringify(started.json)).toBe(202);
    const id = started.json.export.id as string;
    const done = await until(() => s.get(`/v1/exports/${id}`, admin()), (r) => r.json.export?.state === 'done' || r.json.export?.state === 'failed');
    expect(done.json.export, JSON.stringify(done.json)).toMatchObject({ state: 'done', format: 'csv', view: 'tenant', archive: `/v1/exports/${id}/archive` });
    expect(JSON.stringify(done.json)).not.toContain('/tmp'); // no server paths
    const res = await fetch(`${s.url}/v1/exports/${id}/archive`, { headers: admin() });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('application/x-tar');
    const files = untar(Buffer.from(await res.arrayBuffer()));
    expect([...files.keys()]).toEqual([`export-${id}/manifest.json`, `export-${id}/orders.csv`, `export-${id}/vals.csv`]);
    const manifest = JSON.parse(files.get(`export-${id}/manifest.json`)!.toString('utf8'));
    expect(verifyDocument(manifest).ok).toBe(true);
    expect(manifest.tenant).toBe('acme_corp');
    for (const f of manifest.files) expect(createHash('sha256').update(files.get(`export-${id}/${f.file}`)!).digest('hex')).toBe(f.sha256);
    const all = [...files.values()].map((b) => b.toString('utf8')).join('\n');
    for (const other of ['globex_inc', 'hooli', 'initech']) expect(all).not.toContain(other);
    expect(all).not.toContain(`${canary('acme_corp')}-secret`); // restricted column
  });

  it("another tenant's export id answers exactly like an unknown id; readers and the full view are refused", async () => {
    const started = await s.post('/v1/exports', {}, admin());
    const id = started.json.export.id as string;
    const other = { 'x-api-key': s.keys.globexAdmin };
    const theirs = await s.get(`/v1/exports/${id}`, other);
    const unknown = await s.get(`/v1/exports/${randomUUID()}`, other);
    const garbage = await s.get('/v1/exports/not-a-job', other);
    expect(theirs.status).toBe(404);
    expect(theirs.json).toEqual(unknown.json);
    expect(garbage.json).toEqual(unknown.json);
    expect(theirs.json.error.code).toBe('JOB_UNKNOWN');
    const archive = await s.get(`/v1/exports/${id}/archive`, other);
    expect(archive.status).toBe(404);
    expect(archive.json).toEqual(unknown.json);
    const reader = await s.post('/v1/exports', {}, { 'x-api-key': s.keys.acme });
    expect(reader.status).toBe(403);
    const full = await s.post('/v1/exports', { view: 'full' }, admin());
    expect(full.status).toBe(400);
    const xml = await s.post('/v1/exports', { format: 'xml' }, admin());
    expect(xml.status).toBe(400);
    const badDataset = await s.post('/v1/exports', { datasets: ['nope'] }, admin());
    expect(badDataset.json.error.code).toBe('EXPORT_INVALID');
    await until(() => s.get(`/v1/exports/${id}`, admin()), (r) => r.json.export?.state === 'done');
  });

  it('a platform admin exports any tenant as a job, full view included; refusals never answer 500', async () => {
    const started = await s.post('/v1/admin/tenants/hooli/export', { view: 'full' }, ops());
    expect(started.status, JSON.stringify(started.json)).toBe(202);
    const id = started.json.job.id as string;
    const done = await until(() => s.get(`/v1/admin/jobs/${id}`, ops()), (r) => ['done', 'failed'].includes(r.json.job?.state));
    expect(done.json.job, JSON.stringify(done.json)).toMatchObject({ state: 'done', kind: 'export', tenant: 'hooli', result: { view: 'full', rows: 6 } });
    const unknownTenant = await s.post('/v1/admin/tenants/nobody_here/export', {}, ops());
    expect(unknownTenant.status).toBe(404);
    expect(unknownTenant.json.error.code).toBe('TENANT_UNKNOWN');
    const notPlatform = await s.post('/v1/admin/tenants/acme_corp/export', {}, admin());
    expect(notPlatform.status).toBe(403);
    const notReady = await s.post('/v1/exports', {}, admin());
    const early = await s.get(`/v1/exports/${notReady.json.export.id}/archive`, admin());
    expect([200, 409]).toContain(early.status);
    for (const r of [unknownTenant, notPlatform, early]) expect(r.status).not.toBe(500);
  });
});
