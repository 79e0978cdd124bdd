import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { destination } from '@turf/turf';
import { type ExitStep, type ExitWatch, initialExitWatch, onDwellTimer, onFix } from '../../src/geofence/exit-watch.js';
import { type Fence, makeFence } from '../../src/geofence/fence.js';
import { PLACES } from '../support/fixtures.js';

const CENTRE = PLACES.berlin;
const OPTS = { maxAccuracyM: 200, dwellMs: 120_000 };
const T0 = 1_700_000_000_000;
const circle = makeFence(CENTRE.lat, CENTRE.lon, 50);

function toward(northM: number, eastM: number): { lat: number; lon: number } {
  const n = destination([CENTRE.lon, CENTRE.lat], northM, 0, { units: 'meters' }).geometry.coordinates;
  const [lon, lat] = destination(n, eastM, 90, { units: 'meters' }).geometry.coordinates;
  return { lat: lat!, lon: lon! };
}

/** One input: a fix `dist` metres from the customer (bearing `brg`), or the dwell timer going off. */
type Input = { fix: { ts: number; dist: number; acc?: number; brg?: number } } | { timer: number };

/** Runs inputs through the machine from `start` and returns every step. */
function run(fence: Fence, inputs: Input[], opts = OPTS, start: ExitWatch = initialExitWatch): ExitStep[] {
  const steps: ExitStep[] = [];
  let watch = start;
  for (const input of inputs) {
    let step: ExitStep;
    if ('timer' in input) {
      step = onDwellTimer(watch, input.timer, opts.dwellMs);
    } else {
      const { ts, dist, acc, brg = 0 } = input.fix;
      const rad = (brg * Math.PI) / 180;
      const pos = toward(dist * Math.cos(rad), dist * Math.sin(rad));
      step = onFix(watch, fence, acc === undefined ? { ...pos, ts } : { ...pos, ts, acc }, opts);
    }
    steps.push(step);
    watch = step.watch;
  }
  return steps;
}

const fix = (s: number, dist: number, acc?: number, brg?: number): Input => ({
  fix: acc === undefined ? { ts: T0 + s * 1000, dist, brg } : { ts: T0 + s * 1000, dist, acc, brg },
});
const timer = (s: number): Input => ({ timer: T0 + s * 1000 });

