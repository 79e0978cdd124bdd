/**
 * Public face of the geofence module: pure geometry for check-ins and the `geofence_exit`
 * alarm. Callers import from here so the file layout inside can change freely.
 */
export {
  bd09ToGcj02,
  fromWgs84,
  gcj02ToBd09,
  gcj02ToWgs84,
  type LatLon,
  outOfChina,
  toWgs84,
  wgs84ToGcj02,
} from './crs.js';
export { distanceMeters, EARTH_RADIUS_M } from './distance.js';
export { type ExitStep, type ExitWatch, initialExitWatch, onDwellTimer, onFix } from './exit-watch.js';
export {
  type CircleFence,
  checkinVerdict,
  type Fence,
  type Fix,
  makeFence,
  type PolygonFence,
  roundMeters,
  type Verdict,
} from './fence.js';
