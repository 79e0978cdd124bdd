/**
 * The `Tracker` of the gateway port, built on nact actors: one actor per technician,
 * per order and per open SOS incident, supervised by a `Registry` per kind, sharing an
 * alert board, a durable store (archive + journal) and the device links.
 *
 * The tracker itself holds no behaviour state: it routes each request to the right actor
 * (or to the board for non-SOS alert acks) and answers queries from committed records.
 */
import { type ActorSystemRef, start, stop } from 'nact';
import type { Clock } from '../clock.js';
import { ClusterLink } from '../cluster/cluster-link.js';
import { parseRemoteCall } from '../cluster/remote-calls.js';
import { Takeover } from '../cluster/takeover.js';
import type { Config } from '../config.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import type {
  Alert,
  AlertState,
  DeviceMessage,
  DevicePush,
  NearbyTechnician,
  OrderInput,
  OrderView,
  SafetyMessage,
  TechnicianView,
  TrackPoint,
} from '../protocol.js';
import { memorySharedState, type SharedState } from '../shared/shared-state.js';
import type { ArchiveEraser, ArchiveQueries, ArchiveWriter } from '../telemetry/archive.js';
import { AlertBoard } from './alert-board.js';
import { acknowledge, resolve } from './alert-rules.js';
import type {
  AckExtras,
  ComponentHealth,
  DeviceLink,
  OrderTimeline,
  Outcome,
  Refusal,
  SafetyLink,
  TechnicianErased,
  Tracker,
} from './api.js';
import { ConsoleFanout } from './console-fanout.js';
import type { ActorDeps } from './deps.js';
import { incidentSpec } from './incident-actor.js';
import { Journal, type JournalOptions } from './journal.js';
import { type IncidentMsg, type OrderMsg, type Reply, type TechMsg, TICK } from './messages.js';
import { orderSpec, orderView } from './order-actor.js';
import {
  activeOrderOf,
  isTerminalState,
  isUnresolved,
  type OrderRecord,
  type TechRecord,
  techView,
} from './records.js';
import { recover } from './recovery.js';
import { notYours } from './refusals.js';
import { Registry } from './registry.js';
import { isStorageFailure, NOT_STORED, Store } from './store.js';
import { technicianSpec } from './technician-actor.js';
import { WorkCounter } from './work.js';

/** What `createTracker` needs; the lead wires these in src/app.ts. */
export interface TrackerDeps {
  config: Config;
  clock: Clock;
  log: Logger;
  metrics: Metrics;
  /**
   * The archive. Erasing is optional here only so that stand-ins of benchmarks need not
   * offer it; without it `eraseTechnician` refuses before touching anything.
   */
  archive: ArchiveWriter & ArchiveQueries & Partial<ArchiveEraser> & { health(): ComponentHealth };
  /** Journal tuning (tests shorten the position flush); production uses the defaults. */
  journal?: JournalOptions;
  /**
   * State shared with the other nodes (src/shared); in-process twins when absent (one node,
   * no `REDIS_URL`). The tracker owns it from here on and closes it.
   */
  shared?: SharedState;
}

/**
 * Retention of finished business in live state (README): completed/cancelled orders and
 * resolved alerts stay queryable here for this long after they finished, then live only
 * in the archive (order_events, alert_events). Without it memory and the journal
 * snapshot would grow with every order ever handled.
 */
export const RETAIN_FINISHED_MS = 24 * 60 * 60 * 1000;
/** Longest start-up waits for the alert feed's snapshot before serving without it (Redis down). */
const FEED_START_WAIT_MS = 3000;
/** How often a device's node retries taking its technician over while another node holds it. */
const CLAIM_RETRY_MS = 200;
/** How often the retention rule runs. */
const RETENTION_EVERY_MS = 60 * 60 * 1000;
/**
 * Longest an erase waits for the archive (spool drain and delete mutations). Below the
 * node-to-node request timeout, so a forwarded erase answers instead of timing out.
 */
const ERASE_ARCHIVE_TIMEOUT_MS = 8000;
/** How long an erase waits for a message in flight to an actor it removes before giving up. */
const ERASE_BUSY_WAIT_MS = 5000;

const notFound = (msg: string): Refusal => ({ ok: false, code: 'not_found', msg });

const ARCHIVE_DOWN: Refusal = { ok: false, code: 'unavailable', msg: 'the archive cannot be read right now; retry' };

