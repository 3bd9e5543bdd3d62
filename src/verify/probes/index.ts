/**
 * The probe catalogue of `tenantgate verify`, listed in docs/security.md ("tenantgate verify").
 * One file per path; each probe acts as tenant A against tenant B's canary rows.
 */
import { directProbes } from './direct.ts';
import { gatewayWallProbes } from './gateway-wall.ts';
import { httpProbes } from './http.ts';
import { auditProbe, libraryProbes, sessionProbe } from './library.ts';
import { poolProbes } from './pool.ts';
import type { Probe, ProbePath } from './probe.ts';
import { statementProbes } from './statement.ts';

export * from './probe.ts';

export const PROBES: Probe[] = [
  ...libraryProbes('read'),
  ...libraryProbes('write'),
  ...libraryProbes('admin'),
  sessionProbe,
  auditProbe,
  ...poolProbes(),
  ...statementProbes('read'),
  ...statementProbes('write'),
  ...gatewayWallProbes(),
  ...directProbes(),
  ...httpProbes(),
];

/** The catalogue without the code: what docs/security.md lists. */
export function catalogue(): Array<{ id: string; path: ProbePath; tries: string }> {
  return PROBES.map(({ id, path, tries }) => ({ id, path, tries }));
}
