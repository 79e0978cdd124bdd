/**
 * What one node does for the others in Redis mode, on the node bus and the leases:
 *
 * - Technician ownership: the node a technician's device is connected to takes the lease
 *   `tech:<id>` and renews every lease it holds each LEASE_RENEW_MS, so the owner of a
 *   technician (and of its orders and SOS incidents) can be found by any node, and a lease
 *   of a dead node runs out after LEASE_TTL_MS.
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
import type { Leases } from '../shared/leases.js';
import type { BusMessage, NodeBus } from '../shared/node-bus.js';

/** How long a technician lease lives without renewal: a dead node's devices move after this. */
export const LEASE_TTL_MS = 10_000;
/** How often held leases are renewed (well within the TTL, so a slow round trip does not lose one). */
export const LEASE_RENEW_MS = 3_000;
/** How long a request run on another node may take before the operator is told to retry. */
const REMOTE_TIMEOUT_MS = 10_000;

/** The lease key of technician `tech`. */
export function techLease(tech: string): string {
  return `tech:${tech}`;
}

/** What the link needs from this node's tracker. */
export interface LocalNode {
  /** Runs request `op` (validating `args`, which crossed a network) on this node only. */
  call(op: string, args: unknown): Promise<Outcome<unknown>>;
  /** Pushes to a device attached to this node, if it is. */
  push(tech: string, msg: DevicePush): void;
  /** Drops this node's actors of `tech` (lease lost or handed over); resolves once their writes are out. */
  drop(tech: string): Promise<void>;
}

/** See the module comment. One per node in Redis mode. */
export class ClusterLink {
  /** Leases held, by technician, with the time Redis last confirmed each. */
  private readonly held = new Map<string, number>();
  private readonly pending = new Map<string, (out: Outcome<unknown>) => void>();
  private counter = 0;
  private stopRenewal: CancelTimer | null = null;

  constructor(
    private readonly bus: NodeBus,
    private readonly leases: Leases,
    private readonly local: LocalNode,
    private readonly log: Logger,
    private readonly clock: Clock,
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

  /** Takes (or renews) technician `tech`'s lease for this node; false if another node holds it. */
  async own(tech: string): Promise<boolean> {
    const at = this.clock.now();
    const ok = await this.leases.acquire(techLease(tech), this.nodeId, LEASE_TTL_MS).catch((err: Error) => {
      // Repeats every claim retry while Redis is down; the outage itself is logged once.
      this.log.debug({ err: err.message, tech }, 'technician lease: could not reach redis');
      return false;
    });
    if (ok) this.held.set(tech, at);
    return ok;
  }

  /**
   * Whether this node runs `tech`'s deadlines: it took the lease and has not learnt that
   * another node holds it since. While Redis is unreachable the node goes on (SOS
   * escalation must not stall because shared storage is down); if only this node was cut
   * off and another took the technician over meanwhile, its first renewal after the
   * outage fails and it drops the technician (README: Redis outages).
   */
  holds(tech: string): boolean {
    return this.held.has(tech);
  }

  /** Technicians whose lease this node holds or held until its last renewal. */
  heldTechs(): string[] {
    return [...this.held.keys()];
  }

  /** Gives `tech`'s lease up (after its actors were dropped here). */
  async release(tech: string): Promise<void> {
    this.held.delete(tech);
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
      const at = this.clock.now();
      // Acquire rather than renew: after an outage longer than the TTL the key is gone,
      // and the lease is still ours unless another node took it meanwhile.
      this.leases
        .acquire(techLease(tech), this.nodeId, LEASE_TTL_MS)
        .then((ok) => {
          if (ok) {
            if (this.held.has(tech)) this.held.set(tech, at);
            return;
          }
          if (!this.held.has(tech)) return;
          this.held.delete(tech);
          this.log.warn({ tech }, 'technician lease lost to another node; dropping its actors here');
          void this.local.drop(tech);
        })
        .catch(() => {
          // Redis unreachable: keep trying; the lease may run out meanwhile, and `own` takes it back.
        });
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
      case 'release': {
        const tech = m.tech;
        if (!this.held.has(tech)) return;
        this.held.delete(tech);
        const to = m.from ?? null;
        void this.local
          .drop(tech)
          .catch((err: Error) => this.log.error({ err, tech }, 'hand-over: dropping actors failed'))
          .then(async () => {
            // Straight to the asking node: no third node can slip in between.
            if (to === null) await this.release(tech);
            else await this.leases.transfer(techLease(tech), this.nodeId, to, LEASE_TTL_MS).catch(() => false);
          })
          .then(() => this.log.info({ tech, to }, 'technician handed over'));
        return;
      }
      case 'reply':
        this.pending.get(m.req)?.(m.out as Outcome<unknown>);
        return;
      case 'push':
        this.local.push(m.tech, m.msg as DevicePush);
        return;
    }
  }
}
