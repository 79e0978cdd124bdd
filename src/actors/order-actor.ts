/**
 * The order actor: the state machine of one order with its timeline, the check-in
 * geofence, and the order's alerts (late_departure, late_arrival, overtime,
 * geofence_exit). Every transition is archived (order_events) and journaled before it
 * is acknowledged.
 *
 * Update policy (README): `PUT` on an existing order updates its fields. An order that is
 * completed or cancelled cannot be updated (`conflict`). An active order (departed,
 * arrived, in_service) keeps its state and timeline; moving it to another technician is
 * refused (`conflict`: cancel it and create a new one instead). Only an `assigned` order
 * may change technician. Alerts already raised for the order stay raised.
 * `DELETE` of an already cancelled order answers the order again (idempotent); of a
 * completed one, `conflict`.
 */
import { isApproaching } from '../eta/eta.js';
import { checkinVerdict, type Fence, initialExitWatch, makeFence, onDwellTimer, onFix } from '../geofence/index.js';
import type { AckExtras, Outcome, Refusal } from '../outcome.js';
import type { Alert, AlertKind, OrderInput, OrderView } from '../protocol.js';
import { type ActorDeps, accurate } from './deps.js';
import type { DeviceOrderCommand, OrderMsg } from './messages.js';
import { nextState } from './order-machine.js';
import { dueOrderAlerts, KIND_TEXT, nextOrderDeadline, predictLateArrival } from './order-rules.js';
import type { OrderEvent } from './persistence.js';
import { isActiveState, isTerminalState, type OrderRecord, orderLink } from './records.js';
import { notYours } from './refusals.js';
import type { ActorSpec, Effects } from './registry.js';

/** `GET /v1/orders/:id` from a record. */
export function orderView(o: OrderRecord): OrderView {
  const view: OrderView = {
    id: o.id,
    technician: o.tech,
    state: o.state,
    scheduledAt: o.scheduledAt,
    durationMin: o.durationMin,
    lat: o.lat,
    lon: o.lon,
    radius: o.radius,
    timeline: o.timeline.map((e) => ({ ...e })),
  };
  if (o.polygon !== undefined) view.polygon = o.polygon;
  return view;
}

const conflict = (msg: string): Refusal => ({ ok: false, code: 'conflict', msg });

