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
import type { Config } from '../config.js';
import { distanceMeters, roundMeters } from '../geofence/index.js';
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
import type { ArchiveQueries, ArchiveWriter } from '../telemetry/archive.js';
import { AlertBoard } from './alert-board.js';
import type { AckExtras, ComponentHealth, DeviceLink, Outcome, Refusal, SafetyLink, Tracker } from './api.js';
import type { ActorDeps } from './deps.js';
import { incidentSpec } from './incident-actor.js';
import { Journal, type JournalOptions } from './journal.js';
import { type IncidentMsg, type OrderMsg, type Reply, type TechMsg, TICK } from './messages.js';
import { orderSpec, orderView } from './order-actor.js';
import { activeOrderOf, isTerminalState, type OrderRecord, type TechRecord, techView } from './records.js';
import { recover } from './recovery.js';
import { Registry } from './registry.js';
import { Store } from './store.js';
import { technicianSpec } from './technician-actor.js';
import { WorkCounter } from './work.js';

/** What `createTracker` needs; the lead wires these in src/app.ts. */
export interface TrackerDeps {
  config: Config;
  clock: Clock;
  log: Logger;
  metrics: Metrics;
  archive: ArchiveWriter & ArchiveQueries & { health(): ComponentHealth };
  /** Journal tuning (tests shorten the position flush); production uses the defaults. */
  journal?: JournalOptions;
}

/**
 * Retention of finished business in live state (README): completed/cancelled orders and
 * resolved alerts stay queryable here for this long after they finished, then live only
 * in the archive (order_events, alert_events). Without it memory and the journal
 * snapshot would grow with every order ever handled.
 */
export const RETAIN_FINISHED_MS = 24 * 60 * 60 * 1000;
/** How often the retention rule runs. */
const RETENTION_EVERY_MS = 60 * 60 * 1000;

const notFound = (msg: string): Refusal => ({ ok: false, code: 'not_found', msg });

/** The actor-based Tracker; `createTracker` builds one. Exposes `settle` and `crash` for tests. */
export class ActorTracker implements Tracker {
  private readonly devices = new Map<string, DeviceLink>();
  private closed = false;
  private cancelRetention: (() => void) | null = null;

  private constructor(
    private readonly system: ActorSystemRef,
    private readonly deps: TrackerDeps,
    private readonly journal: Journal,
    private readonly board: AlertBoard,
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
    const { journal, records } = await Journal.open(config.DATA_DIR, clock, log, deps.journal);
    const work = new WorkCounter();
    const store = new Store(archive, journal, log);
    const board = new AlertBoard(store, clock, metrics, log, work);
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
    tracker = new ActorTracker(system, deps, journal, board, work, techs, orders, incidents);

    const state = recover(records, startedAt);
    board.load(state.alerts);
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
    if (!this.closed) this.cancelRetention = clock.setTimer(clock.now() + RETENTION_EVERY_MS, () => this.retain());
  }

  attachDevice(tech: string, link: DeviceLink): void {
    this.devices.set(tech, link);
  }

  detachDevice(tech: string, link: DeviceLink): void {
    if (this.devices.get(tech) === link) this.devices.delete(tech);
  }

  onDeviceMessage(tech: string, msg: DeviceMessage): Promise<Outcome<AckExtras>> {
    switch (msg.t) {
      case 'ping':
        return ask(this.techs, tech, (reply) => ({ t: 'ping' as const, fix: msg, reply }));
      case 'batch':
        return ask(this.techs, tech, (reply) => ({ t: 'batch' as const, pts: msg.pts, reply }));
      case 'depart':
      case 'start':
      case 'complete':
      case 'checkin': {
        if (!this.orders.records.has(msg.order)) return Promise.resolve(notFound(`no order ${msg.order}`));
        const fix =
          msg.t === 'checkin'
            ? { lat: msg.lat, lon: msg.lon, ...(msg.acc !== undefined ? { acc: msg.acc } : {}) }
            : null;
        const ts = msg.t === 'checkin' ? msg.ts : msg.t === 'depart' ? (msg.ts ?? null) : null;
        return ask(this.orders, msg.order, (reply) => ({ t: 'device' as const, tech, cmd: msg.t, ts, fix, reply }));
      }
      case 'sos': {
        const id = this.board.newId();
        return ask(this.incidents, id, (reply) => ({
          t: 'open' as const,
          tech,
          ts: msg.ts,
          lat: msg.lat,
          lon: msg.lon,
          ...(msg.note !== undefined ? { note: msg.note } : {}),
          reply,
        }));
      }
      case 'sos_cancel': {
        const a = this.board.get(msg.incident);
        if (a === undefined || a.kind !== 'sos') return Promise.resolve(notFound(`no incident ${msg.incident}`));
        if (a.tech !== tech)
          return Promise.resolve({ ok: false, code: 'forbidden', msg: 'incident of another technician' });
        if (a.state === 'resolved')
          return Promise.resolve({ ok: false, code: 'conflict', msg: 'incident is resolved' });
        return ask(this.incidents, msg.incident, (reply) => ({ t: 'cancel' as const, tech, reply }));
      }
    }
  }