/** The actor-based Tracker; `createTracker` builds one. Exposes `settle` and `crash` for tests. */
export class ActorTracker implements Tracker {
  private readonly devices = new Map<string, DeviceLink>();
  /** Last position time put in the live-position index per technician, so a repeat costs nothing. */
  private readonly indexed = new Map<string, number>();
  /** Per technician, the end of the `sos` handling in progress (see oneSosAtATime). */
  private readonly sosInFlight = new Map<string, Promise<void>>();
  /** Cross-node duties in Redis mode; null in embedded mode. */
  private cluster: ClusterLink | null = null;
  /** Technician take-over in Redis mode; null in embedded mode. */
  private takeover: Takeover | null = null;
  private closed = false;
  private cancelRetention: (() => void) | null = null;

  private constructor(
    private readonly system: ActorSystemRef,
    private readonly deps: TrackerDeps,
    private readonly journal: Journal,
    private readonly board: AlertBoard,
    private readonly fanout: ConsoleFanout,
    private readonly shared: SharedState,
    private readonly work: WorkCounter,
    /** Technician actors; public for tests (passivation, crash counts). */
    readonly techs: Registry<TechRecord, TechMsg>,
    readonly orders: Registry<OrderRecord, OrderMsg>,
    readonly incidents: Registry<Alert, IncidentMsg>,
  ) {}

  /** Opens the journal in DATA_DIR, rebuilds state from it and starts the actors. */
  static async start(deps: TrackerDeps): Promise<ActorTracker> {
    const { config, clock, log, metrics, archive } = deps;
    const startedAt = clock.now();
    const { journal, records } = await Journal.open(config.DATA_DIR, clock, log, {
      reserveBytes: config.JOURNAL_RESERVE_BYTES,
      ...deps.journal,
    });
    const work = new WorkCounter();
    const store = new Store(archive, journal, log);
    const shared = deps.shared ?? memorySharedState(clock);
    const board = new AlertBoard(store, clock, metrics, log, work, shared.feed);
    const fanout = new ConsoleFanout(shared.feed, log);
    const system = start();
    let tracker: ActorTracker | undefined;
    const actorDeps: ActorDeps = {
      config,
      clock,
      log,
      store,
      board,
      journal,
      pushDevice: (tech, msg) => tracker?.pushDevice(tech, msg),
      techs: { send: (id, m) => techs.send(id, m), arm: (id, at) => techs.arm(id, at) },
      orders: { send: (id, m) => orders.send(id, m), arm: (id, at) => orders.arm(id, at) },
      incidents: { send: (id, m) => incidents.send(id, m), arm: (id, at) => incidents.arm(id, at) },
    };
    const pass = config.PASSIVATE_AFTER_MS;
    const techs = new Registry(system, technicianSpec(actorDeps), TICK, clock, pass, metrics, log, work);
    const orders = new Registry(system, orderSpec(actorDeps), TICK, clock, pass, metrics, log, work);
    const incidents = new Registry(system, incidentSpec(actorDeps), TICK, clock, pass, metrics, log, work);
    tracker = new ActorTracker(system, deps, journal, board, fanout, shared, work, techs, orders, incidents);

    await fanout.start(FEED_START_WAIT_MS);
    if (shared.bus !== null) {
      // Multi-node: Redis holds the shared state; technicians are loaded from it when this
      // node takes them over (takeover.ts), never from the local journal, which another
      // node's newer changes would contradict.
      tracker.startCluster();
      tracker.retain();
      log.info({ node: shared.bus.nodeId, journaled: records.length }, 'tracker started in multi-node mode');
      return tracker;
    }
    const state = recover(records, startedAt);
    board.load(state.alerts);
    // The in-process feed starts empty each run: the journal's alerts are its history.
    for (const a of state.alerts) await shared.feed.append(a);
    for (const [id, rec] of state.orders) orders.records.set(id, rec);
    for (const [id, rec] of state.techs) techs.records.set(id, rec);
    for (const a of state.incidents) incidents.records.set(a.id, a);
    // Wake everything with a deadline: what fell due while we were down fires now.
    for (const [id, rec] of state.orders) if (!isTerminalState(rec.state)) orders.send(id, TICK);
    for (const a of state.incidents) incidents.send(a.id, TICK);
    for (const [id, rec] of state.techs) if (activeOrderOf(rec) !== undefined) techs.send(id, TICK);
    tracker.retain();
    log.info(
      { orders: state.orders.size, technicians: state.techs.size, alerts: state.alerts.length },
      'tracker state recovered from journal',
    );
    return tracker;
  }

