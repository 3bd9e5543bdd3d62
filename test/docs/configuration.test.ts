/**
 * docs/configuration.md is the configuration reference users get with the package; these tests
 * keep it in step with the schema (src/config/schema.ts) and DEFAULTS (src/config/defaults.ts):
 *
 * - every key path of `configSchema` has a row in one of the doc's `| Key | Type | Default | Meaning |`
 *   tables (full dotted path in the first column, `[]` for array items, `<name>` for record keys),
 *   or is covered by a `<path>.*` row whose Type names the section with the same keys;
 * - every documented key exists in the schema (no stale rows);
 * - a Default cell that starts with a `code span` is the default, and equals the schema's own
 *   default or DEFAULTS at that path; where there is neither, the cell is prose (required, none,
 *   or where the value comes from);
 * - the full example (and its tenants/*.yaml file) loads without error.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { loadConfig } from '../../src/config/load.ts';
import { DEFAULTS } from '../../src/config/defaults.ts';
import { configSchema } from '../../src/config/schema.ts';
import { codeSpans, headings, tableRows } from './markdown.ts';
import { schemaAt, schemaPaths, type SchemaPath } from './schema-paths.ts';

const FILE = join(import.meta.dirname, '..', '..', 'docs', 'configuration.md');
const DOC = readFileSync(FILE, 'utf8');
const HEADER = ['Key', 'Type', 'Default', 'Meaning'];

interface Row {
  /** As written, e.g. `database.placements.<name>.url_env`. */
  written: string;
  /** Record keys folded to `<>`, as schemaPaths writes them. */
  path: string;
  type: string;
  default: string;
  meaning: string;
  line: number;
}

const norm = (p: string) => p.replace(/<[^>]*>/g, '<>');