/** The order actor's behaviour, for the registry. */
export function orderSpec(deps: ActorDeps): ActorSpec<OrderRecord, OrderMsg> {
  const { config, clock, log, persistence, board, techs, orders, pushDevice, positionOf, eta, observer } = deps;
  // Fences are derived data: rebuilt from the record when missing, never persisted.
  const fences = new WeakMap<OrderRecord, Fence>();
  /** The technician's newest accurate position, to place alerts and start/complete on the map. */
  function lastFix(o: OrderRecord): { lat: number; lon: number } | undefined {
    const pos = positionOf(o.tech);
    return pos !== null && accurate(pos.acc, config.MAX_ACCURACY_M) ? pos : undefined;
  }

  function fenceOf(o: OrderRecord): Fence {
    let f = fences.get(o);
    if (f === undefined) {
      f = makeFence(o.lat, o.lon, o.radius, o.polygon);
      fences.set(o, f);
    }
    return f;
  }

  function tellTech(o: OrderRecord, fx: Effects, previousTech?: string): void {
    const msg = { t: 'order', tech: o.tech, link: orderLink(o) } as const;
    fx.push(() => techs.send(o.tech, msg));
    if (previousTech !== undefined && previousTech !== o.tech) fx.push(() => techs.send(previousTech, msg));
  }

  async function raise(o: OrderRecord, kind: AlertKind, detail: Record<string, unknown>): Promise<void> {
    const alert: Alert = {
      id: board.newId(),
      kind,
      level: 1,
      state: 'open',
      tech: o.tech,
      order: o.id,
      ts: clock.now(),
      detail,
    };
    const at = lastFix(o);
    if (at !== undefined) {
      alert.lat = at.lat;
      alert.lon = at.lon;
    }
    await board.raise(alert, 'tolerate');
  }

  /** What an `order.assigned` event says of an order, to tell a real change from a repeated PUT. */
  function assignmentOf(o: OrderRecord): string {
    return JSON.stringify([o.tech, o.lat, o.lon, o.radius, o.scheduledAt, o.durationMin, o.polygon ?? null]);
  }

  async function put(o: OrderRecord | undefined, id: string, input: OrderInput, fx: Effects, reply: ReplyView) {
    const now = clock.now();
    const fields = {
      tech: input.technician,
      lat: input.lat,
      lon: input.lon,
      radius: input.radius ?? config.GEOFENCE_RADIUS_M,
      scheduledAt: input.scheduledAt,
      durationMin: input.durationMin,
      ...(input.polygon !== undefined ? { polygon: input.polygon } : {}),
    };
    let next: OrderRecord;
    if (o === undefined) {
      next = {
        id,
        ...fields,
        state: 'assigned',
        timeline: [{ state: 'assigned', ts: now }],
        inServiceAt: null,
        fired: [],
        watch: initialExitWatch,
        dwellAt: null,
      };
    } else {
      if (isTerminalState(o.state)) return refuse(fx, reply, conflict(`order is ${o.state}`), o);
      if (o.state !== 'assigned' && input.technician !== o.tech) {
        return refuse(fx, reply, conflict(`order is ${o.state}: cannot change its technician`), o);
      }
      const { polygon: _dropped, ...kept } = o;
      next = { ...kept, ...fields };
    }
    try {
      fenceOf(next);
    } catch (err) {
      return refuse(fx, reply, { ok: false, code: 'bad_request', msg: `bad polygon: ${(err as Error).message}` }, o);
    }
    // Dispatch hears of an order when it is created, or changed while still assigned (a new
    // technician, time or place); an update of an order under way is no transition, and a
    // PUT that changes nothing (a retried request) makes no second event.
    const emit = next.state === 'assigned' && (o === undefined || assignmentOf(o) !== assignmentOf(next));
    const refused = await persistence.saveOrder(next, { state: next.state, ts: now }, 'refuse', emit);
    if (refused !== null) return refuse(fx, reply, refused, o);
    tellTech(next, fx, o?.tech);
    fx.push(() => reply({ ok: true, value: orderView(next) }));
    return next;
  }

  async function transition(
    o: OrderRecord,
    to: OrderRecord['state'],
    event: OrderEvent,
    fx: Effects,
  ): Promise<OrderRecord | Refusal> {
    const entry = { ...event, state: to };
    const next: OrderRecord = {
      ...o,
      state: to,
      timeline: [...o.timeline, entry],
      inServiceAt: to === 'in_service' ? clock.now() : o.inServiceAt,
      watch: initialExitWatch,
      dwellAt: null,
    };
    const refused = await persistence.saveOrder(next, entry, 'refuse');
    if (refused !== null) return refused;
    tellTech(next, fx);
    return next;
  }

  async function device(id: string, o: OrderRecord | undefined, msg: OrderMsg & { t: 'device' }, fx: Effects) {
    if (o === undefined || o.tech !== msg.tech) return refuse(fx, msg.reply, notYours('order', id), o);
    const to = nextState(o.state, msg.cmd);
    if (to === null) return refuse(fx, msg.reply, conflict(`cannot ${msg.cmd} an order that is ${o.state}`), o);
    const now = clock.now();
    const event: OrderEvent = { state: to, ts: msg.ts ?? now };
    let extras: AckExtras = {};
    if (msg.cmd === 'checkin' && msg.fix !== null) {
      const verdict = checkinVerdict(fenceOf(o), msg.fix, config.MAX_ACCURACY_M);
      if (!verdict.inside) {
        const refusal: Refusal = {
          ok: false,
          code: 'outside_geofence',
          msg: verdict.reason === 'poor_accuracy' ? 'position too inaccurate to check in' : 'outside the geofence',
          extras: { dist: verdict.dist, radius: verdict.radius, reason: verdict.reason },
        };
        return refuse(fx, msg.reply, refusal, o);
      }
      extras = { dist: verdict.dist };
    }
    const where = msg.fix ?? lastFix(o);
    if (where !== undefined) {
      event.lat = where.lat;
      event.lon = where.lon;
    }
    const next = await transition(o, to, event, fx);
    if ('ok' in next) return refuse(fx, msg.reply, next, o);
    fx.push(() => msg.reply({ ok: true, value: extras }));
    return next;
  }

  async function cancel(o: OrderRecord | undefined, fx: Effects, reply: ReplyView) {
    if (o === undefined) return refuse(fx, reply, { ok: false, code: 'not_found', msg: 'no such order' }, o);
    if (o.state === 'cancelled') {
      fx.push(() => reply({ ok: true, value: orderView(o) }));
      return o;
    }
    const to = nextState(o.state, 'cancel');
    if (to === null) return refuse(fx, reply, conflict(`cannot cancel an order that is ${o.state}`), o);
    const next = await transition(o, to, { state: to, ts: clock.now() }, fx);
    if ('ok' in next) return refuse(fx, reply, next, o);
    fx.push(() => reply({ ok: true, value: orderView(next) }));
    return next;
  }

  async function fix(
    o: OrderRecord | undefined,
    msg: OrderMsg & { t: 'fix' },
    fx: Effects,
  ): Promise<OrderRecord | undefined> {
    if (o === undefined || isTerminalState(o.state)) return o;
    const now = clock.now();
    if (o.state === 'departed' && o.approachedAt === undefined) estimateArrival(o, msg, fx);
    if (o.state === 'in_service') {
      const fixArg =
        msg.acc === null
          ? { lat: msg.lat, lon: msg.lon, ts: msg.ts }
          : { lat: msg.lat, lon: msg.lon, ts: msg.ts, acc: msg.acc };
      const step = onFix(o.watch, fenceOf(o), fixArg, {
        maxAccuracyM: config.MAX_ACCURACY_M,
        dwellMs: config.GEOFENCE_EXIT_DWELL_MS,
      });
      if (step.watch === o.watch && step.dwellDeadline === o.dwellAt) return o;
      const next: OrderRecord = { ...o, watch: step.watch, dwellAt: step.dwellDeadline };
      if (step.fire) await exitFired(next, { lat: msg.lat, lon: msg.lon });
      return next;
    }
    const late = predictLateArrival(o, msg.lat, msg.lon, now, config);
    if (late === null) return o;
    const next: OrderRecord = { ...o, fired: [...o.fired, 'late_arrival'] };
    await raise(next, 'late_arrival', { predicted: true, eta: late.eta, dist: late.dist, scheduledAt: o.scheduledAt });
    await persistence.saveOrder(next, null, 'tolerate');
    // Nothing left to predict: the technician stops sending this order its fixes.
    tellTech(next, fx);
    return next;
  }

  /**
   * Estimates the arrival from this fix, after the commit and without waiting for it (a
   * router may take up to ROUTER_TIMEOUT_MS): the answer comes back as an `eta` message.
   */
  function estimateArrival(o: OrderRecord, at: { lat: number; lon: number }, fx: Effects): void {
    const from = { lat: at.lat, lon: at.lon };
    const to = { lat: o.lat, lon: o.lon };
    fx.push(() => {
      eta.estimate(o.id, from, to).then(
        (e) => orders.send(o.id, { t: 'eta', eta: e }),
        (err: Error) => log.warn({ err }, 'order actor: arrival estimate failed'),
      );
    });
  }

  /**
   * An ETA of the departed order: `order.approaching` fires once, when the ETA falls under
   * APPROACH_SEC or the distance under APPROACH_M. Journaled first, so a restart or a
   * hand-over does not fire it again; then the device gets a `notice` and the observer
   * (events) is told. A write that fails fires nothing: the next fix tries again.
   */
  async function etaKnown(o: OrderRecord | undefined, msg: OrderMsg & { t: 'eta' }, fx: Effects) {
    if (o === undefined || o.state !== 'departed' || o.approachedAt !== undefined) return o;
    if (!isApproaching(msg.eta, config)) return o;
    const now = clock.now();
    const next: OrderRecord = { ...o, approachedAt: now };
    const refused = await persistence.saveOrder(next, null, 'refuse');
    if (refused !== null) return o;
    const { seconds, metres, source } = msg.eta;
    fx.push(() => pushDevice(o.tech, { t: 'notice', kind: 'approaching', order: o.id, msg: APPROACHING_TEXT }));
    fx.push(() => observer.approaching?.({ order: o.id, tech: o.tech, ts: now, eta: { seconds, metres, source } }));
    // The technician stops sending this order its fixes.
    tellTech(next, fx);
    return next;
  }

  /** geofence_exit fired: raise it and journal the watch, so a restart cannot fire it again for this exit. */
  async function exitFired(o: OrderRecord, at: { lat: number; lon: number }): Promise<void> {
    await raise(o, 'geofence_exit', { fence: { lat: o.lat, lon: o.lon, radius: o.radius }, lat: at.lat, lon: at.lon });
    await persistence.saveOrder(o, null, 'tolerate');
  }

  async function tick(o: OrderRecord | undefined, fx: Effects): Promise<OrderRecord | undefined> {
    if (o === undefined || isTerminalState(o.state)) return o;
    const now = clock.now();
    let next = o;
    const due = dueOrderAlerts(o, now, config);
    if (due.length > 0) {
      next = { ...next, fired: [...next.fired, ...due] };
      for (const kind of due) {
        await raise(next, kind, { scheduledAt: o.scheduledAt, durationMin: o.durationMin, state: o.state });
        if (kind === 'late_departure') {
          fx.push(() => pushDevice(o.tech, { t: 'notice', kind, order: o.id, msg: KIND_TEXT.late_departure }));
        }
      }
      if (due.includes('late_arrival')) tellTech(next, fx);
    }
    if (next.state === 'in_service' && next.dwellAt !== null && next.dwellAt <= now) {
      const step = onDwellTimer(next.watch, now, config.GEOFENCE_EXIT_DWELL_MS);
      next = { ...next, watch: step.watch, dwellAt: step.dwellDeadline };
      if (step.fire) await exitFired(next, lastFix(o) ?? { lat: o.lat, lon: o.lon });
    }
    if (due.length > 0) await persistence.saveOrder(next, null, 'tolerate');
    return next;
  }

  return {
    kind: 'order',
    async handle(id, state, msg, fx) {
      let next: OrderRecord | undefined;
      switch (msg.t) {
        case 'put':
          next = await put(state, id, msg.input, fx, msg.reply);
          break;
        case 'cancel':
          next = await cancel(state, fx, msg.reply);
          break;
        case 'device':
          next = await device(id, state, msg, fx);
          break;
        case 'fix':
          next = await fix(state, msg, fx);
          break;
        case 'tick':
          next = await tick(state, fx);
          break;
        case 'eta':
          next = await etaKnown(state, msg, fx);
          break;
      }
      if (next !== undefined && next !== state && observer.order !== undefined && changedForObservers(state, next)) {
        const view = orderView(next);
        fx.push(() => observer.order?.(view));
      }
      if (state?.state === 'departed' && next?.state !== 'departed') eta.forget(id);
      if (next !== undefined) {
        const at = isTerminalState(next.state) ? null : nextOrderDeadline(next, config);
        fx.push(() => orders.arm(id, at));
      }
      return next;
    },
    replyCrash(msg, answer) {
      if (msg.t === 'put' || msg.t === 'cancel' || msg.t === 'device') msg.reply(answer as Outcome<never>);
    },
    passivable(state) {
      return state === undefined || !isActiveState(state.state);
    },
  };
}

