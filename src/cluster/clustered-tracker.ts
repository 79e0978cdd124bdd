/**
 * The multi-node `Tracker` (Redis mode): a decorator over this node's local tracker, in
 * the way soketi's horizontal adapter layers cross-node calls over its local adapter. It
 * adds only where a request runs:
 *
 * - Placement: a request about a technician runs on the node that holds the technician's
 *   lease; another node forwards it there over the node bus (cluster-link.ts) and relays
 *   the answer. A change to a technician no node runs takes it over here first
 *   (takeover.ts); a read never moves a technician, so reads cannot fight a hand-over.
 * - Claiming: a device that connects here makes this node take its technician over,
 *   asking a live owner to hand it over, and retrying while the device stays connected.
 * - Acting only under a lease: a device's order command, `sos` or `sos_cancel`, and an
 *   operator's ack or resolve, run here only while this node provably holds the
 *   technician's lease (cluster-link.ts `holds`); otherwise this node first tries to take
 *   it, waits for a hand-over while its device is here, and answers `unavailable` when
 *   another node keeps it. When Redis cannot be reached at all, the node serves from its
 *   own state (an SOS is never refused because shared storage is down); what it writes
 *   then carries its fencing token, so Redis refuses it if another node took over.
 * - Requests forwarded by other nodes run on the local tracker only.
 *
 * Everything else (device messages, consoles, queries, erasure) is the local tracker's.
 */
import type { DeviceLink, OrderTimeline, SafetyLink, TechnicianErased, Tracker } from '../actors/api.js';
import type { LocalTracker } from '../actors/local-tracker.js';
import type { OrderRecord } from '../actors/records.js';
import { notFound } from '../actors/refusals.js';
import { ActorTracker, type TrackerDeps } from '../actors/tracker.js';
import { type Clock, sleep } from '../clock.js';
import type { Logger } from '../log.js';
import type { AckExtras, ComponentHealth, Outcome } from '../outcome.js';
import type {
  Alert,
  AlertState,
  DeviceMessage,
  NearbyTechnician,
  OrderInput,
  OrderView,
  SafetyMessage,
  TechnicianView,
  TrackPoint,
} from '../protocol.js';
import type { StaleRecord } from '../shared/fencing.js';
import type { SharedState } from '../shared/shared-state.js';
import type { StateMirror } from '../shared/state-mirror.js';
import { ClusterLink } from './cluster-link.js';
import type { Journaled } from './journal-merge.js';
import { Reconciler } from './reconcile.js';
import { parseRemoteCall } from './remote-calls.js';
import { mirrorRecord, SharedResync } from './resync.js';
import { type Adoption, type EventRelayFlush, Takeover } from './takeover.js';

/** How often a device's node retries taking its technician over while another node holds it. */
const CLAIM_RETRY_MS = 200;
/**
 * Longest a device's order command or SOS waits here for its technician to be handed over
 * from another live node before it is answered `unavailable` (the device retries).
 */
const HANDOVER_WAIT_MS = 5_000;
/** Longest a graceful stop waits for this node's events to reach the shared stream. */
const RELAY_CLOSE_MS = 2_000;

/** See the module comment. One per node in Redis mode. */
export class ClusteredTracker implements Tracker {
  private readonly cluster: ClusterLink;
  private readonly takeover: Takeover;
  private readonly reconciler: Reconciler;
  /** Writes again what Redis lost, after each reconnection (resync.ts); public for tests. */
  readonly resync: SharedResync;
  private closed = false;