  /** Forgets finished orders and resolved alerts older than RETAIN_FINISHED_MS; re-arms itself. */
  retain(): void {
    const { clock } = this.deps;
    const cutoff = clock.now() - RETAIN_FINISHED_MS;
    for (const [id, o] of this.orders.records) {
      if (!isTerminalState(o.state) || (o.timeline.at(-1)?.ts ?? 0) >= cutoff) continue;
      if (this.orders.forget(id)) this.journal.forget('o', id);
    }
    for (const a of this.board.list('resolved')) {
      const resolvedAt = typeof a.detail?.resolvedAt === 'number' ? a.detail.resolvedAt : a.ts;
      if (resolvedAt >= cutoff || !this.board.forget(a.id)) continue;
      this.incidents.forget(a.id);
      this.journal.forget('a', a.id);
    }
    for (const a of this.fanout.list('resolved')) {
      const resolvedAt = typeof a.detail?.resolvedAt === 'number' ? a.detail.resolvedAt : a.ts;
      if (resolvedAt < cutoff && this.board.get(a.id) === undefined) this.fanout.forget(a.id);
    }
    if (!this.closed) this.cancelRetention = clock.setTimer(clock.now() + RETENTION_EVERY_MS, () => this.retain());
  }

  /** Redis mode: joins the other nodes through the bus, the leases and the state mirror. */
  private startCluster(): void {
    const { bus, leases, mirror } = this.shared;
    if (bus === null || mirror === null) return;
    const cluster = new ClusterLink(
      bus,
      leases,
      {
        call: (op, args) => this.runCall(op, args),
        push: (tech, msg) => this.pushLocal(tech, msg),
        drop: (tech) => this.takeover?.drop(tech) ?? Promise.resolve(),
      },
      this.deps.log,
    );
    this.cluster = cluster;
    this.takeover = new Takeover({
      cluster,
      mirror,
      shared: this.shared,
      board: this.board,
      fanout: this.fanout,
      techs: this.techs,
      orders: this.orders,
      incidents: this.incidents,
      log: this.deps.log,
      attached: (tech) => this.devices.has(tech),
      now: () => this.deps.clock.now(),
    });
    // Deadlines fire only on the node holding the technician's lease.
    this.techs.gate = (id) => cluster.holds(id);
    this.orders.gate = (id) => {
      const o = this.orders.records.get(id);
      return o === undefined || cluster.holds(o.tech);
    };
    this.incidents.gate = (id) => {
      const a = this.incidents.records.get(id);
      return a === undefined || cluster.holds(a.tech);
    };
    // Every durable order and position record is copied to Redis for the next owner.
    this.journal.onDurable = (rec) => {
      if (rec.k === 'o') mirror.putOrder(rec.o.tech, rec.o.id, isTerminalState(rec.o.state) ? null : rec.o);
      else if (rec.k === 'p') mirror.putPosition(rec.id, { pos: rec.pos, quietSince: rec.quietSince });
    };
    cluster.start();
    this.takeover.start();
  }

  /**
   * Makes this node run technician `tech` for the device that just connected: takes it over,
   * asking a live owner to hand it over, retrying while the device stays connected.
   */
  private async claim(tech: string, link: DeviceLink): Promise<void> {
    const { cluster, takeover } = this;
    if (cluster === null || takeover === null) return;
    while (this.devices.get(tech) === link && !this.closed) {
      if (await takeover.adopt(tech)) return;
      const owner = await cluster.owner(tech);
      if (owner !== null && owner !== cluster.nodeId) cluster.requestRelease(owner, tech);
      await new Promise((r) => setTimeout(r, CLAIM_RETRY_MS));
    }
  }

  /**
   * Where a request about technician `tech` runs: null for here, or the id of the node
   * that runs it. A change (`write`) to a technician no node runs takes it over here; a
   * read does not (reads never move technicians, so they cannot fight a hand-over).
   */
  private async placeOf(tech: string, write: boolean): Promise<string | null> {
    const { cluster, takeover } = this;
    if (cluster === null || takeover === null || takeover.runs(tech)) return null;
    const owner = await cluster.owner(tech);
    if (owner !== null && owner !== cluster.nodeId) return owner;
    if (write) await takeover.adopt(tech);
    return null;
  }

