/**
 * What free tracker apps send, read into plain fixes (PROTOCOL.md, "Tracker apps people
 * already use"). Pure parsing, no I/O: `tracker-apps.ts` turns each fix into the same
 * `ping` or `sos` a phone sends over the WebSocket, where the protocol's own checks apply.
 *
 * - The OsmAnd protocol as query parameters (OsmAnd, older Traccar Client, GPSLogger and
 *   many others): `id` (or `deviceid`), `lat`, `lon` (or `location=lat,lon`), `timestamp`,
 *   optional `speed` in knots, `bearing` (or `heading`), `accuracy`, `altitude`, `batt`
 *   (percent) and `alarm`. Empty values count as absent, as Traccar's own server does.
 * - Traccar Client's JSON body (its background-geolocation plugin's record with the
 *   client's `device_id`): `location.timestamp`, `location.coords.{latitude, longitude,
 *   accuracy, speed (m/s), heading, altitude}`, `location.battery.level` (0-1), an SOS as
 *   `location.extras.alarm` or `location.alarm`. `location` may also be an array of such
 *   records (the plugin's batch upload of its offline buffer).
 * - OwnTracks' HTTP mode: a JSON message; `_type: "location"` is a fix (`lat`, `lon`,
 *   `tst` in seconds, optional `acc`, `vel` in km/h, `cog`, `batt`); every other type is
 *   not a fix.
 *
 * Apps report an unknown speed, heading, accuracy or battery as -1 (or any negative
 * value): such a value is left out, never refused. Everything else that is not what it
 * should be is refused with a sentence naming the field.
 */
import { MAX_BATCH_POINTS } from '../protocol.js';

/** One fix as an app reported it, in the protocol's units (ms, degrees, metres, m/s, percent). */
export interface AppFix {
  ts: number;
  lat: number;
  lon: number;
  acc?: number;
  spd?: number;
  hdg?: number;
  bat?: number;
  /** The app raised an SOS alarm with this fix. */
  sos: boolean;
}

/** A request read into the technician id it names and its fixes, or the sentence that refuses it. */
export type Parsed<T> = { ok: true; value: T } | { ok: false; msg: string };

/** What an OsmAnd-protocol request or a Traccar Client body holds. */
export interface OsmandRequest {
  /** The device id the app was configured with; null when the request has none. */
  id: string | null;
  fixes: AppFix[];
}

/** Knots to metres per second (1852 m per nautical mile). */
const KNOT_MPS = 1852 / 3600;
/** Kilometres per hour to metres per second. */
const KMH_MPS = 1 / 3.6;
/** Timestamps below this are seconds, at or above it milliseconds (Traccar's rule: Java's Integer.MAX_VALUE). */
const SECONDS_BELOW = 2_147_483_647;

const fail = (msg: string): { ok: false; msg: string } => ({ ok: false, msg });

/** A decimal number written plainly (no hex, no blanks, no "Infinity"). */
const DECIMAL = /^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$/;

/** A query value as a number; undefined when absent or empty, NaN when not a number. */
function queryNumber(params: URLSearchParams, ...names: string[]): number | undefined {
  for (const name of names) {
    const raw = params.get(name);
    if (raw === null || raw === '') continue;
    return DECIMAL.test(raw) ? Number(raw) : Number.NaN;
  }
  return undefined;
}

/** Drops negative (unknown) values; undefined stays undefined. */
function known(value: number | undefined): number | undefined {
  return value === undefined || value < 0 ? undefined : value;
}

/** Integer milliseconds since the epoch from year..second in UTC, or null when a part is out of range. */
function utc(y: number, mo: number, d: number, h: number, mi: number, s: number, ms: number): number | null {
  const t = Date.UTC(y, mo - 1, d, h, mi, s, ms);
  const back = new Date(t);
  // Date.UTC rolls 2026-02-30 over into March: refuse what does not come back unchanged.
  if (back.getUTCFullYear() !== y || back.getUTCMonth() !== mo - 1 || back.getUTCDate() !== d) return null;
  if (h > 23 || mi > 59 || s > 59) return null;
  return t;
}

const ISO_8601 = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(?::(\d{2})(\.\d{1,9})?)?(Z|[+-]\d{2}(?::?\d{2})?)?$/i;
const SPACED = /^(\d{4})-(\d{2})-(\d{2}) (\d{2}):(\d{2}):(\d{2})$/;

/**
 * A timestamp in any form the apps send, as integer ms since the epoch; null when it is
 * none of them. Whole numbers below 2^31 - 1 are seconds, larger ones milliseconds (so
 * both work until 2038, as in Traccar's server); decimal seconds are rounded to the ms.
 * ISO 8601 with a zone (`Z`, `+08:00`), or without one (then UTC); `yyyy-MM-dd HH:mm:ss`
 * is UTC.
 */
