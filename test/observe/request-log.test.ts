import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { requestLog, type RequestLogFields } from '../../src/observe/request-log.ts';

describe('request log line', () => {
  const cases: RequestLogFields[] = [
    { request_id: 'r-1', tenant: 'acme_corp', principal: 'key:abcdefabcdef', endpoint: 'POST /v1/query', status: 200, code: null, ms: 1.234, rows: 3 },
    // What a client controls (the request id it sent, a refused path) must stay one well-formed JSON line.
    { request_id: 'a"b\\c\n{"x":1}\u2028', tenant: '*', principal: null, endpoint: 'GET /v1/x"y', status: 401, code: 'AUTH_MISSING', ms: 0, rows: null },
  ];

  it.each(cases)('is the line pino writes for the same fields, one line of JSON (%#)', (f) => {
    const base = { service: 'tenantgate' };
    let fromPino = '';
    pino({ level: 'info', base }, { write: (l: string) => (fromPino += l) }).info(f, 'request');
    let ours = '';
    requestLog((l) => (ours += l), base)(f);
    expect(ours.endsWith('\n')).toBe(true);
    expect(ours.slice(0, -1)).not.toContain('\n');
    const a = JSON.parse(ours) as Record<string, unknown>;
    const b = JSON.parse(fromPino) as Record<string, unknown>;
    expect(typeof a['time']).toBe('number');
    delete a['time'];
    delete b['time'];
    expect(a).toEqual(b);
    expect(Object.keys(a)).toEqual(Object.keys(b));
  });
});