  /** Runs a request another node forwarded here, on this node only. */
  private async runCall(op: string, args: unknown): Promise<Outcome<unknown>> {
    const call = parseRemoteCall(op, args);
    if (call === null) return { ok: false, code: 'bad_request', msg: `malformed ${op} request from a peer node` };
    switch (call.op) {
      case 'safety':
        return this.safetyHere(call.operator, call.msg);
      case 'putOrder':
        return this.putOrderHere(call.id, call.input);
      case 'cancelOrder':
        return this.cancelOrderHere(call.id);
      case 'getOrder':
        return this.getOrderHere(call.id);
      case 'getTechnician':
        return this.getTechnicianHere(call.id);
      case 'eraseTechnician':
        return this.eraseTechnicianHere(call.id);
    }
  }

  /** The technician of order `id`, from this node's records or the shared index. */
  private async techOfOrder(id: string): Promise<string | null> {
    const local = this.orders.records.get(id)?.tech;
    if (local !== undefined || this.shared.mirror === null) return local ?? null;
    return this.shared.mirror.techOf(id).catch(() => null);
  }

  attachDevice(tech: string, link: DeviceLink): void {
    this.devices.set(tech, link);
    void this.claim(tech, link);
    const pos = this.techs.records.get(tech)?.pos;
    if (pos !== undefined && pos !== null) this.shared.nearby.put(tech, pos.lat, pos.lon, pos.ts);
  }

  detachDevice(tech: string, link: DeviceLink): void {
    if (this.devices.get(tech) !== link) return;
    this.devices.delete(tech);
    this.indexed.delete(tech);
    this.shared.nearby.remove(tech);
  }

  /** After an accepted position, publishes it to the live-position index (not awaited). */
  private indexPosition(tech: string, out: Outcome<AckExtras>): Outcome<AckExtras> {
    if (!out.ok || !this.devices.has(tech)) return out;
    const pos = this.techs.records.get(tech)?.pos;
    if (pos !== undefined && pos !== null && pos.ts !== this.indexed.get(tech)) {
      this.indexed.set(tech, pos.ts);
      this.shared.nearby.put(tech, pos.lat, pos.lon, pos.ts);
    }
    return out;
  }

  onDeviceMessage(tech: string, msg: DeviceMessage): Promise<Outcome<AckExtras>> {
    switch (msg.t) {
      case 'ping':
      case 'batch':
        return this.positionsHere(tech, msg);
      case 'depart':
      case 'start':
      case 'complete':
      case 'checkin': {
        if (!this.orders.records.has(msg.order) && this.takeover !== null && !this.takeover.runs(tech)) {
          // The device is faster than the take-over of its technician: wait for it once.
          return this.takeover.adopt(tech).then(() => this.onDeviceMessageHere(tech, msg));
        }
        return this.onDeviceMessageHere(tech, msg);
      }
      case 'sos_cancel':
        if (!this.board.get(msg.incident) && this.takeover !== null && !this.takeover.runs(tech)) {
          return this.takeover.adopt(tech).then(() => this.onDeviceMessageHere(tech, msg));
        }
        return this.onDeviceMessageHere(tech, msg);
      default:
        return this.onDeviceMessageHere(tech, msg);
    }
  }

  /** A `ping` or `batch` for the technician actor; an accepted newest fix goes to the nearby index. */
  private positionsHere(tech: string, msg: DeviceMessage & { t: 'ping' | 'batch' }): Promise<Outcome<AckExtras>> {
    const asked =
      msg.t === 'ping'
        ? ask<TechRecord, TechMsg, AckExtras>(this.techs, tech, (reply) => ({ t: 'ping' as const, fix: msg, reply }))
        : ask<TechRecord, TechMsg, AckExtras>(this.techs, tech, (reply) => ({
            t: 'batch' as const,
            pts: msg.pts,
            reply,
          }));
    return asked.then((out) => this.indexPosition(tech, out));
  }

