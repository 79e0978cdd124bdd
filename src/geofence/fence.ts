/**
 * Check-in geofences and the check-in verdict, as pure functions (after Tile38's fence.go).
 *
 * Check-in rule (README):
 *
 * - `dist` is the distance in metres from the fix to the customer point (the order's
 *   `lat`/`lon`), rounded to 0.1 m. Every comparison below uses distances rounded the same
 *   way, so the `dist` a client receives always agrees with the verdict it came with, and a
 *   fix exactly on the edge is not decided by floating-point noise.
 * - A fix whose `acc` (reported 68% accuracy radius, metres) is greater than `maxAccuracyM`
 *   never decides: the answer is `poor_accuracy`, whatever the position. A fix without
 *   `acc` is taken as exact (acc = 0).
 * - Circle fence: the fix is inside when `dist <= radius + min(acc, radius)`. The accuracy
 *   circle may overlap the fence, but accuracy can at most double the radius, so a vague
 *   fix cannot check in from far away. Exactly on the (widened) radius counts as inside.
 * - Polygon fence: the fix is inside when the point is inside the polygon or on its
 *   boundary, or when its distance to the boundary is `<= min(acc, radius)` (the same
 *   tolerance as for a circle; `radius` is the order's radius).
 * - Otherwise the verdict is `outside`, carrying `dist` and `radius` for the
 *   `outside_geofence` error.
 */
import { distanceMeters } from './distance.js';
import { closeRing, preparePolygon, ringBoundaryDistance, ringContains } from './polygon.js';

/** A check-in area of `radius` metres around the customer. */
export interface CircleFence {
  kind: 'circle';
  lat: number;
  lon: number;
  radius: number;
}

/**
 * A check-in area given as a polygon (a building, a yard). `ring` is `[lon, lat]` pairs in
 * GeoJSON order, closed or not; `lat`/`lon` is the customer point that `dist` is measured
 * to, and `radius` bounds how much a fix's accuracy may widen the polygon.
 */
export interface PolygonFence {
  kind: 'polygon';
  lat: number;
  lon: number;
  radius: number;
  ring: Array<[number, number]>;
}

/** Any check-in area; plain data, safe to serialise. Build with `makeFence`. */
export type Fence = CircleFence | PolygonFence;

/** A position report as the geofence sees it; `acc` is the 68% accuracy radius in metres. */
export interface Fix {
  lat: number;
  lon: number;
  acc?: number;
}

/** Answer of `checkinVerdict`; the `inside: false` branch carries what `outside_geofence` sends. */
export type Verdict =
  | { inside: true; dist: number }
  | { inside: false; dist: number; radius: number; reason: 'outside' | 'poor_accuracy' };

/** Where a fix's accuracy circle lies relative to a fence (used by the exit watch). */
export type Placement = 'inside' | 'edge' | 'outside';

/** Rounds metres to 0.1 m: the precision sent to clients and used for every decision. */
export function roundMeters(m: number): number {
  return Math.round(m * 10) / 10;
}

/**
 * Builds a fence from an order: a circle, or a polygon when `polygon` is given. For a
 * polygon the ring is closed and its turf geometry built now, so a bad ring fails when the
 * order is saved (with a clear Error) rather than at the technician's check-in.
 */
export function makeFence(lat: number, lon: number, radius: number, polygon?: Array<[number, number]>): Fence {
  if (polygon === undefined) return { kind: 'circle', lat, lon, radius };
  const ring = closeRing(polygon);
  preparePolygon(ring);
  return { kind: 'polygon', lat, lon, radius, ring };
}

/** Decides a check-in; see the rule at the top of this file. Allocates nothing but the answer for circles. */
export function checkinVerdict(fence: Fence, fix: Fix, maxAccuracyM: number): Verdict {
  const dist = roundMeters(distanceMeters(fix.lat, fix.lon, fence.lat, fence.lon));
  const acc = fix.acc ?? 0;
  if (acc > maxAccuracyM) return { inside: false, dist, radius: fence.radius, reason: 'poor_accuracy' };
  const slack = Math.min(acc, fence.radius);
  const inside =
    fence.kind === 'circle'
      ? dist <= fence.radius + slack
      : ringContains(fence.ring, fix.lat, fix.lon) ||
        roundMeters(ringBoundaryDistance(fence.ring, fix.lat, fix.lon)) <= slack;
  return inside ? { inside: true, dist } : { inside: false, dist, radius: fence.radius, reason: 'outside' };
}

/**
 * Places a fix's whole accuracy circle: `inside` the fence, `outside` it, or overlapping its
 * `edge`. Accuracy is not capped here: a vaguer fix is less often clearly anywhere, which is
 * what an alarm wants. Does not look at `maxAccuracyM`; callers filter poor fixes first.
 */
export function placeFix(fence: Fence, fix: Fix): Placement {
  const acc = fix.acc ?? 0;
  if (fence.kind === 'circle') {
    const dist = roundMeters(distanceMeters(fix.lat, fix.lon, fence.lat, fence.lon));
    if (dist - acc > fence.radius) return 'outside';
    return dist + acc <= fence.radius ? 'inside' : 'edge';
  }
  const contains = ringContains(fence.ring, fix.lat, fix.lon);
  const edgeDist = roundMeters(ringBoundaryDistance(fence.ring, fix.lat, fix.lon));
  if (contains) return edgeDist >= acc ? 'inside' : 'edge';
  return edgeDist > acc ? 'outside' : 'edge';
}
