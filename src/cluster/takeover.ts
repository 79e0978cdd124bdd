/**
 * Multi-node ownership of technicians (Redis mode): taking one over, dropping one, and
 * the sweeper that takes over the work of dead nodes.
 *
 * - Take over (`adopt`): acquire the technician's lease, then load its state from Redis
 *   (open orders and last position from the state mirror, unresolved alerts from the
 *   alert feed) through the same `recover` as a restart, install it in the registries and
 *   wake its actors so every pending deadline runs here from now on. This node's own
 *   writes are flushed first; an unresolved alert this node has of the technician that
 *   Redis lacks (raised here while Redis was unreachable, its write refused as stale or
 *   lost) is kept and written to the feed under the new lease, so no acked SOS is lost.
 * - After a failover: in the first two renewal periods after Redis came back to this node,
 *   nothing takes over a technician whose lease Redis does not give this node (not the
 *   sweeper, a device that connects here, a request or reconciliation): the promoted
 *   replica may lack a live node's lease and its last writes, and that node re-takes its
 *   own leases first (`justReconnected`). The sweeper also waits that long after this
 *   node's start; a device or request is served at once then (nothing says a failover
 *   just happened, and a starting node must not keep its devices waiting).
 * - Drop: the lease was lost or handed over; the technician's actors, orders, incidents
 *   and alerts leave this node (after their writes are out, for the next owner to load).
 *   What it had is kept and reconciled where the technician runs next (reconcile.ts), and
 *   merged by the journal's rules if this node takes it over again: Redis may have lost
 *   some of it in a failover (an operator's ack), and this node may be the only one that
 *   knows.
 * - Sweep: every LEASE_RENEW_MS each node looks at the technicians with open orders or
 *   unresolved alerts; one whose lease has expired (its node died) is taken over, so
 *   escalation goes on even before the device reconnects. A
 *   technician held here with no
 *   device here and no open work is released, so leases do not pile up. A technician
 *   held here with an unresolved alert in the feed that this node does not run is loaded
 *   again, so no open SOS is left without a node escalating it.
 *
 * - Events: a drop flushes this node's event relay before the lease moves on, so the
 *   technician's events enter the shared stream ahead of those of its next node.
 *
 * Deadlines fire only on the lease holder: each registry's `gate` asks `holds`.
 */

import type { LocalTracker } from '../actors/local-tracker.js';
import { isTerminalState, isUnresolved, type LiveRecord, type OrderRecord } from '../actors/records.js';
import { recover } from '../actors/recovery.js';
import { type CancelTimer, type Clock, every } from '../clock.js';
import type { Logger } from '../log.js';
import type { SharedState } from '../shared/shared-state.js';
import type { StateMirror } from '../shared/state-mirror.js';
import { type ClusterLink, LEASE_RENEW_MS, techLease } from './cluster-link.js';
import { combine, type Journaled, keepCombined, missingFrom, type Present } from './journal-merge.js';
import { knownIn } from './reconcile.js';
import { mirrorRecord } from './resync.js';

/** What an attempt to run a technician here came to. */
export type Adoption = 'runs' | 'taken' | 'unreachable';

/** What the takeover works on: this node's local tracker and the shared state. */
export interface TakeoverDeps {
  cluster: ClusterLink;
  mirror: StateMirror;
  shared: SharedState;
  local: LocalTracker;
  log: Logger;
  clock: Clock;
  /**
   * This node's relay of events into the shared stream (src/events/event-relay.ts): a
   * technician's events must be in the stream before it moves, so they stay ahead of its new
   * node's. Null: no relay (tests of the cluster without events).
   */
  relay: EventRelayFlush | null;
}

/** What a hand-over needs of the event relay. */
export interface EventRelayFlush {
  /** Resolves once every event stored here so far is in the shared stream, or after `timeoutMs`. */
  flush(timeoutMs: number): Promise<boolean>;
}

/** Longest a hand-over waits for this node's events to reach the shared stream (Redis slow or down). */
const RELAY_FLUSH_MS = 2_000;

