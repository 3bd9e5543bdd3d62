/** Just enough Markdown for the docs drift tests: headings, sections and pipe tables. */

export interface Heading {
  level: number;
  text: string;
  /** 1-based line of the heading. */
  line: number;
  /** The lines after the heading, up to the next heading of any level. */
  body: string[];
}

/** Headings outside fenced code blocks, each with the text up to the next heading. */
export function headings(doc: string): Heading[] {
  const lines = doc.split('\n');
  const out: Heading[] = [];
  let fenced = false;
  lines.forEach((line, i) => {
    if (/^\s*```/.test(line)) fenced = !fenced;
    const m = fenced ? null : /^(#{1,6})\s+(.*?)\s*$/.exec(line);
    if (m) out.push({ level: m[1]!.length, text: m[2]!, line: i + 1, body: [] });
    else out[out.length - 1]?.body.push(line);
  });
  return out;
}

export interface TableRow {
  cells: string[];
  /** 1-based line in the document (or in the section it was read from). */
  line: number;
}

/** Rows of every pipe table whose header cells are exactly `header` (case-insensitive), in order. */
export function tableRows(lines: string[], header: string[], firstLine = 1): TableRow[] {
  const want = header.map((h) => h.toLowerCase());
  const rows: TableRow[] = [];
  for (let i = 0; i < lines.length; i++) {
    const head = cells(lines[i]!);
    if (!head || head.length !== want.length || head.some((c, j) => c.toLowerCase() !== want[j])) continue;
    if (!/^\|[\s:|-]+\|$/.test((lines[i + 1] ?? '').trim())) continue;
    for (let j = i + 2; j < lines.length; j++) {
      const c = cells(lines[j]!);
      if (!c) break;
      rows.push({ cells: c, line: firstLine + j });
    }
  }
  return rows;
}

function cells(line: string): string[] | undefined {
  const t = line.trim();
  if (!t.startsWith('|') || !t.endsWith('|')) return undefined;
  // `\|` inside a cell is a literal bar.
  return t
    .slice(1, -1)
    .split(/(?<!\\)\|/)
    .map((c) => c.trim().replace(/\\\|/g, '|'));
}

/** The text of every `code span` in a string. */
export function codeSpans(text: string): string[] {
  return [...text.matchAll(/`([^`]+)`/g)].map((m) => m[1]!);
}