  /** A device message handled with what this node holds. */
  private onDeviceMessageHere(tech: string, msg: DeviceMessage): Promise<Outcome<AckExtras>> {
    switch (msg.t) {
      case 'ping':
      case 'batch':
        return this.positionsHere(tech, msg);
      case 'depart':
      case 'start':
      case 'complete':
      case 'checkin': {
        if (!this.orders.records.has(msg.order)) return Promise.resolve(notYours('order', msg.order));
        const fix =
          msg.t === 'checkin'
            ? { lat: msg.lat, lon: msg.lon, ...(msg.acc !== undefined ? { acc: msg.acc } : {}) }
            : null;
        const ts = msg.t === 'checkin' ? msg.ts : msg.t === 'depart' ? (msg.ts ?? null) : null;
        const moved = ask<OrderRecord, OrderMsg, AckExtras>(this.orders, msg.order, (reply) => ({
          t: 'device' as const,
          tech,
          cmd: msg.t,
          ts,
          fix,
          reply,
        }));
        if (msg.t !== 'checkin') return moved;
        // An accepted check-in's fix is a position like any other (archived, live, nearby).
        return moved.then(async (out) => {
          if (out.ok) await this.recordFix(tech, msg);
          return out;
        });
      }
      case 'sos':
        return this.oneSosAtATime(tech, () => this.sosHere(tech, msg));
      case 'sos_cancel': {
        const a = this.board.get(msg.incident);
        if (a === undefined || a.kind !== 'sos' || a.tech !== tech) {
          return Promise.resolve(notYours('incident', msg.incident));
        }
        if (a.state === 'resolved')
          return Promise.resolve({ ok: false, code: 'conflict', msg: 'incident is resolved' });
        return ask(this.incidents, msg.incident, (reply) => ({ t: 'cancel' as const, tech, reply }));
      }
    }
  }

  /**
   * Runs `sos` handling of technician `tech` after the previous one has finished, so two
   * presses in a row cannot both find no open incident and open two.
   */
  private oneSosAtATime(tech: string, run: () => Promise<Outcome<AckExtras>>): Promise<Outcome<AckExtras>> {
    const before = this.sosInFlight.get(tech) ?? Promise.resolve();
    const result = before.then(run);
    const settled = result.then(
      () => undefined,
      () => undefined,
    );
    this.sosInFlight.set(tech, settled);
    void settled.then(() => {
      if (this.sosInFlight.get(tech) === settled) this.sosInFlight.delete(tech);
    });
    return result;
  }

  /** An SOS: a press of the technician's unresolved incident, or a new incident; its fix is a position too. */
  private async sosHere(tech: string, msg: DeviceMessage & { t: 'sos' }): Promise<Outcome<AckExtras>> {
    const fixRecorded = this.recordFix(tech, msg);
    const press = {
      tech,
      ts: msg.ts,
      lat: msg.lat,
      lon: msg.lon,
      ...(msg.note !== undefined ? { note: msg.note } : {}),
    };
    const open = this.openIncidentOf(tech);
    let out: Outcome<AckExtras> | null = null;
    if (open !== null) {
      out = await ask<Alert, IncidentMsg, AckExtras>(this.incidents, open, (reply) => ({
        t: 'press' as const,
        ...press,
        reply,
      }));
      // Resolved or cancelled meanwhile: this press opens a new incident.
      if (!out.ok && out.code === 'conflict') out = null;
    }
    out ??= await ask<Alert, IncidentMsg, AckExtras>(this.incidents, this.board.newId(), (reply) => ({
      t: 'open' as const,
      ...press,
      reply,
    }));
    await fixRecorded;
    return out;
  }

  /** The id of technician `tech`'s SOS incident that is not resolved, if any. */
  private openIncidentOf(tech: string): string | null {
    for (const [id, a] of this.incidents.records) {
      if (a.tech === tech && a.state !== 'resolved') return id;
    }
    return null;
  }

  /**
   * Stores a fix that came with a `checkin` or `sos` as the technician's position
   * (archived, live, nearby), exactly as a ping would be. Never fails the message that
   * brought it: that message's own effect is already durable; a refused fix is logged.
   */
  private async recordFix(tech: string, fix: { ts: number; lat: number; lon: number; acc?: number }): Promise<void> {
    const ping = { ts: fix.ts, lat: fix.lat, lon: fix.lon, ...(fix.acc !== undefined ? { acc: fix.acc } : {}) };
    try {
      const out = await ask<TechRecord, TechMsg, AckExtras>(this.techs, tech, (reply) => ({
        t: 'ping' as const,
        fix: ping,
        reply,
      }));
      this.indexPosition(tech, out);
      if (!out.ok) this.deps.log.warn({ tech, code: out.code }, 'fix of a checkin or sos not stored as a position');
    } catch (err) {
      this.deps.log.error({ err, tech }, 'fix of a checkin or sos not stored as a position');
    }
  }

  attachSafety(_operator: string, link: SafetyLink): void {
    this.fanout.attach(link);
  }

  detachSafety(link: SafetyLink): void {
    this.fanout.detach(link);
  }

