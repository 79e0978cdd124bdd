/**
 * Rewriting shared storage after Redis lost writes (multi-node mode). Redis replication is
 * asynchronous: when Sentinel promotes a replica, the writes the old primary acked but had
 * not yet sent are gone (an SOS, an operator's ack, an order transition), and a Redis
 * restarted without persistence has lost everything. Each node still runs its technicians
 * with all of it, journaled and acked. So whenever this node's Redis connection comes back
 * (a failover reconnects every client to the new primary), it compares what it runs with
 * what Redis holds and writes what Redis lacks or holds an older version of
 * (`staleInShared`): orders and positions to the state mirror, alerts to the feed, which
 * pushes them to every console again. Writes go under this node's current fencing tokens,
 * like any other write of a technician it holds, so a node that is not the holder changes
 * nothing.
 *
 * Journal reconciliation (reconcile.ts) covers the other case: a node that was down when
 * its writes were lost, and compares its journal at start.
 */
import type { LiveRecord } from '../actors/records.js';
import { isTerminalState } from '../actors/records.js';
import { type CancelTimer, every } from '../clock.js';
import type { StateMirror } from '../shared/state-mirror.js';
import { LEASE_RENEW_MS } from './cluster-link.js';
import { type Present, staleInShared } from './journal-merge.js';
import type { ReconcileDeps } from './reconcile.js';

/** Copies a durable order or position record to the state mirror (orders finished: removed). */
export function mirrorRecord(mirror: StateMirror, rec: LiveRecord): void {
  if (rec.k === 'o') mirror.putOrder(rec.o.tech, rec.o.id, isTerminalState(rec.o.state) ? null : rec.o);
  else if (rec.k === 'p') mirror.putPosition(rec.id, { pos: rec.pos, quietSince: rec.quietSince });
}

/** What the resync works on: what journal reconciliation works on. */
export type ResyncDeps = ReconcileDeps;

/** See the module comment. One per node in Redis mode. */
export class SharedResync {
  private stopTimer: CancelTimer | null = null;
  /** Redis connections made by the last look (SharedState.connections); more later means it reconnected. */
  private seenConnections = 0;
  private running: Promise<void> | null = null;
  /** Passes that wrote something, and records written (tests, logs). */
  passes = 0;

  constructor(private readonly d: ResyncDeps) {}

  /** Starts watching for reconnections. */
  start(): void {
    this.seenConnections = this.d.shared.connections();
    this.stopTimer = every(this.d.clock, LEASE_RENEW_MS, () => this.look());
  }

  stop(): void {
    this.stopTimer?.();
    this.stopTimer = null;
  }

  private look(): void {
    if (this.running !== null) return;
    const before = this.seenConnections;
    this.seenConnections = this.d.shared.connections();
    // The first connection (at start, or once Redis is up after a start without it) is
    // journal reconciliation's business; every later one may follow lost writes.
    if (before === 0 || this.seenConnections === before) return;
    this.running = this.pass()
      .catch((err: Error) => {
        // Redis went away again: the next reconnection starts another pass.
        this.d.log.warn({ err: err.message }, 'shared resync: redis unreachable during the pass');
      })
      .finally(() => {
        this.running = null;
      });
  }

  /** Compares every technician this node runs with Redis and writes what Redis lacks. */
  async pass(): Promise<void> {
    const { cluster, takeover, shared, log } = this.d;
    const openAlerts = await this.openAlerts(shared);
    const counts = { technicians: 0, orders: 0, alerts: 0, positions: 0 };
    for (const tech of cluster.heldTechs()) {
      if (!takeover.runs(tech)) continue;
      const wrote = await this.writeMissingOf(tech, openAlerts);
      if (wrote.orders + wrote.alerts + wrote.positions > 0) counts.technicians++;
      counts.orders += wrote.orders;
      counts.alerts += wrote.alerts;
      counts.positions += wrote.positions;
    }
    this.passes++;
    log.info(counts, 'shared resync after a redis reconnection: what redis lacked was written again');
  }

  /**
   * The same for one technician about to be handed to another node, which loads it from
   * Redis: a failover may have lost what this node wrote (an operator's ack), and the
   * next node must not run it from the older copy. Queued like every write; the hand-over
   * flushes them before the lease moves.
   */
  async writeMissing(tech: string): Promise<void> {
    if (!this.d.takeover.runs(tech)) return;
    const wrote = await this.writeMissingOf(tech, await this.openAlerts(this.d.shared));
    if (wrote.orders + wrote.alerts + wrote.positions > 0) {
      this.d.log.info({ tech, ...wrote }, 'hand-over: what redis lacked of the technician was written again');
    }
  }

  private async openAlerts(shared: ResyncDeps['shared']): Promise<Present['alerts']> {
    const snap = await shared.feed.snapshot();
    return new Map(snap.alerts.map((a) => [a.id, a]));
  }

  private async writeMissingOf(
    tech: string,
    openAlerts: Present['alerts'],
  ): Promise<{ orders: number; alerts: number; positions: number }> {
    const { mirror, local } = this.d;
    const mirrored = await mirror.load(tech);
    const present: Present = {
      orders: new Map(mirrored.orders.map((o) => [o.id, o])),
      alerts: openAlerts,
      position: mirrored.position?.pos ?? null,
    };
    const counts = { orders: 0, alerts: 0, positions: 0 };
    for (const r of staleInShared(local.liveRecordsOf(tech), present)) {
      if (r.k === 'a') {
        local.republish(r.a.id);
        counts.alerts++;
      } else {
        mirrorRecord(mirror, r);
        if (r.k === 'o') counts.orders++;
        else counts.positions++;
      }
    }
    return counts;
  }
}
