/**
 * Estimated time of arrival of a technician at a customer: the port (`EtaEstimator`), the
 * straight-line estimate every node can make on its own, and the approaching rule. Pure
 * functions and plain values; the router client is in `osrm.ts`.
 */
import { distanceMeters } from '../geofence/distance.js';
import type { EtaSource } from '../protocol.js';

/** A point in WGS-84 degrees. */
export interface LatLon {
  readonly lat: number;
  readonly lon: number;
}

/** An estimate: seconds and metres still to go, and where it came from. */
export interface Eta {
  readonly seconds: number;
  readonly metres: number;
  readonly source: EtaSource;
}

/**
 * Estimates arrivals. `key` names the journey (the order id): an estimator may keep one
 * cached answer per key, and `forget` drops it once the journey is over.
 */
export interface EtaEstimator {
  estimate(key: string, from: LatLon, to: LatLon): Promise<Eta>;
  forget(key: string): void;
}

/** The straight line from `from` to `to` at `speedMps`, whole seconds and metres. */
export function straightLineEta(from: LatLon, to: LatLon, speedMps: number): Eta {
  const metres = distanceMeters(from.lat, from.lon, to.lat, to.lon);
  return { seconds: Math.round(metres / speedMps), metres: Math.round(metres), source: 'straight_line' };
}

/** The straight-line estimator: no network, no state. */
export class StraightLineEstimator implements EtaEstimator {
  constructor(private readonly speedMps: number) {}

  estimate(_key: string, from: LatLon, to: LatLon): Promise<Eta> {
    return Promise.resolve(straightLineEta(from, to, this.speedMps));
  }

  forget(_key: string): void {}
}

/** The thresholds of `order.approaching` (APPROACH_SEC, APPROACH_M). */
export interface ApproachThresholds {
  readonly APPROACH_SEC: number;
  readonly APPROACH_M: number;
}

/**
 * Whether a technician with this ETA is approaching: the ETA under APPROACH_SEC, or the
 * distance under APPROACH_M (a router's distance, or the straight line's).
 */
export function isApproaching(eta: Eta, t: ApproachThresholds): boolean {
  return eta.seconds < t.APPROACH_SEC || eta.metres < t.APPROACH_M;
}
