/**
 * HTTP path parameters and query strings, read into plain values and checked with the
 * protocol's compiled schemas (`../protocol/checks.ts`), the same ones the messages and
 * bodies use. Each refusal names the parameter in one clear sentence, as PROTOCOL.md's
 * `400 bad_request` asks.
 */
import type { Static, TSchema } from '@sinclair/typebox';
import type { TypeCheck } from '@sinclair/typebox/compiler';
import {
  alertsQueryCheck,
  crsCheck,
  fieldErrors,
  isValidId,
  nearbyQueryCheck,
  trackQueryCheck,
} from '../protocol/checks.js';
import {
  type AlertState,
  AlertStates,
  CoordinateSystems,
  type Crs,
  ID_RULE,
  NEARBY_DEFAULT_RADIUS_M,
  NEARBY_MAX_RADIUS_M,
  TRACK_PAGE_DEFAULT,
  TRACK_PAGE_MAX,
} from '../protocol.js';

const DAY_MS = 24 * 60 * 60 * 1000;

/** A checked value, or the sentence that refuses it. */
export type Checked<T> = { ok: true; value: T } | { ok: false; msg: string };

/** Reads an optional numeric query parameter; NaN marks a present but invalid value. */
function numberParam(query: URLSearchParams, name: string): number | undefined {
  const raw = query.get(name);
  if (raw === null || raw === '') return undefined;
  const n = Number(raw);
  return Number.isFinite(n) ? n : Number.NaN;
}

/**
 * Checks `value` and, when it fails, answers the sentence of the first failing field in
 * `sentences` order (the order the parameters are explained in), whatever order the
 * schema's errors come in.
 */
function checkWith<S extends TSchema>(
  check: TypeCheck<S>,
  value: unknown,
  sentences: ReadonlyArray<readonly [field: string, msg: string]>,
): Checked<Static<S>> {
  if (check.Check(value)) return { ok: true, value };
  const failed = new Set([...fieldErrors(check, value)].map((e) => e.field.split('.')[0]));
  const sentence = sentences.find(([field]) => failed.has(field));
  return { ok: false, msg: sentence?.[1] ?? 'invalid query' };
}

/** A path id, e.g. `order id must be 1-128 letters, digits or ._:@-`. */
export function checkId(id: string, what: string): Checked<string> {
  return isValidId(id) ? { ok: true, value: id } : { ok: false, msg: `${what} id must be ${ID_RULE}` };
}

const TIMES = 'from and to must be times in ms since the epoch';

/**
 * `?from=&to=&limit=` of a track: `to` defaults to `now`, `from` to a day before `to`,
 * `limit` to TRACK_PAGE_DEFAULT points.
 */
export function trackQuery(query: URLSearchParams, now: number): Checked<{ from: number; to: number; limit: number }> {
  const to = numberParam(query, 'to') ?? now;
  const from = numberParam(query, 'from') ?? to - DAY_MS;
  const limit = numberParam(query, 'limit') ?? TRACK_PAGE_DEFAULT;
  const checked = checkWith(trackQueryCheck, { from, to, limit }, [
    ['from', TIMES],
    ['to', TIMES],
    ['limit', `limit must be a whole number in [1, ${TRACK_PAGE_MAX}]`],
  ]);
  if (checked.ok && from > to) return { ok: false, msg: 'from must not be after to' };
  return checked;
}

/** `?lat=&lon=&radius=` of a nearby search; `radius` defaults to NEARBY_DEFAULT_RADIUS_M metres. */
export function nearbyQuery(query: URLSearchParams): Checked<{ lat: number; lon: number; radius: number }> {
  const value = {
    lat: numberParam(query, 'lat'),
    lon: numberParam(query, 'lon'),
    radius: numberParam(query, 'radius') ?? NEARBY_DEFAULT_RADIUS_M,
  };
  return checkWith(nearbyQueryCheck, value, [
    ['lat', 'lat must be in [-90, 90]'],
    ['lon', 'lon must be in [-180, 180]'],
    ['radius', `radius must be in (0, ${NEARBY_MAX_RADIUS_M}] metres`],
  ]);
}

/** `?state=` of the alert list. */
export function alertsQuery(query: URLSearchParams): Checked<{ state?: AlertState }> {
  const state = query.get('state');
  return checkWith(alertsQueryCheck, state === null ? {} : { state }, [
    ['state', `state must be one of ${AlertStates.join(', ')}`],
  ]);
}

/**
 * `?crs=` of any route whose answer holds positions: the system to answer in (and, for a
 * nearby search, the system its `lat`/`lon` are given in); `fallback` when absent.
 */
export function crsQuery(query: URLSearchParams, fallback: Crs = 'wgs84'): Checked<Crs> {
  const crs = query.get('crs');
  if (crs === null) return { ok: true, value: fallback };
  return crsCheck.Check(crs)
    ? { ok: true, value: crs }
    : { ok: false, msg: `crs must be one of ${CoordinateSystems.join(', ')}` };
}