  async onSafetyMessage(operator: string, msg: SafetyMessage): Promise<Outcome<AckExtras>> {
    if (this.board.get(msg.id) === undefined && this.cluster !== null) {
      // An alert of another node: run the request where its actor runs.
      const seen = this.fanout.get(msg.id);
      if (seen === undefined) return notFound(`no alert ${msg.id}`);
      const place = await this.placeOf(seen.tech, true);
      if (place !== null) return this.cluster.forward(place, 'safety', { operator, msg: { ...msg } });
    }
    return this.safetyHere(operator, msg);
  }

  /** Runs an operator's request on this node's alerts only. */
  private async safetyHere(operator: string, msg: SafetyMessage): Promise<Outcome<AckExtras>> {
    const a = this.board.get(msg.id);
    if (a === undefined) return notFound(`no alert ${msg.id}`);
    if (a.kind === 'sos' && this.incidents.records.has(a.id) && a.state !== 'resolved') {
      return ask(this.incidents, a.id, (reply) =>
        msg.t === 'ack'
          ? { t: 'ack' as const, operator, reply }
          : { t: 'resolve' as const, operator, ...(msg.note !== undefined ? { note: msg.note } : {}), reply },
      );
    }
    const now = this.deps.clock.now();
    const rule = msg.t === 'ack' ? acknowledge(operator, now) : resolve(operator, msg.note, now);
    const out = await this.board.change(a.id, rule, 'refuse');
    return out.ok ? { ok: true, value: {} } : out;
  }

  async putOrder(id: string, input: OrderInput): Promise<Outcome<OrderView>> {
    // An order runs where its technician runs; a re-assigned order stays with its first owner.
    const tech = (await this.techOfOrder(id)) ?? input.technician;
    const place = await this.placeOf(tech, true);
    if (place !== null && this.cluster !== null) return this.cluster.forward(place, 'putOrder', { id, input });
    return this.putOrderHere(id, input);
  }

  async cancelOrder(id: string): Promise<Outcome<OrderView>> {
    const place = await this.placeOfOrder(id, true);
    if (place !== null && this.cluster !== null) return this.cluster.forward(place, 'cancelOrder', { id });
    return this.cancelOrderHere(id);
  }

  async getOrder(id: string): Promise<Outcome<OrderView>> {
    const place = await this.placeOfOrder(id, false);
    if (place !== null && this.cluster !== null) return this.cluster.forward(place, 'getOrder', { id });
    return this.getOrderHere(id);
  }

  async getTechnician(id: string): Promise<Outcome<TechnicianView>> {
    const place = await this.placeOf(id, false);
    if (place !== null && this.cluster !== null) return this.cluster.forward(place, 'getTechnician', { id });
    return this.getTechnicianHere(id);
  }

  /** Where a request about order `id` runs (see placeOf); here when the order is unknown. */
  private async placeOfOrder(id: string, write: boolean): Promise<string | null> {
    if (this.cluster === null) return null;
    const tech = await this.techOfOrder(id);
    return tech === null ? null : this.placeOf(tech, write);
  }

  private putOrderHere(id: string, input: OrderInput): Promise<Outcome<OrderView>> {
    return ask(this.orders, id, (reply) => ({ t: 'put' as const, input, reply }));
  }

  private cancelOrderHere(id: string): Promise<Outcome<OrderView>> {
    if (!this.orders.records.has(id)) return Promise.resolve(notFound(`no order ${id}`));
    return ask(this.orders, id, (reply) => ({ t: 'cancel' as const, reply }));
  }

  private async getOrderHere(id: string): Promise<Outcome<OrderView>> {
    const o = this.orders.records.get(id);
    return o === undefined ? notFound(`no order ${id}`) : { ok: true, value: orderView(o) };
  }

  private async getTechnicianHere(id: string): Promise<Outcome<TechnicianView>> {
    const t = this.techs.records.get(id);
    return t === undefined ? notFound(`no technician ${id}`) : { ok: true, value: techView(t, this.devices.has(id)) };
  }

  async getTrack(id: string, from: number, to: number, limit?: number): Promise<Outcome<TrackPoint[]>> {
    const points = await this.deps.archive.track(id, from, to, limit);
    // The archive may know a technician this node never saw (another node, a new DATA_DIR).
    if (points.length === 0 && !this.techs.records.has(id)) return notFound(`no technician ${id}`);
    return { ok: true, value: points };
  }