type ReplyView = (outcome: Outcome<OrderView>) => void;

/** Queues a refusal and keeps the state as it was. */
function refuse<T>(
  fx: Effects,
  reply: (o: Outcome<T>) => void,
  refusal: Refusal,
  state: OrderRecord | undefined,
): OrderRecord | undefined {
  fx.push(() => reply(refusal));
  return state;
}

/** The text of the `approaching` notice to the device. */
export const APPROACHING_TEXT = 'You are close to the customer';

/**
 * Whether observers (customer link, events) care about this change: a new order, a state,
 * a field or approaching; not the exit watch's bookkeeping while in service.
 */
function changedForObservers(before: OrderRecord | undefined, after: OrderRecord): boolean {
  if (before === undefined) return true;
  return (
    before.state !== after.state ||
    before.timeline !== after.timeline ||
    before.approachedAt !== after.approachedAt ||
    before.lat !== after.lat ||
    before.lon !== after.lon ||
    before.scheduledAt !== after.scheduledAt ||
    before.tech !== after.tech ||
    before.radius !== after.radius ||
    before.durationMin !== after.durationMin
  );
}

/** The device order commands, for routing. */
export const DEVICE_ORDER_COMMANDS: readonly DeviceOrderCommand[] = ['depart', 'checkin', 'start', 'complete'];