/** See the module comment. One per node in Redis mode. */
export class Takeover {
  /** Technicians whose state this node loaded under its lease. */
  private readonly adopted = new Set<string>();
  private readonly adopting = new Map<string, Promise<Adoption>>();
  private stopSweeper: CancelTimer | null = null;
  private sweeping = false;
  /**
   * What this node had of technicians it let go (lease lost or re-taken under a new
   * token), until a take-over here merges it: it may be further along than Redis's copy.
   */
  private readonly kept = new Map<string, Journaled>();
  /** Told of every such set of records, for reconciliation wherever the technician runs now. */
  onDropped: (j: Journaled) => void = () => {};

  constructor(private readonly d: TakeoverDeps) {}

  /** Starts the sweeper. */
  start(): void {
    this.stopSweeper = every(this.d.clock, LEASE_RENEW_MS, () => void this.sweep());
  }

  /** Stops the sweeper. */
  stop(): void {
    this.stopSweeper?.();
    this.stopSweeper = null;
  }

  /**
   * Whether Redis came back (to this node) too recently for a technician without a lease
   * to count as orphaned: after a failover every live node needs two renewals to re-take
   * its own leases (the promoted replica may lack them), and a node that took a technician
   * over meanwhile would run it from Redis's copy, which may lack that node's last writes.
   */
  justReconnected(): boolean {
    // The first connection (at start) follows no failover: nothing was lost to re-take.
    if (this.d.shared.connections() < 2) return false;
    const up = this.d.shared.readyForMs();
    // Not back yet counts too: this node's connections come back one by one, and the one
    // that takes leases may answer before the one that tells (seed 26 of the campaign).
    return up === null || up < 2 * LEASE_RENEW_MS;
  }

  /** Whether this node runs technician `tech` now (lease held and state loaded). */
  runs(tech: string): boolean {
    return this.adopted.has(tech) && this.d.cluster.holds(tech);
  }

  /**
   * Takes technician `tech` over if no other node holds it: `runs` when this node runs it,
   * `taken` when another node holds it, `unreachable` when Redis did not answer.
   */
  adopt(tech: string): Promise<Adoption> {
    if (this.runs(tech)) return Promise.resolve('runs');
    let p = this.adopting.get(tech);
    if (p === undefined) {
      p = this.load(tech)
        .catch((err: Error): Adoption => {
          this.d.log.warn({ err: err.message, tech }, 'take-over failed; will retry');
          return 'unreachable';
        })
        .finally(() => this.adopting.delete(tech));
      this.adopting.set(tech, p);
    }
    return p;
  }

  /**
   * Drops technician `tech`'s actors and state from this node; see the module comment.
   * Unless `keep` is false (an erasure, an idle technician), what this node had of it is
   * kept for reconciliation: Redis may have lost some of it (a failover to a replica that
   * lacked the last writes), and this node may be the only one that knows, say, that an
   * operator acknowledged its SOS. Unless `moveOn` is false, its device is sent elsewhere.
   */
  async drop(tech: string, opts: { keep?: boolean; moveOn?: boolean } = {}): Promise<void> {
    this.adopted.delete(tech);
    const { local, mirror, relay, log } = this.d;
    let j = opts.keep !== false ? this.recordsOf(tech) : null;
    // The device goes to the node that runs its technician now (close code 1001: reconnect).
    if (opts.moveOn !== false) local.moveOn(tech);
    await local.evict(tech);
    // A change in flight when the records were taken (a new order being journaled: it has
    // no record until it commits, so the eviction does not wait for it) may have committed
    // meanwhile: taken and evicted too, or it stays here unknown to the cluster (seed 27 of
    // the chaos campaign). One committing even later is written under no token (dropped
    // above), refused by Redis, and reconciled from that refusal (`keepRefused`).
    const late = opts.keep !== false ? this.recordsOf(tech) : null;
    if (late !== null) {
      j = j === null ? late : combine(j, late);
      await local.evict(tech);
    }
    await Promise.all([local.flushFeed(), mirror.flush()]);
    // Its events go into the shared stream before the lease moves (README, events).
    if (relay !== null && !(await relay.flush(RELAY_FLUSH_MS))) {
      log.warn({ tech }, 'hand-over: events of this node not yet in the shared stream; they follow when redis answers');
    }
    // Handed on only once evicted, so a take-over it starts cannot race the eviction.
    if (j !== null) {
      keepCombined(this.kept, j);
      this.onDropped(j);
    }
  }

