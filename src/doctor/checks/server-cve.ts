import type { Check, Severity } from '../finding.ts';

/**
 * PostgreSQL CVEs that affect row level security, with the minor release of each branch that fixed
 * them. Same table as docs/security.md ("Server versions with known RLS CVEs"); keep them in step.
 */
export const RLS_CVES: Array<{ cve: string; title: string; severity: Severity; fixed: string[] }> = [
  { cve: 'CVE-2019-10130', title: 'selectivity estimators bypass row security policies', severity: 'medium', fixed: ['11.3', '10.8', '9.6.13'] },
  { cve: 'CVE-2023-2455', title: 'row security policies disregard user ID changes after inlining', severity: 'high', fixed: ['15.3', '14.8', '13.11', '12.15', '11.20'] },
  { cve: 'CVE-2024-10976', title: 'row security below subqueries disregards user ID changes', severity: 'high', fixed: ['17.2', '16.6', '15.10', '14.15', '13.18', '12.22'] },
];

/** `15.3` → 150003, `9.6.13` → 90613: the form of server_version_num. */
export function versionNum(v: string): number {
  const p = v.split('.').map(Number);
  if (p.some((x) => !Number.isInteger(x))) throw new Error(`bad version ${v}`);
  return (p[0] ?? 0) >= 10 ? (p[0] ?? 0) * 10000 + (p[1] ?? 0) : (p[0] ?? 0) * 10000 + (p[1] ?? 0) * 100 + (p[2] ?? 0);
}

/** The branch of a server_version_num: 150020 → 150000, 90613 → 90600. */
function branch(num: number): number {
  return num >= 100000 ? Math.floor(num / 10000) * 10000 : Math.floor(num / 100) * 100;
}

/**
 * Whether a server (server_version_num) lacks the fix: on a listed branch, below its fixed minor;
 * on a branch older than every listed one (end of life, never fixed), vulnerable; on a newer
 * branch than every listed one (released with the fix), not.
 */
export function lacksFix(serverNum: number, fixed: string[]): boolean {
  const fixes = fixed.map(versionNum);
  const b = branch(serverNum);
  const same = fixes.find((f) => branch(f) === b);
  if (same !== undefined) return serverNum < same;
  const branches = fixes.map(branch);
  if (b > Math.max(...branches)) return false;
  if (b < Math.min(...branches)) return true;
  return false; // a branch between listed ones that the advisory does not name: not known to be affected
}

export const serverCve: Check = {
  id: 'TG016',
  server: true,
  title: 'server version with a known row level security CVE',
  async run({ db }) {
    const r = await db.query<{ num: string; v: string }>(`SELECT current_setting('server_version_num') AS num, current_setting('server_version') AS v`);
    const num = Number(r.rows[0]?.num);
    if (!Number.isFinite(num) || num <= 0) return [];
    const v = r.rows[0]?.v ?? String(num);
    return RLS_CVES.filter((c) => lacksFix(num, c.fixed)).map((c) => ({
      id: this.id,
      severity: c.severity,
      object: `server ${v}`,
      message: `PostgreSQL ${v} lacks the fix for ${c.cve} (${c.title}); fixed in ${c.fixed.join(', ')}`,
      fix: `-- upgrade the server to the latest minor release of its branch (at least ${c.fixed.join(' / ')}), or to a supported major version`,
    }));
  },
};
