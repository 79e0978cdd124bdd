/**
 * The gateway: one uWS app serving the WebSocket endpoints, the HTTP API and the
 * operations routes, plus its graceful shutdown. It knows sockets, frames and tokens;
 * everything the server *does* is behind the `Tracker` it is given.
 */

import { accessSync, constants } from 'node:fs';
import type { Tracker } from '../actors/api.js';
import type { Clock } from '../clock.js';
import type { Config } from '../config.js';
import type { EventReader } from '../events/event-reader.js';
import type { WebhookApi } from '../events/webhook-api.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import { CloseCode, ErrorCode } from '../protocol.js';
import type { ShareHub } from '../share/share-hub.js';
import type { ShareLinks } from '../share/share-links.js';
import { Admission } from './admission.js';
import { AppPresence } from './app-presence.js';
import { TokenVerifier } from './auth.js';
import { defaultConsoleSources, loadConsoleFiles, registerConsoleRoutes } from './console-routes.js';
import { deviceEndpoint } from './device-endpoint.js';
import { registerEventRoutes } from './event-routes.js';
import { FixLane } from './fix-lane.js';
import { type HttpDeps, route } from './http.js';
import { InflightTracker } from './inflight.js';
import { LoadShedder } from './load-shed.js';
import { tileSettings } from './map-tiles.js';
import { readyAnswer } from './readiness.js';
import { registerApiRoutes } from './routes.js';
import { safetyEndpoint } from './safety-endpoint.js';
import { loadSharePage, registerShareRoutes, type SharePage } from './share-routes.js';
import { type Connection, closeConnection, type EndpointDeps, registerSocketEndpoint } from './socket-endpoint.js';
import type { StaticFiles } from './static-files.js';
import { registerTrackerAppRoutes } from './tracker-apps.js';
import { loadUws, type TemplatedApp, type Uws, type us_listen_socket, type WebSocket } from './uws.js';

