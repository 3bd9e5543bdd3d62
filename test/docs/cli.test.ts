/**
 * docs/cli.md is the command reference users get with the package; these tests keep it in step with
 * the command tree the CLI really has (`createProgram` in src/cli/main.ts):
 *
 * - every command (groups like `tenant` included) has one heading whose text starts with the code
 *   span `tenantgate <command> <args…>`, naming each of its arguments as `<name>`, and no heading
 *   documents a command that does not exist;
 * - under its heading, up to the next heading, a `| Flag | Meaning |` table lists each of its
 *   options (first cell: the flags as code, e.g. `--tier <tier>`), and only those; options with a
 *   default say `default \`value\``, required ones say "required";
 * - the program's own options (`--config`, `--json`) are in the table under "Global options";
 * - no command listed under "Not built yet" (the code spans that start each list item) exists.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Command, Option } from 'commander';
import { describe, expect, it } from 'vitest';
import { createProgram } from '../../src/cli/main.ts';
import { codeSpans, headings, tableRows, type Heading } from './markdown.ts';

const DOC = readFileSync(join(import.meta.dirname, '..', '..', 'docs', 'cli.md'), 'utf8');
const GLOBAL = 'Global options';
const NOT_BUILT = 'Not built yet';

interface Cmd {
  path: string;
  command: Command;
}

function commands(): Cmd[] {
  const program = createProgram({ stdout: () => {}, stderr: () => {}, env: {}, cwd: '/', isTTY: false });
  const out: Cmd[] = [{ path: '', command: program }];
  const walk = (c: Command, prefix: string) => {
    for (const sub of c.commands) {
      const path = prefix ? `${prefix} ${sub.name()}` : sub.name();
      out.push({ path, command: sub });
      walk(sub, path);
    }
  };
  walk(program, '');
  return out;
}

interface Documented {
  path: string;
  usage: string;
  heading: Heading;
}

/** Headings that document a command: text starting with `tenantgate …`; the path is the words before the first <arg>, [arg] or --flag. */
function documentedCommands(all: Heading[]): Documented[] {
  const out: Documented[] = [];
  for (const h of all) {
    const m = /^`tenantgate(?: ([^`]*))?`/.exec(h.text);
    if (!m) continue;
    const usage = (m[1] ?? '').trim();
    const words: string[] = [];
    for (const w of usage.split(/\s+/).filter(Boolean)) {
      if (/^[<[-]/.test(w)) break;
      words.push(w);
    }
    out.push({ path: words.join(' '), usage, heading: h });
  }
  return out;
}

/** Long flags in each `| Flag | Meaning |` row of a section: `--tier` from `--tier <tier>`. */
function flagRows(h: Heading): Array<{ longs: string[]; meaning: string; line: number }> {
  return tableRows(h.body, ['Flag', 'Meaning'], h.line + 1).map(({ cells, line }) => ({
    longs: codeSpans(cells[0] ?? '').flatMap((span) => [...span.matchAll(/(?<![\w-])--[a-z][a-z0-9-]*/g)].map((m) => m[0])),
    meaning: cells[1] ?? '',
    line,
  }));
}

const name = (path: string) => (path ? `\`tenantgate ${path}\`` : 'the global options');

