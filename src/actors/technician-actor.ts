/**
 * The technician actor: live position, duplicate/late filtering, the `offline` and
 * `implausible_move` rules, and forwarding live fixes to the technician's open orders.
 *
 * Rules (README):
 * - offline: a technician with an active order (departed, arrived or in_service) that has
 *   sent no ping or batch for OFFLINE_MS. An order that is only `assigned` does not count:
 *   a technician may well have the app closed before the day's first trip, and
 *   late_departure already covers not setting off. Raised once per silence; the next
 *   accepted ping or batch marks it `detail.clearedAt` (pushed) but does not resolve it.
 * - implausible_move: two consecutive live fixes, both accurate enough, imply more than
 *   IMPLAUSIBLE_SPEED_MPS. One alert per technician while it is unresolved.
 * - Only live, accurate fixes are forwarded to orders (geofence and late-arrival
 *   prediction); late points and batches never raise alerts.
 */

import type { AckExtras, Outcome } from '../outcome.js';
import type { Alert } from '../protocol.js';
import type { PingRecord } from '../telemetry/archive.js';
import { type ActorDeps, accurate } from './deps.js';
import type { IncomingFix, OrderMsg, TechMsg } from './messages.js';
import { arrivesLate, impliedSpeed, lateArrivalDue } from './order-rules.js';
import { classifyFix, withTs } from './position-filter.js';
import {
  activeOrderOf,
  isActiveState,
  isTerminalState,
  type LivePosition,
  NO_ORDERS,
  newTechRecord,
  type OrderLink,
  type TechRecord,
} from './records.js';
import type { ActorSpec, Effects } from './registry.js';

const OK_EMPTY: Outcome<AckExtras> = Object.freeze({ ok: true, value: Object.freeze({}) }) as Outcome<AckExtras>;

/** When the offline rule must next look at this technician, or null when it does not apply. */
export function offlineDeadline(rec: TechRecord, offlineMs: number): number | null {
  if (rec.offlineAlert !== null || activeOrderOf(rec) === undefined) return null;
  return rec.quietSince + offlineMs;
}

function pingRow(tech: string, ts: number, lat: number, lon: number, f: Partial<IncomingFix>): PingRecord {
  return {
    tech,
    ts,
    lat,
    lon,
    acc: f.acc ?? null,
    spd: f.spd ?? null,
    hdg: f.hdg ?? null,
    bat: f.bat ?? null,
  };
}

