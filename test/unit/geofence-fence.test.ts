import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { destination } from '@turf/turf';
import fc from 'fast-check';
import { checkinVerdict, type Fence, type Fix, makeFence, type Verdict } from '../../src/geofence/fence.js';
import { PLACES } from '../support/fixtures.js';

const CENTRE = PLACES.berlin;
const MAX_ACC = 200;

/** The point `northM` metres north then `eastM` metres east of the centre, as `[lon, lat]`. */
function offset(northM: number, eastM: number): [number, number] {
  const n = destination([CENTRE.lon, CENTRE.lat], northM, 0, { units: 'meters' }).geometry.coordinates;
  const ne = destination(n, eastM, 90, { units: 'meters' }).geometry.coordinates;
  return [ne[0]!, ne[1]!];
}

/** A fix `distM` metres from the centre on `bearing`. */
function fixAt(distM: number, acc?: number, bearing = 0): Fix {
  const [lon, lat] = destination([CENTRE.lon, CENTRE.lat], distM, bearing, { units: 'meters' }).geometry.coordinates;
  return acc === undefined ? { lat: lat!, lon: lon! } : { lat: lat!, lon: lon!, acc };
}

/** A fix `northM`/`eastM` metres off the centre. */
function fixOff(northM: number, eastM: number, acc?: number): Fix {
  const [lon, lat] = offset(northM, eastM);
  return acc === undefined ? { lat, lon } : { lat, lon, acc };
}

describe('checkinVerdict, circle fence of 50 m', () => {
  const fence = makeFence(CENTRE.lat, CENTRE.lon, 50);
  const out = (dist: number): Verdict => ({ inside: false, dist, radius: 50, reason: 'outside' });
  const poor = (dist: number): Verdict => ({ inside: false, dist, radius: 50, reason: 'poor_accuracy' });
  const table: Array<{ name: string; fix: Fix; want: Verdict }> = [
    { name: 'at the customer, no accuracy', fix: fixAt(0), want: { inside: true, dist: 0 } },
    { name: 'well inside', fix: fixAt(30, 10, 200), want: { inside: true, dist: 30 } },
    { name: 'exactly on the radius', fix: fixAt(50, undefined, 45), want: { inside: true, dist: 50 } },
    { name: 'exactly on the radius, acc 0', fix: fixAt(50, 0, 300), want: { inside: true, dist: 50 } },
    { name: 'just outside, no accuracy', fix: fixAt(50.1), want: out(50.1) },
    { name: 'outside, acc 0', fix: fixAt(51, 0), want: out(51) },
    { name: 'accuracy circle overlaps the fence', fix: fixAt(70, 25), want: { inside: true, dist: 70 } },
    { name: 'accuracy circle just touches the fence', fix: fixAt(70, 20), want: { inside: true, dist: 70 } },
    { name: 'accuracy circle misses the fence', fix: fixAt(70, 15), want: out(70) },
    { name: 'accuracy capped at the radius: inside', fix: fixAt(99.9, 150), want: { inside: true, dist: 99.9 } },
    { name: 'accuracy capped at the radius: on it', fix: fixAt(100, 150, 270), want: { inside: true, dist: 100 } },
    { name: 'accuracy capped at the radius: outside', fix: fixAt(100.1, 150), want: out(100.1) },
    { name: 'accuracy exactly the limit still decides', fix: fixAt(120, 200), want: out(120) },
    { name: 'poor accuracy at the customer', fix: fixAt(0, 200.5), want: poor(0) },
    { name: 'poor accuracy far away', fix: fixAt(1234.5, 1000), want: poor(1234.5) },
    { name: 'far away', fix: fixAt(5000, 5), want: out(5000) },
  ];
  for (const { name, fix, want } of table) {
    it(name, () => assert.deepEqual(checkinVerdict(fence, fix, MAX_ACC), want));
  }

  it('rounds dist to 0.1 m', () => {
    assert.deepEqual(checkinVerdict(fence, fixAt(12.34), MAX_ACC), { inside: true, dist: 12.3 });
    assert.deepEqual(checkinVerdict(fence, fixAt(50.04), MAX_ACC), { inside: true, dist: 50 });
    assert.deepEqual(checkinVerdict(fence, fixAt(50.06), MAX_ACC), out(50.1));
  });
});

