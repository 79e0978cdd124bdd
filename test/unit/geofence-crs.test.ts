/**
 * Coordinate-system conversion (src/geofence/crs.ts) against published coordinate pairs,
 * and the inverses by property: every round trip lands within a centimetre.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import {
  bd09ToGcj02,
  distanceMeters,
  fromWgs84,
  gcj02ToBd09,
  gcj02ToWgs84,
  outOfChina,
  toWgs84,
  wgs84ToGcj02,
} from '../../src/geofence/index.js';

/** One centimetre, the precision the contract asks of the inverses. */
const CM = 0.01;

function near(what: string, got: { lat: number; lon: number }, want: { lat: number; lon: number }, tolDeg: number) {
  assert.ok(
    Math.abs(got.lat - want.lat) <= tolDeg && Math.abs(got.lon - want.lon) <= tolDeg,
    `${what}: got ${got.lat}, ${got.lon}; want ${want.lat}, ${want.lon} +- ${tolDeg} degrees`,
  );
}

describe('published coordinate pairs', () => {
  // wandergis/coordtransform, test/app.js (the reference implementation of the published
  // algorithm, Krasovsky a = 6378245): inputs (116.404, 39.915) as lon, lat.
  it('WGS-84 to GCJ-02 (coordtransform)', () => {
    near('wgs84togcj02', wgs84ToGcj02(39.915, 116.404), { lat: 39.91640428150164, lon: 116.41024449916938 }, 1e-12);
  });
  it('GCJ-02 to BD-09 (coordtransform)', () => {
    near('gcj02tobd09', gcj02ToBd09(39.915, 116.404), { lat: 39.92133699351021, lon: 116.41036949371029 }, 1e-12);
  });
  it("BD-09 to GCJ-02 is exact where Baidu's one-step formula (coordtransform) is a few cm off", () => {
    const got = bd09ToGcj02(39.915, 116.404);
    const oneStep = { lat: 39.90865673957631, lon: 116.39762729119315 };
    assert.ok(distanceMeters(got.lat, got.lon, oneStep.lat, oneStep.lon) < 0.1);
    const back = gcj02ToBd09(got.lat, got.lon);
    assert.ok(distanceMeters(back.lat, back.lon, 39.915, 116.404) < 0.001);
  });
  it("GCJ-02 to WGS-84 improves on coordtransform's one-step inverse (1-2 m off) and lands on the exact inverse", () => {
    const got = gcj02ToWgs84(39.915, 116.404);
    const oneStep = { lat: 39.91359571849836, lon: 116.39775550083061 };
    const metres = distanceMeters(got.lat, got.lon, oneStep.lat, oneStep.lon);
    assert.ok(metres > 0.01 && metres < 3, `one-step inverse is ${metres} m away`);
    const back = wgs84ToGcj02(got.lat, got.lon);
    assert.ok(distanceMeters(back.lat, back.lon, 39.915, 116.404) < CM);
  });

  // googollee/eviltransform's test table (wgsLat, wgsLng, gcjLat, gcjLng). It uses
  // a = 6378137 instead of Krasovsky's 6378245, which moves the offset by 17 ppm: under
  // a centimetre at these offsets of a few hundred metres.
  const evil: Array<[string, number, number, number, number]> = [
    ['Shanghai', 31.1774276, 121.5272106, 31.17530398364597, 121.531541859215],
    ['Shenzhen', 22.543847, 113.912316, 22.540796131694766, 113.9171764808363],
    ['Beijing', 39.911954, 116.377817, 39.91334545536069, 116.38404722455657],
  ];
  for (const [city, wLat, wLon, gLat, gLon] of evil) {
    it(`${city}: WGS-84 to GCJ-02 and back (eviltransform)`, () => {
      const gcj = wgs84ToGcj02(wLat, wLon);
      assert.ok(distanceMeters(gcj.lat, gcj.lon, gLat, gLon) < CM, `${city} forward`);
      const wgs = gcj02ToWgs84(gLat, gLon);
      assert.ok(distanceMeters(wgs.lat, wgs.lon, wLat, wLon) < 2 * CM, `${city} inverse`);
      // The offset is hundreds of metres: far more than a 50 m check-in radius.
      assert.ok(distanceMeters(wLat, wLon, gLat, gLon) > 300);
    });
  }

  // Beijing railway station as published to 5 decimals (GCJ-02 39.90245, 116.42703;
  // BD-09 39.90851, 116.43351; the documentation of R's `bd2gcj`): rounding alone may
  // account for up to 1.4 m between the two.
  it('Beijing railway station, GCJ-02 to BD-09 and back', () => {
    const bd = gcj02ToBd09(39.90245, 116.42703);
    assert.ok(distanceMeters(bd.lat, bd.lon, 39.90851, 116.43351) < 1.4);
    const gcj = bd09ToGcj02(39.90851, 116.43351);
    assert.ok(distanceMeters(gcj.lat, gcj.lon, 39.90245, 116.42703) < 1.4);
  });
});