/** The technician actor's behaviour, for the registry. */
export function technicianSpec(deps: ActorDeps): ActorSpec<TechRecord, TechMsg> {
  const { config, clock, persistence, board, journal, techs, orders, log, publishPosition } = deps;

  /** Alert work nobody waits for: a failure (journal I/O) is logged, never an unhandled rejection. */
  function background(p: Promise<unknown>, what: string): void {
    p.catch((err: Error) => log.error({ err }, `technician actor: ${what} failed`));
  }

  /** Any accepted ping or batch ends a silence: its offline alert is marked cleared (not resolved). */
  function endSilence(next: TechRecord, now: number, fx: Effects): TechRecord {
    if (next.offlineAlert === null) return next;
    const id = next.offlineAlert;
    fx.push(() =>
      background(
        board.change(
          id,
          (a) => (a.state === 'resolved' ? null : { ...a, detail: { ...a.detail, clearedAt: now } }),
          'tolerate',
        ),
        'offline clear',
      ),
    );
    return { ...next, offlineAlert: null };
  }

  /** Effects of a new live fix: implausible move, forwarding to the orders. */
  function onLiveFix(prev: TechRecord, next: TechRecord, fix: IncomingFix, fx: Effects): TechRecord {
    let rec = next;
    const now = clock.now();
    const good = accurate(fix.acc, config.MAX_ACCURACY_M);
    const before = prev.pos;
    if (
      before !== null &&
      good &&
      accurate(before.acc, config.MAX_ACCURACY_M) &&
      impliedSpeed(before, fix) > config.IMPLAUSIBLE_SPEED_MPS &&
      !isOpenAlert(prev.implausibleAlert)
    ) {
      const speed = Math.round(impliedSpeed(before, fix) * 10) / 10;
      const alert: Alert = {
        id: board.newId(),
        kind: 'implausible_move',
        level: 1,
        state: 'open',
        tech: prev.id,
        lat: fix.lat,
        lon: fix.lon,
        ts: now,
        detail: { speed, from: { ts: before.ts, lat: before.lat, lon: before.lon }, fixTs: fix.ts },
      };
      const order = activeOrderOf(prev);
      if (order !== undefined) alert.order = order;
      rec = { ...rec, implausibleAlert: alert.id };
      fx.push(() => background(board.raise(alert, 'tolerate'), 'implausible_move raise'));
    }
    if (good && prev.orders.length > 0) {
      let msg: OrderMsg | undefined;
      for (const o of prev.orders) {
        if (!wantsFix(o, fix, now)) continue;
        msg ??= { t: 'fix', ts: fix.ts, lat: fix.lat, lon: fix.lon, acc: fix.acc ?? null };
        const send = msg;
        fx.push(() => orders.send(o.id, send));
      }
    }
    return rec;
  }

  /**
   * Whether order `o` needs this accurate live fix: in service every one (the exit watch);
   * departed and not yet approaching every one (its ETA decides `order.approaching`);
   * otherwise before arrival only one that predicts lateness (the order decides again and raises).
   */
  function wantsFix(o: OrderLink, fix: IncomingFix, now: number): boolean {
    if (o.state === 'in_service' || o.approach) return true;
    if (o.arrival === null || (o.state !== 'assigned' && o.state !== 'departed')) return false;
    return (
      arrivesLate(o.arrival, lateArrivalDue(o.arrival.scheduledAt, config), fix.lat, fix.lon, now, config) !== null
    );
  }

  function isOpenAlert(id: string | null): boolean {
    if (id === null) return false;
    const a = board.get(id);
    // Not on the board: either its raise is still being persisted (open), or retention dropped it (closed).
    return a === undefined ? board.pending(id) : a.state !== 'resolved';
  }

  async function ping(rec: TechRecord, fix: IncomingFix, fx: Effects, reply: TechMsgReply): Promise<TechRecord> {
    const fate = classifyFix(rec.pos, rec.recent, fix.ts, fix.lat, fix.lon);
    if (fate === 'ignore' || fate === 'duplicate') {
      fx.push(() => reply(OK_EMPTY));
      return rec;
    }
    const refused = await persistence.savePings([pingRow(rec.id, fix.ts, fix.lat, fix.lon, fix)]);
    if (refused !== null) {
      fx.push(() => reply(refused));
      return rec;
    }
    const now = clock.now();
    const recent = withTs(rec.recent, fix.ts);
    let next: TechRecord;
    if (fate === 'live') {
      const pos: LivePosition = { ts: fix.ts, lat: fix.lat, lon: fix.lon, acc: fix.acc ?? null, spd: fix.spd ?? null };
      next = onLiveFix(rec, { ...rec, pos, quietSince: now, recent }, fix, fx);
      journal.notePosition(rec.id, pos, now);
      fx.push(() => publishPosition(rec.id, pos));
    } else {
      next = { ...rec, quietSince: now, recent };
    }
    fx.push(() => reply(OK_EMPTY));
    return endSilence(next, now, fx);
  }

  async function batch(rec: TechRecord, pts: TechMsg & { t: 'batch' }, fx: Effects): Promise<TechRecord> {
    const rows: PingRecord[] = [];
    const fresh = new Set<number>();
    let accepted = 0;
    let newest: LivePosition | null = null;
    for (const [ts, lat, lon, acc, spd, hdg] of pts.pts) {
      const fate = classifyFix(rec.pos, rec.recent, ts, lat, lon);
      if (fate === 'ignore') continue;
      accepted++;
      if (fate === 'duplicate' || fresh.has(ts)) continue;
      fresh.add(ts);
      rows.push(pingRow(rec.id, ts, lat, lon, { acc, spd, hdg }));
      if (fate === 'live' && (newest === null || ts > newest.ts)) {
        newest = { ts, lat, lon, acc: acc ?? null, spd: spd ?? null };
      }
    }
    if (rows.length > 0) {
      const refused = await persistence.savePings(rows);
      if (refused !== null) {
        fx.push(() => pts.reply(refused));
        return rec;
      }
    }
    const now = clock.now();
    let recent = rec.recent;
    for (const ts of fresh) recent = withTs(recent, ts);
    let next: TechRecord = { ...rec, quietSince: now, recent };
    if (newest !== null) {
      next = { ...next, pos: newest };
      journal.notePosition(rec.id, newest, now);
      fx.push(() => publishPosition(rec.id, newest));
    }
    const n = accepted;
    fx.push(() => pts.reply({ ok: true, value: { n } }));
    return endSilence(next, now, fx);
  }

  function orderChanged(rec: TechRecord, msg: TechMsg & { t: 'order' }): TechRecord {
    const hadActive = activeOrderOf(rec) !== undefined;
    const others = rec.orders.filter((o) => o.id !== msg.link.id);
    const keep = msg.tech === rec.id && !isTerminalState(msg.link.state);
    const list: readonly OrderLink[] = keep ? [...others, msg.link] : others;
    let next: TechRecord = { ...rec, orders: list.length === 0 ? NO_ORDERS : list };
    const hasActive = list.some((o) => isActiveState(o.state));
    // The silence of a technician who just set off starts now, not at their last ping of yesterday.
    if (hasActive && !hadActive) next = { ...next, quietSince: Math.max(rec.quietSince, clock.now()) };
    if (!hasActive && rec.offlineAlert !== null) next = { ...next, offlineAlert: null };
    return next;
  }

  async function tick(rec: TechRecord): Promise<TechRecord> {
    const now = clock.now();
    const due = offlineDeadline(rec, config.OFFLINE_MS);
    if (due === null || due > now) return rec;
    const alert: Alert = {
      id: board.newId(),
      kind: 'offline',
      level: 1,
      state: 'open',
      tech: rec.id,
      ts: now,
      detail: { silentSince: rec.quietSince },
    };
    const order = activeOrderOf(rec);
    if (order !== undefined) alert.order = order;
    if (rec.pos !== null) {
      alert.lat = rec.pos.lat;
      alert.lon = rec.pos.lon;
      (alert.detail as Record<string, unknown>).lastFixTs = rec.pos.ts;
    }
    await board.raise(alert, 'tolerate');
    return { ...rec, offlineAlert: alert.id };
  }

  return {
    kind: 'technician',
    async handle(id, state, msg, fx) {
      const rec = state ?? newTechRecord(id);
      let next: TechRecord;
      switch (msg.t) {
        case 'ping':
          next = await ping(rec, msg.fix, fx, msg.reply);
          break;
        case 'batch':
          next = await batch(rec, msg, fx);
          break;
        case 'order':
          next = orderChanged(rec, msg);
          break;
        case 'tick':
          next = await tick(rec);
          break;
      }
      const at = offlineDeadline(next, config.OFFLINE_MS);
      fx.push(() => techs.arm(id, at));
      return next;
    },
    replyCrash(msg, answer) {
      if (msg.t === 'ping' || msg.t === 'batch') msg.reply(answer);
    },
    passivable(state) {
      return state === undefined || activeOrderOf(state) === undefined;
    },
  };
}

type TechMsgReply = (outcome: Outcome<AckExtras>) => void;