describe('docs/cli.md matches the command tree', () => {
  const cmds = commands();
  const all = headings(DOC);
  const docs = documentedCommands(all);
  const sectionOf = (c: Cmd): Heading | undefined => (c.path === '' ? all.find((h) => h.text === GLOBAL) : docs.find((d) => d.path === c.path)?.heading);

  it('has a heading for every command', () => {
    const missing = cmds.filter((c) => c.path !== '' && !docs.some((d) => d.path === c.path)).map((c) => `tenantgate ${c.path}`);
    expect(missing, 'commands with no heading in docs/cli.md (add "### `tenantgate <command> <args>`" and a section)').toEqual([]);
    expect(all.some((h) => h.text === GLOBAL), `docs/cli.md needs a "${GLOBAL}" heading`).toBe(true);
  });

  it('documents no command that does not exist, and each once', () => {
    const known = new Set(cmds.map((c) => c.path));
    const stale = docs.filter((d) => !known.has(d.path)).map((d) => `docs/cli.md:${d.heading.line}: tenantgate ${d.path}`);
    expect(stale, 'headings for commands createProgram does not have').toEqual([]);
    const twice = docs.filter((d, i) => docs.findIndex((e) => e.path === d.path) !== i).map((d) => `docs/cli.md:${d.heading.line}: tenantgate ${d.path}`);
    expect(twice, 'commands with more than one heading').toEqual([]);
  });

  it("names each command's arguments in its heading", () => {
    const problems: string[] = [];
    for (const c of cmds) {
      const d = docs.find((x) => x.path === c.path);
      if (!d) continue;
      const args = c.command.registeredArguments.map((a) => (a.required ? `<${a.name()}${a.variadic ? '...' : ''}>` : `[${a.name()}${a.variadic ? '...' : ''}]`));
      const written = d.usage.split(/\s+/).filter((w) => /^[<[]/.test(w));
      if (written.join(' ') !== args.join(' ')) problems.push(`docs/cli.md:${d.heading.line}: tenantgate ${c.path} takes ${args.join(' ') || 'no arguments'}, the heading says ${written.join(' ') || 'none'}`);
    }
    expect(problems).toEqual([]);
  });

  it('lists every flag of every command under its heading, and no other', () => {
    const problems: string[] = [];
    for (const c of cmds) {
      const h = sectionOf(c);
      if (!h) continue; // reported above
      const rows = flagRows(h);
      const documented = rows.flatMap((r) => r.longs);
      const own = c.command.options.map((o) => o.long).filter((l): l is string => Boolean(l));
      for (const flag of own) if (!documented.includes(flag)) problems.push(`${name(c.path)}: flag ${flag} is not in the | Flag | Meaning | table under its heading (docs/cli.md:${h.line})`);
      for (const r of rows) for (const flag of r.longs) if (!own.includes(flag)) problems.push(`docs/cli.md:${r.line}: ${name(c.path)} has no flag ${flag}`);
      if (own.length === 0 && rows.length > 0) problems.push(`docs/cli.md:${h.line}: ${name(c.path)} has no flags, but its section has a flag table`);
    }
    expect(problems).toEqual([]);
  });

  it('gives the default of each flag that has one, and says which are required', () => {
    const problems: string[] = [];
    for (const c of cmds) {
      const h = sectionOf(c);
      if (!h) continue;
      const rows = flagRows(h);
      for (const o of c.command.options as Option[]) {
        const row = rows.find((r) => r.longs.includes(o.long ?? ''));
        if (!row) continue;
        if (o.defaultValue !== undefined && !o.negate) {
          const said = /default `([^`]+)`/.exec(row.meaning)?.[1];
          if (said !== String(o.defaultValue)) problems.push(`docs/cli.md:${row.line}: ${name(c.path)} ${o.long} defaults to ${String(o.defaultValue)}; say "default \`${String(o.defaultValue)}\`"${said ? ` (it says ${said})` : ''}`);
        }
        if (o.mandatory && !/\brequired\b/i.test(row.meaning)) problems.push(`docs/cli.md:${row.line}: ${name(c.path)} ${o.long} is required; say so`);
      }
    }
    expect(problems).toEqual([]);
  });

  it('lists under "Not built yet" only commands that do not exist', () => {
    const section = all.find((h) => h.text === NOT_BUILT);
    expect(section, `docs/cli.md needs a "${NOT_BUILT}" section`).toBeDefined();
    const known = new Set(cmds.map((c) => c.path));
    // Each list item starts with the planned commands as code spans (`backup` and `restore`: …); the rest is prose.
    const planned = section!.body
      .map((l) => /^\s*[-*]\s+((?:`[^`]+`(?:\s*(?:,|and)\s*)?)+)/.exec(l)?.[1] ?? '')
      .flatMap((lead) => codeSpans(lead))
      .map((s) => s.replace(/^tenantgate\s+/, '').trim());
    expect(planned.length, `no commands listed under "${NOT_BUILT}"`).toBeGreaterThan(0);
    const built = planned.filter((p) => known.has(p));
    expect(built, `listed under "${NOT_BUILT}" but built: document them as commands instead`).toEqual([]);
  });
});