export function parseTimestamp(value: string | number): number | null {
  if (typeof value === 'number') return Number.isFinite(value) ? parseTimestamp(String(value)) : null;
  if (/^\d{1,16}$/.test(value)) {
    const n = Number(value);
    return n < SECONDS_BELOW ? n * 1000 : n;
  }
  if (/^\d{1,10}\.\d+$/.test(value)) return Math.round(Number(value) * 1000);
  const spaced = SPACED.exec(value);
  if (spaced) {
    const [, y, mo, d, h, mi, s] = spaced.map(Number) as [number, number, number, number, number, number, number];
    return utc(y, mo, d, h, mi, s, 0);
  }
  const iso = ISO_8601.exec(value);
  if (!iso) return null;
  const [y, mo, d, h, mi] = iso.slice(1, 6).map(Number) as [number, number, number, number, number];
  const s = iso[6] === undefined ? 0 : Number(iso[6]);
  const ms = iso[7] === undefined ? 0 : Math.round(Number(iso[7]) * 1000);
  const local = utc(y, mo, d, h, mi, s, 0);
  if (local === null) return null;
  const zone = iso[8];
  let offsetMin = 0;
  if (zone !== undefined && zone.toUpperCase() !== 'Z') {
    const sign = zone.startsWith('-') ? -1 : 1;
    const digits = zone.slice(1).replace(':', '');
    const zh = Number(digits.slice(0, 2));
    const zm = digits.length > 2 ? Number(digits.slice(2)) : 0;
    if (zh > 23 || zm > 59) return null;
    offsetMin = sign * (zh * 60 + zm);
  }
  return local + ms - offsetMin * 60_000;
}

/** Whether an alarm value means SOS (Traccar Client sends "sos"). */
function isSos(alarm: unknown): boolean {
  return typeof alarm === 'string' && alarm.trim().toLowerCase() === 'sos';
}

/**
 * Reads the OsmAnd protocol's parameters (from the query string, or a form body). A
 * request without `id` is not refused here (`id: null`): the caller answers 400.
 */
export function parseOsmandQuery(params: URLSearchParams): Parsed<OsmandRequest> {
  const id = params.get('id') || params.get('deviceid') || null;
  let lat = queryNumber(params, 'lat');
  let lon = queryNumber(params, 'lon');
  const location = params.get('location');
  if ((lat === undefined || lon === undefined) && location) {
    const parts = location.split(',');
    if (parts.length !== 2 || !parts.every((p) => DECIMAL.test(p.trim()))) {
      return fail('location must be "lat,lon"');
    }
    lat = Number(parts[0]!.trim());
    lon = Number(parts[1]!.trim());
  }
  if (lat === undefined || lon === undefined) return fail('lat and lon are required');
  if (Number.isNaN(lat)) return fail('lat must be a number');
  if (Number.isNaN(lon)) return fail('lon must be a number');
  const rawTs = params.get('timestamp');
  if (rawTs === null || rawTs === '') return fail('timestamp is required');
  const ts = parseTimestamp(rawTs);
  if (ts === null) {
    return fail('timestamp must be seconds or milliseconds since the epoch, ISO 8601 or yyyy-MM-dd HH:mm:ss (UTC)');
  }
  const numbers: Array<[name: string, value: number | undefined]> = [
    ['speed', queryNumber(params, 'speed')],
    ['bearing', queryNumber(params, 'bearing', 'heading')],
    ['accuracy', queryNumber(params, 'accuracy')],
    ['altitude', queryNumber(params, 'altitude')],
    ['batt', queryNumber(params, 'batt')],
  ];
  for (const [name, value] of numbers) if (Number.isNaN(value)) return fail(`${name} must be a number`);
  const [speed, bearing, accuracy, , batt] = numbers.map(([, v]) => known(v));
  return {
    ok: true,
    value: {
      id,
      fixes: [
        fix(ts, lat, lon, {
          acc: accuracy,
          spd: speed === undefined ? undefined : speed * KNOT_MPS,
          hdg: bearing,
          bat: batt,
          sos: isSos(params.get('alarm')),
        }),
      ],
    },
  };
}