describe('outside China', () => {
  const table: Array<[string, number, number, boolean]> = [
    ['Paris', 48.8566, 2.3522, true],
    ['Tokyo (east of the box)', 35.6762, 139.6503, true],
    ['Beijing', 39.9042, 116.4074, false],
    ['Urumqi', 43.8256, 87.6168, false],
    ['south of the box', 0.5, 110, true],
    ['west edge, just outside', 30, 72.003, true],
    ['west edge, just inside', 30, 72.005, false],
  ];
  for (const [name, lat, lon, out] of table) {
    it(`${name}: outOfChina = ${out}`, () => assert.equal(outOfChina(lat, lon), out));
  }

  it('GCJ-02 equals WGS-84 outside the box, both ways', () => {
    assert.deepEqual(wgs84ToGcj02(48.8566, 2.3522), { lat: 48.8566, lon: 2.3522 });
    assert.deepEqual(gcj02ToWgs84(48.8566, 2.3522), { lat: 48.8566, lon: 2.3522 });
    assert.deepEqual(toWgs84('gcj02', -33.8688, 151.2093), { lat: -33.8688, lon: 151.2093 });
    assert.deepEqual(fromWgs84('gcj02', -33.8688, 151.2093), { lat: -33.8688, lon: 151.2093 });
  });

  it('wgs84 is the identity', () => {
    assert.deepEqual(toWgs84('wgs84', 39.9, 116.4), { lat: 39.9, lon: 116.4 });
    assert.deepEqual(fromWgs84('wgs84', 39.9, 116.4), { lat: 39.9, lon: 116.4 });
  });
});

describe('round trips (property)', () => {
  // Mainland China, kept a little inside the published box so that the forward image of a
  // point stays inside it too (at the very border the offset jumps and no inverse exists).
  const chinaLat = fc.double({ min: 18, max: 53, noNaN: true });
  const chinaLon = fc.double({ min: 74, max: 134, noNaN: true });
  const anyLat = fc.double({ min: -90, max: 90, noNaN: true });
  const anyLon = fc.double({ min: -180, max: 180, noNaN: true });

  for (const crs of ['gcj02', 'bd09'] as const) {
    it(`WGS-84 -> ${crs} -> WGS-84 lands within 1 cm in China`, () => {
      fc.assert(
        fc.property(chinaLat, chinaLon, (lat, lon) => {
          const there = fromWgs84(crs, lat, lon);
          const back = toWgs84(crs, there.lat, there.lon);
          return distanceMeters(back.lat, back.lon, lat, lon) < CM;
        }),
        { numRuns: 3000 },
      );
    });

    it(`${crs} -> WGS-84 -> ${crs} lands within 1 cm in China`, () => {
      fc.assert(
        fc.property(chinaLat, chinaLon, (lat, lon) => {
          const wgs = toWgs84(crs, lat, lon);
          const back = fromWgs84(crs, wgs.lat, wgs.lon);
          return distanceMeters(back.lat, back.lon, lat, lon) < CM;
        }),
        { numRuns: 3000 },
      );
    });

    it(`${crs}: every conversion of any point is a valid, finite protocol point`, () => {
      fc.assert(
        fc.property(anyLat, anyLon, (lat, lon) => {
          for (const p of [toWgs84(crs, lat, lon), fromWgs84(crs, lat, lon)]) {
            if (!(Number.isFinite(p.lat) && Number.isFinite(p.lon))) return false;
            if (p.lat < -90 || p.lat > 90 || p.lon < -180 || p.lon > 180) return false;
          }
          return true;
        }),
        { numRuns: 3000 },
      );
    });
  }

  it('the GCJ-02 offset in China is between 1 m and 1 km (so a 50 m geofence needs the conversion)', () => {
    fc.assert(
      fc.property(chinaLat, chinaLon, (lat, lon) => {
        const gcj = wgs84ToGcj02(lat, lon);
        const metres = distanceMeters(lat, lon, gcj.lat, gcj.lon);
        return metres > 1 && metres < 1000;
      }),
      { numRuns: 3000 },
    );
  });
});
