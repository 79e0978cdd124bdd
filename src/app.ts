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
import { redisSharedState } from './shared/shared-state.js';
import { openArchive } from './telemetry/archive-factory.js';

/** A running node. */
export interface Server {
  readonly port: number;
  /** Graceful stop: gateway first (clients told 1001), then the tracker and the archive flushed. */
  shutdown(): Promise<void>;
}

/** Key prefix of everything fieldtrack stores in Redis. */
const REDIS_PREFIX = 'fieldtrack:';

/** Starts a node on `config`. */
export async function startServer(config: Config, log: Logger, clock: Clock = systemClock): Promise<Server> {
  const metrics = new Metrics();
  const archive = await openArchive(config, log, metrics);
  // With REDIS_URL the node shares alerts, positions and ownership with its peers;
  // without it the tracker uses the in-process twins.
  const shared = config.REDIS_URL !== undefined ? redisSharedState(config.REDIS_URL, REDIS_PREFIX, log) : undefined;
  if (shared !== undefined) log.info({ node: shared.nodeId }, 'multi-node mode: shared state in redis');
  const tracker = await createTracker({ config, clock, log, metrics, archive, ...(shared ? { shared } : {}) });
  const gateway = await startGateway({ config, log, metrics, tracker });
  return {
    port: gateway.port,
    async shutdown() {
      await gateway.shutdown(config.SHUTDOWN_TIMEOUT_MS / 2);
      await archive.close(config.SHUTDOWN_TIMEOUT_MS / 4);
    },
  };
}
