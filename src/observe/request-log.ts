/** What the one log line of a request says. */
export interface RequestLogFields {
  request_id: string;
  tenant: string;
  principal: string | null;
  endpoint: string;
  status: number;
  code: string | null;
  ms: number;
  rows: number | null;
}

export type RequestLog = (f: RequestLogFields) => void;

const PINO_INFO = 30;

/**
 * The request line formatted by hand, in the shape pino writes (level, time, the base fields, the
 * fields, msg): the line every request writes, where pino's generic serialiser was 3% of the
 * gateway's CPU under load (docs/benchmarks.md, section 9). Other log lines still go through pino.
 */
export function requestLog(write: (line: string) => void, base: Record<string, string>): RequestLog {
  const head = Object.entries(base)
    .map(([k, v]) => `,${JSON.stringify(k)}:${JSON.stringify(v)}`)
    .join('');
  const text = (v: string | null) => (v === null ? 'null' : JSON.stringify(v));
  return (f) =>
    write(
      `{"level":${PINO_INFO},"time":${Date.now()}${head},"request_id":${text(f.request_id)},"tenant":${text(f.tenant)},"principal":${text(f.principal)},"endpoint":${text(f.endpoint)},"status":${f.status},"code":${text(f.code)},"ms":${f.ms},"rows":${f.rows ?? 'null'},"msg":"request"}\n`,
    );
}