function docRows(): Row[] {
  const rows = tableRows(DOC.split('\n'), HEADER).map(({ cells, line }) => {
    const [key = '', type = '', dflt = '', meaning = ''] = cells;
    const written = /^`([^`]+)`$/.exec(key)?.[1];
    if (cells.length !== 4 || !written) throw new Error(`docs/configuration.md:${line}: a key row needs 4 cells and the full key path as one code span in the first: ${cells.join(' | ')}`);
    return { written, path: norm(written), type, default: dflt, meaning, line };
  });
  if (rows.length === 0) throw new Error('docs/configuration.md has no | Key | Type | Default | Meaning | table');
  return rows;
}

/** DEFAULTS at a dotted path without placeholders (defaults.quotas.burst → 60). */
function fromDefaults(path: string): { value: unknown } | undefined {
  if (/[<[]/.test(path)) return undefined;
  let v: unknown = DEFAULTS;
  for (const k of path.split('.')) {
    if (v === null || typeof v !== 'object' || !Object.hasOwn(v, k)) return undefined;
    v = (v as Record<string, unknown>)[k];
  }
  return { value: v };
}

const expectedDefault = (p: SchemaPath | undefined, path: string) => p?.default ?? fromDefaults(path);

describe('docs/configuration.md matches the configuration schema', () => {
  const rows = docRows();
  const paths = schemaPaths(configSchema);
  const byPath = new Map(paths.map((p) => [p.path, p]));
  const aliases = rows.filter((r) => r.path.endsWith('.*'));
  const keyRows = rows.filter((r) => !r.path.endsWith('.*'));
  const documented = new Set(keyRows.map((r) => r.path));

  it('documents every key of the schema', () => {
    const covered = (path: string) => documented.has(path) || aliases.some((a) => path.startsWith(a.path.slice(0, -1)));
    const missing = paths.filter((p) => p.leaf && !covered(p.path)).map((p) => p.path.replace(/<>/g, '<name>'));
    expect(missing, `keys in src/config/schema.ts with no row in docs/configuration.md (add a | \`key\` | type | default | meaning | row to its section's table)`).toEqual([]);
  });

  it('documents no key the schema does not have', () => {
    const stale = keyRows.filter((r) => !byPath.has(r.path)).map((r) => `docs/configuration.md:${r.line}: \`${r.written}\``);
    expect(stale, 'documented keys that src/config/schema.ts does not have (renamed or removed?)').toEqual([]);
  });

  it('documents each key once', () => {
    const seen = new Map<string, number>();
    const twice: string[] = [];
    for (const r of rows) {
      const first = seen.get(r.path);
      if (first === undefined) seen.set(r.path, r.line);
      else twice.push(`docs/configuration.md: \`${r.written}\` at lines ${first} and ${r.line}`);
    }
    expect(twice, 'keys documented twice').toEqual([]);
  });

  it('a `section.*` row names a section with exactly the same keys', () => {
    for (const a of aliases) {
      const at = a.path.slice(0, -2);
      const ref = codeSpans(a.type)[0];
      const where = `docs/configuration.md:${a.line}: \`${a.written}\``;
      expect(schemaAt(configSchema, at), `${where}: ${at} is not a key of the schema`).toBeDefined();
      expect(ref, `${where}: its Type cell must name, as a code span, the section whose keys it takes (e.g. \`defaults.quotas\`)`).toBeDefined();
      const refSchema = schemaAt(configSchema, norm(ref!));
      expect(refSchema, `${where}: \`${ref}\` is not a key of the schema`).toBeDefined();
      const own = schemaPaths(schemaAt(configSchema, at)!).map((p) => p.path);
      const theirs = schemaPaths(refSchema!).map((p) => p.path);
      expect(own, `${where} says it takes the keys of \`${ref}\`, but the schema's keys differ: document them one by one`).toEqual(theirs);
      expect(documented.has(norm(ref!)) || theirs.every((k) => documented.has(`${norm(ref!)}.${k}`)), `${where}: \`${ref}\`'s keys are not documented`).toBe(true);
    }
  });

  it('gives the default of every key that has one, equal to the schema and DEFAULTS', () => {
    const problems: string[] = [];
    for (const r of keyRows) {
      const p = byPath.get(r.path);
      if (!p) continue; // reported as stale
      const want = expectedDefault(p, r.path);
      const literal = r.default.startsWith('`') ? codeSpans(r.default)[0] : undefined;
      const where = `docs/configuration.md:${r.line}: \`${r.written}\``;
      if (want && literal === undefined) problems.push(`${where}: default is ${JSON.stringify(want.value)}; write it as a code span at the start of the Default cell`);
      else if (!want && literal !== undefined) problems.push(`${where}: documents default \`${literal}\`, but the schema has none (write prose: required, none, or where the value comes from)`);
      else if (want && literal !== undefined) {
        let got: unknown;
        try {
          got = parse(literal);
        } catch {
          got = literal;
        }
        if (!isDeepStrictEqual(got, want.value)) problems.push(`${where}: documents default \`${literal}\` (${JSON.stringify(got)}), the code has ${JSON.stringify(want.value)}`);
      }
    }
    expect(problems).toEqual([]);
  });

  it('says what each key is', () => {
    const thin = rows.filter((r) => r.type.length === 0 || r.meaning.length < 10).map((r) => `docs/configuration.md:${r.line}: \`${r.written}\``);
    expect(thin, 'rows with an empty Type or a Meaning under 10 characters').toEqual([]);
  });
});

describe('the full example in docs/configuration.md', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tenantgate-docs-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  /** Fenced yaml blocks whose first line is `# <file>` (e.g. `# tenantgate.yaml`, `# tenants/globex_inc.yaml`). */
  function exampleFiles(): Map<string, string> {
    const files = new Map<string, string>();
    for (const m of DOC.matchAll(/^```yaml\n# (tenantgate\.yaml|tenants\/[a-z0-9_-]+\.yaml)\b[^\n]*\n([\s\S]*?)^```$/gm)) files.set(m[1]!, m[2]!);
    return files;
  }

  it('loads: every key in it is valid, and the tenant file joins the tenants', async () => {
    const sectionNames = headings(DOC).map((h) => h.text);
    expect(sectionNames, 'docs/configuration.md needs a "Full example" section').toContain('Full example');
    const files = exampleFiles();
    expect([...files.keys()], 'the full example: a ```yaml block starting `# tenantgate.yaml` and one starting `# tenants/<id>.yaml`').toEqual(
      expect.arrayContaining(['tenantgate.yaml', expect.stringMatching(/^tenants\//)]),
    );
    mkdirSync(join(dir, 'tenants'), { recursive: true });
    for (const [name, text] of files) writeFileSync(join(dir, name), text);
    const config = await loadConfig(join(dir, 'tenantgate.yaml'), { env: {} });
    const fromFile = [...files.keys()].filter((f) => f.startsWith('tenants/')).map((f) => f.slice('tenants/'.length, -'.yaml'.length));
    for (const id of fromFile) expect(config.tenants.has(id), `tenant ${id} from tenants/${id}.yaml`).toBe(true);
  });
});
