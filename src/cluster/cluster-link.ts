/**
 * What one node does for the others in Redis mode, on the node bus and the leases:
 *
 * - Technician ownership: the node a technician's device is connected to takes the lease
 *   `tech:<id>` and renews every lease it holds each LEASE_RENEW_MS, so the owner of a
 *   technician (and of its orders and SOS incidents) can be found by any node, and a lease
 *   of a dead node runs out after LEASE_TTL_MS.
 * - Provably held: a node acts for a technician only while its own monotonic clock says
 *   Redis confirmed the lease less than LEASE_TTL_MS - LEASE_MARGIN_MS ago, counted from
 *   when the confirming request was sent (`holds`). A node frozen (SIGSTOP, a VM stall, a
 *   partition) past that wakes up holding nothing: its timers are gated off until a renewal
 *   confirms the lease again (then its due deadlines run: `wake`), or it learns another node
 *   took the technician (then it drops it, and sends its device to reconnect elsewhere).
 *   While this node cannot reach Redis at all it goes on acting for what it held (`holds`).
 * - Fencing: each confirmation carries the lease's fencing token, which this node's writes
 *   to shared state carry (src/shared/fencing.ts).
 * - Requests where the state is: an operator's ack or resolve on a console of node B for
 *   an alert whose actor runs on node A (or an order request for A's technician) is
 *   posted to A's inbox, run there by A's ordinary code path (so an ack stops escalation
 *   exactly once, in A's serialised alert chain), and A's answer is posted back to B.
 * - Hand-over: a node whose device connected for a technician another live node owns
 *   asks that node to release it; the owner drops its actors and releases the lease.
 * - Device pushes: an `sos_status` or `notice` for a technician whose device is connected
 *   to another node is posted to that node's inbox and delivered there.
 *
 * Everything arriving on the bus crosses a network, so it is validated before use.
 */

import { type CancelTimer, type Clock, every } from '../clock.js';
import type { Logger } from '../log.js';
import type { Outcome } from '../outcome.js';
import type { DevicePush } from '../protocol.js';
import { parseBusMessage } from '../shared/bus-schemas.js';
import type { FenceTokens } from '../shared/fencing.js';
import { LEASE_TTL_MS, type Leases, leaseProven } from '../shared/leases.js';
import type { BusMessage, NodeBus } from '../shared/node-bus.js';

/** How often held leases are renewed (well within the TTL, so a slow round trip does not lose one). */
export const LEASE_RENEW_MS = 3_000;
/** How long a request run on another node may take before the operator is told to retry. */
const REMOTE_TIMEOUT_MS = 10_000;

/** The lease key of technician `tech`. */
export function techLease(tech: string): string {
  return `tech:${tech}`;
}

/** What taking a lease came to: held already, newly held (load the state), held elsewhere, or Redis not answering. */
export type Ownership = 'held' | 'fresh' | 'taken' | 'unreachable';

/** A lease this node holds: its fencing token and when (monotonic) a request that confirmed it was sent. */
interface HeldLease {
  token: number;
  confirmedAt: number;
  /** `holds` said no since the last confirmation (deadlines were gated off): wake them on the next. */
  lapsed: boolean;
}

/** What the link needs from this node's tracker. */
export interface LocalNode {
  /** Runs request `op` (validating `args`, which crossed a network) on this node only. */
  call(op: string, args: unknown): Promise<Outcome<unknown>>;
  /** Pushes to a device attached to this node, if it is. */
  push(tech: string, msg: DevicePush): void;
  /**
   * Drops this node's actors of `tech` (lease lost or handed over) and sends its device, if
   * attached here, to reconnect; resolves once their writes are out.
   */
  drop(tech: string): Promise<void>;
  /**
   * `tech` is about to be handed to another node, which loads it from Redis: writes what
   * Redis lacks of it (lost in a failover) while this node still holds the lease.
   */
  beforeHandOver(tech: string): Promise<void>;
  /** The lease of `tech` was confirmed again after it had lapsed here: run the deadlines that came due meanwhile. */
  wake(tech: string): void;
  /**
   * This node's renewal of `tech`'s lease was answered with a new token (another node
   * held it meanwhile, or Redis lost the fence in a failover): take it over again, merging
   * what this node has with what Redis has.
   */
  retake(tech: string): Promise<void>;
}

/** See the module comment. One per node in Redis mode. */
export class ClusterLink {
  /** Leases held, by technician. */
  private readonly held = new Map<string, HeldLease>();
  private readonly pending = new Map<string, (out: Outcome<unknown>) => void>();
  /** Technicians being handed to another node (`handOver`). */
  private readonly handingOver = new Set<string>();
  private counter = 0;
  private stopRenewal: CancelTimer | null = null;

  constructor(
    private readonly bus: NodeBus,
    private readonly leases: Leases,
    private readonly local: LocalNode,
    private readonly log: Logger,
    private readonly clock: Clock,
    private readonly fences: FenceTokens,
    /** Whether this node cannot reach shared storage right now (see `holds`). */
    private readonly sharedDown: () => boolean = () => false,
  ) {}

