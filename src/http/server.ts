import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { randomUUID } from 'node:crypto';
import { TenantGateError, isTenantGateError } from '../errors/index.ts';
import type { Gateway, GatewayRequest, RequestRecord } from '../gateway/gateway.ts';
import { openApiDocument } from './openapi.ts';
import { adminSuspension, adminTenant } from '../lifecycle/suspend.ts';
import { registerJobRoutes } from '../lifecycle/jobs/routes.ts';
import { registerEraseRoutes } from '../lifecycle/erase/routes.ts';
import { registerExportRoutes } from '../lifecycle/export/routes.ts';
import { registerMigrateRoutes } from '../migrate/routes.ts';

export interface ServerOptions {
  bodyLimit?: number;
  /** Whole-request deadline: a client dripping headers or a body is cut off after it. */
  requestTimeoutMs?: number;
}

declare module 'fastify' {
  interface FastifyRequest {
    /** The pipeline's record of this request (absent for health, metrics and the OpenAPI document). */
    tg: RequestRecord | null;
  }
}

/** A request header by its lower-case name (Node lower-cases the names it parses). */
function header(req: FastifyRequest, name: string): string | undefined {
  const v = req.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

/** Infrastructure endpoints: measured, never audited (a probe every few seconds is not a request of anyone's). */
const UNAUDITED = new Set(['/healthz', '/readyz', '/metrics', '/openapi.json']);

/** `POST /v1/tenants/:tenant/query` → `POST /v1/query`: the tenant prefix is where the tenant came from, not another endpoint. */
function endpointOf(req: FastifyRequest): string {
  const route = req.routeOptions.url;
  if (!route) return `${req.method} ${req.url.split('?')[0]!.slice(0, 200)}`;
  return `${req.method} ${route.replace('/tenants/:tenant', '')}`;
}

/**
 * Fastify adapter for the gateway: routes, error mapping, request ids. Every request but the
 * infrastructure endpoints gets a record (onRequest) that the pipeline fills and that is ended
 * (audit, metrics, security events) before the answer leaves (`answer`: from the endpoint, the
 * error handler or the not-found handler), with Server-Timing on every answer, errors included.
 */
export function buildServer(gateway: Gateway, options: ServerOptions = {}): FastifyInstance {
  const config = gateway.config;
  const app = Fastify({
    loggerInstance: gateway.log as FastifyBaseLogger,
    // One log line per request comes from the gateway (with tenant and principal): Fastify's own are off.
    logController: new LogController({ disableRequestLogging: true }),
    // No child logger per request (a pino child is an allocation and a bindings serialisation on
    // every request); the one line that logs from a request names its request id itself.
    childLoggerFactory: (logger) => logger,
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
  app.decorateRequest('tg', null);

  const tenantHeader = config.effective.identity.tenant_header.toLowerCase();
  const gwRequest = (req: FastifyRequest): GatewayRequest => ({
    apiKey: header(req, 'x-api-key'),
    authorization: header(req, 'authorization'),
    header: header(req, tenantHeader),
    path: (req.params as { tenant?: string } | undefined)?.tenant,
    host: header(req, 'host'),
  });
  /** Route params are parsed after onRequest: the tenant of /v1/tenants/{tenant}/… joins the record later. */
  const withPathTenant = (req: FastifyRequest, r: RequestRecord): RequestRecord => {
    const path = (req.params as { tenant?: string } | undefined)?.tenant;
    if (path !== undefined) r.req.path = path;
    return r;
  };
  const rec = (req: FastifyRequest): RequestRecord => withPathTenant(req, req.tg as RequestRecord);

  // Callback-style hooks and no onSend hook: an async hook is a promise and a tick on every request.
  app.addHook('onRequest', (req, reply, done) => {
    reply.header('x-request-id', req.id);
    // The matched route, not the URL: no string to cut per request (an unmatched path has none and is audited).
    if (!UNAUDITED.has(req.routeOptions.url ?? '')) req.tg = gateway.begin({ id: req.id, endpoint: endpointOf(req), client: req.ip ?? null, req: gwRequest(req) });
    done();
  });

  /**
   * End the request's record, then answer: in durable mode the answer waits for its audit record,
   * and a record that could not be written turns it into DB_UNAVAILABLE. Every audited answer
   * (success, error, not found) leaves through here, with Server-Timing.
   */
  const answer = async (req: FastifyRequest, reply: FastifyReply, status: number, body: unknown, error?: TenantGateError) => {
    const r = req.tg;
    if (r) {
      req.tg = null; // once, whatever happens next
      withPathTenant(req, r); // also when the endpoint never ran (a body that failed to parse)
      const failure = await gateway.finish(r, status, error);
      reply.header('server-timing', r.timings.header());
      if (r.permit && !error) for (const [k, v] of Object.entries(r.permit.headers)) reply.header(k, v);
      if (failure) return reply.code(failure.status).send(errorBody(failure));
    }
    return reply.code(status).send(body);
  };
  /** A pipeline endpoint: its answer goes out (200) through `answer`; a throw goes to the error handler. */
  const endpoint = (fn: (req: FastifyRequest) => Promise<unknown>) => async (req: FastifyRequest, reply: FastifyReply) => answer(req, reply, 200, await fn(req));

  for (const prefix of ['/v1', '/v1/tenants/:tenant']) {
    app.post(`${prefix}/query`, endpoint((req) => gateway.semantic(rec(req), req.body)));
    app.post(
      `${prefix}/queries`,
      endpoint(async (req) => {
        const body = req.body as { async?: unknown } | undefined;
        if (body && typeof body === 'object' && body.async === true) throw new TenantGateError('QUERY_INVALID', 'async queries are not available yet; send "async": false or omit it');
        return gateway.sql(rec(req), req.body);
      }),
    );
    app.get(`${prefix}/datasets`, endpoint((req) => gateway.datasets(rec(req))));
    app.get(`${prefix}/tenant`, endpoint((req) => gateway.tenant(rec(req))));
    app.get(`${prefix}/audit`, endpoint((req) => gateway.auditTrail(rec(req), req.query)));
  }
  const id = (req: FastifyRequest) => (req.params as { id?: string }).id;
  app.get('/v1/admin/audit', endpoint((req) => gateway.adminAudit(rec(req), req.query)));
  app.get('/v1/admin/tenants/:id/quotas', endpoint((req) => gateway.adminQuotas(rec(req), id(req))));
  app.patch('/v1/admin/tenants/:id/quotas', endpoint((req) => gateway.setAdminQuotas(rec(req), id(req), req.body)));
  app.get('/v1/admin/tenants/:id/move', endpoint((req) => gateway.adminMove(rec(req), id(req))));
  app.post('/v1/admin/tenants/:id/move', async (req, reply) => {
    const r = await gateway.startMove(rec(req), id(req), req.body);
    return answer(req, reply, r.status, r.body);
  });
  app.delete('/v1/admin/tenants/:id/move', endpoint((req) => gateway.abortMove(rec(req), id(req))));
  // Lifecycle (src/lifecycle/suspend.ts): these answer for a suspended tenant too.
  app.get('/v1/admin/tenants/:id', endpoint((req) => adminTenant(gateway, rec(req), id(req))));
  app.post('/v1/admin/tenants/:id/suspend', endpoint((req) => adminSuspension(gateway, rec(req), id(req), req.body, 'suspend')));
  app.post('/v1/admin/tenants/:id/resume', endpoint((req) => adminSuspension(gateway, rec(req), id(req), req.body, 'resume')));
  registerJobRoutes(app, gateway, endpoint, rec); // GET/DELETE /v1/admin/jobs[/:id] (src/lifecycle/jobs/routes.ts)
  registerEraseRoutes(app, gateway, rec, answer); // POST /v1/admin/tenants/:id/erase (src/lifecycle/erase/routes.ts)
  registerExportRoutes(app, gateway, rec, answer); // POST /v1/admin/tenants/:id/export, /v1/exports[/:id[/archive]] (src/lifecycle/export/routes.ts)
  registerMigrateRoutes(app, gateway, endpoint, rec, answer); // GET/POST /v1/admin/migrations (src/migrate/routes.ts)
  app.get('/healthz', async () => ({ status: 'ok' }));
  app.get('/readyz', async (_req, reply) => {
    try {
      await gateway.gate.database.pool.query('SELECT 1');
      return { status: 'ready' };
    } catch {
      return reply.code(503).send(errorBody(new TenantGateError('DB_UNAVAILABLE', 'the database does not answer')));
    }
  });
  // Tenant ids are labels here: unless metrics.public, only a platform credential may scrape.
  app.get('/metrics', async (req, reply) => {
    if (!config.effective.metrics.public) {
      const principal = await gateway.identify(gwRequest(req));
      if (principal.access !== 'platform') throw new TenantGateError('POLICY_DENIED', 'metrics are for platform admins (or set metrics.public)');
    }
    reply.header('content-type', gateway.metrics.contentType);
    return gateway.metrics.text();
  });
  const openapi = openApiDocument();
  app.get('/openapi.json', async () => openapi);

  app.setNotFoundHandler((req, reply) => {
    const e = new TenantGateError('NOT_FOUND', 'no such endpoint');
    return answer(req, reply, 404, errorBody(e), e);
  });
  app.setErrorHandler((err, req, reply) => {
    const e = toTenantGateError(err);
    if (e.code === 'INTERNAL') req.log.error({ err, request_id: req.id }, 'internal error');
    for (const [k, v] of Object.entries(e.headers ?? {})) reply.header(k, v);
    return answer(req, reply, e.status, errorBody(e), e);
  });
  app.addHook('onClose', async () => gateway.close());
  return app;
}

function errorBody(e: TenantGateError) {
  return { error: { code: e.code, message: e.message, hint: e.hint } };
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