/** A fix without its absent optional fields. */
function fix(
  ts: number,
  lat: number,
  lon: number,
  o: {
    acc?: number | undefined;
    spd?: number | undefined;
    hdg?: number | undefined;
    bat?: number | undefined;
    sos: boolean;
  },
): AppFix {
  const f: AppFix = { ts, lat, lon, sos: o.sos };
  if (o.acc !== undefined) f.acc = o.acc;
  if (o.spd !== undefined) f.spd = o.spd;
  if (o.hdg !== undefined) f.hdg = o.hdg;
  if (o.bat !== undefined) f.bat = o.bat;
  return f;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** An optional JSON number field: undefined when absent or null, NaN when not a finite number. */
function jsonNumber(o: Record<string, unknown>, name: string): number | undefined {
  const v = o[name];
  if (v === undefined || v === null) return undefined;
  return typeof v === 'number' && Number.isFinite(v) ? v : Number.NaN;
}

/** One record of Traccar Client's body; `at` names it in messages (`location` or `location.3`). */
function traccarRecord(record: unknown, at: string): Parsed<AppFix> {
  if (!isObject(record)) return fail(`${at} must be an object`);
  const rawTs = record.timestamp;
  if (typeof rawTs !== 'string' && typeof rawTs !== 'number') return fail(`${at}.timestamp is required`);
  const ts = parseTimestamp(rawTs);
  if (ts === null) return fail(`${at}.timestamp must be ISO 8601 or seconds or milliseconds since the epoch`);
  const coords = record.coords;
  if (!isObject(coords)) return fail(`${at}.coords is required`);
  const lat = jsonNumber(coords, 'latitude');
  const lon = jsonNumber(coords, 'longitude');
  if (lat === undefined || Number.isNaN(lat)) return fail(`${at}.coords.latitude must be a number`);
  if (lon === undefined || Number.isNaN(lon)) return fail(`${at}.coords.longitude must be a number`);
  for (const name of ['accuracy', 'speed', 'heading', 'altitude']) {
    if (Number.isNaN(jsonNumber(coords, name))) return fail(`${at}.coords.${name} must be a number`);
  }
  let bat: number | undefined;
  if (record.battery !== undefined && record.battery !== null) {
    if (!isObject(record.battery)) return fail(`${at}.battery must be an object`);
    const level = jsonNumber(record.battery, 'level');
    if (Number.isNaN(level)) return fail(`${at}.battery.level must be a number`);
    // A fraction of 1 (the plugin's unit); -1 when unknown.
    bat = known(level) === undefined ? undefined : Math.round(level! * 1000) / 10;
  }
  const extras = isObject(record.extras) ? record.extras : {};
  return {
    ok: true,
    value: fix(ts, lat, lon, {
      acc: known(jsonNumber(coords, 'accuracy')),
      spd: known(jsonNumber(coords, 'speed')),
      hdg: known(jsonNumber(coords, 'heading')),
      bat,
      sos: isSos(record.alarm) || isSos(extras.alarm),
    }),
  };
}

/**
 * Reads Traccar Client's JSON body: `{device_id, location}` with `location` one record or
 * an array of up to MAX_BATCH_POINTS records. A body without `device_id` gives `id: null`.
 */
export function parseTraccarJson(body: unknown): Parsed<OsmandRequest> {
  if (!isObject(body)) return fail('body must be a JSON object with device_id and location');
  const rawId = body.device_id;
  if (rawId !== undefined && rawId !== null && typeof rawId !== 'string' && typeof rawId !== 'number') {
    return fail('device_id must be a string');
  }
  const id = rawId === undefined || rawId === null || rawId === '' ? null : String(rawId);
  const location = body.location;
  const records = Array.isArray(location) ? location : [location];
  if (location === undefined || location === null) return fail('location is required');
  if (records.length === 0) return fail('location must hold at least one record');
  if (records.length > MAX_BATCH_POINTS) return fail(`location may hold at most ${MAX_BATCH_POINTS} records`);
  const fixes: AppFix[] = [];
  for (let i = 0; i < records.length; i++) {
    const one = traccarRecord(records[i], Array.isArray(location) ? `location.${i}` : 'location');
    if (!one.ok) return one;
    fixes.push(one.value);
  }
  return { ok: true, value: { id, fixes } };
}

/**
 * Reads one OwnTracks HTTP-mode message: the fix of a `location` message, or null for any
 * other `_type` (the caller answers those `200 []` and stores nothing).
 */
export function parseOwnTracks(body: unknown): Parsed<AppFix | null> {
  if (!isObject(body)) return fail('body must be a JSON object with _type');
  if (typeof body._type !== 'string') return fail('_type is required');
  if (body._type !== 'location') return { ok: true, value: null };
  const lat = jsonNumber(body, 'lat');
  const lon = jsonNumber(body, 'lon');
  const tst = jsonNumber(body, 'tst');
  if (lat === undefined || Number.isNaN(lat)) return fail('lat must be a number');
  if (lon === undefined || Number.isNaN(lon)) return fail('lon must be a number');
  if (tst === undefined || Number.isNaN(tst) || !Number.isInteger(tst) || tst < 0) {
    return fail('tst must be whole seconds since the epoch');
  }
  for (const name of ['acc', 'vel', 'cog', 'batt', 'alt']) {
    if (Number.isNaN(jsonNumber(body, name))) return fail(`${name} must be a number`);
  }
  const vel = known(jsonNumber(body, 'vel'));
  return {
    ok: true,
    value: fix(tst * 1000, lat, lon, {
      acc: known(jsonNumber(body, 'acc')),
      spd: vel === undefined ? undefined : vel * KMH_MPS,
      hdg: known(jsonNumber(body, 'cog')),
      bat: known(jsonNumber(body, 'batt')),
      sos: false,
    }),
  };
}
