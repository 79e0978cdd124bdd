/**
 * Composition root: builds one node from its configuration — archive, behaviour,
 * gateway — and tears it down in the reverse order. Nothing else wires modules together.
 */
import { createTracker } from './actors/index.js';
import { type Clock, systemClock } from './clock.js';
import type { Config } from './config.js';
import { startGateway } from './gateway/server.js';
import type { Logger } from './log.js';
import { Metrics } from './metrics.js';
import { openArchive } from './telemetry/archive-factory.js';

/** A running node. */
export interface Server {
  readonly port: number;
  /** Graceful stop: gateway first (clients told 1001), then the tracker and the archive flushed. */
  shutdown(): Promise<void>;
}

/** Thrown for a configuration this build cannot serve yet. */
export class UnsupportedConfigError extends Error {
  override name = 'UnsupportedConfigError';
}

/** Starts a node on `config`. */
export async function startServer(config: Config, log: Logger, clock: Clock = systemClock): Promise<Server> {
  if (config.REDIS_URL !== undefined) {
    // Refuse rather than silently run as a lone node while operators believe nodes share state.
    throw new UnsupportedConfigError(
      'REDIS_URL is set, but multi-node shared state is not part of this build yet; unset it to run one node with in-process state',
    );
  }
  const metrics = new Metrics();
  const archive = await openArchive(config, log, metrics);
  const tracker = await createTracker({ config, clock, log, metrics, archive });
  const gateway = await startGateway({ config, log, metrics, tracker });
  return {
    port: gateway.port,
    async shutdown() {
      await gateway.shutdown(config.SHUTDOWN_TIMEOUT_MS / 2);
      await archive.close(config.SHUTDOWN_TIMEOUT_MS / 4);
    },
  };
}
