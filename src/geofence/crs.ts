/**
 * Coordinate systems of Chinese map providers, as pure functions: WGS-84 (GPS, what the
 * server stores and decides in), GCJ-02 (AMap, Tencent; the national "offset" system) and
 * BD-09 (Baidu, a further offset over GCJ-02).
 *
 * - WGS-84 -> GCJ-02 is the published algorithm (the Krasovsky ellipsoid's a = 6378245 m,
 *   e^2 = 0.00669342162296594323, the polynomial offsets of `offset` below). As that
 *   algorithm says, outside its bounding box of China GCJ-02 equals WGS-84.
 * - GCJ-02 -> BD-09 is Baidu's published formula (polar form about the origin, plus
 *   0.0065/0.006 degrees), applied everywhere.
 * - The inverses have no closed form: each starts from the published one-step
 *   approximation and is refined by fixed-point iteration (subtract the forward image's
 *   error) until the forward image is within 1e-9 degrees (about 0.1 mm) of the input,
 *   far under the centimetre the contract asks. Near the border of the box there may be no
 *   exact inverse (the forward map jumps there); the closest candidate is kept.
 *
 * Longitudes leave every conversion normalised to [-180, 180] and latitudes clamped to
 * [-90, 90], so a converted point is always a valid protocol point (a BD-09 point on the
 * antimeridian would otherwise cross it).
 */
import type { Crs } from '../protocol.js';

/** A point in degrees. */
export interface LatLon {
  lat: number;
  lon: number;
}

/** Semi-major axis of the Krasovsky 1940 ellipsoid, metres (the published algorithm's `a`). */
const KRASOVSKY_A = 6378245.0;
/** Its first eccentricity squared: the published algorithm's `ee`, 0.00669342162296594323, as a double. */
const KRASOVSKY_EE = 0.006693421622965943;
/** Baidu's angular constant: pi * 3000 / 180. */
const X_PI = (Math.PI * 3000.0) / 180.0;
/** The inverses stop once the forward image is this close to the input, degrees (about 0.1 mm). */
const INVERSE_EPSILON_DEG = 1e-9;
/** Iterations at most; converging cases take 2 to 5. */
const INVERSE_MAX_STEPS = 30;

/** The published algorithm's bounding box of China: outside it GCJ-02 is WGS-84. */
export function outOfChina(lat: number, lon: number): boolean {
  return lon < 72.004 || lon > 137.8347 || lat < 0.8293 || lat > 55.8271;
}

/** The published polynomial offset (in metres on the ellipsoid) of x = lon - 105, y = lat - 35. */
function offsetLat(x: number, y: number): number {
  let ret = -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * Math.sqrt(Math.abs(x));
  ret += ((20.0 * Math.sin(6.0 * x * Math.PI) + 20.0 * Math.sin(2.0 * x * Math.PI)) * 2.0) / 3.0;
  ret += ((20.0 * Math.sin(y * Math.PI) + 40.0 * Math.sin((y / 3.0) * Math.PI)) * 2.0) / 3.0;
  ret += ((160.0 * Math.sin((y / 12.0) * Math.PI) + 320 * Math.sin((y * Math.PI) / 30.0)) * 2.0) / 3.0;
  return ret;
}

function offsetLon(x: number, y: number): number {
  let ret = 300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * Math.sqrt(Math.abs(x));
  ret += ((20.0 * Math.sin(6.0 * x * Math.PI) + 20.0 * Math.sin(2.0 * x * Math.PI)) * 2.0) / 3.0;
  ret += ((20.0 * Math.sin(x * Math.PI) + 40.0 * Math.sin((x / 3.0) * Math.PI)) * 2.0) / 3.0;
  ret += ((150.0 * Math.sin((x / 12.0) * Math.PI) + 300.0 * Math.sin((x / 30.0) * Math.PI)) * 2.0) / 3.0;
  return ret;
}

/** WGS-84 to GCJ-02 (the published algorithm; identity outside China). */
export function wgs84ToGcj02(lat: number, lon: number): LatLon {
  if (outOfChina(lat, lon)) return { lat, lon };
  const radLat = (lat / 180.0) * Math.PI;
  let magic = Math.sin(radLat);
  magic = 1 - KRASOVSKY_EE * magic * magic;
  const sqrtMagic = Math.sqrt(magic);
  const dLat =
    (offsetLat(lon - 105.0, lat - 35.0) * 180.0) /
    (((KRASOVSKY_A * (1 - KRASOVSKY_EE)) / (magic * sqrtMagic)) * Math.PI);
  const dLon = (offsetLon(lon - 105.0, lat - 35.0) * 180.0) / ((KRASOVSKY_A / sqrtMagic) * Math.cos(radLat) * Math.PI);
  return { lat: lat + dLat, lon: lon + dLon };
}

