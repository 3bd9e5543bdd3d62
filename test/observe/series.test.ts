import { Counter, Histogram, Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { CounterSeries, HistogramSeries } from '../../src/observe/series.ts';

const BUCKETS = [0.001, 0.005, 0.01, 0.1, 1];

/** The text a registry writes for what `feed` puts into it. */
async function exposition(feed: (r: Registry) => void): Promise<string> {
  const r = new Registry();
  feed(r);
  return r.metrics();
}

describe('metric series (the per-request counters and histograms)', () => {
  const observations: Array<[string, string, number]> = [
    ['acme', 'POST /v1/query', 0.0004],
    ['acme', 'POST /v1/query', 0.001], // on a bucket bound: counts in le="0.001"
    ['globex', 'GET /v1/tenant', 0.02],
    ['acme', 'GET /v1/tenant', 3], // past every bound: only +Inf
    ['a"b\\c', 'POST /v1/query', 0.005], // label values are escaped like prom-client's
  ];

  it('write the same text as prom-client for the same observations', async () => {
    const ours = await exposition((r) => {
      const c = new CounterSeries('t_requests_total', 'requests', ['tenant', 'endpoint']);
      const h = new HistogramSeries('t_duration_seconds', 'latency', ['tenant'], BUCKETS);
      for (const [t, e, v] of observations) {
        c.inc([t, e]);
        h.observe([t], v);
      }
      c.inc(['acme', 'POST /v1/query'], 5);
      r.registerMetric(c as never);
      r.registerMetric(h as never);
    });
    const theirs = await exposition((r) => {
      const c = new Counter({ name: 't_requests_total', help: 'requests', labelNames: ['tenant', 'endpoint'], registers: [r] });
      const h = new Histogram({ name: 't_duration_seconds', help: 'latency', labelNames: ['tenant'], buckets: BUCKETS, registers: [r] });
      for (const [t, e, v] of observations) {
        c.inc({ tenant: t, endpoint: e });
        h.observe({ tenant: t }, v);
      }
      c.inc({ tenant: 'acme', endpoint: 'POST /v1/query' }, 5);
    });
    expect(ours).toBe(theirs);
    expect(ours).toContain('t_duration_seconds_bucket{le="0.001",tenant="acme"} 2');
    expect(ours).toContain('t_requests_total{tenant="acme",endpoint="POST /v1/query"} 7');
  });

  it('remove() drops every series of a label value, reset() all of them', async () => {
    const c = new CounterSeries('t_total', 'x', ['tenant', 'endpoint']);
    c.inc(['acme', 'a']);
    c.inc(['acme', 'b']);
    c.inc(['globex', 'a']);
    c.remove({ tenant: 'acme' });
    expect(c.get().values).toEqual([{ labels: { tenant: 'globex', endpoint: 'a' }, value: 1 }]);
    c.reset();
    expect(c.get().values).toEqual([]);
  });
});
