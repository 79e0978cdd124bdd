/**
 * Rebuilds live state from the journal after a start (clean or after kill -9): orders,
 * alerts, SOS incidents and technicians' last positions, as plain records for the
 * registries. Pure: it only reads the replayed records and returns what to load; the
 * tracker then wakes every actor with pending deadlines, so a deadline that passed while
 * the process was down fires right after the restart.
 *
 * Offline after a restart (README): the server being down is no evidence that a
 * technician went silent, so every technician's silence is counted from the restart at
 * the earliest. Otherwise every restart longer than OFFLINE_MS would raise an offline
 * alert for every technician on the road at once. An offline alert already raised
 * before the crash stays.
 */
import type { Alert } from '../protocol.js';
import { DEADLINE_KINDS, type DeadlineKind } from './order-rules.js';
import {
  isTerminalState,
  type LiveRecord,
  newTechRecord,
  type OrderRecord,
  orderLink,
  type TechRecord,
} from './records.js';

/** What the registries and the board start from. */
export interface RecoveredState {
  orders: Map<string, OrderRecord>;
  techs: Map<string, TechRecord>;
  alerts: Alert[];
  /** Unresolved SOS alerts: one incident actor each. */
  incidents: Alert[];
}

/** Turns replayed journal records into starting state, as seen at `startedAt`. */
export function recover(records: Iterable<LiveRecord>, startedAt: number): RecoveredState {
  const orders = new Map<string, OrderRecord>();
  const techs = new Map<string, TechRecord>();
  const alerts: Alert[] = [];
  for (const r of records) {
    if (r.k === 'o') orders.set(r.o.id, r.o);
    else if (r.k === 'a') alerts.push(r.a);
    else {
      techs.set(r.id, {
        ...newTechRecord(r.id),
        pos: r.pos,
        recent: [r.pos.ts],
        quietSince: Math.max(r.quietSince, startedAt),
      });
    }
  }
  const tech = (id: string): TechRecord => {
    let t = techs.get(id);
    if (t === undefined) {
      t = { ...newTechRecord(id), quietSince: startedAt };
      techs.set(id, t);
    }
    return t;
  };
  // An alert journaled just before a crash may lack its order's `fired` mark: the alert wins.
  for (const a of alerts) {
    if (a.order === undefined || !(DEADLINE_KINDS as readonly string[]).includes(a.kind)) continue;
    const o = orders.get(a.order);
    if (o !== undefined && !o.fired.includes(a.kind)) {
      orders.set(o.id, { ...o, fired: [...o.fired, a.kind as DeadlineKind] });
    }
  }
  for (const o of orders.values()) {
    if (isTerminalState(o.state)) continue;
    const t = tech(o.tech);
    techs.set(t.id, { ...t, orders: [...t.orders, orderLink(o)] });
  }
  for (const a of alerts) {
    if (a.state === 'resolved') continue;
    if (a.kind === 'offline' && a.detail?.clearedAt === undefined) {
      const t = tech(a.tech);
      techs.set(t.id, { ...t, offlineAlert: a.id });
    } else if (a.kind === 'implausible_move') {
      const t = tech(a.tech);
      techs.set(t.id, { ...t, implausibleAlert: a.id });
    }
  }
  const incidents = alerts.filter((a) => a.kind === 'sos' && a.state !== 'resolved');
  return { orders, techs, alerts, incidents };
}
