/**
 * Polygon geometry for check-in fences, delegated to turf. Polygon fences are rare, so these
 * may allocate; the turf features are still built only once per ring and cached by the ring
 * array itself, which keeps a fence plain data (it survives JSON and shallow copies, and a
 * fence rebuilt from storage is prepared lazily on its first check).
 */
import { booleanPointInPolygon, lineString, pointToLineDistance, polygon } from '@turf/turf';

/** A ring of `[lon, lat]` pairs (GeoJSON order). */
export type Ring = ReadonlyArray<readonly [number, number]>;

interface Prepared {
  readonly area: ReturnType<typeof polygon>;
  readonly boundary: ReturnType<typeof lineString>;
}

const prepared = new WeakMap<Ring, Prepared>();

/**
 * Returns a closed copy of `ring` (first point repeated at the end, as GeoJSON requires).
 * Throws when the ring has fewer than 3 distinct points, since it would enclose no area and
 * every check-in against it would fail in a way the dispatcher could not understand.
 */
export function closeRing(ring: Ring): Array<[number, number]> {
  const distinct = new Set(ring.map(([lon, lat]) => `${lon},${lat}`));
  if (distinct.size < 3) {
    throw new Error(`geofence polygon needs at least 3 distinct [lon, lat] points, got ${distinct.size}`);
  }
  const out = ring.map(([lon, lat]): [number, number] => [lon, lat]);
  const first = out[0]!;
  const last = out[out.length - 1]!;
  if (first[0] !== last[0] || first[1] !== last[1]) out.push([first[0], first[1]]);
  return out;
}

/** Builds (once per ring array) the turf features the checks below need. */
export function preparePolygon(ring: Ring): Prepared {
  let p = prepared.get(ring);
  if (p === undefined) {
    const closed = closeRing(ring);
    p = { area: polygon([closed]), boundary: lineString(closed) };
    prepared.set(ring, p);
  }
  return p;
}

/** Whether the point lies inside the ring or on its boundary. */
export function ringContains(ring: Ring, lat: number, lon: number): boolean {
  return booleanPointInPolygon([lon, lat], preparePolygon(ring).area);
}

/** Shortest distance in metres from the point to the ring's boundary (geodesic, turf's sphere). */
export function ringBoundaryDistance(ring: Ring, lat: number, lon: number): number {
  return pointToLineDistance([lon, lat], preparePolygon(ring).boundary, { units: 'meters' });
}
