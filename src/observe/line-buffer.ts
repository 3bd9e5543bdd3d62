/**
 * Log lines gathered and written together. A write to a pipe or file is a system call on the
 * request path (Node writes stdout synchronously there): one per request line cost the gateway
 * about 6% of its CPU under load (docs/benchmarks.md, section 9). Lines wait at most `maxMs`
 * or until `maxBytes` have gathered; flush() on shutdown writes the rest. A crash can lose the
 * last `maxMs` of log lines, never an audit record (the audit trail has its own store).
 */
export interface LineBuffer {
  write(line: string): void;
  flush(): void;
}

export function lineBuffer(out: (text: string) => void, opts: { maxMs?: number; maxBytes?: number } = {}): LineBuffer {
  const maxMs = opts.maxMs ?? 25;
  const maxBytes = opts.maxBytes ?? 64 * 1024;
  let lines: string[] = [];
  let bytes = 0;
  let timer: NodeJS.Timeout | undefined;
  const flush = () => {
    if (timer) clearTimeout(timer);
    timer = undefined;
    if (lines.length === 0) return;
    const text = lines.join('');
    lines = [];
    bytes = 0;
    out(text);
  };
  return {
    write(line: string) {
      lines.push(line);
      bytes += line.length;
      if (bytes >= maxBytes) flush();
      else if (!timer) (timer = setTimeout(flush, maxMs)).unref();
    },
    flush,
  };
}