  attachSafety(_operator: string, link: SafetyLink): void {
    this.board.attach(link);
  }

  detachSafety(link: SafetyLink): void {
    this.board.detach(link);
  }

  async onSafetyMessage(operator: string, msg: SafetyMessage): Promise<Outcome<AckExtras>> {
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
    const out = await this.board.change(
      a.id,
      (cur) => {
        if (msg.t === 'ack') {
          if (cur.state === 'resolved') return { ok: false, code: 'conflict', msg: 'alert is resolved' };
          if (cur.state === 'acknowledged') return null;
          return { ...cur, state: 'acknowledged', detail: { ...cur.detail, ackedBy: operator, ackedAt: now } };
        }
        if (cur.state === 'resolved') return null;
        const note = msg.note !== undefined ? { note: msg.note } : {};
        return { ...cur, state: 'resolved', detail: { ...cur.detail, resolvedBy: operator, resolvedAt: now, ...note } };
      },
      'refuse',
    );
    return out.ok ? { ok: true, value: {} } : out;
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

  async getTrack(id: string, from: number, to: number): Promise<Outcome<TrackPoint[]>> {
    const points = await this.deps.archive.track(id, from, to);
    // The archive may know a technician this node never saw (another node, a new DATA_DIR).
    if (points.length === 0 && !this.techs.records.has(id)) return notFound(`no technician ${id}`);
    return { ok: true, value: points };
  }

  async listAlerts(state?: AlertState): Promise<Alert[]> {
    return this.board.list(state);
  }

  async nearby(lat: number, lon: number, radius: number): Promise<NearbyTechnician[]> {
    const out: NearbyTechnician[] = [];
    for (const id of this.devices.keys()) {
      const pos = this.techs.records.get(id)?.pos;
      if (pos === undefined || pos === null) continue;
      const dist = distanceMeters(lat, lon, pos.lat, pos.lon);
      if (dist <= radius) out.push({ id, lat: pos.lat, lon: pos.lon, ts: pos.ts, dist: roundMeters(dist) });
    }
    return out.sort((a, b) => a.dist - b.dist || (a.id < b.id ? -1 : 1));
  }

  async readiness(): Promise<Record<string, ComponentHealth>> {
    return { archive: this.deps.archive.health(), journal: this.journal.health() };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.work
      .settle()
      .catch((err: Error) => this.deps.log.warn({ err }, 'tracker: work still in flight at close'));
    this.stopActors();
    await this.journal.close();
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
    this.stopActors();
    await this.journal.abandon();
  }

  private stopActors(): void {
    this.cancelRetention?.();
    this.techs.stopAll();
    this.orders.stopAll();
    this.incidents.stopAll();
    stop(this.system);
  }

  private pushDevice(tech: string, msg: DevicePush): void {
    const link = this.devices.get(tech);
    if (link === undefined) return;
    try {
      link.push(msg);
    } catch (err) {
      this.deps.log.warn({ err }, 'device link push failed');
    }
  }
}

/** Sends a request carrying a resolver to the actor of `id`: one dispatch, no nact query timeout. */
function ask<S, M extends { t: string }, T>(
  reg: Registry<S, M>,
  id: string,
  make: (reply: Reply<T>) => NoInfer<M>,
): Promise<Outcome<T>> {
  return new Promise((resolve) => reg.send(id, make(resolve)));
}
