/**
 * Composition root: builds one node from its configuration — archive, behaviour,
 * gateway — and tears it down in the reverse order. Nothing else wires modules together.
 */
import type { Tracker } from './actors/api.js';
import { createTracker } from './actors/index.js';
import { LiveFeed } from './actors/live-feed.js';
import { type Clock, systemClock } from './clock.js';
import { ClusteredTracker } from './cluster/clustered-tracker.js';
import type { Config } from './config.js';
import { type EtaEstimator, OsrmEstimator, StraightLineEstimator } from './eta/index.js';
import { EventLog } from './events/event-log.js';
import type { EventReader } from './events/event-reader.js';
import { EventRelay, relayNodeId } from './events/event-relay.js';
import { RedisEventStream } from './events/event-stream-redis.js';
import { SharedWebhooks } from './events/shared-webhooks.js';
import type { WebhookApi, WebhookOptions } from './events/webhook-api.js';
import { RedisWebhookStore } from './events/webhook-store-redis.js';
import { Webhooks } from './events/webhooks.js';
import { startGateway } from './gateway/server.js';
import type { Logger } from './log.js';
import { Metrics } from './metrics.js';
import { ShareHub } from './share/share-hub.js';
import { ShareLinks } from './share/share-links.js';
import { ShareTokens } from './share/share-token.js';
import type { RedisTarget } from './shared/redis-target.js';
import type { ShareRevocations } from './shared/share-revocations.js';
import { LocalShareRevocations } from './shared/share-revocations-local.js';
import { RedisShareRevocations } from './shared/share-revocations-redis.js';
import { memorySharedState, redisSharedState, type SharedState } from './shared/shared-state.js';
import { openArchive } from './telemetry/archive-factory.js';

