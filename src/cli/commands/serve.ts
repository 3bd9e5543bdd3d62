import pino from 'pino';
import type { Config } from '../../config/types.ts';
import type { TenantGate } from '../../gate.ts';
import { Gateway } from '../../gateway/gateway.ts';
import { buildServer } from '../../http/server.ts';
import { startServeRunner } from '../../lifecycle/jobs/service.ts';
import { lineBuffer } from '../../observe/line-buffer.ts';
import { requestLog } from '../../observe/request-log.ts';
import type { CliIO } from '../io.ts';

export interface Serving {
  url: string;
  close(): Promise<void>;
}

/** Run the HTTP gateway until SIGINT/SIGTERM; returns once listening. */
export async function serveGateway(io: CliIO, config: Config, gate: TenantGate, secret: Buffer, options: { port?: number; host?: string; onClose?: () => Promise<void> }): Promise<Serving> {
  // JSON logs (pino), one line per request with its id, tenant and principal; TENANTGATE_LOG_LEVEL picks the level.
  // Written in batches (src/observe/line-buffer.ts), flushed at shutdown and on exit.
  const lines = lineBuffer((text) => io.stdout(text));
  process.once('exit', () => lines.flush());
  const base = { service: 'tenantgate' };
  const logger = pino({ level: io.env['TENANTGATE_LOG_LEVEL'] ?? 'info', base }, { write: (line: string) => lines.write(line) });
  const gateway = await Gateway.create({ gate, secret, env: io.env, logger, requestLog: logger.isLevelEnabled('info') ? requestLog((line) => lines.write(line), base) : () => {} });
  const app = buildServer(gateway);
  // The lifecycle job runner (src/lifecycle/jobs/): polls the owner database off the request path; stopped when the server closes.
  await startServeRunner(gateway);
  const host = options.host ?? config.effective.server.host;
  const port = options.port ?? config.effective.server.port;
  await app.listen({ host, port });
  const address = app.server.address();
  const bound = typeof address === 'object' && address ? address.port : port;
  const url = `http://${host.includes(':') ? `[${host}]` : host}:${bound}`;
  let closing: Promise<void> | undefined;
  const close = () =>
    (closing ??= (async () => {
      await app.close();
      await gate.close();
      await options.onClose?.();
      lines.flush();
    })());
  const onSignal = () => {
    io.stderr('\nshutting down\n');
    void close().then(() => process.exit(0));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  return { url, close };
}