  /** This node's id. */
  get nodeId(): string {
    return this.bus.nodeId;
  }

  /** Starts the inbox and the lease renewal. */
  start(): void {
    this.bus.listen((m) => this.onMessage(m));
    this.stopRenewal = every(this.clock, LEASE_RENEW_MS, () => this.renew());
  }

  /**
   * Takes (or renews) technician `tech`'s lease for this node: `held` when it already held it
   * with the same token (its state here is current), `fresh` when newly taken or another node
   * held it in between (load the state from shared storage), `taken` when another node holds
   * it, `unreachable` when Redis did not answer.
   */
  async own(tech: string): Promise<Ownership> {
    const sentAt = this.clock.monotonic();
    let token: number | null;
    try {
      token = await this.leases.acquire(techLease(tech), this.nodeId, LEASE_TTL_MS);
    } catch (err) {
      // Repeats every claim retry while Redis is down; the outage itself is logged once.
      this.log.debug({ err: (err as Error).message, tech }, 'technician lease: could not reach redis');
      return 'unreachable';
    }
    if (token === null) return 'taken';
    const before = this.held.get(tech);
    if (before !== undefined && before.token !== token) {
      // Another node held it in between: what this node has of the technician is stale.
      this.held.delete(tech);
      this.fences.delete(tech);
      this.log.warn({ tech }, 'technician lease was held by another node meanwhile; reloading its state');
      await this.local.drop(tech);
    }
    this.confirm(tech, token, sentAt);
    return before?.token === token ? 'held' : 'fresh';
  }

  /**
   * Records a confirmation of `tech`'s lease with `token` (the token this node already had
   * for it, or its first), asked at monotonic `sentAt`; wakes the deadlines gated off while
   * the lease had lapsed here.
   */
  private confirm(tech: string, token: number, sentAt: number): void {
    const h = this.held.get(tech);
    if (h === undefined) {
      this.held.set(tech, { token, confirmedAt: sentAt, lapsed: false });
      this.fences.set(tech, token);
      return;
    }
    h.confirmedAt = Math.max(h.confirmedAt, sentAt);
    if (h.lapsed) {
      h.lapsed = false;
      this.log.info({ tech }, 'technician lease confirmed again after it lapsed; running due deadlines');
      this.local.wake(tech);
    }
  }

  /** Forgets `tech`'s lease (another node has it) and drops its actors here. */
  private lose(tech: string, why: string): void {
    this.held.delete(tech);
    this.fences.delete(tech);
    this.log.warn({ tech }, why);
    void this.local.drop(tech).catch((err: Error) => this.log.error({ err, tech }, 'dropping actors failed'));
  }

  /**
   * Whether this node may act for `tech` now (fire its deadlines, run its requests): it took
   * the lease and Redis confirmed it less than LEASE_TTL_MS - LEASE_MARGIN_MS ago by this
   * node's monotonic clock, so a node that was frozen (a stall, SIGSTOP) wakes up holding
   * nothing until a renewal confirms the lease again.
   *
   * Except while this node cannot reach Redis at all: then it goes on acting for the
   * technicians it held, so an SOS ladder never stalls for an outage. If Redis is down for
   * every node, nobody can take a technician over meanwhile, so this is still the one node
   * acting. If only this node is cut off and another takes the technician over, what this
   * node changes meanwhile carries its old fencing token: Redis refuses it on reconnection,
   * consoles (fed from Redis) never see it, and the next renewal drops the technician here.
   * A pause instead let an SOS pass its rung unescalated for as long as the outage lasted.
   */
  holds(tech: string): boolean {
    const h = this.held.get(tech);
    if (h === undefined) return false;
    if (leaseProven(h.confirmedAt, this.clock.monotonic())) return true;
    if (this.sharedDown()) return true;
    if (!h.lapsed) this.log.debug({ tech, token: h.token }, 'technician lease unconfirmed too long; not acting for it');
    h.lapsed = true;
    return false;
  }

  /** Technicians whose lease this node holds or held until its last renewal. */
  heldTechs(): string[] {
    return [...this.held.keys()];
  }

  /** Gives `tech`'s lease up (after its actors were dropped here). */
  async release(tech: string): Promise<void> {
    this.held.delete(tech);
    this.fences.delete(tech);
    await this.leases.release(techLease(tech), this.nodeId).catch(() => false);
  }

  /** Asks node `node` to hand technician `tech` over (its device is connected here now). */
  requestRelease(node: string, tech: string): void {
    this.bus.send(node, { t: 'release', tech, from: this.nodeId });
  }

  /** The node that owns technician `tech` now, or null when nobody does. */
  owner(tech: string): Promise<string | null> {
    return this.leases.holder(techLease(tech)).catch(() => null);
  }