export interface GatewayDeps {
  config: Config;
  clock: Clock;
  log: Logger;
  metrics: Metrics;
  tracker: Tracker;
  /** The customer tracking links (built by the composition root); without them no `/t/` routes. */
  share?: { links: ShareLinks; hub: ShareHub };
  /** Events for the dispatch system: the pull API and stream read here, webhooks are managed here. */
  events: EventReader;
  webhooks: WebhookApi;
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

/** Thrown when TLS is configured but cannot be set up. */
export class TlsConfigError extends Error {
  override name = 'TlsConfigError';
}

/**
 * A plain app, or a TLS one when both TLS files are set. The files are checked here
 * because uWS would otherwise start a listener that fails every handshake.
 */
function createApp(uws: Uws, config: Config): TemplatedApp {
  const { TLS_CERT_FILE: cert, TLS_KEY_FILE: key, TLS_KEY_PASSPHRASE: passphrase } = config;
  if (cert === undefined && key === undefined) return uws.App();
  if (cert === undefined || key === undefined) {
    throw new TlsConfigError('TLS_CERT_FILE and TLS_KEY_FILE must be set together');
  }
  for (const file of [cert, key]) {
    try {
      accessSync(file, constants.R_OK);
    } catch {
      throw new TlsConfigError(`TLS file ${file} is missing or not readable`);
    }
  }
  return uws.SSLApp({
    cert_file_name: cert,
    key_file_name: key,
    ...(passphrase === undefined ? {} : { passphrase }),
    ssl_ciphers: TLS_CIPHERS,
  });
}

/** Modern AEAD suites only (TLS 1.2 ECDHE with GCM or ChaCha20; TLS 1.3 suites are always on). */
const TLS_CIPHERS = [
  'ECDHE-ECDSA-AES128-GCM-SHA256',
  'ECDHE-RSA-AES128-GCM-SHA256',
  'ECDHE-ECDSA-AES256-GCM-SHA384',
  'ECDHE-RSA-AES256-GCM-SHA384',
  'ECDHE-ECDSA-CHACHA20-POLY1305',
  'ECDHE-RSA-CHACHA20-POLY1305',
].join(':');

/**
 * The safety console's files, read once. Without them (an unbuilt checkout) the node
 * still serves devices and the API; `/console` then answers 503 saying what is missing.
 */
function consoleFiles(log: Logger): StaticFiles | Error {
  try {
    return loadConsoleFiles(defaultConsoleSources());
  } catch (err) {
    log.warn({ err }, 'safety console unavailable');
    return err as Error;
  }
}

/** The customer page's files, read once; like the console's, missing files only disable the page. */
function sharePage(log: Logger): SharePage | Error {
  try {
    return loadSharePage(defaultConsoleSources());
  } catch (err) {
    log.warn({ err }, 'customer tracking page unavailable');
    return err as Error;
  }
}

/** Builds the app, registers every route and listens on HOST:PORT. */
export async function startGateway({
  config,
  clock,
  log,
  metrics,
  tracker,
  share,
  events,
  webhooks,
}: GatewayDeps): Promise<Gateway> {
  const uws = loadUws();
  const app = createApp(uws, config);
  const verifier = new TokenVerifier(config.jwtSecret, config.TOKEN_MAX_LIFETIME_SEC, clock);
  const inflight = new InflightTracker(clock);
  const connections = new Set<WebSocket<Connection>>();
  let shuttingDown = false;

  const endpointDeps: EndpointDeps = {
    config,
    clock,
    log,
    metrics,
    verifier,
    inflight,
    connections,
    admission: new Admission({
      maxConnections: config.MAX_CONNECTIONS,
      maxPerAddress: config.MAX_CONNECTIONS_PER_ADDRESS,
      upgradesPerSec: config.UPGRADE_RATE_PER_SEC,
      upgradeBurst: config.UPGRADE_BURST,
    }),
    shedder: new LoadShedder({
      maxInFlight: config.MAX_FIXES_IN_FLIGHT,
      minInFlight: config.SHED_MIN_IN_FLIGHT,
      targetMs: config.SHED_TARGET_MS,
      intervalMs: config.SHED_INTERVAL_MS,
    }),
    ...(config.FIX_LANE_SLICE_MS > 0
      ? {
          lane: new FixLane(config.FIX_LANE_SLICE_MS, (err) =>
            log.error({ err }, 'queued ping or batch failed before its answer'),
          ),
        }
      : {}),
    isShuttingDown: () => shuttingDown,
  };
  const httpDeps: HttpDeps = { clock, log, metrics, verifier, maxBodyBytes: config.MAX_HTTP_BODY_BYTES };
  // A tracker app's technician counts as online until OFFLINE_MS pass without a fix.
  const presence = new AppPresence(tracker, clock, config.OFFLINE_MS);

  registerSocketEndpoint(app, deviceEndpoint(tracker, endpointDeps, presence), endpointDeps);
  registerSocketEndpoint(app, safetyEndpoint(tracker, endpointDeps), endpointDeps);
  registerApiRoutes(app, tracker, httpDeps, config.RETENTION_DAYS);
  registerTrackerAppRoutes(app, tracker, httpDeps, {
    config,
    clock,
    metrics,
    inflight,
    shedder: endpointDeps.shedder,
    presence,
  });
  const tiles = tileSettings(config);
  registerConsoleRoutes(app, config, httpDeps, consoleFiles(log), tiles);
  if (share !== undefined) {
    registerShareRoutes(app, httpDeps, {
      ...share,
      baseUrl: config.SHARE_BASE_URL,
      tls: config.TLS_CERT_FILE !== undefined,
      tiles,
      page: sharePage(log),
    });
  }
  const streams = registerEventRoutes(app, httpDeps, events, webhooks);

  route(app, 'get', '/healthz', {}, httpDeps, () => ({ status: 200, json: { ok: true } }));
  route(app, 'get', '/readyz', {}, httpDeps, async (call) =>
    readyAnswer(await tracker.readiness(), shuttingDown, call.query.get('for')),
  );
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
      streams.closeAll();
      const answered = await inflight.drain(timeoutMs);
      if (!answered) log.warn({ pending: inflight.size }, 'shutdown: some handlers did not finish in time');
      for (const ws of [...connections]) closeConnection(ws, CloseCode.goingAway, 'server shutting down');
      share?.hub.stop();
      presence.close();
      await tracker.close();
    },
  };
}
