/**
 * Field-by-field validation of every client message and HTTP body, with one TypeBox
 * schema beside each message type (compiled once). A validated message is rebuilt from
 * its known fields only, so nothing a client adds beyond the protocol reaches the actors.
 */
import { type Static, type TSchema, Type } from '@sinclair/typebox';
import { type TypeCheck, TypeCompiler } from '@sinclair/typebox/compiler';
import {
  type BatchPoint,
  type DeviceMessage,
  MAX_BATCH_POINTS,
  type OrderInput,
  type SafetyMessage,
} from '../protocol.js';
import { outsideWindow, type TimeWindow } from './time-window.js';

/** Ids of orders, technicians, alerts and incidents: short, URL- and log-safe. */
export const ID_PATTERN = '^[A-Za-z0-9._:@-]{1,128}$';
const idRegex = new RegExp(ID_PATTERN);

const Id = Type.String({ pattern: ID_PATTERN, description: 'an id of 1-128 letters, digits or ._:@-' });
const Seq = Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER });
const Ts = Type.Integer({ minimum: 0, maximum: 8.64e15 });
const Lat = Type.Number({ minimum: -90, maximum: 90 });
const Lon = Type.Number({ minimum: -180, maximum: 180 });
const Accuracy = Type.Number({ minimum: 0, maximum: 1e7 });
const Speed = Type.Number({ minimum: 0, maximum: 1e5 });
const Heading = Type.Number({ minimum: 0, maximum: 360 });
const Battery = Type.Number({ minimum: 0, maximum: 100 });

const msg = <T extends string, P extends Record<string, TSchema>>(t: T, props: P) =>
  Type.Object({ t: Type.Literal(t), seq: Seq, ...props });

const deviceSchemas = {
  ping: msg('ping', {
    ts: Ts,
    lat: Lat,
    lon: Lon,
    acc: Type.Optional(Accuracy),
    spd: Type.Optional(Speed),
    hdg: Type.Optional(Heading),
    bat: Type.Optional(Battery),
  }),
  batch: msg('batch', {
    pts: Type.Array(Type.Array(Type.Number(), { minItems: 3, maxItems: 6 }), { maxItems: MAX_BATCH_POINTS }),
  }),
  depart: msg('depart', { order: Id, ts: Type.Optional(Ts) }),
  checkin: msg('checkin', { order: Id, ts: Ts, lat: Lat, lon: Lon, acc: Type.Optional(Accuracy) }),
  start: msg('start', { order: Id }),
  complete: msg('complete', { order: Id }),
  sos: msg('sos', { ts: Ts, lat: Lat, lon: Lon, note: Type.Optional(Type.String({ maxLength: 1000 })) }),
  sos_cancel: msg('sos_cancel', { incident: Id }),
};

const safetySchemas = {
  ack: msg('ack', { id: Id }),
  resolve: msg('resolve', { id: Id, note: Type.Optional(Type.String({ maxLength: 1000 })) }),
};

/** Body of `PUT /v1/orders/:id`. */
export const OrderInputSchema = Type.Object({
  technician: Id,
  lat: Lat,
  lon: Lon,
  radius: Type.Optional(Type.Number({ exclusiveMinimum: 0, maximum: 100_000 })),
  scheduledAt: Ts,
  durationMin: Type.Number({ exclusiveMinimum: 0, maximum: 7 * 24 * 60 }),
  polygon: Type.Optional(Type.Array(Type.Tuple([Lon, Lat]), { minItems: 3, maxItems: 1000 })),
});

type Compiled<S extends Record<string, TSchema>> = { [K in keyof S]: TypeCheck<S[K]> };
const compile = <S extends Record<string, TSchema>>(schemas: S): Compiled<S> =>
  Object.fromEntries(Object.entries(schemas).map(([k, s]) => [k, TypeCompiler.Compile(s)])) as Compiled<S>;

