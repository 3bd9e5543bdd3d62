/**
 * An open-loop load client for bench/noisy.ts, run as its own process so its CPU is not the
 * gateway's: sends `rate` requests a second (whatever the answers take) for `seconds`, each with
 * one of the keys in turn, and prints one JSON line: counts by status and error code, latency
 * percentiles of the 2xx answers (ms).
 *
 *   node --import tsx bench/load-client.ts URL PATH RATE SECONDS KEYS(comma) BODY(json)
 */
const [url, path, rateS, secondsS, keysS, body] = process.argv.slice(2) as [string, string, string, string, string, string];
const rate = Number(rateS);
const seconds = Number(secondsS);
const keys = keysS.split(',');
const latencies: number[] = [];
const codes: Record<string, number> = {};
const started = performance.now();
const pending: Array<Promise<void>> = [];
let n = 0;
await new Promise<void>((resolve) => {
  const tick = () => {
    const due = Math.floor(((performance.now() - started) / 1000) * rate);
    while (n < due && performance.now() - started < seconds * 1000) {
      const key = keys[n++ % keys.length]!;
      const t0 = performance.now();
      pending.push(
        fetch(url + path, { method: 'POST', headers: { 'x-api-key': key, 'content-type': 'application/json' }, body })
          .then(async (r) => {
            const text = await r.text();
            const code = r.status === 200 ? '200' : `${r.status} ${(JSON.parse(text) as { error?: { code?: string } }).error?.code ?? ''}`;
            codes[code] = (codes[code] ?? 0) + 1;
            if (r.status === 200) latencies.push(performance.now() - t0);
          })
          .catch((err: unknown) => {
            codes[`fetch ${(err as Error).message}`] = (codes[`fetch ${(err as Error).message}`] ?? 0) + 1;
          }),
      );
    }
    if (performance.now() - started < seconds * 1000) setTimeout(tick, 2);
    else resolve();
  };
  tick();
});
await Promise.all(pending);
latencies.sort((a, b) => a - b);
const pct = (p: number) => latencies[Math.min(latencies.length - 1, Math.floor((p / 100) * latencies.length))] ?? NaN;
process.stdout.write(`${JSON.stringify({ sent: n, codes, p50: pct(50), p99: pct(99), max: latencies[latencies.length - 1] ?? NaN })}\n`);
