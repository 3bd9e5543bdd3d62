import type { FastifyInstance } from 'fastify';
import { Gateway, type GatewayOptions } from '../../src/gateway/gateway.ts';
import { buildServer, type ServerOptions } from '../../src/http/server.ts';
import { createApiKey } from '../../src/identify/api-keys.ts';
import type { Fixture } from '../support/backends.ts';

export interface Served {
  url: string;
  app: FastifyInstance;
  gateway: Gateway;
  keys: { acme: string; globex: string; ops: string; acmeWriter: string; acmeAdmin: string; globexAdmin: string };
  post(path: string, body: unknown, headers?: Record<string, string>): Promise<{ status: number; json: any; headers: Headers }>; // eslint-disable-line @typescript-eslint/no-explicit-any
  get(path: string, headers?: Record<string, string>): Promise<{ status: number; json: any; headers: Headers }>; // eslint-disable-line @typescript-eslint/no-explicit-any
  patch(path: string, body: unknown, headers?: Record<string, string>): Promise<{ status: number; json: any; headers: Headers }>; // eslint-disable-line @typescript-eslint/no-explicit-any
  delete(path: string, headers?: Record<string, string>): Promise<{ status: number; json: any; headers: Headers }>; // eslint-disable-line @typescript-eslint/no-explicit-any
  close(): Promise<void>;
}

/** The gateway over HTTP on a random local port, with demo keys, for a fixture database. */
export async function serve(fx: Fixture, options: ServerOptions & { env?: Record<string, string | undefined>; gateway?: Partial<GatewayOptions> } = {}): Promise<Served> {
  const gate = await fx.gate();
  const gateway = await Gateway.create({ gate, secret: fx.secret, env: options.env ?? {}, ...options.gateway });
  const app = buildServer(gateway, options);
  await app.listen({ host: '127.0.0.1', port: 0 });
  const address = app.server.address();
  const url = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
  const key = async (tenant: string | undefined, role: string) =>
    (await createApiKey(fx.db, fx.config, fx.names, fx.secret, { role, ...(tenant ? { tenant } : {}) })).key;
  const keys = {
    acme: await key('acme_corp', 'analyst'),
    globex: await key('globex_inc', 'analyst'),
    ops: await key(undefined, 'ops'),
    acmeWriter: await key('acme_corp', 'writer'),
    acmeAdmin: await key('acme_corp', 'owner'),
    globexAdmin: await key('globex_inc', 'owner'),
  };
  const call = async (method: string, path: string, body: unknown, headers: Record<string, string> = {}) => {
    const res = await fetch(url + path, {
      method,
      headers: { ...(body === undefined ? {} : { 'content-type': 'application/json' }), ...headers },
      ...(body === undefined ? {} : { body: typeof body === 'string' ? body : JSON.stringify(body) }),
    });
    const text = await res.text();
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      json = text;
    }
    return { status: res.status, json, headers: res.headers };
  };
  return {
    url,
    app,
    gateway,
    keys,
    post: (path, body, headers) => call('POST', path, body, headers),
    get: (path, headers) => call('GET', path, undefined, headers),
    patch: (path, body, headers) => call('PATCH', path, body, headers),
    delete: (path, headers) => call('DELETE', path, undefined, headers),
    close: () => app.close(),
  };
}

/** Follow a job over GET /v1/admin/jobs/{id} (as `headers`' platform key) until it ends (done, failed or cancelled); returns it. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export async function jobEnded(s: Served, job: { id: string; state: string }, headers: Record<string, string>, timeoutMs = 60_000): Promise<any> {
  let j = job;
  for (const until = Date.now() + timeoutMs; !['done', 'failed', 'cancelled'].includes(j.state) && Date.now() < until; ) {
    await new Promise((r) => setTimeout(r, 100));
    j = (await s.get(`/v1/admin/jobs/${job.id}`, headers)).json.job;
  }
  return j;
}
