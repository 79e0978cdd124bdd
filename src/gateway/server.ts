/**
 * The gateway: one uWS app serving the WebSocket endpoints, the HTTP API and the
 * operations routes, plus its graceful shutdown. It knows sockets, frames and tokens;
 * everything the server *does* is behind the `Tracker` it is given.
 */
import type { Tracker } from '../actors/api.js';
import type { Config } from '../config.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import { CloseCode, ErrorCode } from '../protocol.js';
import { TokenVerifier } from './auth.js';
import { deviceEndpoint } from './device-endpoint.js';
import { type HttpDeps, route } from './http.js';
import { InflightTracker } from './inflight.js';
import { registerApiRoutes } from './routes.js';
import { safetyEndpoint } from './safety-endpoint.js';
import { type Connection, closeConnection, type EndpointDeps, registerSocketEndpoint } from './socket-endpoint.js';
import { loadUws, type us_listen_socket, type WebSocket } from './uws.js';

export interface GatewayDeps {
  config: Config;
  log: Logger;
  metrics: Metrics;
  tracker: Tracker;
}

/** A listening gateway. */
export interface Gateway {
  /** The port actually bound (useful with PORT=0). */
  readonly port: number;
  /**
   * Stops accepting, lets running handlers answer, closes every socket with 1001 and
   * flushes the tracker. Bounded by `timeoutMs` for the handler wait.
   */
  shutdown(timeoutMs: number): Promise<void>;
}

/** Builds the app, registers every route and listens on HOST:PORT. */
export async function startGateway({ config, log, metrics, tracker }: GatewayDeps): Promise<Gateway> {
  const uws = loadUws();
  const app = uws.App();
  const verifier = new TokenVerifier(config.jwtSecret);
  const inflight = new InflightTracker();
  const connections = new Set<WebSocket<Connection>>();
  let shuttingDown = false;

  const endpointDeps: EndpointDeps = {
    config,
    log,
    metrics,
    verifier,
    inflight,
    connections,
    isShuttingDown: () => shuttingDown,
  };
  const httpDeps: HttpDeps = { log, metrics, verifier, maxBodyBytes: config.MAX_HTTP_BODY_BYTES };

  registerSocketEndpoint(app, deviceEndpoint(tracker, endpointDeps), endpointDeps);
  registerSocketEndpoint(app, safetyEndpoint(tracker, endpointDeps), endpointDeps);
  registerApiRoutes(app, tracker, httpDeps);

  route(app, 'get', '/healthz', {}, httpDeps, () => ({ status: 200, json: { ok: true } }));
  route(app, 'get', '/readyz', {}, httpDeps, async () => {
    const components = await tracker.readiness();
    const down = Object.entries(components)
      .filter(([, health]) => !health.ok)
      .map(([name]) => name);
    if (shuttingDown) down.push('gateway');
    return { status: down.length === 0 ? 200 : 503, json: { ok: down.length === 0, down, components } };
  });
  route(app, 'get', '/metrics', {}, httpDeps, async () => ({
    status: 200,
    text: await metrics.registry.metrics(),
    contentType: metrics.registry.contentType,
  }));
  app.any('/*', (res, req) => {
    const path = req.getUrl();
    res.cork(() => {
      res
        .writeStatus('404 Not Found')
        .writeHeader('content-type', 'application/json')
        .end(JSON.stringify({ code: ErrorCode.notFound, msg: `no route ${path.slice(0, 200)}` }));
    });
  });

  const listenSocket = await new Promise<us_listen_socket>((resolve, reject) => {
    app.listen(config.HOST, config.PORT, (socket) => {
      if (socket) resolve(socket);
      else reject(new Error(`cannot listen on ${config.HOST}:${config.PORT} (address in use or not allowed)`));
    });
  });
  const port = uws.us_socket_local_port(listenSocket as unknown as Parameters<typeof uws.us_socket_local_port>[0]);

  return {
    port,
    async shutdown(timeoutMs) {
      if (shuttingDown) return;
      shuttingDown = true;
      uws.us_listen_socket_close(listenSocket);
      const answered = await inflight.drain(timeoutMs);
      if (!answered) log.warn({ pending: inflight.size }, 'shutdown: some handlers did not finish in time');
      for (const ws of [...connections]) closeConnection(ws, CloseCode.goingAway, 'server shutting down');
      await tracker.close();
    },
  };
}