  /** Runs request `op` with `args` on node `node` and resolves with its answer. */
  forward<T>(node: string, op: string, args: Record<string, unknown>): Promise<Outcome<T>> {
    const req = `${this.nodeId}:${(this.counter++).toString(36)}`;
    return new Promise((resolve) => {
      const cancel = this.clock.setTimer(this.clock.now() + REMOTE_TIMEOUT_MS, () => {
        this.pending.delete(req);
        resolve({ ok: false, code: 'unavailable', msg: 'the node running this alert did not answer; retry' });
      });
      this.pending.set(req, (out) => {
        cancel();
        this.pending.delete(req);
        resolve(out as Outcome<T>);
      });
      this.bus.send(node, { t: 'call', req, from: this.nodeId, op, args });
    });
  }

  /** Delivers a push to technician `tech`'s device on whichever other node it is connected to. */
  async pushRemote(tech: string, msg: DevicePush): Promise<void> {
    const node = await this.owner(tech);
    if (node !== null && node !== this.nodeId) this.bus.send(node, { t: 'push', tech, msg: { ...msg } });
  }

  /** Stops renewing and releases the leases this node holds (graceful hand-over). */
  async close(): Promise<void> {
    this.stopRenewal?.();
    this.stopRenewal = null;
    await Promise.all(
      [...this.held.keys()].map((t) => this.leases.release(techLease(t), this.nodeId).catch(() => false)),
    );
    this.held.clear();
    for (const wake of this.pending.values())
      wake({ ok: false, code: 'unavailable', msg: 'node shutting down; retry' });
  }

  /** Stops renewing without releasing anything (a crash, for tests). */
  abandon(): void {
    this.stopRenewal?.();
    this.stopRenewal = null;
  }

  private renew(): void {
    for (const tech of this.held.keys()) {
      const sentAt = this.clock.monotonic();
      // Acquire rather than renew: after an outage longer than the TTL the key is gone,
      // and the lease is still ours (same token) unless another node took it meanwhile.
      this.leases
        .acquire(techLease(tech), this.nodeId, LEASE_TTL_MS)
        .then((token) => {
          const h = this.held.get(tech);
          if (h === undefined) return;
          if (token === null) this.lose(tech, 'technician lease lost to another node; dropping its actors here');
          else if (token !== h.token) {
            // Redis gave this node the lease under a new token: it holds it now, so it must
            // not just forget it (nobody would serve the technician until the lease ran
            // out). What it has may be stale (another node held it) or ahead (Redis lost
            // writes in a failover): take it over again, merging both.
            this.held.delete(tech);
            this.fences.delete(tech);
            this.log.warn(
              { tech, fence: token, was: h.token },
              'technician lease renewed under a new token (held elsewhere meanwhile, or redis lost it); taking it over again',
            );
            void this.local
              .retake(tech)
              .catch((err: Error) => this.log.error({ err, tech }, 'taking the technician over again failed'));
          } else this.confirm(tech, token, sentAt);
        })
        .catch(() => {
          // Redis unreachable: keep trying; `holds` turns false once the lease may have run out.
        });
    }
  }

  /**
   * Hands `tech` to node `to` (null: just lets it go) at its request: first writes what
   * Redis lacks of it, under the lease this node still holds, since `to` loads it from
   * Redis; then drops it here and moves the lease straight to `to`, so no third node can
   * slip in between. Repeated requests while one is under way are ignored.
   */
  private async handOver(tech: string, to: string | null): Promise<void> {
    if (!this.held.has(tech) || this.handingOver.has(tech)) return;
    this.handingOver.add(tech);
    try {
      await this.local
        .beforeHandOver(tech)
        .catch((err: Error) => this.log.warn({ err: err.message, tech }, 'hand-over: could not compare with redis'));
      if (!this.held.has(tech)) return;
      this.held.delete(tech);
      this.fences.delete(tech);
      await this.local
        .drop(tech)
        .catch((err: Error) => this.log.error({ err, tech }, 'hand-over: dropping actors failed'));
      if (to === null) await this.release(tech);
      else await this.leases.transfer(techLease(tech), this.nodeId, to, LEASE_TTL_MS).catch(() => false);
      this.log.info({ tech, to }, 'technician handed over');
    } finally {
      this.handingOver.delete(tech);
    }
  }

  private onMessage(raw: BusMessage): void {
    // Checked against the bus schemas (src/shared/bus-schemas.ts): it crossed a network.
    const m = parseBusMessage(raw);
    if (m === null) {
      this.log.warn({ t: raw.t }, 'node bus: unknown or malformed message dropped');
      return;
    }
    switch (m.t) {
      case 'call': {
        const { req, from } = m;
        void this.local
          .call(m.op, m.args)
          .catch((): Outcome<unknown> => ({ ok: false, code: 'internal', msg: 'internal error' }))
          .then((out) => this.bus.send(from, { t: 'reply', req, out }));
        return;
      }
      case 'release':
        void this.handOver(m.tech, m.from ?? null);
        return;
      case 'reply':
        this.pending.get(m.req)?.(m.out as Outcome<unknown>);
        return;
      case 'push':
        this.local.push(m.tech, m.msg as DevicePush);
        return;
    }
  }
}
