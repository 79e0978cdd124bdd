/**
 * The `Tracker` of the gateway port on one node, built on nact actors: one actor per
 * technician, per order and per open SOS incident, supervised by a `Registry` per kind,
 * sharing an alert board, persistence (archive + journal) and the device links.
 *
 * The tracker itself holds no behaviour state: it routes each request to the right actor
 * (device messages through device-intake.ts, non-SOS alert acks to the board) and answers
 * queries from committed records. It knows nothing of other nodes: in multi-node mode the
 * composition root wraps it in a `ClusteredTracker` (src/cluster), which plugs in through
 * the narrow `LocalTracker` surface (local-tracker.ts).
 */
import { type ActorSystemRef, start, stop } from 'nact';
import type { Clock } from '../clock.js';
import type { Config } from '../config.js';
import { type EtaEstimator, StraightLineEstimator } from '../eta/eta.js';
import type { EventLog } from '../events/event-log.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import type { AckExtras, ComponentHealth, Outcome } from '../outcome.js';
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
import type { SharedState } from '../shared/shared-state.js';
import { Journal, type JournalOptions } from '../storage/journal.js';
import type { ArchiveEraser, ArchiveQueries, ArchiveWriter } from '../telemetry/archive.js';
import { AlertBoard } from './alert-board.js';
import { acknowledge, resolve } from './alert-rules.js';
import type { DeviceLink, LiveObserver, OrderTimeline, SafetyLink, TechnicianErased } from './api.js';
import { ConsoleFanout } from './console-fanout.js';
import type { ActorDeps } from './deps.js';
import { DeviceIntake } from './device-intake.js';
import { eraseTechnician } from './erase.js';
import { adopt, evict, type HandoverDeps, wake } from './handover.js';
import { incidentSpec } from './incident-actor.js';
import type { ClusterHooks, LocalTracker } from './local-tracker.js';
import { type IncidentMsg, type OrderMsg, type TechMsg, TICK } from './messages.js';
import { orderSpec, orderView } from './order-actor.js';
import { Persistence } from './persistence.js';
import {
  activeOrderOf,
  isTerminalState,
  isUnresolved,
  type LiveJournal,
  type LiveKinds,
  type LivePosition,
  type LiveRecord,
  type OrderRecord,
  type TechRecord,
  techView,
} from './records.js';
import { type RecoveredState, recover } from './recovery.js';
import { ARCHIVE_DOWN, notFound } from './refusals.js';
import { ask, Registry } from './registry.js';
import { Retention } from './retention.js';
import { SosStatusLedger } from './sos-status-ledger.js';
import { technicianSpec } from './technician-actor.js';
import { WorkCounter } from './work.js';

export { RETAIN_FINISHED_MS } from './retention.js';

/** What `ActorTracker.start` needs; the composition root (src/app.ts) wires these. */
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
   * State shared with the other nodes (src/shared): the in-process twins on one node, Redis
   * with `REDIS_URL`. The composition root picks it; the tracker owns it and closes it.
   */
  shared: SharedState;
  /**
   * Estimates arrivals for `order.approaching`; default: the straight line at
   * TRAVEL_SPEED_MPS. The composition root gives the router's (ROUTER_URL) when configured.
   */
  eta?: EtaEstimator;
  /** Told of committed order changes, live positions and approaching (the customer link, events). */
  observer?: LiveObserver;
  /**
   * The event log for the dispatch system (src/events): order transitions, alert changes
   * and technicians going online or offline are appended to it. Absent: no events (tools
   * that run the actors alone).
   */
  events?: EventLog;
  /**
   * Multi-node: resolves once stored event `id` is in the shared stream (or the wait gave
   * up: Redis does not answer); an answer to a change that made events waits for it
   * (src/events/event-relay.ts `relayed`). Absent: one node.
   */
  eventsInStream?: (id: string) => Promise<void>;
}