/** A running node. */
export interface Server {
  readonly port: number;
  /**
   * What the actors commit, for features beside them: `live.add({approaching(e) {...}})`
   * hears `order.approaching` once per order (the event log subscribes here).
   */
  readonly live: LiveFeed;
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

/** How often a customer stream's order is re-read in multi-node mode (its technician may run elsewhere). */
const SHARE_POLL_MS = 1000;
/** Longest a customer stream stays silent: then it gets a comment, so proxies keep it open. */
const SHARE_HEARTBEAT_MS = 8000;

/** The ETA estimator: the router's with ROUTER_URL, else the straight line. */
function etaEstimator(config: Config, clock: Clock, metrics: Metrics): EtaEstimator {
  if (config.ROUTER_URL === undefined) return new StraightLineEstimator(config.TRAVEL_SPEED_MPS);
  return new OsrmEstimator({
    baseUrl: config.ROUTER_URL,
    timeoutMs: config.ROUTER_TIMEOUT_MS,
    speedMps: config.TRAVEL_SPEED_MPS,
    now: () => clock.now(),
    onFallback: (reason) => metrics.etaFallbacks.inc({ reason }),
    onRoute: () => metrics.etaRouted.inc(),
  });
}

/** Starts a node on `config`. */
export async function startServer(config: Config, log: Logger, clock: Clock = systemClock): Promise<Server> {
  const metrics = new Metrics();
  const archive = await openArchive(config, log, metrics);
  // Events for the dispatch system: the log first, then the webhooks that follow it, then
  // the behaviour that appends to it (recovery may already fire deadlines).
  const events = await EventLog.open(config.DATA_DIR, clock, log);
  events.subscribe((ev) => metrics.eventsStored.inc({ type: ev.type }));
  const hookOpts: WebhookOptions = {
    allowPrivate: config.WEBHOOK_ALLOW_PRIVATE,
    maxInFlight: config.WEBHOOK_MAX_IN_FLIGHT,
    maxPendingInMemory: config.WEBHOOK_MAX_PENDING_IN_MEMORY,
    timeoutMs: config.WEBHOOK_TIMEOUT_MS,
    retry: {
      baseMs: config.WEBHOOK_RETRY_BASE_MS,
      maxMs: config.WEBHOOK_RETRY_MAX_MS,
      forMs: config.WEBHOOK_RETRY_FOR_MS,
    },
    retentionMs: config.EVENTS_RETENTION_HOURS * 3600 * 1000,
    threadNice: config.WEBHOOK_THREAD_NICE,
  };
  const redis = redisTarget(config);
  // One node: its own log is what the pull API reads and what its webhooks deliver. Several
  // (REDIS_URL): each node relays its log into one Redis stream that every node reads, and
  // one node at a time delivers every webhook from it (README, events).
  let reader: EventReader = events;
  let webhooks: WebhookApi & { close(): Promise<void> };
  let multi: { shared: SharedState; stream: RedisEventStream; relay: EventRelay; store: RedisWebhookStore } | null =
    null;
  if (redis === null) {
    webhooks = await Webhooks.open({ dataDir: config.DATA_DIR, events, clock, log, metrics }, hookOpts);
  } else {
    const onError = (err: Error): void => log.debug({ err: err.message }, 'redis: events connection error');
    const onCorrupt = (problem: string): void => log.warn({ problem }, 'redis: corrupt event record skipped');
    const stream = new RedisEventStream({ url: redis, prefix: REDIS_PREFIX, onError, onCorrupt });
    stream.start();
    const relay = new EventRelay(
      events,
      stream,
      await relayNodeId(config.DATA_DIR),
      clock,
      log,
      hookOpts.retentionMs,
      config.EVENTS_RELAY_WAIT_MS,
    );
    const store = new RedisWebhookStore(redis, REDIS_PREFIX, onError, onCorrupt);
    const shared = redisSharedState(redis, REDIS_PREFIX, log, (what) => metrics.staleWritesRefused.inc({ what }));
    const hooks = new SharedWebhooks(
      { stream, store, leases: shared.leases, nodeId: shared.nodeId, clock, log, metrics },
      hookOpts,
    );
    hooks.start();
    webhooks = hooks;
    multi = { shared, stream, relay, store };
    reader = stream;
  }
  // With REDIS_URL the node shares alerts, positions and ownership with its peers and the
  // local tracker is wrapped in the clustered one; without it, in-process twins and the
  // local tracker alone.
  const live = new LiveFeed(log);
  live.add({
    approaching: (e) => {
      metrics.approaching.inc();
      // After the order's approaching mark is durable: a crash in between loses this one
      // event (README, events), never repeats it.
      events
        .append({ type: 'order.approaching', ts: e.ts, order: e.order, tech: e.tech, data: { eta: e.eta } })
        .catch((err: Error) => log.error({ err, order: e.order }, 'order.approaching event not stored'));
    },
  });
  const eta = etaEstimator(config, clock, metrics);
  const base = { config, clock, log, metrics, archive, eta, observer: live, events };
  let tracker: Tracker;
  if (multi !== null) {
    const { shared, relay } = multi;
    log.info({ node: shared.nodeId, relay: relay.node }, 'multi-node mode: shared state in redis');
    // An answer to a change that made events waits until they are in the shared stream.
    tracker = await ClusteredTracker.start({ ...base, shared, eventsInStream: (id) => relay.relayed(id) }, relay);
  } else {
    tracker = await createTracker({ ...base, shared: memorySharedState(clock) });
  }
  const lingerMs = config.SHARE_LINGER_MIN * 60_000;
  const linkMs = Math.round(config.SHARE_LINK_HOURS * 3_600_000);
  // Link revocations: with Redis every node writes and reads the same hash and hears the
  // others' revocations; alone, the node's DATA_DIR. A node that ran alone before carries
  // its DATA_DIR revocations into Redis, so its revoked links do not come back to life.
  const ownRevocations = await LocalShareRevocations.open(config.DATA_DIR, linkMs);
  const revocations: ShareRevocations =
    redis !== null
      ? new RedisShareRevocations({
          carried: ownRevocations.entries(),
          target: redis,
          prefix: REDIS_PREFIX,
          maxLinkMs: linkMs,
          now: () => clock.now(),
          onError: (err) => log.warn({ err: err.message }, 'redis: link revocations unreachable'),
          onCorrupt: (where, problem) => log.warn({ where, problem }, 'redis: corrupt record refused'),
          onSynced: (found, restored) => log.info({ found, restored }, 'customer link revocations read from redis'),
        })
      : ownRevocations;
  const hub = new ShareHub({
    tracker,
    eta,
    clock,
    log,
    lingerMs,
    maxStreams: config.SHARE_MAX_STREAMS,
    maxStreamsPerOrder: config.SHARE_MAX_STREAMS_PER_ORDER,
    pollMs: redis !== null ? SHARE_POLL_MS : 0,
    heartbeatMs: SHARE_HEARTBEAT_MS,
    onStreams: (n) => metrics.shareStreams.set(n),
    revokedAt: (order) => revocations.known(order),
  });
  live.add(hub);
  const links = new ShareLinks({
    tracker,
    tokens: new ShareTokens(config.jwtSecret),
    revocations,
    hub,
    clock,
    linkMs,
  });
  const gateway = await startGateway({
    config,
    clock,
    log,
    metrics,
    tracker,
    share: { links, hub },
    events: reader,
    webhooks,
  });
  return {
    port: gateway.port,
    live,
    async shutdown() {
      // Multi-node: the delivery lease is given up first (before the tracker closes the
      // shared connections), so another node delivers at once.
      if (multi !== null) await webhooks.close();
      await gateway.shutdown(config.SHUTDOWN_TIMEOUT_MS / 2);
      await revocations.close();
      if (multi !== null) {
        // Events of the last moments (devices going offline) into the stream, then stop.
        await multi.relay.flush(2000);
        multi.relay.stop();
        await Promise.all([multi.stream.close(), multi.store.close()]);
      } else await webhooks.close();
      await events.close();
      await archive.close(config.SHUTDOWN_TIMEOUT_MS / 4);
    },
  };
}
