import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { randomUUID } from 'node:crypto';
import { ERROR_CODES, TenantGateError, isTenantGateError } from '../errors/index.ts';
import type { Gateway, GatewayRequest } from '../gateway/gateway.ts';
import { Timings } from '../gateway/timings.ts';
import { openApiDocument } from './openapi.ts';

export interface ServerOptions {
  bodyLimit?: number;
  /** Whole-request deadline: a client dripping headers or a body is cut off after it. */
  requestTimeoutMs?: number;
  logger?: boolean;
}

function header(req: FastifyRequest, name: string): string | undefined {
  const v = req.headers[name.toLowerCase()];
  return Array.isArray(v) ? v[0] : v;
}

/** Fastify adapter for the gateway: routes, error mapping, Server-Timing, request ids. */
export function buildServer(gateway: Gateway, options: ServerOptions = {}): FastifyInstance {
  const config = gateway.config;
  const app = Fastify({
    logger: options.logger ?? false,
    bodyLimit: options.bodyLimit ?? config.effective.server.body_limit_bytes,
    requestTimeout: options.requestTimeoutMs ?? 10_000,
    connectionTimeout: options.requestTimeoutMs ?? 10_000,
    genReqId: (req) => {
      const given = req.headers['x-request-id'];
      return typeof given === 'string' && /^[A-Za-z0-9._-]{1,64}$/.test(given) ? given : randomUUID();
    },
    return503OnClosing: true,
    // Node checks the request and header deadlines only this often (default 30 s).
    http: { connectionsCheckingInterval: Math.max(100, Math.min(1_000, Math.floor((options.requestTimeoutMs ?? 10_000) / 4))) } as never,
  });
  // JSON only: Fastify's default text/plain parser would hand a string to the JSON endpoints.
  app.removeContentTypeParser('text/plain');
  // Node's own header deadline (default 60 s) is the one a header-dripping client meets first.
  app.server.headersTimeout = options.requestTimeoutMs ?? 10_000;

  const tenantHeader = config.effective.identity.tenant_header;
  const gwRequest = (req: FastifyRequest): GatewayRequest => ({
    apiKey: header(req, 'x-api-key'),
    authorization: header(req, 'authorization'),
    header: header(req, tenantHeader),
    path: (req.params as { tenant?: string }).tenant,
    host: header(req, 'host'),
  });
  const send = (reply: FastifyReply, t: Timings, body: unknown) => {
    reply.header('server-timing', t.header());
    return reply.send(body);
  };

  app.addHook('onRequest', async (req, reply) => {
    reply.header('x-request-id', req.id);
  });

  for (const prefix of ['/v1', '/v1/tenants/:tenant']) {
    app.post(`${prefix}/query`, async (req, reply) => {
      const t = new Timings();
      return send(reply, t, await gateway.semantic(gwRequest(req), req.body, t));
    });
    app.post(`${prefix}/queries`, async (req, reply) => {
      const t = new Timings();
      const body = req.body as { async?: unknown } | undefined;
      if (body && typeof body === 'object' && body.async === true) throw new TenantGateError('QUERY_INVALID', 'async queries are not available yet; send "async": false or omit it');
      return send(reply, t, await gateway.sql(gwRequest(req), req.body, t));
    });
    app.get(`${prefix}/datasets`, async (req, reply) => {
      const t = new Timings();
      return send(reply, t, await gateway.datasets(gwRequest(req), t));
    });
    app.get(`${prefix}/tenant`, async (req, reply) => {
      const t = new Timings();
      return send(reply, t, await gateway.tenant(gwRequest(req), t));
    });
  }
  app.get('/healthz', async () => ({ status: 'ok' }));
  app.get('/readyz', async (_req, reply) => {
    try {
      await gateway.gate.database.pool.query('SELECT 1');
      return { status: 'ready' };
    } catch {
      return reply.code(503).send(errorBody(new TenantGateError('DB_UNAVAILABLE', 'the database does not answer')));
    }
  });
  const openapi = openApiDocument();
  app.get('/openapi.json', async () => openapi);

  app.setNotFoundHandler((_req, reply) => reply.code(404).send(errorBody(new TenantGateError('NOT_FOUND', 'no such endpoint'))));
  app.setErrorHandler((err, req, reply) => {
    const e = toTenantGateError(err);
    if (e.code === 'INTERNAL') req.log.error({ err }, 'internal error');
    if (e.code === 'RATE_LIMITED') reply.header('retry-after', '1');
    return reply.code(e.status).send(errorBody(e));
  });
  return app;
}

function errorBody(e: TenantGateError) {
  return { error: { code: e.code, message: e.message, hint: ERROR_CODES[e.code].hint } };
}

/** Fastify's own errors (body too large, bad JSON, media type) to stable codes; never a raw 500 for bad input. */
function toTenantGateError(err: unknown): TenantGateError {
  if (isTenantGateError(err)) return err;
  const e = err as { code?: string; statusCode?: number; message?: string };
  switch (e?.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return new TenantGateError('PAYLOAD_TOO_LARGE', 'the request body is too large');
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return new TenantGateError('UNSUPPORTED_MEDIA_TYPE', 'send Content-Type: application/json');
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return new TenantGateError('QUERY_INVALID', 'the body is not valid JSON');
  }
  if (err instanceof SyntaxError || err instanceof RangeError) return new TenantGateError('QUERY_INVALID', 'the body is not valid JSON');
  if (typeof e?.statusCode === 'number' && e.statusCode >= 400 && e.statusCode < 500) return new TenantGateError('QUERY_INVALID', e.message ?? 'bad request');
  return new TenantGateError('INTERNAL', 'internal error', { cause: err });
}
