import type { Finding, Severity } from './finding.ts';
import { CHECKS } from './run.ts';

const LEVEL: Record<Severity, 'note' | 'warning' | 'error'> = { info: 'note', low: 'note', medium: 'warning', high: 'error', critical: 'error' };

/**
 * SARIF 2.1.0, for code-scanning dashboards; valid against the official schema (test/doctor/sarif.test.ts).
 * No informationUri: it is optional, and a placeholder address would send readers nowhere.
 */
export function toSarif(findings: Finding[]): Record<string, unknown> {
  const ruleIds = [...new Set([...CHECKS.map((c) => c.id), ...findings.map((f) => f.id)])];
  return {
    $schema: 'https://json.schemastore.org/sarif-2.1.0.json',
    version: '2.1.0',
    runs: [
      {
        tool: {
          driver: {
            name: 'tenantgate doctor',
            rules: ruleIds.map((id) => ({ id, shortDescription: { text: CHECKS.find((c) => c.id === id)?.title ?? id }, properties: { tags: ['security'] } })),
          },
        },
        results: findings.map((f) => ({
          ruleId: f.id,
          level: LEVEL[f.severity],
          message: { text: `${f.message}. Fix: ${f.fix}` },
          locations: [{ logicalLocations: [{ name: f.object, kind: 'object' }] }],
          // The fix again on its own, for tools that act on it rather than show it.
          properties: { severity: f.severity, fix: f.fix },
        })),
      },
    ],
  };
}
