/**
 * Public face of the geofence module: pure geometry for check-ins and the `geofence_exit`
 * alarm. Callers import from here so the file layout inside can change freely.
 */
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