/** GCJ-02 to BD-09 (Baidu's published formula). */
export function gcj02ToBd09(lat: number, lon: number): LatLon {
  const z = Math.sqrt(lon * lon + lat * lat) + 0.00002 * Math.sin(lat * X_PI);
  const theta = Math.atan2(lat, lon) + 0.000003 * Math.cos(lon * X_PI);
  return { lat: z * Math.sin(theta) + 0.006, lon: z * Math.cos(theta) + 0.0065 };
}

/** Baidu's published one-step BD-09 to GCJ-02 (a few centimetres off): the start of the exact inverse. */
function bd09ToGcj02Approx(lat: number, lon: number): LatLon {
  const x = lon - 0.0065;
  const y = lat - 0.006;
  const z = Math.sqrt(x * x + y * y) - 0.00002 * Math.sin(y * X_PI);
  const theta = Math.atan2(y, x) - 0.000003 * Math.cos(x * X_PI);
  return { lat: z * Math.sin(theta), lon: z * Math.cos(theta) };
}

/**
 * Solves forward(p) = target by fixed-point iteration from `start`: p -= forward(p) - target.
 * The offsets vary slowly (a few hundred metres across tens of kilometres), so each step
 * cuts the error by orders of magnitude. Returns the candidate with the smallest error.
 */
function invert(forward: (lat: number, lon: number) => LatLon, target: LatLon, start: LatLon): LatLon {
  let p = start;
  let best = start;
  let bestError = Number.POSITIVE_INFINITY;
  for (let step = 0; step < INVERSE_MAX_STEPS; step++) {
    const image = forward(p.lat, p.lon);
    const dLat = image.lat - target.lat;
    const dLon = image.lon - target.lon;
    const error = Math.max(Math.abs(dLat), Math.abs(dLon));
    if (error < bestError) {
      best = p;
      bestError = error;
    }
    if (!(error >= INVERSE_EPSILON_DEG)) break; // also stops on NaN
    p = { lat: p.lat - dLat, lon: p.lon - dLon };
  }
  return best;
}

/**
 * GCJ-02 to WGS-84 by iteration to well under a centimetre (identity outside China, as the
 * published algorithm says).
 */
export function gcj02ToWgs84(lat: number, lon: number): LatLon {
  if (outOfChina(lat, lon)) return { lat, lon };
  const target = { lat, lon };
  const once = wgs84ToGcj02(lat, lon);
  // The published one-step inverse (1-2 m off) is where the iteration starts.
  return invert(wgs84ToGcj02, target, { lat: 2 * lat - once.lat, lon: 2 * lon - once.lon });
}

/** BD-09 to GCJ-02, refined from Baidu's one-step formula to well under a centimetre. */
export function bd09ToGcj02(lat: number, lon: number): LatLon {
  return invert(gcj02ToBd09, { lat, lon }, bd09ToGcj02Approx(lat, lon));
}

/** Longitude into [-180, 180], latitude into [-90, 90]. */
function normalised(p: LatLon): LatLon {
  let lon = p.lon;
  if (lon > 180) lon -= 360;
  else if (lon < -180) lon += 360;
  return { lat: Math.min(90, Math.max(-90, p.lat)), lon };
}

/** A point given in `crs`, in WGS-84 (what the server stores and decides in). */
export function toWgs84(crs: Crs, lat: number, lon: number): LatLon {
  switch (crs) {
    case 'wgs84':
      return { lat, lon };
    case 'gcj02':
      return normalised(gcj02ToWgs84(lat, lon));
    case 'bd09': {
      const gcj = bd09ToGcj02(lat, lon);
      return normalised(gcj02ToWgs84(gcj.lat, gcj.lon));
    }
  }
}

/** A WGS-84 point in `crs` (for answers asked with `?crs=`). */
export function fromWgs84(crs: Crs, lat: number, lon: number): LatLon {
  switch (crs) {
    case 'wgs84':
      return { lat, lon };
    case 'gcj02':
      return normalised(wgs84ToGcj02(lat, lon));
    case 'bd09': {
      const gcj = wgs84ToGcj02(lat, lon);
      return normalised(gcj02ToBd09(gcj.lat, gcj.lon));
    }
  }
}
