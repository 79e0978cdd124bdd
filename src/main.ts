/**
 * `npm start`: reads the configuration, refuses to start on anything unsafe or half
 * working (bad variables, no JWT secret, no native uWS), runs the node and shuts it down
 * gracefully on SIGTERM/SIGINT within SHUTDOWN_TIMEOUT_MS.
 */
import { startServer } from './app.js';
import { ConfigError, INSECURE_DEV_SECRET, loadConfig } from './config.js';
import { loadUws } from './gateway/uws.js';
import { createLogger } from './log.js';

async function main(): Promise<void> {
  let config: ReturnType<typeof loadConfig>;
  try {
    config = loadConfig();
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    process.stderr.write(`fieldtrack: ${err.message}\n`);
    process.exit(2);
  }
  const log = createLogger(config.LOG_LEVEL);
  if (config.jwtSecret === INSECURE_DEV_SECRET) {
    log.warn(
      { secret: INSECURE_DEV_SECRET },
      '!!! INSECURE DEVELOPMENT MODE: TRACKER_JWT_SECRET is unset and TRACKER_INSECURE_DEV=1; anyone can forge tokens. Never run this in production. !!!',
    );
  }
  try {
    loadUws();
  } catch (err) {
    log.fatal({ err }, 'cannot start without the native uWebSockets.js build');
    process.exit(1);
  }

  const server = await startServer(config, log);

  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'shutting down');
    const force = setTimeout(() => {
      log.error({ timeoutMs: config.SHUTDOWN_TIMEOUT_MS }, 'shutdown took too long; exiting anyway');
      process.exit(1);
    }, config.SHUTDOWN_TIMEOUT_MS);
    force.unref();
    server.shutdown().then(
      () => {
        log.info('shutdown complete');
        log.flush();
        process.exit(0);
      },
      (err: unknown) => {
        log.error({ err }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  // Only now: whoever waits for this line (a supervisor, a test) may stop the node at once,
  // and a SIGTERM that came before the handlers would kill it without a graceful shutdown.
  log.info({ host: config.HOST, port: server.port, dataDir: config.DATA_DIR }, 'listening');
}

main().catch((err: unknown) => {
  process.stderr.write(`fieldtrack: failed to start: ${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