  private constructor(
    /** The local tracker; public for tests. */
    readonly local: LocalTracker,
    private readonly shared: SharedState,
    private readonly mirror: StateMirror,
    log: Logger,
    private readonly clock: Clock,
    relay: EventRelayFlush | null,
  ) {
    const { bus, leases } = shared;
    if (bus === null) throw new Error('a clustered tracker needs a node bus');
    const cluster = new ClusterLink(
      bus,
      leases,
      {
        call: (op, args) => this.runCall(op, args),
        push: (tech, msg) => local.pushHere(tech, msg),
        drop: (tech) => this.takeover.drop(tech),
        beforeHandOver: (tech) => this.resync.writeMissing(tech),
        wake: (tech) => local.wake(tech),
        retake: (tech) => this.takeover.retake(tech),
      },
      log,
      clock,
      shared.fences,
      () => shared.readyForMs() === null,
    );
    this.cluster = cluster;
    this.takeover = new Takeover({ cluster, mirror, shared, local, log, clock, relay });
    this.reconciler = new Reconciler({ cluster, takeover: this.takeover, mirror, shared, local, log, clock });
    // What this node lets go of a technician is reconciled wherever it runs next.
    this.takeover.onDropped = (j) => this.reconciler.keep(j);
    // So is a record whose write Redis refused as stale: acked here, it would otherwise stay
    // unknown to the cluster until this node restarted (README, cluster).
    shared.fences.onRefused = (r) => this.refused(r);
    this.resync = new SharedResync({ cluster, takeover: this.takeover, mirror, shared, local, log, clock });
    local.join({
      holds: (tech) => cluster.holds(tech),
      pushElsewhere: (tech, msg) => void cluster.pushRemote(tech, msg),
      // Every durable order and position record is copied to Redis for the next owner.
      durable: (rec) => mirrorRecord(mirror, rec),
      erased: async (tech) => {
        await mirror.eraseTech(tech);
        await this.takeover.drop(tech, { keep: false });
        await cluster.release(tech);
      },
      closing: async () => {
        // Events and records out before the leases go, so the next nodes append after them.
        await Promise.all([mirror.flush(), relay?.flush(RELAY_CLOSE_MS)]);
        await cluster.close();
      },
    });
  }

  /**
   * Starts the local tracker without journal recovery (technicians are loaded from shared
   * storage when this node takes them over) and joins the other nodes through `deps.shared`.
   * `relay` (src/events/event-relay.ts) is flushed before a technician moves away.
   */
  static async start(deps: TrackerDeps, relay: EventRelayFlush | null = null): Promise<ClusteredTracker> {
    const { mirror } = deps.shared;
    if (deps.shared.bus === null || mirror === null) throw new Error('a clustered tracker needs shared state in Redis');
    const local = await ActorTracker.start(deps, { fromJournal: false });
    const tracker = new ClusteredTracker(local, deps.shared, mirror, deps.log, deps.clock, relay);
    tracker.cluster.start();
    tracker.takeover.start();
    tracker.reconciler.start();
    tracker.resync.start();
    return tracker;
  }

  /**
   * A write of this node Redis refused as stale (another node holds the technician's lease
   * under a newer token): the record goes to reconciliation, which sends it to the owner
   * (reconcile.ts), and is kept for a take-over here. Orders and alerts only: a refused
   * position is superseded by the device's next fix on its new node, and a hand-over keeps
   * the last one anyway; reconciling every refused fix would cost a bus request each.
   */
  private refused(r: StaleRecord): void {
    if (this.closed) return;
    let j: Journaled;
    if (r.what === 'alert') j = { tech: r.tech, orders: [], alerts: [r.alert], position: null };
    else if (r.what === 'order') {
      // The mirror was given this node's own order record (mirrorRecord); a removal (null)
      // was of a finished order: its record is still here, unless a hand-over took it.
      const o =
        r.value === null ? this.local.stateOf(r.tech).orders.find((x) => x.id === r.id) : (r.value as OrderRecord);
      if (o === undefined) return;
      j = { tech: r.tech, orders: [o], alerts: [], position: null };
    } else return;
    this.takeover.keepRefused(j);
    this.reconciler.keep(j, r.token);
  }

  /**
   * Makes this node run technician `tech` for the device that just connected: takes it over,
   * asking a live owner to hand it over, retrying while the device stays connected.
   */
  private async claim(tech: string, link: DeviceLink): Promise<void> {
    const { cluster, takeover } = this;
    while (this.local.attached(tech, link) && !this.closed) {
      if ((await takeover.adopt(tech)) === 'runs') return;
      const owner = await cluster.owner(tech);
      if (owner !== null && owner !== cluster.nodeId) cluster.requestRelease(owner, tech);
      await sleep(this.clock, CLAIM_RETRY_MS);
    }
  }