  async getOrderTimeline(id: string): Promise<Outcome<OrderTimeline>> {
    let events: Awaited<ReturnType<ArchiveQueries['orderEvents']>>;
    try {
      events = await this.deps.archive.orderEvents(id);
    } catch (err) {
      this.deps.log.warn({ err }, 'order timeline: archive read failed');
      return ARCHIVE_DOWN;
    }
    if (events.length === 0) return notFound(`no archived events of order ${id}`);
    const timeline = events.map((e) => ({
      state: e.state,
      ts: e.ts,
      ...(e.lat !== null ? { lat: e.lat } : {}),
      ...(e.lon !== null ? { lon: e.lon } : {}),
    }));
    return { ok: true, value: { id, timeline } };
  }

  async eraseTechnician(id: string): Promise<Outcome<TechnicianErased>> {
    // Runs where the technician runs, so the records it removes are the current ones.
    const place = await this.placeOf(id, true);
    if (place !== null && this.cluster !== null) return this.cluster.forward(place, 'eraseTechnician', { id });
    return this.eraseTechnicianHere(id);
  }

  /**
   * Erases technician `id` from this node, the shared state and the archive (README,
   * "Erasing a technician"). Refuses while anything safety-relevant is still going on;
   * otherwise removes live state first (so no actor writes new rows of it), then the
   * journal (tombstones + compaction), Redis and last the archive.
   */
  private async eraseTechnicianHere(id: string): Promise<Outcome<TechnicianErased>> {
    const eraseArchive = this.deps.archive.eraseTechnician?.bind(this.deps.archive);
    if (eraseArchive === undefined) return { ok: false, code: 'unavailable', msg: 'this archive cannot erase' };
    if (this.devices.has(id)) {
      return {
        ok: false,
        code: 'conflict',
        msg: 'the technician is connected: sign the device out first, or its next ping records it again',
      };
    }
    const orders = [...this.orders.records.values()].filter((o) => o.tech === id);
    const alerts = new Map<string, Alert>();
    for (const a of this.fanout.list()) if (a.tech === id) alerts.set(a.id, a);
    for (const a of this.board.list()) if (a.tech === id) alerts.set(a.id, a);
    const openOrders = orders.filter((o) => !isTerminalState(o.state)).map((o) => o.id);
    const openAlerts = [...alerts.values()].filter(isUnresolved).map((a) => a.id);
    if (openOrders.length > 0 || openAlerts.length > 0) {
      return {
        ok: false,
        code: 'conflict',
        msg: 'the technician has open orders or unresolved alerts: finish or cancel them and resolve the alerts first',
        extras: { orders: openOrders, alerts: openAlerts },
      };
    }
    const tech = this.techs.records.get(id);
    if (tech === undefined && orders.length === 0 && alerts.size === 0) {
      // Maybe only the archive still knows it (an erase that failed there, another node).
      const archived = await this.deps.archive.track(id, 0, this.deps.clock.now(), 1).catch(() => null);
      if (archived === null) return ARCHIVE_DOWN;
      if (archived.length === 0) return notFound(`no technician ${id}`);
    }

    const deadline = Date.now() + ERASE_BUSY_WAIT_MS;
    const removed = await untilFree(deadline, () => this.techs.forget(id));
    for (const o of orders) if (removed) await untilFree(deadline, () => this.orders.forget(o.id));
    for (const a of alerts.values()) {
      if (!(await untilFree(deadline, () => this.board.get(a.id) === undefined || this.board.forget(a.id)))) {
        return { ok: false, code: 'unavailable', msg: 'the technician is busy right now; retry' };
      }
      await untilFree(deadline, () => this.incidents.forget(a.id));
      this.fanout.forget(a.id);
    }
    if (!removed || orders.some((o) => this.orders.records.has(o.id))) {
      return { ok: false, code: 'unavailable', msg: 'the technician is busy right now; retry' };
    }
    this.indexed.delete(id);
    await this.shared.nearby.erase(id);
    try {
      await this.journal.erase([
        { kind: 'p', id },
        ...orders.map((o) => ({ kind: 'o' as const, id: o.id })),
        ...[...alerts.keys()].map((a) => ({ kind: 'a' as const, id: a })),
      ]);
    } catch (err) {
      if (!isStorageFailure(err)) throw err;
      this.deps.log.warn({ err, tech: id }, 'erase: the journal cannot store the erasure');
      return {
        ...NOT_STORED,
        msg: 'the node cannot store the erasure right now (disk full or failing); retry the erase',
      };
    }
    if (this.shared.mirror !== null) {
      await this.shared.mirror.eraseTech(id);
      await this.takeover?.drop(id);
      await this.cluster?.release(id);
    }
    try {
      await eraseArchive(id, ERASE_ARCHIVE_TIMEOUT_MS);
    } catch (err) {
      this.deps.log.warn({ err, tech: id }, 'erase: live state erased, archive not yet');
      return {
        ok: false,
        code: 'unavailable',
        msg: `live state is erased but the archive is not yet (${(err as Error).message}); retry the erase`,
      };
    }
    this.deps.log.info({ tech: id, orders: orders.length, alerts: alerts.size }, 'technician erased');
    const value: TechnicianErased = {
      id,
      erased: {
        technician: tech !== undefined,
        orders: orders.map((o) => o.id),
        alerts: [...alerts.keys()],
        archive: true,
      },
    };
    return { ok: true, value };
  }

