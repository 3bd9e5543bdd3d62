/**
 * docs/errors.md and src/errors/codes.ts list the same codes, with the same HTTP status and
 * CLI exit code: the doc is the contract clients read, the registry is what the code answers.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ERROR_CODES } from '../../src/errors/index.ts';

const DOC = readFileSync(join(import.meta.dirname, '..', '..', 'docs', 'errors.md'), 'utf8');

/** Pipeline order; the table is grouped by stage in this order. */
const STAGES = ['identify', 'resolve tenant', 'authorize', 'admit', 'plan', 'execute', 'configuration and provisioning', 'any'];

interface DocRow {
  stage: string;
  code: string;
  status: number;
  exit: number;
  when: string;
  todo: string;
}

function docRows(): DocRow[] {
  const lines = DOC.split('\n');
  const header = lines.findIndex((l) => /^\|\s*Stage\s*\|\s*Code\s*\|\s*HTTP\s*\|\s*Exit\s*\|/.test(l));
  if (header < 0) throw new Error('docs/errors.md has no | Stage | Code | HTTP | Exit | … table');
  const rows: DocRow[] = [];
  for (const line of lines.slice(header + 2)) {
    if (!line.startsWith('|')) break;
    const cells = line.split('|').slice(1, -1).map((c) => c.trim());
    const code = /^`([A-Z][A-Z0-9_]*)`$/.exec(cells[1] ?? '')?.[1];
    if (cells.length !== 6 || !code) throw new Error(`docs/errors.md: malformed table row: ${line}`);
    rows.push({ stage: cells[0] as string, code, status: Number(cells[2]), exit: Number(cells[3]), when: cells[4] as string, todo: cells[5] as string });
  }
  return rows;
}

describe('docs/errors.md matches the error registry', () => {
  const rows = docRows();

  it('documents exactly the codes in ERROR_CODES, each once', () => {
    const documented = rows.map((r) => r.code);
    expect(new Set(documented).size, 'a code is documented twice').toBe(documented.length);
    expect([...documented].sort()).toEqual(Object.keys(ERROR_CODES).sort());
  });

  it('gives each code the HTTP status and exit code of the registry', () => {
    const fromDoc = Object.fromEntries(rows.map((r) => [r.code, { status: r.status, exit: r.exit }]));
    const fromRegistry = Object.fromEntries(Object.entries(ERROR_CODES).map(([code, spec]) => [code, { status: spec.status, exit: spec.exit }]));
    expect(fromDoc).toEqual(fromRegistry);
  });

  it('says when each code happens and what to do', () => {
    for (const r of rows) {
      expect(r.when.length, `${r.code}: when`).toBeGreaterThan(10);
      expect(r.todo.length, `${r.code}: what to do`).toBeGreaterThan(5);
    }
  });

  it('groups the table by pipeline stage, in pipeline order', () => {
    const order = rows.map((r) => STAGES.indexOf(r.stage));
    expect(order.filter((i) => i < 0), `unknown stage in ${rows.filter((r) => !STAGES.includes(r.stage)).map((r) => r.code)}`).toEqual([]);
    expect(order).toEqual([...order].sort((a, b) => a - b));
  });

  it('every exit code is one the CLI documents (1 failure, 2 usage or config)', () => {
    for (const [code, spec] of Object.entries(ERROR_CODES)) expect([1, 2], code).toContain(spec.exit);
  });
});