  /**
   * Where a request about technician `tech` runs: null for here, or the id of the node
   * that runs it. A change (`write`) to a technician no node runs takes it over here; a
   * read does not (reads never move technicians, so they cannot fight a hand-over).
   */
  private async placeOf(tech: string, write: boolean): Promise<string | null> {
    const { cluster, takeover } = this;
    if (takeover.runs(tech)) return null;
    const owner = await cluster.owner(tech);
    if (owner !== null && owner !== cluster.nodeId) return owner;
    if (write) await takeover.adopt(tech);
    return null;
  }

  /** Where a request about order `id` runs (see placeOf); here when the order is unknown. */
  private async placeOfOrder(id: string, write: boolean): Promise<string | null> {
    const tech = await this.techOfOrder(id);
    return tech === null ? null : this.placeOf(tech, write);
  }

  /**
   * The technician of order `id`, from this node's records or the shared index; null when
   * unknown, at once while Redis is unreachable (the index read would wait in the outbox
   * for Redis to come back, and the request with it).
   */
  private async techOfOrder(id: string): Promise<string | null> {
    const local = this.local.techOfOrder(id);
    if (local !== undefined) return local;
    if (this.shared.readyForMs() === null) return null;
    return this.mirror.techOf(id).catch(() => null);
  }

  /** Runs a request another node forwarded here, on this node only. */
  private async runCall(op: string, args: unknown): Promise<Outcome<unknown>> {
    const call = parseRemoteCall(op, args);
    if (call === null) return { ok: false, code: 'bad_request', msg: `malformed ${op} request from a peer node` };
    switch (call.op) {
      case 'safety':
        return this.local.onSafetyMessage(call.operator, call.msg);
      case 'putOrder':
        return this.local.putOrder(call.id, call.input);
      case 'cancelOrder':
        return this.local.cancelOrder(call.id);
      case 'getOrder':
        return this.local.getOrder(call.id);
      case 'getTechnician':
        return this.local.getTechnician(call.id);
      case 'eraseTechnician':
        return this.local.eraseTechnician(call.id);
      case 'reconcile':
        // Checked against the record schemas on arrival: the same shapes as the actors' records.
        return this.reconciler.mergeHere(call.journaled as unknown as Journaled);
    }
  }

  attachDevice(tech: string, link: DeviceLink): void {
    this.local.attachDevice(tech, link);
    void this.claim(tech, link);
  }

  detachDevice(tech: string, link: DeviceLink): void {
    this.local.detachDevice(tech, link);
  }

  async onDeviceMessage(tech: string, msg: DeviceMessage): Promise<Outcome<AckExtras>> {
    const { local, takeover } = this;
    // Positions are served at once, even before the technician is taken over here: they
    // are archived by this node, and the newest position wins when the state is merged.
    if (msg.t === 'ping' || msg.t === 'batch' || takeover.runs(tech)) return local.onDeviceMessage(tech, msg);
    const got = await this.runHere(tech);
    if (got === 'taken') {
      return { ok: false, code: 'unavailable', msg: 'technician is between nodes; retry (reconnect if told to)' };
    }
    return local.onDeviceMessage(tech, msg);
  }

  /**
   * Makes this node run technician `tech` for a device attached here: takes it over, asking
   * another live owner to hand it over and waiting up to HANDOVER_WAIT_MS for it. `runs`, or
   * `unreachable` (Redis does not answer: serve from this node's state), or `taken`.
   */
  private async runHere(tech: string): Promise<Adoption> {
    const { cluster, takeover } = this;
    const until = this.clock.now() + HANDOVER_WAIT_MS;
    for (;;) {
      const got = await takeover.adopt(tech);
      if (got !== 'taken' || this.closed || !this.local.attached(tech) || this.clock.now() >= until) return got;
      const owner = await cluster.owner(tech);
      if (owner !== null && owner !== cluster.nodeId) cluster.requestRelease(owner, tech);
      await sleep(this.clock, CLAIM_RETRY_MS);
    }
  }

  attachSafety(operator: string, link: SafetyLink): void {
    this.local.attachSafety(operator, link);
  }

  detachSafety(link: SafetyLink): void {
    this.local.detachSafety(link);
  }

