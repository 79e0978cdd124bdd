/**
 * Composition root: builds one node from its configuration — archive, behaviour,
 * gateway — and tears it down in the reverse order. Nothing else wires modules together.
 */
import type { Tracker } from './actors/api.js';
import { createTracker } from './actors/index.js';
import { type Clock, systemClock } from './clock.js';
import { ClusteredTracker } from './cluster/clustered-tracker.js';
import type { Config } from './config.js';
import { startGateway } from './gateway/server.js';
import type { Logger } from './log.js';
import { Metrics } from './metrics.js';
import type { RedisTarget } from './shared/redis-target.js';
import { memorySharedState, redisSharedState } from './shared/shared-state.js';
import { openArchive } from './telemetry/archive-factory.js';

/** A running node. */
export interface Server {
  readonly port: number;
  /** Graceful stop: gateway first (clients told 1001), then the tracker and the archive flushed. */
  shutdown(): Promise<void>;
}

/** Key prefix of everything fieldtrack stores in Redis. */
const REDIS_PREFIX = 'fieldtrack:';

/** Where the shared Redis is, from REDIS_URL or REDIS_SENTINELS; null without either (one node). */
function redisTarget(config: Config): RedisTarget | null {
  if (config.REDIS_URL !== undefined) return { url: config.REDIS_URL };
  if (config.REDIS_SENTINELS !== undefined && config.REDIS_SENTINEL_NAME !== undefined) {
    return {
      sentinels: config.REDIS_SENTINELS,
      name: config.REDIS_SENTINEL_NAME,
      ...(config.REDIS_PASSWORD !== undefined ? { password: config.REDIS_PASSWORD } : {}),
    };
  }
  return null;
}

/** Starts a node on `config`. */
export async function startServer(config: Config, log: Logger, clock: Clock = systemClock): Promise<Server> {
  const metrics = new Metrics();
  const archive = await openArchive(config, log, metrics);
  // With REDIS_URL the node shares alerts, positions and ownership with its peers and the
  // local tracker is wrapped in the clustered one; without it, in-process twins and the
  // local tracker alone.
  const base = { config, clock, log, metrics, archive };
  let tracker: Tracker;
  const redis = redisTarget(config);
  if (redis !== null) {
    const shared = redisSharedState(redis, REDIS_PREFIX, log, (what) => metrics.staleWritesRefused.inc({ what }));
    log.info({ node: shared.nodeId }, 'multi-node mode: shared state in redis');
    tracker = await ClusteredTracker.start({ ...base, shared });
  } else {
    tracker = await createTracker({ ...base, shared: memorySharedState(clock) });
  }
  const gateway = await startGateway({ config, clock, log, metrics, tracker });
  return {
    port: gateway.port,
    async shutdown() {
      await gateway.shutdown(config.SHUTDOWN_TIMEOUT_MS / 2);
      await archive.close(config.SHUTDOWN_TIMEOUT_MS / 4);
    },
  };
}