describe('exit watch, circle fence of 50 m, dwell 120 s', () => {
  const table: Array<{ name: string; inputs: Input[]; fires: boolean[]; end: ExitWatch }> = [
    {
      name: 'jitter across the edge never fires',
      inputs: [
        fix(0, 45, 10),
        fix(5, 55, 10, 90),
        fix(10, 48, 5, 180),
        fix(15, 58, 10, 270),
        fix(20, 52, 3),
        fix(25, 60, 15, 45),
        timer(200),
        fix(300, 40, 12),
        fix(305, 53, 4),
        timer(1000),
      ],
      fires: [false, false, false, false, false, false, false, false, false, false],
      end: { outsideSince: null, outsideFixes: 0, fired: false },
    },
    {
      name: 'exact fixes alternating just inside and just outside never fire',
      inputs: [
        fix(0, 49),
        fix(5, 51),
        fix(10, 49),
        fix(15, 51),
        timer(125),
        fix(20, 49),
        fix(25, 51.5),
        fix(30, 49),
        timer(500),
      ],
      fires: [false, false, false, false, false, false, false, false, false],
      end: { outsideSince: null, outsideFixes: 0, fired: false },
    },
    {
      name: 'one clearly-outside fix then an inside fix does not fire',
      inputs: [fix(0, 80, 5), fix(10, 20, 5), timer(120), timer(600)],
      fires: [false, false, false, false],
      end: { outsideSince: null, outsideFixes: 0, fired: false },
    },
    {
      name: 'an edge fix between two outside fixes breaks the streak',
      inputs: [fix(0, 80, 5), fix(10, 52, 5), fix(20, 80, 5), fix(30, 90, 5)],
      fires: [false, false, false, true],
      end: { outsideSince: T0 + 20_000, outsideFixes: 2, fired: true },
    },
    {
      name: 'two clearly-outside fixes in a row fire once',
      inputs: [fix(0, 80, 5), fix(10, 90, 5), fix(20, 100, 5), timer(120), fix(200, 300)],
      fires: [false, true, false, false, false],
      end: { outsideSince: T0, outsideFixes: 4, fired: true },
    },
    {
      name: 'dwell fires once, not before the deadline',
      inputs: [fix(0, 80, 5), timer(119.999), timer(120), timer(121), fix(130, 90, 5)],
      fires: [false, false, true, false, false],
      end: { outsideSince: T0, outsideFixes: 2, fired: true },
    },
    {
      name: 'poor-accuracy fixes are ignored',
      inputs: [fix(0, 80, 5), fix(5, 10, 250), fix(10, 500, 201), fix(15, 90, 5)],
      fires: [false, false, false, true],
      end: { outsideSince: T0, outsideFixes: 2, fired: true },
    },
    {
      name: 'after firing, edge jitter does not re-arm; a clearly-inside fix does, and a second exit fires again',
      inputs: [
        fix(0, 80, 5),
        fix(10, 90, 5),
        fix(20, 48, 10),
        fix(30, 80, 5),
        fix(40, 85, 5),
        timer(200),
        fix(300, 10, 5),
        fix(310, 80, 5),
        fix(320, 80, 5),
      ],
      fires: [false, true, false, false, false, false, false, false, true],
      end: { outsideSince: T0 + 310_000, outsideFixes: 2, fired: true },
    },
    {
      name: 'a fix exactly on the radius with acc 0 is clearly inside and re-arms',
      inputs: [fix(0, 80), fix(10, 80), fix(20, 50), fix(30, 80), fix(40, 80)],
      fires: [false, true, false, false, true],
      end: { outsideSince: T0 + 30_000, outsideFixes: 2, fired: true },
    },
  ];
  for (const { name, inputs, fires, end } of table) {
    it(name, () => {
      const steps = run(circle, inputs);
      assert.deepEqual(
        steps.map((s) => s.fire),
        fires,
      );
      assert.deepEqual(steps.at(-1)?.watch, end);
    });
  }

  it('reports the dwell deadline to keep, and none once fired or reset', () => {
    const steps = run(circle, [fix(0, 80, 5), fix(5, 20, 250), timer(60), fix(70, 52, 5), fix(80, 80), timer(200)]);
    assert.deepEqual(
      steps.map((s) => s.dwellDeadline),
      [T0 + 120_000, T0 + 120_000, T0 + 120_000, null, T0 + 200_000, null],
    );
    assert.deepEqual(
      steps.map((s) => s.fire),
      [false, false, false, false, false, true],
    );
  });

  it('leaves the state untouched for a poor-accuracy fix', () => {
    const start: ExitWatch = { outsideSince: T0, outsideFixes: 1, fired: false };
    const [step] = run(circle, [fix(10, 0, 999)], OPTS, start);
    assert.deepEqual(step, { watch: start, fire: false, dwellDeadline: T0 + 120_000 });
  });

  it('fires on the first clearly-outside fix when dwell is 0', () => {
    const steps = run(circle, [fix(0, 49), fix(10, 80), fix(20, 90)], { ...OPTS, dwellMs: 0 });
    assert.deepEqual(
      steps.map((s) => s.fire),
      [false, true, false],
    );
  });

  it('does not change initialExitWatch', () => {
    run(circle, [fix(0, 80), fix(10, 80), fix(20, 10)]);
    assert.deepEqual(initialExitWatch, { outsideSince: null, outsideFixes: 0, fired: false });
    assert.ok(Object.isFrozen(initialExitWatch));
  });
});

describe('exit watch, polygon fence', () => {
  // An L: a 100 m square with its north-east 50 m quarter cut out; fixes are placed from
  // its south-west corner, so (75, 75) is in the notch, 25 m from the nearest edges.
  const c = (n: number, e: number): [number, number] => {
    const p = toward(n, e);
    return [p.lon, p.lat];
  };
  const ell = makeFence(CENTRE.lat, CENTRE.lon, 50, [c(0, 0), c(100, 0), c(100, 50), c(50, 50), c(50, 100), c(0, 100)]);
  const at = (s: number, n: number, e: number, acc: number): Input => ({
    fix: { ts: T0 + s * 1000, dist: Math.hypot(n, e), acc, brg: (Math.atan2(e, n) * 180) / Math.PI },
  });
  const table: Array<{ name: string; inputs: Input[]; fires: boolean[] }> = [
    { name: 'two fixes in the notch fire', inputs: [at(0, 75, 75, 5), at(10, 75, 75, 5)], fires: [false, true] },
    {
      name: 'vague fixes in the notch touch the edge',
      inputs: [at(0, 75, 75, 30), at(10, 75, 75, 30)],
      fires: [false, false],
    },
    {
      name: 'inside the arm in between breaks the streak',
      inputs: [at(0, 75, 75, 5), at(10, 25, 75, 5), at(20, 75, 75, 5)],
      fires: [false, false, false],
    },
    {
      name: 'near the edge inside does not re-arm, deep inside does',
      inputs: [
        at(0, 75, 75, 5),
        at(10, 75, 75, 5),
        at(20, 25, 95, 10),
        at(30, 75, 75, 5),
        at(40, 75, 75, 5),
        at(50, 25, 75, 10),
        at(60, 75, 75, 5),
        at(70, 75, 75, 5),
      ],
      fires: [false, true, false, false, false, false, false, true],
    },
  ];
  for (const { name, inputs, fires } of table) {
    it(name, () =>
      assert.deepEqual(
        run(ell, inputs).map((s) => s.fire),
        fires,
      ),
    );
  }
});
