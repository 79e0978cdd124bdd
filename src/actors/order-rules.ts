/**
 * The order-related alert rules as pure functions of an order record and the time:
 * late_departure, late_arrival (deadline and prediction) and overtime. The order actor
 * keeps one timer at `nextOrderDeadline` and, when it fires, raises `dueOrderAlerts`.
 * Since the rules look only at state and time, a deadline that passed while the process
 * was down is simply "due" at the first look after restart.
 */
import { distanceMeters, roundMeters } from '../geofence/index.js';
import type { AlertKind } from '../protocol.js';
import type { ArrivalTarget, OrderRecord } from './records.js';

/** The thresholds of the order rules (from Config). */
export interface OrderTimings {
  LATE_DEPARTURE_MS: number;
  LATE_ARRIVAL_MS: number;
  OVERTIME_FACTOR: number;
  TRAVEL_SPEED_MPS: number;
}

/** Alert kinds decided by a deadline on an order; each is raised at most once per order. */
export const DEADLINE_KINDS = ['late_departure', 'late_arrival', 'overtime'] as const;
/** One of `DEADLINE_KINDS`. */
export type DeadlineKind = (typeof DEADLINE_KINDS)[number];

const MINUTE = 60_000;

/** When an order scheduled at `scheduledAt` counts as arrived late. */
export function lateArrivalDue(scheduledAt: number, t: Pick<OrderTimings, 'LATE_ARRIVAL_MS'>): number {
  return scheduledAt + t.LATE_ARRIVAL_MS;
}

/** When `kind` falls due for this order in its current state; null when it cannot (any more). */
export function deadlineOf(o: OrderRecord, kind: DeadlineKind, t: OrderTimings): number | null {
  switch (kind) {
    case 'late_departure':
      return o.state === 'assigned' ? o.scheduledAt + t.LATE_DEPARTURE_MS : null;
    case 'late_arrival':
      return o.state === 'assigned' || o.state === 'departed' ? lateArrivalDue(o.scheduledAt, t) : null;
    case 'overtime':
      return o.state === 'in_service' && o.inServiceAt !== null
        ? o.inServiceAt + Math.round(o.durationMin * MINUTE * t.OVERTIME_FACTOR)
        : null;
  }
}

/** Deadline kinds that are due at `now` and not yet raised for this order. */
export function dueOrderAlerts(o: OrderRecord, now: number, t: OrderTimings): DeadlineKind[] {
  return DEADLINE_KINDS.filter((k) => {
    if (o.fired.includes(k)) return false;
    const at = deadlineOf(o, k, t);
    return at !== null && at <= now;
  });
}

/** The earliest moment the order needs looking at again (deadlines and the exit dwell), or null. */
export function nextOrderDeadline(o: OrderRecord, t: OrderTimings): number | null {
  let next = o.dwellAt;
  for (const k of DEADLINE_KINDS) {
    if (o.fired.includes(k)) continue;
    const at = deadlineOf(o, k, t);
    if (at !== null && (next === null || at < next)) next = at;
  }
  return next;
}

/**
 * The late_arrival prediction: from a fix at (lat, lon) at `now`, driving the remaining
 * distance to the fence edge at TRAVEL_SPEED_MPS, can the technician still arrive by
 * scheduledAt + LATE_ARRIVAL_MS? Returns the estimate when not, null when on time (or
 * when late_arrival does not apply or already fired).
 */
export function predictLateArrival(
  o: OrderRecord,
  lat: number,
  lon: number,
  now: number,
  t: OrderTimings,
): { eta: number; dist: number } | null {
  if (o.fired.includes('late_arrival')) return null;
  const due = deadlineOf(o, 'late_arrival', t);
  if (due === null) return null;
  return arrivesLate(o, due, lat, lon, now, t);
}

/**
 * The arrival at `target` predicted from a fix at (`lat`, `lon`) at `now`, straight line at
 * TRAVEL_SPEED_MPS, when it is later than `due`; null when it is in time.
 */
export function arrivesLate(
  target: ArrivalTarget,
  due: number,
  lat: number,
  lon: number,
  now: number,
  t: Pick<OrderTimings, 'TRAVEL_SPEED_MPS'>,
): { eta: number; dist: number } | null {
  const dist = distanceMeters(lat, lon, target.lat, target.lon);
  const eta = now + (Math.max(0, dist - target.radius) / t.TRAVEL_SPEED_MPS) * 1000;
  return eta > due ? { eta: Math.round(eta), dist: roundMeters(dist) } : null;
}

/** The speed in m/s implied by two fixes; Infinity when they share a time but not a place. */
export function impliedSpeed(
  a: { ts: number; lat: number; lon: number },
  b: { ts: number; lat: number; lon: number },
): number {
  const dist = distanceMeters(a.lat, a.lon, b.lat, b.lon);
  const dt = Math.abs(b.ts - a.ts) / 1000;
  if (dt === 0) return dist === 0 ? 0 : Number.POSITIVE_INFINITY;
  return dist / dt;
}

/** Human-readable default texts of the alert kinds, for notices. */
export const KIND_TEXT: Readonly<Record<AlertKind, string>> = {
  sos: 'SOS raised',
  late_departure: 'You have not departed yet for this order',
  late_arrival: 'Late arrival',
  overtime: 'Order is taking longer than planned',
  offline: 'No position received',
  geofence_exit: 'Technician left the customer site during service',
  implausible_move: 'Implausible movement between two positions',
};
