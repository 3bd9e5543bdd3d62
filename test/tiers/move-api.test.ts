/**
 * Moves through the admin API (issue 7): a platform admin moves a tenant while the tenant keeps
 * reading and writing over HTTP; writes that meet the cut-over are answered 503 TENANT_MOVING with
 * Retry-After (or run at the new place at once), none is lost; nobody else may start or see a move.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BACKENDS, createFixture, type Fixture } from '../support/backends.ts';
import { serve, type Served } from '../http/support.ts';
import { MOVE_SQL, MOVE_YAML, seedPooled } from './move-support.ts';

describe.each(BACKENDS)('tenant move over the admin API on %s', (kind) => {
  let fx: Fixture;
  let s: Served;
  beforeAll(async () => {
    fx = await createFixture(kind, { sql: MOVE_SQL, yaml: MOVE_YAML });
    await seedPooled(fx, 'globex_inc', 2_000);
    await seedPooled(fx, 'acme_corp', 100);
    s = await serve(fx);
  }, 120_000);
  afterAll(async () => {
    await s?.close();
    await fx?.cleanup();
  });

  const summary = { dataset: 'orders', metrics: ['orders', 'revenue'] };

  it('only a platform admin may move a tenant or see its move; bad requests get clear codes', async () => {
    const path = '/v1/admin/tenants/globex_inc/move';
    for (const key of [s.keys.globex, s.keys.globexAdmin, s.keys.acmeAdmin]) {
      expect((await s.post(path, { tier: 'schema' }, { 'x-api-key': key })).json.error.code).toBe('POLICY_DENIED');
      expect((await s.get(path, { 'x-api-key': key })).json.error.code).toBe('POLICY_DENIED');
      expect((await s.delete(path, { 'x-api-key': key })).json.error.code).toBe('POLICY_DENIED');
    }
    const ops = { 'x-api-key': s.keys.ops };
    expect((await s.post(path, { tier: 'attic' }, ops)).json.error.code).toBe('QUERY_INVALID');
    expect((await s.post(path, { tier: 'schema', extra: 1 }, ops)).json.error.code).toBe('QUERY_INVALID');
    expect((await s.post(path, { tier: 'pooled' }, ops)).json.error.code).toBe('MOVE_UNSUPPORTED');
    expect((await s.post(path, { tier: 'schema', placement: 'far' }, ops)).json.error.code).toBe('TIER_UNSUPPORTED');
    expect((await s.post('/v1/admin/tenants/nobody/move', { tier: 'schema' }, ops)).json.error.code).toBe('TENANT_UNKNOWN');
    expect((await s.delete(path, ops)).json.error.code).toBe('MOVE_UNSUPPORTED');
    const dry = await s.post(path, { tier: 'database', dry_run: true }, ops);
    expect(dry.status).toBe(200);
    expect(dry.json.plan.rows).toBe(2_000);
    expect(dry.json.plan).toMatchObject({ dry_run: true, copy_seconds: expect.any(Number), rows_per_second: expect.any(Number), phase_ms: expect.any(Object) });
    expect(Object.keys(dry.json.plan).filter((k) => /[A-Z]/.test(k))).toEqual([]);
    expect((await s.get(path, ops)).json).toMatchObject({ tenant: 'globex_inc', location: { tier: 'pooled' }, move: null, running: false });
  });

  it('moves while the tenant reads and writes over HTTP: every acknowledged write there once, the others untouched', { timeout: 120_000 }, async () => {
    const ops = { 'x-api-key': s.keys.ops };
    const writerKey = (await import('../../src/identify/api-keys.ts')).createApiKey;
    const globexWriter = (await writerKey(fx.db, fx.config, fx.names, fx.secret, { tenant: 'globex_inc', role: 'writer' })).key;
    const acmeBefore = (await s.post('/v1/query', summary, { 'x-api-key': s.keys.acme })).json;
    let running = true;
    let acknowledged = 0;
    let moving = 0;
    const statuses = new Map<number, number>();
    const writer = (async () => {
      for (let i = 0; running; i++) {
        const r = await s.post('/v1/queries', { sql: `INSERT INTO orders (region, amount) VALUES ('Api', ${i})` }, { 'x-api-key': globexWriter });
        statuses.set(r.status, (statuses.get(r.status) ?? 0) + 1);
        if (r.status === 200) acknowledged++;
        else if (r.status === 503 && r.json.error.code === 'TENANT_MOVING') {
          moving++;
          expect(r.headers.get('retry-after')).toBe('1');
        } else throw new Error(`unexpected ${r.status} ${JSON.stringify(r.json)}`);
        const read = await s.post('/v1/query', summary, { 'x-api-key': s.keys.globex });
        expect(read.status).toBe(200);
      }
    })();
    const started = await s.post('/v1/admin/tenants/globex_inc/move', { tier: 'schema', grace_seconds: 1 }, ops);
    expect(started.status, JSON.stringify(started.json)).toBe(202);
    // A second start while it runs: refused.
    expect((await s.post('/v1/admin/tenants/globex_inc/move', { tier: 'schema' }, ops)).json.error.code).toBe('MOVE_CONFLICT');
    let state: { move: { phase: string; error: string | null } } | undefined;
    for (let i = 0; i < 600; i++) {
      state = (await s.get('/v1/admin/tenants/globex_inc/move', ops)).json;
      if (state!.move.phase === 'done' || state!.move.error) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(state!.move).toMatchObject({ phase: 'done', error: null });
    await new Promise((r) => setTimeout(r, 300));
    running = false;
    await writer;
    expect(acknowledged, JSON.stringify([...statuses])).toBeGreaterThan(5);
    const count = (await s.post('/v1/query', { dataset: 'orders', metrics: ['orders'], filters: [{ field: 'region', op: '=', value: 'Api' }] }, { 'x-api-key': s.keys.globex })).json;
    expect(count.rows).toEqual([[acknowledged]]);
    expect((await s.get('/v1/tenant', { 'x-api-key': s.keys.globex })).json.tier).toBe('schema');
    expect((await s.post('/v1/query', summary, { 'x-api-key': s.keys.acme })).json).toEqual(acmeBefore);
    void moving;
  });
});