const deviceChecks = compile(deviceSchemas);
const safetyChecks = compile(safetySchemas);
const orderInputCheck = TypeCompiler.Compile(OrderInputSchema);

/** A message that failed validation; `seq` is echoed when it was itself valid. */
export interface Invalid {
  ok: false;
  seq: number | null;
  msg: string;
  /** Fixes whose `ts` was outside the time window (for the metric). */
  outOfWindow?: number;
}
/** A valid message; `outOfWindow` counts fixes whose `ts` was outside the time window (dropped or replaced). */
export type Validated<M> = { ok: true; value: M; outOfWindow?: number } | Invalid;

/** The `seq` of a decoded frame if it is valid, else null (then answers carry `seq: null`). */
export function seqOf(frame: Record<string, unknown>): number | null {
  const seq = frame.seq;
  return typeof seq === 'number' && Number.isSafeInteger(seq) && seq >= 0 ? seq : null;
}

function firstError(check: TypeCheck<TSchema>, value: unknown): string {
  const error = check.Errors(value).First();
  if (!error) return 'invalid message';
  const field = error.path.replace(/^\//, '').replaceAll('/', '.');
  return field === '' ? error.message : `field ${field}: ${error.message}`;
}

function checkFrame<S extends Record<string, TSchema>>(
  checks: Compiled<S>,
  frame: Record<string, unknown>,
  endpoint: string,
): Validated<Static<S[keyof S]>> {
  const seq = seqOf(frame);
  if (seq === null) return { ok: false, seq, msg: 'field seq: expected a non-negative integer' };
  const t = frame.t;
  if (typeof t !== 'string') return { ok: false, seq, msg: 'field t: expected a message type string' };
  if (!Object.hasOwn(checks, t)) {
    return { ok: false, seq, msg: `unknown message type "${t.slice(0, 32)}" on ${endpoint}` };
  }
  const check = checks[t as keyof S] as TypeCheck<TSchema>;
  if (!check.Check(frame)) return { ok: false, seq, msg: firstError(check, frame) };
  return { ok: true, value: frame as Static<S[keyof S]> };
}

function checkPoint(p: number[]): string | null {
  const [ts, lat, lon, acc, spd, hdg] = p as [number, number, number, number?, number?, number?];
  if (!Number.isSafeInteger(ts) || ts < 0) return 'ts must be a non-negative integer';
  if (!(lat >= -90 && lat <= 90)) return 'lat must be in [-90, 90]';
  if (!(lon >= -180 && lon <= 180)) return 'lon must be in [-180, 180]';
  if (acc !== undefined && !(acc >= 0 && Number.isFinite(acc))) return 'acc must be a non-negative number';
  if (spd !== undefined && !(spd >= 0 && Number.isFinite(spd))) return 'spd must be a non-negative number';
  if (hdg !== undefined && !(hdg >= 0 && hdg <= 360)) return 'hdg must be in [0, 360]';
  return null;
}

/**
 * Validates a decoded `/v1/device` frame against its schema and the time window (no fix
 * older than the archive keeps or more than 5 minutes ahead), and rebuilds it from its
 * known fields. Outside the window (README, protocol decisions): a `ping` is refused, a
 * `batch` point is left out (and so out of the ack's `n`), a `checkin` or `sos` is taken
 * with the server's time instead (an SOS is never refused), a `depart` without its `ts`.
 */
export function validateDeviceMessage(frame: Record<string, unknown>, window: TimeWindow): Validated<DeviceMessage> {
  const checked = checkFrame(deviceChecks, frame, '/v1/device');
  if (!checked.ok) return checked;
  const m = checked.value;
  switch (m.t) {
    case 'ping': {
      const outside = outsideWindow(m.ts, window);
      if (outside !== null) return { ok: false, seq: m.seq, msg: `field ts: ${outside}`, outOfWindow: 1 };
      return {
        ok: true,
        value: pickDefined({
          t: m.t,
          seq: m.seq,
          ts: m.ts,
          lat: m.lat,
          lon: m.lon,
          acc: m.acc,
          spd: m.spd,
          hdg: m.hdg,
          bat: m.bat,
        }),
      };
    }
    case 'batch': {
      for (let i = 0; i < m.pts.length; i++) {
        const problem = checkPoint(m.pts[i] as number[]);
        if (problem) return { ok: false, seq: m.seq, msg: `field pts.${i}: ${problem}` };
      }
      const pts = (m.pts as BatchPoint[]).filter((p) => outsideWindow(p[0], window) === null);
      const outOfWindow = m.pts.length - pts.length;
      return { ok: true, value: { t: m.t, seq: m.seq, pts }, ...(outOfWindow > 0 ? { outOfWindow } : {}) };
    }
    case 'depart': {
      const drop = m.ts !== undefined && outsideWindow(m.ts, window) !== null;
      return {
        ok: true,
        value: pickDefined({ t: m.t, seq: m.seq, order: m.order, ts: drop ? undefined : m.ts }),
        ...(drop ? { outOfWindow: 1 } : {}),
      };
    }
    case 'checkin': {
      const replace = outsideWindow(m.ts, window) !== null;
      return {
        ok: true,
        value: pickDefined({
          t: m.t,
          seq: m.seq,
          order: m.order,
          ts: replace ? window.now : m.ts,
          lat: m.lat,
          lon: m.lon,
          acc: m.acc,
        }),
        ...(replace ? { outOfWindow: 1 } : {}),
      };
    }
    case 'start':
    case 'complete':
      return { ok: true, value: { t: m.t, seq: m.seq, order: m.order } };
    case 'sos': {
      const replace = outsideWindow(m.ts, window) !== null;
      return {
        ok: true,
        value: pickDefined({
          t: m.t,
          seq: m.seq,
          ts: replace ? window.now : m.ts,
          lat: m.lat,
          lon: m.lon,
          note: m.note,
        }),
        ...(replace ? { outOfWindow: 1 } : {}),
      };
    }
    case 'sos_cancel':
      return { ok: true, value: { t: m.t, seq: m.seq, incident: m.incident } };
  }
}

/** Validates a decoded `/v1/safety` frame and rebuilds it from its known fields. */
export function validateSafetyMessage(frame: Record<string, unknown>): Validated<SafetyMessage> {
  const checked = checkFrame(safetyChecks, frame, '/v1/safety');
  if (!checked.ok) return checked;
  const m = checked.value;
  switch (m.t) {
    case 'ack':
      return { ok: true, value: { t: m.t, seq: m.seq, id: m.id } };
    case 'resolve':
      return { ok: true, value: pickDefined({ t: m.t, seq: m.seq, id: m.id, note: m.note }) };
  }
}

/** Validates the JSON body of `PUT /v1/orders/:id`. */
export function validateOrderInput(body: unknown): { ok: true; value: OrderInput } | { ok: false; msg: string } {
  if (!orderInputCheck.Check(body)) return { ok: false, msg: firstError(orderInputCheck, body) };
  const b = body;
  return {
    ok: true,
    value: pickDefined({
      technician: b.technician,
      lat: b.lat,
      lon: b.lon,
      radius: b.radius,
      scheduledAt: b.scheduledAt,
      durationMin: b.durationMin,
      polygon: b.polygon?.map(([lon, lat]) => [lon, lat] as [number, number]),
    }),
  };
}

/** True when `id` is a valid order/technician/alert id (for ids taken from URLs). */
export function isValidId(id: string): boolean {
  return idRegex.test(id);
}

/** Drops keys whose value is undefined, so optional fields are absent rather than undefined. */
function pickDefined<T extends object>(o: T): T {
  for (const k of Object.keys(o) as (keyof T)[]) if (o[k] === undefined) delete o[k];
  return o;
}
