/**
 * Several clustered nodes in one process on one ManualClock: each a real
 * `ClusteredTracker` over its own local tracker and DATA_DIR, sharing the in-process twins
 * of Redis (leases timed by the manual clock, node bus, state mirror, alert feed, nearby
 * index). Lease expiry, take-over sweeps, forwarded-request timeouts and SOS ladders then
 * run in milliseconds; the real-process tests (cluster-*.test.ts) cover real Redis and
 * kill -9.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { DeviceLink, SafetyLink } from '../../src/actors/api.js';
import { ManualClock } from '../../src/clock.js';
import { ClusteredTracker } from '../../src/cluster/clustered-tracker.js';
import type { EventRelayFlush } from '../../src/cluster/takeover.js';
import { createLogger } from '../../src/log.js';
import { Metrics } from '../../src/metrics.js';
import type { Alert, DevicePush, SafetyPush } from '../../src/protocol.js';
import { MemoryAlertFeed } from '../../src/shared/alert-feed-memory.js';
import { FenceTokens } from '../../src/shared/fencing.js';
import { MemoryLeases } from '../../src/shared/leases-memory.js';
import { MemoryNearbyIndex } from '../../src/shared/nearby-index-memory.js';
import { MemoryBusHub } from '../../src/shared/node-bus-memory.js';
import type { SharedState } from '../../src/shared/shared-state.js';
import { MemoryStateMirror } from '../../src/shared/state-mirror-memory.js';
import { MemoryArchive, testConfig } from './memory-archive.js';

/** What a lease call of a node whose leases connection is down fails with. */
const LEASES_DOWN = new Error('redis connection closed');

/** A device link that keeps what it was sent. */
export class RecordingDevice implements DeviceLink {
  readonly pushes: DevicePush[] = [];
  /** Times the device was told to reconnect elsewhere (its technician runs on another node). */
  movedOn = 0;
  push(msg: DevicePush): void {
    this.pushes.push(msg);
  }
  moveOn(): void {
    this.movedOn++;
  }
}

/** A console link that keeps every alert version it was sent. */
export class RecordingConsole implements SafetyLink {
  readonly alerts: Alert[] = [];
  push(msg: SafetyPush): void {
    if (msg.t === 'alert') this.alerts.push(msg.alert);
    else if (msg.t === 'snapshot') this.alerts.push(...msg.alerts);
  }
}

/** See the module comment. */
export class MemoryCluster {
  readonly clock = new ManualClock();
  readonly mirror = new MemoryStateMirror();
  readonly nearby = new MemoryNearbyIndex();
  readonly nodes: ClusteredTracker[] = [];
  private readonly hub = new MemoryBusHub();
  readonly feed = new MemoryAlertFeed();
  /** The ownership leases every node shares (tests read holders from it). */
  readonly leases = new MemoryLeases(this.clock);
  private readonly dirs: string[] = [];
  private readonly live = new Set<ClusteredTracker>();
  /**
   * Redis "down" for reads of the owners: every node's lease lookup fails and its shared
   * state reports the connection down (renewals and the other twins go on, so only what
   * a node answers while it cannot see the owners is tested).
   */
  ownersUnreadable = false;
  /** Per node id, when its (simulated) Redis connection last came back; unset: up from the start. */
  private readonly upSince = new Map<string, number>();
  /** Redis connections each node made (its `connections`), counted up by `reconnected`. */
  private readonly connections = new Map<string, number>();
  /** Nodes whose readiness-reporting connection is down while the twins answer them (`stillReconnecting`). */
  private readonly notReady = new Set<string>();
  /** Nodes whose leases connection is not back yet after a failover: their lease calls fail (`leasesUnreachable`). */
  private readonly leasesDown = new Set<string>();
  /** Per node id, how many times it asked for or renewed a lease (`acquire`, `renew`). */
  private readonly leaseCalls = new Map<string, number>();

  private constructor(
    private readonly env: Record<string, string>,
    private readonly relayOf: (nodeId: string) => EventRelayFlush | null,
  ) {}

  /**
   * Starts `n` nodes, all with `env` added to their configuration; `relayOf` gives a node
   * (`node-<i>`) a stand-in for its event relay (default: none).
   */
  static async launch(
    n: number,
    env: Record<string, string> = {},
    relayOf: (nodeId: string) => EventRelayFlush | null = () => null,
  ): Promise<MemoryCluster> {
    const cluster = new MemoryCluster(env, relayOf);
    for (let i = 0; i < n; i++) cluster.nodes.push(await cluster.startNode(`node-${i}`));
    return cluster;
  }

