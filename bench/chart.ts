/**
 * A dependency-free SVG chart for docs/: panels side by side, each with one line per series over
 * the same x values (log-scaled x, as concurrency doubles), points marked, a legend underneath.
 */
export interface Series {
  name: string;
  color: string;
  /** y per x; NaN or undefined leaves a gap. */
  ys: Array<number | undefined>;
  dashed?: boolean;
}

export interface Panel {
  title: string;
  yLabel: string;
  series: Series[];
  /** Log-scaled y (latencies spread over orders of magnitude). */
  logY?: boolean;
}

const W = 420;
const H = 300;
const M = { left: 62, right: 16, top: 34, bottom: 44 };
const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
const num = (n: number) => (n >= 1000 ? `${Math.round(n / 100) / 10}k` : n >= 10 ? String(Math.round(n)) : String(Math.round(n * 100) / 100));

function ticks(lo: number, hi: number, log: boolean): number[] {
  if (log) {
    const out: number[] = [];
    for (let e = Math.floor(Math.log10(lo)); e <= Math.ceil(Math.log10(hi)); e++) for (const m of [1, 2, 5]) out.push(m * 10 ** e);
    return out.filter((t) => t >= lo / 1.01 && t <= hi * 1.01);
  }
  const step = 10 ** Math.floor(Math.log10(hi / 4 || 1));
  const k = [1, 2, 5, 10].find((m) => hi / (m * step) <= 6) ?? 10;
  return Array.from({ length: Math.floor(hi / (k * step)) + 1 }, (_, i) => i * k * step);
}

function panel(p: Panel, xs: number[], ox: number): string {
  const vals = p.series.flatMap((s) => s.ys.filter((y): y is number => y !== undefined && Number.isFinite(y) && (!p.logY || y > 0)));
  const hiRaw = Math.max(...vals, 1e-9);
  const loRaw = p.logY ? Math.min(...vals) : 0;
  const lo = p.logY ? 10 ** Math.floor(Math.log10(loRaw)) : 0;
  const hi = p.logY ? 10 ** Math.ceil(Math.log10(hiRaw)) : hiRaw * 1.1;
  const iw = W - M.left - M.right;
  const ih = H - M.top - M.bottom;
  const lx = (x: number) => ox + M.left + (xs.length === 1 ? iw / 2 : ((Math.log2(x) - Math.log2(xs[0] as number)) / (Math.log2(xs[xs.length - 1] as number) - Math.log2(xs[0] as number))) * iw);
  const ly = (y: number) => M.top + ih - (p.logY ? (Math.log10(y) - Math.log10(lo)) / (Math.log10(hi) - Math.log10(lo)) : y / hi) * ih;
  const parts: string[] = [];
  parts.push(`<text x="${ox + W / 2}" y="20" text-anchor="middle" font-weight="bold">${esc(p.title)}</text>`);
  for (const t of ticks(p.logY ? lo : 0, hi, !!p.logY)) {
    parts.push(`<line x1="${ox + M.left}" x2="${ox + W - M.right}" y1="${ly(t).toFixed(1)}" y2="${ly(t).toFixed(1)}" stroke="#e4e4e4"/>`);
    parts.push(`<text x="${ox + M.left - 6}" y="${(ly(t) + 4).toFixed(1)}" text-anchor="end">${num(t)}</text>`);
  }
  for (const x of xs) parts.push(`<text x="${lx(x).toFixed(1)}" y="${H - M.bottom + 16}" text-anchor="middle">${x}</text>`);
  parts.push(`<text x="${ox + M.left + iw / 2}" y="${H - 8}" text-anchor="middle">concurrent connections</text>`);
  parts.push(`<text transform="translate(${ox + 14},${M.top + ih / 2}) rotate(-90)" text-anchor="middle">${esc(p.yLabel)}</text>`);
  parts.push(`<rect x="${ox + M.left}" y="${M.top}" width="${iw}" height="${ih}" fill="none" stroke="#999"/>`);
  for (const s of p.series) {
    const pts = xs.map((x, i) => [x, s.ys[i]] as const).filter(([, y]) => y !== undefined && Number.isFinite(y) && (!p.logY || y > 0)) as Array<readonly [number, number]>;
    if (pts.length === 0) continue;
    parts.push(`<polyline fill="none" stroke="${s.color}" stroke-width="2"${s.dashed ? ' stroke-dasharray="5,4"' : ''} points="${pts.map(([x, y]) => `${lx(x).toFixed(1)},${ly(y).toFixed(1)}`).join(' ')}"/>`);
    for (const [x, y] of pts) parts.push(`<circle cx="${lx(x).toFixed(1)}" cy="${ly(y).toFixed(1)}" r="3" fill="${s.color}"/>`);
  }
  return parts.join('\n');
}

export function lineChart(panels: Panel[], xs: number[], legend: Array<{ name: string; color: string; dashed?: boolean }>): string {
  const width = W * panels.length;
  const height = H + 28;
  const items = legend.map((l, i) => {
    const x = 20 + i * Math.floor((width - 40) / legend.length);
    return `<line x1="${x}" x2="${x + 24}" y1="${H + 12}" y2="${H + 12}" stroke="${l.color}" stroke-width="2"${l.dashed ? ' stroke-dasharray="5,4"' : ''}/><text x="${x + 30}" y="${H + 16}">${esc(l.name)}</text>`;
  });
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="11">
<rect width="100%" height="100%" fill="#fff"/>
${panels.map((p, i) => panel(p, xs, i * W)).join('\n')}
${items.join('\n')}
</svg>
`;
}