  async listAlerts(state?: AlertState): Promise<Alert[]> {
    const mine = this.board.list(state);
    // Other nodes' alerts as the feed last showed them; this node's own are freshest on its board.
    const others = this.fanout.list(state).filter((a) => this.board.get(a.id) === undefined);
    if (others.length === 0) return mine;
    return [...mine, ...others].sort((a, b) => b.ts - a.ts || (a.id < b.id ? 1 : -1));
  }

  nearby(lat: number, lon: number, radius: number): Promise<NearbyTechnician[]> {
    return this.shared.nearby.search(lat, lon, radius);
  }

  async readiness(): Promise<Record<string, ComponentHealth>> {
    const out: Record<string, ComponentHealth> = {
      archive: this.deps.archive.health(),
      journal: this.journal.health(),
    };
    const redis = this.shared.health();
    if (redis !== null) out.redis = redis;
    return out;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.work
      .settle()
      .catch((err: Error) => this.deps.log.warn({ err }, 'tracker: work still in flight at close'));
    this.takeover?.stop();
    this.stopActors();
    // The next owner of this node's technicians loads what is in Redis: send it all first.
    await this.board.flushFeed();
    await this.shared.mirror?.flush();
    await this.cluster?.close();
    await this.fanout.stop();
    await this.journal.close();
    await this.shared.close();
  }

  /** Waits until every message and alert change in flight has landed (tests, after moving the clock). */
  settle(): Promise<void> {
    return this.work.settle();
  }

  /**
   * Stops like kill -9 would, for recovery tests: actors and timers stop at once, queued
   * positions are not flushed, nothing is awaited beyond releasing the journal's file.
   */
  async crash(): Promise<void> {
    this.closed = true;
    this.takeover?.stop();
    this.stopActors();
    this.cluster?.abandon();
    await this.fanout.stop();
    await this.journal.abandon();
    await this.shared.close();
  }

  private stopActors(): void {
    this.cancelRetention?.();
    this.techs.stopAll();
    this.orders.stopAll();
    this.incidents.stopAll();
    stop(this.system);
  }

  /** Pushes to technician `tech`'s device wherever it is connected. */
  private pushDevice(tech: string, msg: DevicePush): void {
    if (!this.devices.has(tech) && this.cluster !== null) {
      void this.cluster.pushRemote(tech, msg);
      return;
    }
    this.pushLocal(tech, msg);
  }

  /** Pushes to technician `tech`'s device if it is connected to this node; dropped otherwise. */
  private pushLocal(tech: string, msg: DevicePush): void {
    const link = this.devices.get(tech);
    if (link === undefined) return;
    try {
      link.push(msg);
    } catch (err) {
      this.deps.log.warn({ err }, 'device link push failed');
    }
  }
}

/**
 * Retries `op` (a removal refused while a message is in flight) until it succeeds or
 * `deadline` (wall clock) passes; whether it succeeded.
 */
async function untilFree(deadline: number, op: () => boolean): Promise<boolean> {
  for (let i = 0; !op(); i++) {
    if (Date.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, i < 50 ? 10 : 100));
  }
  return true;
}

/** Sends a request carrying a resolver to the actor of `id`: one dispatch, no nact query timeout. */
function ask<S, M extends { t: string }, T>(
  reg: Registry<S, M>,
  id: string,
  make: (reply: Reply<T>) => NoInfer<M>,
): Promise<Outcome<T>> {
  return new Promise((resolve) => reg.send(id, make(resolve)));
}