  private async startNode(nodeId: string): Promise<ClusteredTracker> {
    const dir = await mkdtemp(join(tmpdir(), 'fieldtrack-mcluster-'));
    this.dirs.push(dir);
    const bus = this.hub.node(nodeId);
    const leases = this.leases;
    const shared: SharedState = {
      nodeId,
      feed: this.feed,
      nearby: this.nearby,
      leases: {
        acquire: (key, owner, ttlMs) => this.leaseCall(nodeId, () => leases.acquire(key, owner, ttlMs)),
        renew: (key, owner, ttlMs) => this.leaseCall(nodeId, () => leases.renew(key, owner, ttlMs)),
        transfer: (key, owner, to, ttlMs) =>
          this.leasesDown.has(nodeId) ? Promise.reject(LEASES_DOWN) : leases.transfer(key, owner, to, ttlMs),
        release: (key, owner) =>
          this.leasesDown.has(nodeId) ? Promise.reject(LEASES_DOWN) : leases.release(key, owner),
        holder: (key) =>
          this.ownersUnreadable ? Promise.reject(new Error('redis connection closed')) : leases.holder(key),
        close: () => leases.close(),
      },
      fences: new FenceTokens(),
      bus,
      mirror: this.mirror,
      readyForMs: () => {
        if (this.ownersUnreadable || this.notReady.has(nodeId)) return null;
        const since = this.upSince.get(nodeId);
        return since === undefined ? Number.MAX_SAFE_INTEGER : this.clock.now() - since;
      },
      connections: () => this.connections.get(nodeId) ?? 1,
      health: () => ({ ok: true }),
      // The twins are the cluster's, not this node's: closing a node only takes it off the bus.
      close: () => bus.close(),
    };
    const node = await ClusteredTracker.start(
      {
        config: testConfig(dir, this.env),
        clock: this.clock,
        log: createLogger('silent'),
        metrics: new Metrics(),
        archive: new MemoryArchive(),
        journal: { positionFlushMs: 1000 },
        shared,
      },
      this.relayOf(nodeId),
    );
    this.live.add(node);
    return node;
  }

  private leaseCall<T>(nodeId: string, call: () => Promise<T>): Promise<T> {
    this.leaseCalls.set(nodeId, (this.leaseCalls.get(nodeId) ?? 0) + 1);
    return this.leasesDown.has(nodeId) ? Promise.reject(LEASES_DOWN) : call();
  }

  /** How many times node `i` asked for or renewed a lease so far (its renewals show here). */
  leaseCallsOf(i: number): number {
    return this.leaseCalls.get(`node-${i}`) ?? 0;
  }

  /**
   * Starts one more node, `node-<n>`, as a process that starts now: its Redis connection is
   * its first, up since this moment (`readyForMs` counts from here).
   */
  async addNode(): Promise<ClusteredTracker> {
    const nodeId = `node-${this.nodes.length}`;
    this.upSince.set(nodeId, this.clock.now());
    const node = await this.startNode(nodeId);
    this.nodes.push(node);
    return node;
  }

  /** Node `i`'s leases connection is down (after a failover, not back yet): its lease calls fail until `leasesBack`. */
  leasesUnreachable(i: number): void {
    this.leasesDown.add(`node-${i}`);
  }

  /** Ends `leasesUnreachable(i)`. */
  leasesBack(i: number): void {
    this.leasesDown.delete(`node-${i}`);
  }

  /**
   * Node `i`'s connection that reports readiness is not back yet after a failover, while its
   * other connections (leases, feed) already answer; `reconnected(i)` ends it.
   */
  stillReconnecting(i: number): void {
    const nodeId = `node-${i}`;
    this.notReady.add(nodeId);
    this.connections.set(nodeId, (this.connections.get(nodeId) ?? 1) + 1);
  }

  /** Node `i`'s Redis connection came back just now (after a failover), as its `readyForMs` tells. */
  reconnected(i: number): void {
    const nodeId = `node-${i}`;
    this.notReady.delete(nodeId);
    this.upSince.set(nodeId, this.clock.now());
    this.connections.set(nodeId, (this.connections.get(nodeId) ?? 1) + 1);
  }

  /** Kills `node` like kill -9: its leases stay until they run out. */
  async crash(node: ClusteredTracker): Promise<void> {
    this.live.delete(node);
    await node.crash();
  }

  /** Lets every message, bus delivery and write in flight land, without moving the clock. */
  async settle(): Promise<void> {
    for (let i = 0; i < 20; i++) {
      await new Promise((r) => setImmediate(r));
      await Promise.all([...this.live].map((n) => n.settle()));
    }
  }

  /** Moves the clock by `ms` in steps of `stepMs`, letting everything settle after each step. */
  async advance(ms: number, stepMs = 250): Promise<void> {
    for (let done = 0; done < ms; done += stepMs) {
      this.clock.advance(Math.min(stepMs, ms - done));
      await this.settle();
    }
  }

  /** Advances in steps until `cond` holds; throws naming `what` after `limitMs` of clock time. */
  async advanceUntil(what: string, cond: () => boolean | Promise<boolean>, limitMs = 120_000): Promise<number> {
    const from = this.clock.now();
    await this.settle();
    while (!(await cond())) {
      if (this.clock.now() - from > limitMs) throw new Error(`${what}: not after ${limitMs} ms of clock time`);
      await this.advance(250);
    }
    return this.clock.now() - from;
  }

  /** Closes every node still running and removes their folders. */
  async destroy(): Promise<void> {
    for (const node of this.live) await node.close();
    this.live.clear();
    for (const dir of this.dirs) await rm(dir, { recursive: true, force: true });
  }
}
