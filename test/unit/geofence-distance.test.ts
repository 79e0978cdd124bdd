import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { distance } from '@turf/turf';
import fc from 'fast-check';
import { distanceMeters, EARTH_RADIUS_M } from '../../src/geofence/distance.js';

const lat = fc.double({ min: -90, max: 90, noNaN: true });
const lon = fc.double({ min: -180, max: 180, noNaN: true });

/** Relative closeness with an absolute floor, so pairs at distance ~0 do not divide by zero. */
function close(actual: number, expected: number, rel: number, absM: number): boolean {
  return Math.abs(actual - expected) <= Math.max(rel * Math.abs(expected), absM);
}

describe('distanceMeters', () => {
  const table: Array<{ name: string; from: [number, number]; to: [number, number]; want: number; tol: number }> = [
    { name: 'same point', from: [52.52, 13.405], to: [52.52, 13.405], want: 0, tol: 0 },
    { name: 'one degree of latitude', from: [10, 20], to: [11, 20], want: 111195.08023353292, tol: 1e-6 },
    { name: 'one degree of longitude on the equator', from: [0, 0], to: [0, -1], want: 111195.08023353292, tol: 1e-6 },
    { name: 'equator to pole', from: [0, 45], to: [90, 45], want: 10007557.221017962, tol: 1e-5 },
    { name: 'pole to pole', from: [90, 0], to: [-90, 0], want: Math.PI * EARTH_RADIUS_M, tol: 1e-5 },
    { name: 'antipodes on the equator', from: [0, 0], to: [0, 180], want: Math.PI * EARTH_RADIUS_M, tol: 1e-5 },
    { name: 'across the antimeridian', from: [0, 179.5], to: [0, -179.5], want: 111195.08023353292, tol: 1e-6 },
    // Published great-circle distance Paris - Berlin: about 878 km.
    { name: 'Paris to Berlin', from: [48.8566, 2.3522], to: [52.52, 13.405], want: 878_000, tol: 2_000 },
  ];
  for (const { name, from, to, want, tol } of table) {
    it(name, () => {
      const got = distanceMeters(from[0], from[1], to[0], to[1]);
      assert.ok(Math.abs(got - want) <= tol, `${name}: got ${got}, want ${want} +- ${tol}`);
    });
  }

  it('matches turf distance on random pairs', () => {
    fc.assert(
      fc.property(lat, lon, lat, lon, (lat1, lon1, lat2, lon2) => {
        const got = distanceMeters(lat1, lon1, lat2, lon2);
        const want = distance([lon1, lat1], [lon2, lat2], { units: 'meters' });
        fc.pre(Number.isFinite(want)); // turf itself yields NaN for a few exact antipodes
        return close(got, want, 1e-9, 1e-6);
      }),
      { numRuns: 5000 },
    );
  });

  it('matches turf distance on random nearby pairs (geofence scale)', () => {
    const delta = fc.double({ min: -0.01, max: 0.01, noNaN: true });
    fc.assert(
      fc.property(fc.double({ min: -89, max: 89, noNaN: true }), lon, delta, delta, (lat1, lon1, dLat, dLon) => {
        const got = distanceMeters(lat1, lon1, lat1 + dLat, lon1 + dLon);
        const want = distance([lon1, lat1], [lon1 + dLon, lat1 + dLat], { units: 'meters' });
        return close(got, want, 1e-9, 1e-9);
      }),
      { numRuns: 5000 },
    );
  });

  it('is symmetric, finite and never negative', () => {
    fc.assert(
      fc.property(lat, lon, lat, lon, (lat1, lon1, lat2, lon2) => {
        const ab = distanceMeters(lat1, lon1, lat2, lon2);
        const ba = distanceMeters(lat2, lon2, lat1, lon1);
        return Number.isFinite(ab) && ab >= 0 && ab <= Math.PI * EARTH_RADIUS_M + 1e-6 && close(ab, ba, 1e-12, 1e-9);
      }),
      { numRuns: 5000 },
    );
  });
});