describe('checkinVerdict, polygon fences', () => {
  // A 100 m x 100 m square centred on the customer, radius 20 m (caps the accuracy slack).
  const square = makeFence(CENTRE.lat, CENTRE.lon, 20, [
    offset(-50, -50),
    offset(50, -50),
    offset(50, 50),
    offset(-50, 50),
  ]);
  // An L: the north-east 50 m x 50 m quarter of a 100 m square is cut out; radius 50 m.
  const ell = makeFence(CENTRE.lat, CENTRE.lon, 50, [
    offset(0, 0),
    offset(100, 0),
    offset(100, 50),
    offset(50, 50),
    offset(50, 100),
    offset(0, 100),
    offset(0, 0),
  ]);
  const table: Array<{ name: string; fence: Fence; fix: Fix; want: Verdict }> = [
    { name: 'square: at the customer', fence: square, fix: fixOff(0, 0), want: { inside: true, dist: 0 } },
    {
      name: 'square: in a corner, beyond the radius but inside the polygon',
      fence: square,
      fix: fixOff(40, 40),
      want: { inside: true, dist: 56.6 },
    },
    { name: 'square: on a vertex', fence: square, fix: fixOff(50, 50), want: { inside: true, dist: 70.7 } },
    {
      name: 'square: 10 m outside, no accuracy',
      fence: square,
      fix: fixOff(0, 60),
      want: { inside: false, dist: 60, radius: 20, reason: 'outside' },
    },
    {
      name: 'square: 10 m outside, acc 15 overlaps',
      fence: square,
      fix: fixOff(0, 60, 15),
      want: { inside: true, dist: 60 },
    },
    {
      name: 'square: 10 m outside, acc 5 misses',
      fence: square,
      fix: fixOff(0, 60, 5),
      want: { inside: false, dist: 60, radius: 20, reason: 'outside' },
    },
    {
      name: 'square: 15 m outside, acc 100 capped to 20',
      fence: square,
      fix: fixOff(0, -65, 100),
      want: { inside: true, dist: 65 },
    },
    {
      name: 'square: 30 m outside, acc 100 capped to 20',
      fence: square,
      fix: fixOff(-80, 0, 100),
      want: { inside: false, dist: 80, radius: 20, reason: 'outside' },
    },
    {
      name: 'square: poor accuracy at the customer',
      fence: square,
      fix: fixOff(0, 0, 500),
      want: { inside: false, dist: 0, radius: 20, reason: 'poor_accuracy' },
    },
    { name: 'L: inside the arm', fence: ell, fix: fixOff(25, 75), want: { inside: true, dist: 79.1 } },
    {
      name: 'L: in the cut-out notch',
      fence: ell,
      fix: fixOff(75, 75),
      want: { inside: false, dist: 106.1, radius: 50, reason: 'outside' },
    },
    {
      name: 'L: in the notch, acc 30 reaches the edge',
      fence: ell,
      fix: fixOff(75, 75, 30),
      want: { inside: true, dist: 106.1 },
    },
  ];
  for (const { name, fence, fix, want } of table) {
    it(name, () => assert.deepEqual(checkinVerdict(fence, fix, MAX_ACC), want));
  }

  it('works the same on a fence that went through JSON (plain data)', () => {
    const copy = JSON.parse(JSON.stringify(ell)) as Fence;
    for (const fix of [fixOff(25, 75), fixOff(75, 75), fixOff(75, 75, 30), fixOff(-10, -10)]) {
      assert.deepEqual(checkinVerdict(copy, fix, MAX_ACC), checkinVerdict(ell, fix, MAX_ACC));
    }
  });
});

describe('makeFence', () => {
  const a: [number, number] = [13.4, 52.5];
  const b: [number, number] = [13.41, 52.5];
  const c: [number, number] = [13.41, 52.51];

  it('builds a circle without a polygon', () => {
    assert.deepEqual(makeFence(1, 2, 30), { kind: 'circle', lat: 1, lon: 2, radius: 30 });
  });

  it('closes an open ring and keeps a closed one', () => {
    assert.deepEqual(makeFence(1, 2, 30, [a, b, c]), {
      kind: 'polygon',
      lat: 1,
      lon: 2,
      radius: 30,
      ring: [a, b, c, a],
    });
    assert.deepEqual(makeFence(1, 2, 30, [a, b, c, a]), {
      kind: 'polygon',
      lat: 1,
      lon: 2,
      radius: 30,
      ring: [a, b, c, a],
    });
  });

  const bad: Array<{ name: string; ring: Array<[number, number]> }> = [
    { name: 'empty', ring: [] },
    { name: 'one point', ring: [a] },
    { name: 'two points', ring: [a, b] },
    { name: 'two points, closed', ring: [a, b, a] },
    { name: 'two distinct among four', ring: [a, a, b, b] },
  ];
  for (const { name, ring } of bad) {
    it(`refuses a ring with fewer than 3 distinct points: ${name}`, () => {
      assert.throws(() => makeFence(1, 2, 30, ring), /at least 3 distinct/);
    });
  }
});

describe('checkinVerdict properties', () => {
  it('a fix at the centre with acc <= maxAccuracy is always inside, with dist 0', () => {
    fc.assert(
      fc.property(
        fc.double({ min: -90, max: 90, noNaN: true }),
        fc.double({ min: -180, max: 180, noNaN: true }),
        fc.double({ min: 1, max: 100_000, noNaN: true }),
        fc.double({ min: 1, max: 100_000, noNaN: true }),
        fc.option(fc.double({ min: 0, max: 1, noNaN: true }), { nil: undefined }),
        (lat, lon, radius, maxAcc, accShare) => {
          const fix: Fix = accShare === undefined ? { lat, lon } : { lat, lon, acc: accShare * maxAcc };
          const v = checkinVerdict(makeFence(lat, lon, radius), fix, maxAcc);
          assert.deepEqual(v, { inside: true, dist: 0 });
        },
      ),
    );
  });

  it('an accuracy worse than the limit is always poor_accuracy', () => {
    fc.assert(
      fc.property(
        fc.double({ min: 0, max: 10_000, noNaN: true }),
        fc.double({ min: 1, max: 1000, noNaN: true }),
        fc.double({ min: 1, max: 1000, noNaN: true }),
        fc.double({ min: 0, max: 360, noNaN: true }),
        (dist, maxAcc, extra, bearing) => {
          const v = checkinVerdict(makeFence(CENTRE.lat, CENTRE.lon, 50), fixAt(dist, maxAcc + extra, bearing), maxAcc);
          assert.equal(v.inside === false && v.reason, 'poor_accuracy');
        },
      ),
    );
  });
});