  /**
   * Records of `tech` whose write Redis refused as stale (another node holds its lease):
   * kept like a drop's, so a take-over here merges them into what Redis has and writes
   * them under the new lease (they may be the only copy: an order acked here while Redis
   * was down). Reconciliation gets them to the owner meanwhile (clustered-tracker.ts).
   */
  keepRefused(j: Journaled): void {
    keepCombined(this.kept, j);
  }

  /** What this node has of `tech`, as journal records for reconciliation; null when nothing. */
  private recordsOf(tech: string): Journaled | null {
    const s = this.d.local.stateOf(tech);
    if (s.orders.length === 0 && s.alerts.length === 0) return null;
    const quietSince = this.d.clock.now();
    return {
      tech,
      orders: s.orders,
      alerts: s.alerts,
      position: s.position === null ? null : { pos: s.position, quietSince },
    };
  }

  /**
   * This node's lease of `tech` was confirmed under a new token (another node held it
   * meanwhile, or Redis lost the fence in a failover): its state here may be stale or
   * ahead. Drops it (keeping it, see `drop`) and takes the technician over again, merging.
   */
  async retake(tech: string): Promise<void> {
    await this.drop(tech, { moveOn: false });
    await this.adopt(tech);
  }

  /** Reconciliation settled what this node kept of `tech` (merged where it runs, or Redis had it): forget it. */
  forgetKept(tech: string): void {
    this.kept.delete(tech);
  }

  /** Loads technician `tech` again from shared storage (this node holds it but misses some of its state). */
  reload(tech: string): Promise<Adoption> {
    this.adopted.delete(tech);
    return this.adopt(tech);
  }

  private async load(tech: string): Promise<Adoption> {
    const { cluster, mirror, shared, local, log } = this.d;
    // Right after Redis came back, a technician nobody holds may still be a live node's
    // whose lease the promoted replica lacks: leave it to that node's next renewal, or
    // this node would run it from Redis's copy, which may lack an operator's ack (and
    // escalate it again). Only a lease Redis already gives this node (a renewal under a
    // new token, `retake`) is taken over now; the rest is answered `taken` and retried.
    if (this.justReconnected()) {
      // Read here, not through `cluster.owner` (null on errors): with Redis down this is
      // 'unreachable', and the node serves from its own state as in any outage. A
      // technician with no open work in Redis has no stale copy to run: taken over now
      // (a new device's SOS right after a failover is not kept waiting).
      const owner = await shared.leases.holder(techLease(tech)).catch(() => undefined);
      if (owner === undefined) return 'unreachable';
      if (owner !== cluster.nodeId) {
        const busy = await this.hasOpenWorkInRedis(tech).catch(() => undefined);
        if (busy === undefined) return 'unreachable';
        if (busy) return 'taken';
      }
    }
    const got = await cluster.own(tech);
    if (got === 'taken' || got === 'unreachable') return got;
    if (got === 'held' && this.adopted.has(tech)) return 'runs';
    const startedAt = this.d.clock.now();
    // What this node wrote itself must be in Redis before Redis's copy replaces it here.
    await Promise.all([local.flushFeed(), mirror.flush()]);
    const [mirrored, snap] = await Promise.all([mirror.load(tech), shared.feed.snapshot()]);
    // The mirror checked each record's shape against its schema when it read it back.
    const orders = new Map<string, OrderRecord>(mirrored.orders.filter((o) => o.tech === tech).map((o) => [o.id, o]));
    const alerts = new Map(snap.alerts.filter((a) => a.tech === tech).map((a) => [a.id, a]));
    let position = mirrored.position;
    // What this node had of the technician when it last let it go, where it is further
    // along than Redis (Redis lost an ack, a resolve, an order step in a failover): merged
    // by the journal's rules before anything wakes here, so an acknowledged SOS is not
    // escalated again from Redis's older copy. Written back to Redis below.
    const rewrite: LiveRecord[] = [];
    const kept = this.kept.get(tech);
    if (kept !== undefined) {
      const present: Present = { orders, alerts, position: position?.pos ?? null };
      for (const r of missingFrom(kept, present, await knownIn(this.d, kept, present))) {
        rewrite.push(r);
        if (r.k === 'o') orders.set(r.o.id, r.o);
        else if (r.k === 'a') alerts.set(r.a.id, r.a);
        else position = { pos: r.pos, quietSince: r.quietSince };
      }
      this.kept.delete(tech);
    }
    const recs: LiveRecord[] = [];
    for (const o of orders.values()) if (!isTerminalState(o.state)) recs.push({ k: 'o', o });
    for (const a of alerts.values())
      if (isUnresolved(a) || rewrite.some((r) => r.k === 'a' && r.a === a)) recs.push({ k: 'a', a });
    // Unresolved alerts this node raised that Redis lacks (written while Redis was
    // unreachable, and refused or lost): kept, and written to the feed under this lease.
    const missing = local.alertsOf(tech).filter((a) => isUnresolved(a) && !alerts.has(a.id));
    for (const a of missing) recs.push({ k: 'a', a });
    if (position !== null) recs.push({ k: 'p', id: tech, pos: position.pos, quietSince: position.quietSince });
    const state = recover(recs, startedAt);

    await local.adopt(tech, state);
    for (const a of missing) local.republish(a.id);
    for (const r of rewrite) {
      if (r.k === 'a') local.republish(r.a.id);
      else mirrorRecord(mirror, r);
    }
    this.adopted.add(tech);
    log.info(
      {
        tech,
        orders: state.orders.size,
        alerts: state.alerts.length,
        republished: missing.length,
        merged: rewrite.length,
        ms: this.d.clock.now() - startedAt,
      },
      'technician taken over',
    );
    return 'runs';
  }