  async onSafetyMessage(operator: string, msg: SafetyMessage): Promise<Outcome<AckExtras>> {
    const { local, takeover, cluster } = this;
    const alert = local.localAlert(msg.id) ?? local.seenAlert(msg.id);
    if (alert === undefined) return notFound(`no alert ${msg.id}`);
    const tech = alert.tech;
    if (!takeover.runs(tech)) {
      // Run it where the technician runs; take it over here when no node does (not right
      // after a failover: takeover.ts `justReconnected`, answered `taken`).
      const got = await takeover.adopt(tech);
      if (got === 'taken') {
        const owner = await cluster.owner(tech);
        if (owner !== null && owner !== cluster.nodeId) {
          return cluster.forward(owner, 'safety', { operator, msg: { ...msg } });
        }
        return { ok: false, code: 'unavailable', msg: 'the alert is between nodes; retry' };
      }
    }
    return local.onSafetyMessage(operator, msg);
  }

  async putOrder(id: string, input: OrderInput): Promise<Outcome<OrderView>> {
    // An order runs where its technician runs; a re-assigned order stays with its first owner.
    const tech = (await this.techOfOrder(id)) ?? input.technician;
    const place = await this.placeOf(tech, true);
    if (place !== null) return this.cluster.forward(place, 'putOrder', { id, input });
    return this.local.putOrder(id, input);
  }

  async cancelOrder(id: string): Promise<Outcome<OrderView>> {
    const place = await this.placeOfOrder(id, true);
    if (place !== null) return this.cluster.forward(place, 'cancelOrder', { id });
    return this.unknownWhileUnreachable(await this.local.cancelOrder(id));
  }

  async getOrder(id: string): Promise<Outcome<OrderView>> {
    const place = await this.placeOfOrder(id, false);
    if (place !== null) return this.cluster.forward(place, 'getOrder', { id });
    return this.unknownWhileUnreachable(await this.local.getOrder(id));
  }

  /**
   * An order not on this node while Redis, which says where it runs, cannot be read (the
   * owner's lease unreadable) is unknown, not absent: "no such order" would tell a
   * customer's stream on this node that its link died, and a dispatcher that it is gone.
   */
  private unknownWhileUnreachable<T>(here: Outcome<T>): Outcome<T> {
    if (here.ok || here.code !== 'not_found' || this.shared.readyForMs() !== null) return here;
    return { ok: false, code: 'unavailable', msg: 'shared state unreachable: where this order runs is unknown; retry' };
  }

  async getTechnician(id: string): Promise<Outcome<TechnicianView>> {
    const place = await this.placeOf(id, false);
    if (place !== null) return this.cluster.forward(place, 'getTechnician', { id });
    return this.local.getTechnician(id);
  }

  async eraseTechnician(id: string): Promise<Outcome<TechnicianErased>> {
    // Runs where the technician runs, so the records it removes are the current ones.
    const place = await this.placeOf(id, true);
    if (place !== null) return this.cluster.forward(place, 'eraseTechnician', { id });
    return this.local.eraseTechnician(id);
  }

  getTrack(id: string, from: number, to: number, limit?: number): Promise<Outcome<TrackPoint[]>> {
    return this.local.getTrack(id, from, to, limit);
  }

  getOrderTimeline(id: string): Promise<Outcome<OrderTimeline>> {
    return this.local.getOrderTimeline(id);
  }

  listAlerts(state?: AlertState): Promise<Alert[]> {
    return this.local.listAlerts(state);
  }

  nearby(lat: number, lon: number, radius: number): Promise<NearbyTechnician[]> {
    return this.local.nearby(lat, lon, radius);
  }

  readiness(): Promise<Record<string, ComponentHealth>> {
    return this.local.readiness();
  }

  /** Stops taking technicians over, then closes the local tracker, which hands everything to shared storage. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.takeover.stop();
    this.reconciler.stop();
    this.resync.stop();
    await this.local.close();
  }

  /** Waits until every message in flight has landed (tests). */
  settle(): Promise<void> {
    return this.local.settle();
  }

  /** Stops like kill -9 would (tests): no lease is released, nothing is handed over. */
  async crash(): Promise<void> {
    this.closed = true;
    this.takeover.stop();
    this.reconciler.stop();
    this.resync.stop();
    this.cluster.abandon();
    await this.local.crash();
  }
}