/** How the tracker starts. */
export interface StartOptions {
  /**
   * Rebuild state from the journal (one node). A node of a cluster does not: technicians
   * are loaded from shared storage when this node takes them over (src/cluster/takeover.ts),
   * never from the local journal, which another node's newer changes would contradict.
   */
  fromJournal: boolean;
}

/** Longest start-up waits for the alert feed's snapshot before serving without it (Redis down). */
const FEED_START_WAIT_MS = 3000;

/** The actor-based local Tracker; `start` builds one. Exposes `settle` and `crash` for tests. */
export class ActorTracker implements LocalTracker {
  private readonly devices = new Map<string, DeviceLink>();
  private readonly sosTold = new SosStatusLedger();
  private readonly intake: DeviceIntake;
  private readonly retention: Retention;
  private hooks: ClusterHooks | null = null;
  private closed = false;
  /** The journal as replayed at start, in multi-node mode, until reconciliation takes it. */
  private journaled: RecoveredState | null = null;

  private constructor(
    private readonly system: ActorSystemRef,
    private readonly deps: TrackerDeps,
    private readonly journal: LiveJournal,
    private readonly board: AlertBoard,
    private readonly fanout: ConsoleFanout,
    private readonly work: WorkCounter,
    private readonly persistence: Persistence,
    /** Technician actors; public for tests (passivation, crash counts). */
    readonly techs: Registry<TechRecord, TechMsg>,
    readonly orders: Registry<OrderRecord, OrderMsg>,
    readonly incidents: Registry<Alert, IncidentMsg>,
  ) {
    const { clock, log, shared } = deps;
    this.intake = new DeviceIntake({
      log,
      clock,
      board,
      nearby: shared.nearby,
      techs,
      orders,
      incidents,
      attached: (tech) => this.devices.has(tech),
    });
    this.retention = new Retention({ clock, journal, board, fanout, orders, incidents });
  }

