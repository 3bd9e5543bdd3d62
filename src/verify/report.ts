import type { VerifyReport } from './run.ts';

/** Plain-text report: a summary, every leak, and skipped probes grouped by reason. */
export function formatReport(r: VerifyReport): string {
  const lines: string[] = [];
  lines.push(`tenantgate verify: ${r.ok ? 'PASS' : r.summary.leak ? 'LEAK' : 'ERROR'} — ${r.probes} probes, ${r.pairs.covered} of ${r.pairs.total} tenant pairs${r.pairs.stopped ? ` (${r.pairs.sampled} sampled; stopped at the time budget)` : r.pairs.sampled < r.pairs.total ? ' (sampled)' : ''}, ${r.datasets.length} dataset(s), ${r.tenants} tenant(s), ${r.ms} ms`);
  lines.push(`results: ${r.summary.pass} pass, ${r.summary.leak} LEAK, ${r.summary.error} error, ${r.summary.skipped} skipped; canaries planted ${r.canaries.planted}, removed ${r.canaries.removed}`);
  for (const d of r.datasets) if (d.skipped) lines.push(`dataset ${d.name} skipped: ${d.skipped}`);
  const leaks = r.results.filter((x) => x.status === 'LEAK');
  if (leaks.length) {
    lines.push('', 'LEAKS:');
    for (const l of leaks) lines.push(`  LEAK ${l.probe} [${l.path}] ${l.dataset}: ${l.a} → ${l.b}: ${l.detail}`);
  }
  const errors = r.results.filter((x) => x.status === 'error');
  if (errors.length) {
    lines.push('', 'ERRORS (a probe that cannot run proves nothing):');
    for (const l of errors) lines.push(`  ERROR ${l.probe} [${l.path}] ${l.dataset}: ${l.a} → ${l.b}: ${l.detail}`);
  }
  const skipped = new Map<string, Set<string>>();
  for (const s of r.results) if (s.status === 'skipped') (skipped.get(s.detail ?? '') ?? skipped.set(s.detail ?? '', new Set()).get(s.detail ?? '')!).add(s.probe);
  if (skipped.size) {
    lines.push('', 'skipped:');
    for (const [reason, ids] of skipped) lines.push(`  ${[...ids].join(', ')}: ${reason}`);
  }
  return `${lines.join('\n')}\n`;
}
