/**
 * Composition root: builds one node from its configuration — archive, behaviour,
 * gateway — and tears it down in the reverse order. Nothing else wires modules together.
 */
import type { Tracker } from './actors/api.js';
import { createTracker } from './actors/index.js';
import { type Clock, systemClock } from './clock.js';
import { ClusteredTracker } from './cluster/clustered-tracker.js';
import type { Config } from './config.js';
import { EventLog } from './events/event-log.js';
import { Webhooks } from './events/webhooks.js';
import { startGateway } from './gateway/server.js';
import type { Logger } from './log.js';
import { Metrics } from './metrics.js';
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

/** Starts a node on `config`. */
export async function startServer(config: Config, log: Logger, clock: Clock = systemClock): Promise<Server> {
  const metrics = new Metrics();
  const archive = await openArchive(config, log, metrics);
  // Events for the dispatch system: the log first, then the webhooks that follow it, then
  // the behaviour that appends to it (recovery may already fire deadlines).
  const events = await EventLog.open(config.DATA_DIR, clock, log);
  events.subscribe((ev) => metrics.eventsStored.inc({ type: ev.type }));
  const webhooks = await Webhooks.open(
    { dataDir: config.DATA_DIR, events, clock, log, metrics },
    {
      allowPrivate: config.WEBHOOK_ALLOW_PRIVATE,
      maxInFlight: config.WEBHOOK_MAX_IN_FLIGHT,
      timeoutMs: config.WEBHOOK_TIMEOUT_MS,
      retry: {
        baseMs: config.WEBHOOK_RETRY_BASE_MS,
        maxMs: config.WEBHOOK_RETRY_MAX_MS,
        forMs: config.WEBHOOK_RETRY_FOR_MS,
      },
      retentionMs: config.EVENTS_RETENTION_HOURS * 3600 * 1000,
    },
  );
  // With REDIS_URL the node shares alerts, positions and ownership with its peers and the
  // local tracker is wrapped in the clustered one; without it, in-process twins and the
  // local tracker alone.
  const base = { config, clock, log, metrics, archive, events };
  let tracker: Tracker;
  if (config.REDIS_URL !== undefined) {
    const shared = redisSharedState(config.REDIS_URL, REDIS_PREFIX, log);
    log.info({ node: shared.nodeId }, 'multi-node mode: shared state in redis');
    tracker = await ClusteredTracker.start({ ...base, shared });
  } else {
    tracker = await createTracker({ ...base, shared: memorySharedState(clock) });
  }
  const gateway = await startGateway({ config, clock, log, metrics, tracker, events, webhooks });
  return {
    port: gateway.port,
    async shutdown() {
      await gateway.shutdown(config.SHUTDOWN_TIMEOUT_MS / 2);
      await webhooks.close();
      await events.close();
      await archive.close(config.SHUTDOWN_TIMEOUT_MS / 4);
    },
  };
}
