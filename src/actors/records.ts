/**
 * The committed state of each kind of actor, as plain data. The same records are what a
 * passivated actor leaves behind in the registry's Map, what a crashed actor is restarted
 * from, and what the journal persists: one shape, so none of those paths can drift apart.
 * Records are never mutated after commit (copy-on-write), so a handler that throws halfway
 * leaves the last committed record intact. The one exception is `TechRecord.recent`, a
 * dedup cache that is only appended to at commit time (see technician-actor.ts).
 */
import type { ExitWatch } from '../geofence/index.js';
import type { Alert, AlertKind, OrderState, TechnicianView, TimelineEntry } from '../protocol.js';
import type { Journal, JournalRecord } from '../storage/journal.js';

/** A technician's live position: the newest accepted fix. Missing optional values are null. */
export interface LivePosition {
  readonly ts: number;
  readonly lat: number;
  readonly lon: number;
  readonly acc: number | null;
  readonly spd: number | null;
}

/** Where and by when a technician must arrive, while a late arrival can still be predicted. */
export interface ArrivalTarget {
  readonly lat: number;
  readonly lon: number;
  readonly radius: number;
  readonly scheduledAt: number;
}

/**
 * An order of this technician that is not finished, as the technician actor knows it: its
 * state, and while a late arrival can still be predicted, the target to predict it from.
 * With it the technician checks each fix itself and bothers the order actor only with the
 * fixes that matter to it (in service: every one, for the exit watch; before arrival: one
 * that predicts lateness), instead of one actor message per ping per order.
 */
export interface OrderLink {
  readonly id: string;
  readonly state: OrderState;
  readonly arrival: ArrivalTarget | null;
  /**
   * True while the order is `departed` and `order.approaching` has not fired: the order then
   * wants every accurate live fix, to estimate the arrival (eta/) and decide approaching.
   */
  readonly approach: boolean;
}

/** The technician's view of order `o`. */
export function orderLink(o: OrderRecord): OrderLink {
  const predictable = (o.state === 'assigned' || o.state === 'departed') && !o.fired.includes('late_arrival');
  return {
    id: o.id,
    state: o.state,
    arrival: predictable ? { lat: o.lat, lon: o.lon, radius: o.radius, scheduledAt: o.scheduledAt } : null,
    approach: o.state === 'departed' && o.approachedAt === undefined,
  };
}

/** Committed state of a technician actor. */
export interface TechRecord {
  readonly id: string;
  /** Newest accepted fix; null before the first one. */
  readonly pos: LivePosition | null;
  /**
   * Server time at which the current silence started: the last accepted ping or batch, or
   * the moment an order became active or the process (re)started, whichever is latest.
   * The offline rule measures from here. 0 = never.
   */
  readonly quietSince: number;
  /** Sorted `ts` of recently stored points, for duplicate detection; bounded (see position-filter.ts). */
  readonly recent: number[];
  /** Orders assigned to this technician that are not completed or cancelled. */
  readonly orders: readonly OrderLink[];
  /** The offline alert raised for the current silence, until a ping ends it. */
  readonly offlineAlert: string | null;
  /** The implausible_move alert still unresolved, so a spoofer raises one alert, not one per ping. */
  readonly implausibleAlert: string | null;
}

/** Committed state of an order actor. */
export interface OrderRecord {
  readonly id: string;
  readonly tech: string;
  readonly lat: number;
  readonly lon: number;
  readonly radius: number;
  readonly polygon?: Array<[number, number]>;
  readonly scheduledAt: number;
  readonly durationMin: number;
  readonly state: OrderState;
  readonly timeline: readonly TimelineEntry[];
  /** When the order entered in_service (for overtime); null before. */
  readonly inServiceAt: number | null;
  /** Deadline alert kinds already raised for this order: each fires once per order. */
  readonly fired: readonly AlertKind[];
  /** geofence_exit anti-flapping state while in_service. */
  readonly watch: ExitWatch;
  /** When the exit watch's dwell rule must be re-checked; null when no exit is pending. */
  readonly dwellAt: number | null;
  /**
   * When `order.approaching` fired (server time); absent before. Journaled, so it fires
   * once per order, across restarts and hand-overs.
   */
  readonly approachedAt?: number;
}

/** What the live-state journal persists: storage/journal.ts is generic over it and reads only ids. */
export interface LiveKinds {
  order: OrderRecord;
  alert: Alert;
  position: LivePosition;
}

/** One record of the live-state journal. */
export type LiveRecord = JournalRecord<LiveKinds>;

/** The node's live-state journal. */
export type LiveJournal = Journal<LiveKinds>;

/** An empty order list shared by every technician without orders (most of them), to save memory. */
export const NO_ORDERS: readonly OrderLink[] = Object.freeze([]);

/** States in which a technician is on the way or at the customer: the "active order" of PROTOCOL.md. */
export function isActiveState(state: OrderState): boolean {
  return state === 'departed' || state === 'arrived' || state === 'in_service';
}

/** States after which nothing can happen to an order any more. */
export function isTerminalState(state: OrderState): boolean {
  return state === 'completed' || state === 'cancelled';
}

/** The empty duplicate window of a technician without points; shared, never mutated (see `withTs`). */
const NO_TS: number[] = Object.freeze([]) as unknown as number[];

/** A new technician, before any fix. */
export function newTechRecord(id: string): TechRecord {
  return { id, pos: null, quietSince: 0, recent: NO_TS, orders: NO_ORDERS, offlineAlert: null, implausibleAlert: null };
}

/** The active order of a technician (the first one on the way or on site), if any. */
export function activeOrderOf(rec: TechRecord): string | undefined {
  return rec.orders.find((o) => isActiveState(o.state))?.id;
}

/** `GET /v1/technicians/:id` from a record; `online` comes from the attached device links. */
export function techView(rec: TechRecord, online: boolean): TechnicianView {
  const view: TechnicianView = { id: rec.id, online };
  if (rec.pos !== null) {
    view.lat = rec.pos.lat;
    view.lon = rec.pos.lon;
    view.ts = rec.pos.ts;
    if (rec.pos.acc !== null) view.acc = rec.pos.acc;
    if (rec.pos.spd !== null) view.spd = rec.pos.spd;
  }
  const active = activeOrderOf(rec);
  if (active !== undefined) view.activeOrder = active;
  return view;
}

/** True while an alert still needs an operator. */
export function isUnresolved(alert: Alert): boolean {
  return alert.state !== 'resolved';
}