  /** Whether Redis holds an open order or an unresolved alert of `tech`. */
  private async hasOpenWorkInRedis(tech: string): Promise<boolean> {
    const [mirrored, snap] = await Promise.all([this.d.mirror.load(tech), this.d.shared.feed.snapshot()]);
    return (
      mirrored.orders.some((o) => o.tech === tech && !isTerminalState(o.state)) ||
      snap.alerts.some((a) => a.tech === tech && isUnresolved(a))
    );
  }

  private async sweep(): Promise<void> {
    if (this.sweeping) return;
    this.sweeping = true;
    try {
      const { cluster, mirror, local, log, shared } = this.d;
      // Right after Redis comes back, give every node two renewals to re-take its own
      // leases before treating their technicians as orphans. The same after this node's
      // own start: it cannot tell whether a failover just lost the leases of live nodes
      // (a node started then would run their technicians from Redis's older copy).
      const up = shared.readyForMs();
      if (up === null || up < 2 * LEASE_RENEW_MS) return;
      const busy = new Set(await mirror.busy());
      for (const a of local.seenAlerts()) if (isUnresolved(a)) busy.add(a.tech);
      const orphans: string[] = [];
      await Promise.all(
        [...busy].map(async (tech) => {
          if (cluster.holds(tech)) return;
          if ((await cluster.owner(tech)) === null) orphans.push(tech);
        }),
      );
      for (const tech of orphans) {
        log.info({ tech }, 'sweeper: technician without a live node; taking it over');
        void this.adopt(tech);
      }
      // An open alert in the feed whose technician this node runs must be on its board:
      // otherwise nobody escalates it. Load the technician again from shared storage.
      const missing = new Set<string>();
      for (const a of local.seenAlerts()) {
        if (isUnresolved(a) && this.runs(a.tech) && !local.ownsAlert(a.id) && !this.adopting.has(a.tech)) {
          missing.add(a.tech);
        }
      }
      for (const tech of missing) {
        log.warn({ tech }, 'sweeper: an open alert of a technician run here is not on this node; reloading it');
        void this.reload(tech);
      }
      // Idle technicians held here: release them.
      for (const tech of cluster.heldTechs()) {
        if (busy.has(tech) || local.attached(tech) || this.adopting.has(tech) || local.hasOpenWork(tech)) continue;
        await this.drop(tech, { keep: false });
        await cluster.release(tech);
      }
    } catch (err) {
      this.d.log.warn({ err: (err as Error).message }, 'sweeper: redis unreachable; retrying');
    } finally {
      this.sweeping = false;
    }
  }
}
