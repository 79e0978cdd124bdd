/**
 * The state nodes share, as one bundle the tracker is built with: the alert feed, the
 * live-position index, ownership leases and (Redis mode only) the node bus. Embedded mode
 * (no `REDIS_URL`) gets the in-process twins, so one code path serves both modes.
 */
import type { Clock } from '../clock.js';
import type { Logger } from '../log.js';
import type { ComponentHealth } from '../outcome.js';
import { type AlertFeed, FEED_MAXLEN } from './alert-feed.js';
import { MemoryAlertFeed } from './alert-feed-memory.js';
import { RedisAlertFeed } from './alert-feed-redis.js';
import { FenceTokens, type StaleWrite } from './fencing.js';
import type { Leases } from './leases.js';
import { MemoryLeases } from './leases-memory.js';
import { RedisLeases } from './leases-redis.js';
import type { NearbyIndex } from './nearby-index.js';
import { MemoryNearbyIndex } from './nearby-index-memory.js';
import { RedisNearbyIndex } from './nearby-index-redis.js';
import type { NodeBus } from './node-bus.js';
import { newNodeId, RedisNodeBus } from './node-bus-redis.js';
import { describeTarget, type RedisTarget, redisClient } from './redis-target.js';
import type { StateMirror } from './state-mirror.js';
import { RedisStateMirror } from './state-mirror-redis.js';

/** Longest a shutdown waits for Redis connections to close gracefully. */
const CLOSE_WAIT_MS = 2000;

/** See the module comment. */
export interface SharedState {
  /** This node's id, as written in leases and used as its bus address. */
  readonly nodeId: string;
  readonly feed: AlertFeed;
  readonly nearby: NearbyIndex;
  readonly leases: Leases;
  /** The fencing tokens of the leases this node holds, read by every fenced write (fencing.ts). */
  readonly fences: FenceTokens;
  /** Null in embedded mode: there is no other node to talk to. */
  readonly bus: NodeBus | null;
  /** Null in embedded mode: no other node ever takes a technician over. */
  readonly mirror: StateMirror | null;
  /**
   * Milliseconds since the connection to the shared backend last became ready, or null
   * while it is down (always ready in embedded mode).
   */
  readyForMs(): number | null;
  /**
   * How many times the connection to the shared backend has become ready: it grows by one
   * on every reconnection (a failover included), so a node can tell that Redis may have
   * lost writes since it last looked (always 1 in embedded mode).
   */
  connections(): number;
  /** Health of the shared backend for `/readyz`; null in embedded mode (nothing to report). */
  health(): ComponentHealth | null;
  /** Stops tails and releases connections. */
  close(): Promise<void>;
}

/** In-process shared state for one node without `REDIS_URL`. */
export function memorySharedState(clock: Clock): SharedState {
  const feed = new MemoryAlertFeed();
  const nearby = new MemoryNearbyIndex();
  const leases = new MemoryLeases(clock);
  return {
    nodeId: 'local',
    feed,
    nearby,
    leases,
    fences: new FenceTokens(),
    bus: null,
    mirror: null,
    readyForMs: () => Number.MAX_SAFE_INTEGER,
    connections: () => 1,
    health: () => null,
    async close() {
      await Promise.all([feed.close(), nearby.close(), leases.close()]);
    },
  };
}

/** Shared state in the Redis at `url` (a server or a Sentinel-monitored primary), keys under `prefix`. */
export function redisSharedState(
  url: RedisTarget,
  prefix: string,
  log: Logger,
  /** Told of every write Redis refused as stale (metrics). */
  onStale: (what: StaleWrite) => void = () => {},
): SharedState {
  const nodeId = newNodeId();
  const fences = new FenceTokens((what, tech) => {
    onStale(what);
    log.warn({ what, tech }, 'redis refused a stale write: another node holds this technician');
  });
  // Errors repeat every reconnect attempt while Redis is down: log each kind once per outage.
  let reported = false;
  const onError = (err: Error): void => {
    if (reported) return;
    reported = true;
    log.warn({ err: err.message }, 'redis: shared state unreachable; serving local devices, catching up later');
  };
  // A record that fails its schema is refused: say so every time (each is a separate fault).
  const onCorrupt = (where: string, problem: string): void => {
    log.warn({ where, problem }, 'redis: corrupt record refused');
  };
  const probe = redisClient(url, { maxRetriesPerRequest: 1 });
  probe.on('error', onError);
  let readyAt = 0;
  let connections = 0;
  probe.on('ready', () => {
    readyAt = Date.now();
    connections++;
    if (reported) log.info('redis: shared state reachable again');
    reported = false;
  });
  const feed = new RedisAlertFeed({ url, prefix, maxLen: FEED_MAXLEN, onError, onCorrupt, fences });
  const nearby = new RedisNearbyIndex(url, prefix, onError, onCorrupt);
  // After a failover two servers may each take writes for a moment: a lease is only
  // exclusive on one of them, so the log says which server each node's leases were on.
  const leases = new RedisLeases(url, prefix, onError, (address) =>
    log.info({ redis: address }, 'redis: leases connection ready'),
  );
  const bus = new RedisNodeBus(url, prefix, nodeId, onError, onCorrupt);
  const mirror = new RedisStateMirror(url, prefix, onError, onCorrupt, fences);
  return {
    nodeId,
    feed,
    nearby,
    leases,
    fences,
    bus,
    mirror,
    readyForMs: () => (probe.status === 'ready' ? Date.now() - readyAt : null),
    connections: () => connections,
    health: () =>
      probe.status === 'ready'
        ? { ok: true }
        : {
            ok: false,
            detail:
              `redis (${describeTarget(url)}) connection ${probe.status}: devices are served from this ` +
              "node's journal; deadlines pause 7 s into the outage; other nodes' technicians cannot be reached",
            devices: 'degraded',
          },
    async close() {
      // While Redis is down a graceful QUIT would wait for it; shutdown must not.
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        Promise.all([bus.close(), feed.close(), nearby.close(), leases.close(), mirror.close()]),
        new Promise((r) => (timer = setTimeout(r, CLOSE_WAIT_MS))),
      ]);
      clearTimeout(timer);
      probe.disconnect();
    },
  };
}