  /** Opens the journal in DATA_DIR, rebuilds state from it (unless told not to) and starts the actors. */
  static async start(deps: TrackerDeps, opts: StartOptions = { fromJournal: true }): Promise<ActorTracker> {
    const { config, clock, log, metrics, archive, shared } = deps;
    const startedAt = clock.now();
    const { journal, records } = await Journal.open<LiveKinds>(config.DATA_DIR, clock, log, {
      reserveBytes: config.JOURNAL_RESERVE_BYTES,
      ...deps.journal,
    });
    const work = new WorkCounter();
    const persistence = new Persistence(archive, journal, log, deps.events ?? null, clock, deps.eventsInStream ?? null);
    const board = new AlertBoard(persistence, clock, metrics, log, work, shared.feed);
    const fanout = new ConsoleFanout(shared.feed, log);
    const system = start();
    let tracker: ActorTracker | undefined;
    const observer = deps.observer ?? {};
    const actorDeps: ActorDeps = {
      config,
      clock,
      log,
      persistence,
      board,
      journal,
      pushDevice: (tech, msg) => tracker?.pushDevice(tech, msg),
      publishPosition: (tech, pos) => {
        tracker?.intake.publish(tech, pos);
        observer.position?.(tech, pos);
      },
      positionOf: (tech) => techs.records.get(tech)?.pos ?? null,
      techs: { send: (id, m) => techs.send(id, m), arm: (id, at) => techs.arm(id, at) },
      orders: { send: (id, m) => orders.send(id, m), arm: (id, at) => orders.arm(id, at) },
      incidents: { send: (id, m) => incidents.send(id, m), arm: (id, at) => incidents.arm(id, at) },
      eta: deps.eta ?? new StraightLineEstimator(config.TRAVEL_SPEED_MPS),
      observer,
    };
    const pass = config.PASSIVATE_AFTER_MS;
    const techs = new Registry(system, technicianSpec(actorDeps), TICK, clock, pass, metrics, log, work);
    // An order that is not under way hears from anyone only at a transition or a deadline
    // (its technician checks the fixes itself): its actor stops as soon as it is idle.
    const orders = new Registry(system, orderSpec(actorDeps), TICK, clock, 0, metrics, log, work);
    const incidents = new Registry(system, incidentSpec(actorDeps), TICK, clock, pass, metrics, log, work);
    tracker = new ActorTracker(system, deps, journal, board, fanout, work, persistence, techs, orders, incidents);

    await fanout.start(FEED_START_WAIT_MS);
    if (!opts.fromJournal) {
      // Not loaded (shared storage is the truth), but kept for reconciliation: what Redis lacks of it is written there.
      tracker.journaled = recover(records, startedAt);
      tracker.retention.start();
      log.info({ node: shared.nodeId, journaled: records.length }, 'tracker started in multi-node mode');
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
    tracker.retention.start();
    log.info(
      { orders: state.orders.size, technicians: state.techs.size, alerts: state.alerts.length },
      'tracker state recovered from journal',
    );
    return tracker;
  }

  join(hooks: ClusterHooks): void {
    this.hooks = hooks;
    // Deadlines fire only on the node holding the technician's lease.
    this.techs.gate = (id) => hooks.holds(id);
    this.orders.gate = (id) => {
      const o = this.orders.records.get(id);
      return o === undefined || hooks.holds(o.tech);
    };
    this.incidents.gate = (id) => {
      const a = this.incidents.records.get(id);
      return a === undefined || hooks.holds(a.tech);
    };
    this.journal.onDurable = (rec) => hooks.durable(rec);
  }

  attached(tech: string, link?: DeviceLink): boolean {
    const here = this.devices.get(tech);
    return here !== undefined && (link === undefined || here === link);
  }

  techOfOrder(id: string): string | undefined {
    return this.orders.records.get(id)?.tech;
  }

  ownsAlert(id: string): boolean {
    return this.board.get(id) !== undefined || this.board.announcedSos(id) !== undefined;
  }

  localAlert(id: string): Alert | undefined {
    return this.board.get(id);
  }

  alertsOf(tech: string): Alert[] {
    return this.board.list().filter((a) => a.tech === tech);
  }

  republish(id: string): void {
    this.board.republish(id);
  }

  moveOn(tech: string): void {
    const link = this.devices.get(tech);
    if (link === undefined) return;
    try {
      link.moveOn();
    } catch (err) {
      this.deps.log.warn({ err }, 'device link close failed');
    }
  }

  wake(tech: string): void {
    wake(this.registries(), tech);
  }

  seenAlert(id: string): Alert | undefined {
    return this.fanout.get(id);
  }

  seenAlerts(): Alert[] {
    return this.fanout.list();
  }

  hasOpenWork(tech: string): boolean {
    for (const o of this.orders.records.values()) if (o.tech === tech && !isTerminalState(o.state)) return true;
    for (const a of this.board.list()) if (a.tech === tech && isUnresolved(a)) return true;
    return false;
  }

  adopt(tech: string, state: RecoveredState): Promise<void> {
    return adopt(this.registries(), tech, state);
  }

  evict(tech: string): Promise<void> {
    return evict(this.registries(), tech);
  }

  private registries(): HandoverDeps {
    return { board: this.board, techs: this.techs, orders: this.orders, incidents: this.incidents };
  }

  flushFeed(): Promise<void> {
    return this.board.flushFeed();
  }

  takeJournaled(): RecoveredState | null {
    const j = this.journaled;
    this.journaled = null;
    return j;
  }

  stateOf(tech: string): { orders: OrderRecord[]; alerts: Alert[]; position: LivePosition | null } {
    const orders = [...this.orders.records.values()].filter((o) => o.tech === tech);
    return { orders, alerts: this.alertsOf(tech), position: this.techs.records.get(tech)?.pos ?? null };
  }

  liveRecordsOf(tech: string): LiveRecord[] {
    const cur = this.stateOf(tech);
    const quietSince = this.techs.records.get(tech)?.quietSince ?? this.deps.clock.now();
    const recs: LiveRecord[] = [];
    for (const o of cur.orders) recs.push({ k: 'o', o });
    for (const a of cur.alerts) recs.push({ k: 'a', a });
    if (cur.position !== null) recs.push({ k: 'p', id: tech, pos: cur.position, quietSince });
    return recs;
  }

  async mergeJournaled(tech: string, recs: LiveRecord[]): Promise<void> {
    if (recs.length === 0) return;
    for (const r of recs) await this.journal.put(r, 'safety');
    const now = this.deps.clock.now();
    // Last record per key wins, as in a replay: the journal's records go after the present ones.
    const byKey = new Map<string, LiveRecord>();
    for (const r of [...this.liveRecordsOf(tech), ...recs])
      byKey.set(r.k === 'o' ? `o:${r.o.id}` : r.k === 'a' ? `a:${r.a.id}` : 'p', r);
    await adopt(this.registries(), tech, recover(byKey.values(), now));
    for (const r of recs) {
      if (r.k === 'a') this.board.republish(r.a.id);
      else if (r.k === 'p') this.deps.shared.nearby.put(tech, r.pos.lat, r.pos.lon, r.pos.ts);
    }
  }

  attachDevice(tech: string, link: DeviceLink): void {
    const wasOnline = this.devices.has(tech);
    this.devices.set(tech, link);
    this.intake.attach(tech);
    // A replacing connection (4003) keeps the technician online: no event.
    if (!wasOnline) this.techEvent(tech, true);
  }

  detachDevice(tech: string, link: DeviceLink): void {
    if (this.devices.get(tech) !== link) return;
    this.devices.delete(tech);
    this.intake.detach(tech);
    this.techEvent(tech, false);
  }

  /**
   * `technician.online` / `.offline`: its phone (socket or tracker app) attached here or
   * went away. Stored without anyone waiting: no client message is acked on it.
   */
  private techEvent(tech: string, online: boolean): void {
    if (this.closed) return;
    void this.persistence.emit({
      type: online ? 'technician.online' : 'technician.offline',
      ts: this.deps.clock.now(),
      tech,
      data: { online },
    });
  }

  onDeviceMessage(tech: string, msg: DeviceMessage): Promise<Outcome<AckExtras>> {
    return this.intake.handle(tech, msg);
  }

  attachSafety(_operator: string, link: SafetyLink): void {
    this.fanout.attach(link);
  }

  detachSafety(link: SafetyLink): void {
    this.fanout.detach(link);
  }

  async onSafetyMessage(operator: string, msg: SafetyMessage): Promise<Outcome<AckExtras>> {
    // An SOS reaches consoles while its first write is in progress: an operator may answer it before it is stored.
    const announced = this.board.announcedSos(msg.id);
    const a = this.board.get(msg.id) ?? announced;
    if (a === undefined) return notFound(`no alert ${msg.id}`);
    if (a.kind === 'sos' && (announced !== undefined || this.incidents.records.has(a.id)) && a.state !== 'resolved') {
      this.tellAhead(operator, msg, a);
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

  /**
   * An operator answered SOS `a`: the technician is told now, as consoles are told of an
   * SOS while it is stored (alert-board.ts). The incident actor applies the answer in a
   * later turn, after every actor message already queued (tens of milliseconds of other
   * technicians' pings under load), and after any earlier change of the incident still
   * being stored (its first write, an escalation: seconds on a stalled disk); the
   * technician waiting for help should wait for neither. The operator is answered once the
   * answer is durable, and the actor's own tell finds it already told (SosStatusLedger).
   */
  private tellAhead(operator: string, msg: SafetyMessage, a: Alert): void {
    const now = this.deps.clock.now();
    const next = (msg.t === 'ack' ? acknowledge(operator, now) : resolve(operator, msg.note, now))(a);
    if (next === null || 'ok' in next || next.state === a.state || next.state === 'open') return;
    this.pushDevice(a.tech, { t: 'sos_status', incident: a.id, state: next.state });
  }

  putOrder(id: string, input: OrderInput): Promise<Outcome<OrderView>> {
    return ask(this.orders, id, (reply) => ({ t: 'put' as const, input, reply }));
  }

  cancelOrder(id: string): Promise<Outcome<OrderView>> {
    if (!this.orders.records.has(id)) return Promise.resolve(notFound(`no order ${id}`));
    return ask(this.orders, id, (reply) => ({ t: 'cancel' as const, reply }));
  }

  async getOrder(id: string): Promise<Outcome<OrderView>> {
    const o = this.orders.records.get(id);
    return o === undefined ? notFound(`no order ${id}`) : { ok: true, value: orderView(o) };
  }

  async getTechnician(id: string): Promise<Outcome<TechnicianView>> {
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

  eraseTechnician(id: string): Promise<Outcome<TechnicianErased>> {
    const { clock, log, archive, shared } = this.deps;
    return eraseTechnician(
      {
        clock,
        log,
        archive,
        journal: this.journal,
        board: this.board,
        fanout: this.fanout,
        nearby: shared.nearby,
        techs: this.techs,
        orders: this.orders,
        incidents: this.incidents,
        attached: (tech) => this.devices.has(tech),
        eraseShared: (tech) => this.hooks?.erased(tech) ?? Promise.resolve(),
      },
      id,
    );
  }

  async listAlerts(state?: AlertState): Promise<Alert[]> {
    const mine = this.board.list(state);
    // Other nodes' alerts as the feed last showed them; this node's own are freshest on its board.
    const others = this.fanout.list(state).filter((a) => this.board.get(a.id) === undefined);
    if (others.length === 0) return mine;
    return [...mine, ...others].sort((a, b) => b.ts - a.ts || (a.id < b.id ? 1 : -1));
  }

  nearby(lat: number, lon: number, radius: number): Promise<NearbyTechnician[]> {
    return this.deps.shared.nearby.search(lat, lon, radius);
  }

  async readiness(): Promise<Record<string, ComponentHealth>> {
    const out: Record<string, ComponentHealth> = {
      archive: this.deps.archive.health(),
      journal: this.journal.health(),
    };
    const redis = this.deps.shared.health();
    if (redis !== null) out.redis = redis;
    return out;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.work
      .settle()
      .catch((err: Error) => this.deps.log.warn({ err }, 'tracker: work still in flight at close'));
    this.stopActors();
    this.persistence.stop();
    // The next owner of this node's technicians loads what is in shared storage: send it all first.
    await this.board.flushFeed();
    await this.hooks?.closing();
    await this.fanout.stop();
    await this.journal.close();
    await this.deps.shared.close();
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
    this.persistence.stop();
    this.stopActors();
    await this.fanout.stop();
    await this.journal.abandon();
    await this.deps.shared.close();
  }

  private stopActors(): void {
    this.retention.stop();
    this.techs.stopAll();
    this.orders.stopAll();
    this.incidents.stopAll();
    stop(this.system);
  }

  /** Pushes to technician `tech`'s device wherever it is connected. */
  private pushDevice(tech: string, msg: DevicePush): void {
    if (msg.t === 'sos_status' && !this.sosTold.tellsNews(msg)) return;
    if (!this.devices.has(tech) && this.hooks !== null) {
      this.hooks.pushElsewhere(tech, msg);
      return;
    }
    this.pushHere(tech, msg);
  }

  pushHere(tech: string, msg: DevicePush): void {
    const link = this.devices.get(tech);
    if (link === undefined) return;
    try {
      link.push(msg);
    } catch (err) {
      this.deps.log.warn({ err }, 'device link push failed');
    }
  }
}
