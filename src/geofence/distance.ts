/**
 * Great-circle distance for the per-ping hot path: plain numbers in, a number out, nothing
 * allocated. Same sphere and formula as turf's `distance`, so this agrees with the polygon
 * code (which uses turf) and with anything an analyst computes with turf.
 */

/** Mean earth radius in metres; turf's value, so both agree to rounding error. */
export const EARTH_RADIUS_M = 6371008.8;

const RAD = Math.PI / 180;

/**
 * Haversine distance in metres between two WGS84 points given in degrees. On a sphere, so it
 * differs from the ellipsoid by up to about 0.5%: far below GPS error at geofence scale.
 */
export function distanceMeters(lat1: number, lon1: number, lat2: number, lon2: number): number {
  const sinDLat = Math.sin(((lat2 - lat1) * RAD) / 2);
  const sinDLon = Math.sin(((lon2 - lon1) * RAD) / 2);
  const a = sinDLat * sinDLat + sinDLon * sinDLon * Math.cos(lat1 * RAD) * Math.cos(lat2 * RAD);
  // Rounding can push `a` a hair above 1 for antipodal points; sqrt(1 - a) would then be NaN.
  const h = Math.min(a, 1);
  return 2 * EARTH_RADIUS_M * Math.atan2(Math.sqrt(h), Math.sqrt(1 - h));
}
