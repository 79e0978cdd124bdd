/** The soak's growth verdict on tables of made-up series (no timing involved). */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { growthVerdict, type Series } from '../../load/soak-verdict.js';

const series = (values: number[]): Series => values.map((v, i) => [i * 10, v] as const);

test('a flat noisy series is not growing', () => {
  const v = growthVerdict(series([330, 336, 329, 334, 331, 338, 330, 333, 335, 329, 337, 332]));
  assert.equal(v.growing, false);
  assert.ok(Math.abs(v.rise) < 5);
});

test('a steady climb is growing, with a positive slope', () => {
  const v = growthVerdict(series(Array.from({ length: 30 }, (_, i) => 333 + i * 1.4)));
  assert.equal(v.growing, true);
  assert.ok(v.rise > 20);
  assert.ok(v.slopePerHour > 0);
});

test('one spike does not make a series growing', () => {
  const v = growthVerdict(series([333, 334, 332, 333, 390, 333, 334, 332, 333, 334, 333, 332]));
  assert.equal(v.growing, false);
});

test('a rise below the absolute tolerance is not growing, even when relatively large', () => {
  assert.equal(growthVerdict(series([20, 20, 20, 20, 24, 24, 24, 24, 24])).growing, false);
  assert.equal(growthVerdict(series([20, 20, 20, 20, 26, 26, 26, 26, 26])).growing, true);
});

test('a rise below the relative tolerance is not growing', () => {
  assert.equal(growthVerdict(series([400, 400, 400, 410, 410, 410, 415, 415, 415])).growing, false);
});

test('too few samples are refused rather than judged', () => {
  assert.throws(() => growthVerdict(series([1, 2, 3])), /at least 6/);
});
