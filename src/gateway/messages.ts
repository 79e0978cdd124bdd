/**
 * Validation of every client message and HTTP body with the protocol's compiled schemas
 * (`../protocol/checks.ts`), plus the time window of fixes. A validated message is rebuilt
 * from its known fields only, so nothing a client adds beyond the protocol reaches the actors.
 * Positions given in another coordinate system (`crs`) are converted to WGS-84 here, so
 * the actors only ever see WGS-84 and no `crs` field.
 */
import type { Static, TSchema } from '@sinclair/typebox';
import type { TypeCheck } from '@sinclair/typebox/compiler';
import { type LatLon, toWgs84 } from '../geofence/index.js';
import {
  batchPointProblem,
  type Compiled,
  checkValue,
  deviceChecks,
  firstError,
  orderInputCheck,
  safetyChecks,
} from '../protocol/checks.js';
import type { BatchPoint, Crs, DeviceMessage, OrderInput, SafetyMessage } from '../protocol.js';
import { outsideWindow, type TimeWindow } from './time-window.js';

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

/** A position given in `crs` (WGS-84 when absent), in WGS-84. */
function wgs(crs: Crs | undefined, lat: number, lon: number): LatLon {
  return crs === undefined ? { lat, lon } : toWgs84(crs, lat, lon);
}

/** Batch points given in `crs`, in WGS-84 (the same array when they already are). */
function wgsPoints(crs: Crs | undefined, pts: BatchPoint[]): BatchPoint[] {
  if (crs === undefined || crs === 'wgs84') return pts;
  return pts.map((p) => {
    const { lat, lon } = toWgs84(crs, p[1], p[2]);
    const q: BatchPoint = [...p];
    q[1] = lat;
    q[2] = lon;
    return q;
  });
}

/**
 * A `checkin` or `sos` is never refused for its clock: a `ts` outside the window is
 * replaced by the server's time, and counted as out of window.
 */
function timeOrNow(ts: number, window: TimeWindow): { ts: number; counted: { outOfWindow?: number } } {
  return outsideWindow(ts, window) === null ? { ts, counted: {} } : { ts: window.now, counted: { outOfWindow: 1 } };
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
      const { lat, lon } = wgs(m.crs, m.lat, m.lon);
      return {
        ok: true,
        value: pickDefined({
          t: m.t,
          seq: m.seq,
          ts: m.ts,
          lat,
          lon,
          acc: m.acc,
          spd: m.spd,
          hdg: m.hdg,
          bat: m.bat,
        }),
      };
    }
    case 'batch': {
      for (let i = 0; i < m.pts.length; i++) {
        const problem = batchPointProblem(m.pts[i]!);
        if (problem) return { ok: false, seq: m.seq, msg: `field pts.${i}: ${problem}` };
      }
      const pts = wgsPoints(
        m.crs,
        m.pts.filter((p) => outsideWindow(p[0], window) === null),
      );
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
      const at = timeOrNow(m.ts, window);
      const { lat, lon } = wgs(m.crs, m.lat, m.lon);
      return {
        ok: true,
        value: pickDefined({ t: m.t, seq: m.seq, order: m.order, ts: at.ts, lat, lon, acc: m.acc }),
        ...at.counted,
      };
    }
    case 'start':
    case 'complete':
      return { ok: true, value: { t: m.t, seq: m.seq, order: m.order } };
    case 'sos': {
      const at = timeOrNow(m.ts, window);
      const { lat, lon } = wgs(m.crs, m.lat, m.lon);
      return {
        ok: true,
        value: pickDefined({ t: m.t, seq: m.seq, ts: at.ts, lat, lon, note: m.note }),
        ...at.counted,
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

/**
 * Validates the JSON body of `PUT /v1/orders/:id`; the customer point and polygon come back
 * in WGS-84 whatever `crs` they were given in (which is `crs`, for the answer).
 */
export function validateOrderInput(
  body: unknown,
): { ok: true; value: OrderInput; crs: Crs } | { ok: false; msg: string } {
  const checked = checkValue(orderInputCheck, body);
  if (!checked.ok) return checked;
  const b = checked.value;
  const { lat, lon } = wgs(b.crs, b.lat, b.lon);
  return {
    ok: true,
    value: pickDefined({
      technician: b.technician,
      lat,
      lon,
      radius: b.radius,
      scheduledAt: b.scheduledAt,
      durationMin: b.durationMin,
      polygon: b.polygon?.map(([pLon, pLat]) => {
        const p = wgs(b.crs, pLat, pLon);
        return [p.lon, p.lat] as [number, number];
      }),
    }),
    crs: b.crs ?? 'wgs84',
  };
}

/** Drops keys whose value is undefined, so optional fields are absent rather than undefined. */
function pickDefined<T extends object>(o: T): T {
  for (const k of Object.keys(o) as (keyof T)[]) if (o[k] === undefined) delete o[k];
  return o;
}
