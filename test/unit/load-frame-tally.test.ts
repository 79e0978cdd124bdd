/** The simulator's frame tally, its console-ack join and the node histogram window, fed made-up figures. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { joinAcks } from '../../load/console-ack.js';
import { FrameTally, LATE_FRAME_MS } from '../../load/frame-tally.js';
import { latencyHistogram } from '../../load/launch.js';
import { gcText, runQueueText, sosSplitText } from '../../load/overload.js';
import { bucketCounts, windowQuantileBound, windowsQuantileBound } from '../../load/prom-histogram.js';
import { gcPauses } from '../../load/sim.js';

test('frames are counted, late ones apart, and the rest is unanswered at close', () => {
  const hist = latencyHistogram();
  const tally = new FrameTally(hist);
  for (let i = 0; i < 5; i++) tally.sent();
  tally.answer(3);
  tally.answer(LATE_FRAME_MS);
  tally.answer(LATE_FRAME_MS + 1);
  assert.deepEqual(tally.close(), { frames: 5, answered: 3, over1s: 1, unanswered: 2 });
  assert.equal(hist.totalCount, 3);
});

test('nothing counts after close', () => {
  const hist = latencyHistogram();
  const tally = new FrameTally(hist);
  tally.sent();
  const closed = tally.close();
  tally.sent();
  tally.answer(5);
  assert.deepEqual(tally.close(), closed);
  assert.equal(closed.unanswered, 1);
  assert.equal(hist.totalCount, 0);
});

test('a sub-microsecond answer is still recorded', () => {
  const hist = latencyHistogram();
  const tally = new FrameTally(hist);
  tally.sent();
  tally.answer(0);
  assert.equal(hist.totalCount, 1);
});

test('console acks join the devices stamps of every worker by incident', () => {
  const joined = joinAcks({ a: 1000, b: 2000, c: 3000 }, [{ a: 1004 }, { b: 1999, x: 5 }]);
  assert.equal(joined.sent, 3);
  assert.equal(joined.seen, 2);
  assert.deepEqual(joined.latenciesMs.sort(), [0, 4]);
});

test('no acks sent, nothing seen', () => {
  assert.deepEqual(joinAcks({}, [{ a: 1 }]), { sent: 0, seen: 0, latenciesMs: [] });
});

const scrape = (fast: number, slow: number, late: number): string =>
  [
    '# HELP fieldtrack_ack_latency_seconds Time from receiving a client message to sending its answer, by type',
    `fieldtrack_ack_latency_seconds_bucket{le="0.01",type="ping"} ${fast}`,
    `fieldtrack_ack_latency_seconds_bucket{le="0.1",type="ping"} ${fast + slow}`,
    `fieldtrack_ack_latency_seconds_bucket{le="+Inf",type="ping"} ${fast + slow + late}`,
    `fieldtrack_ack_latency_seconds_bucket{le="0.01",type="sos"} 1`,
    `fieldtrack_ack_latency_seconds_bucket{le="0.1",type="sos"} 1`,
    `fieldtrack_ack_latency_seconds_bucket{le="+Inf",type="sos"} 1`,
    `fieldtrack_ack_latency_seconds_count{type="ping"} ${fast + slow + late}`,
  ].join('\n');

test('a window quantile of the node histogram is the edge of its bucket, label sets summed', () => {
  const name = 'fieldtrack_ack_latency_seconds';
  const before = scrape(100, 0, 0);
  assert.deepEqual(
    [...bucketCounts(before, name)],
    [
      [0.01, 101],
      [0.1, 101],
      [Number.POSITIVE_INFINITY, 101],
    ],
  );
  // 1,000 new samples: 980 fast, 15 slow, 5 late.
  const after = scrape(1080, 15, 5);
  assert.equal(windowQuantileBound(before, after, name, 0.5), 0.01);
  assert.equal(windowQuantileBound(before, after, name, 0.99), 0.1);
  assert.equal(windowQuantileBound(before, after, name, 0.999), Number.POSITIVE_INFINITY);
  assert.equal(windowQuantileBound(after, after, name, 0.99), null);
});

test('a quantile over several windows pools their samples, not their quantiles', () => {
  const name = 'fieldtrack_ack_latency_seconds';
  // Window 1: 1,000 fast samples. Window 2: 970 fast and 30 slow.
  const w1 = { before: scrape(100, 0, 0), after: scrape(1100, 0, 0) };
  const w2 = { before: scrape(1100, 0, 0), after: scrape(2070, 30, 0) };
  assert.equal(windowsQuantileBound([w2], name, 0.98), 0.1);
  // Pooled: 1,970 fast of 2,000, so the 98th percentile is fast and the 99th slow.
  assert.equal(windowsQuantileBound([w1, w2], name, 0.98), 0.01);
  assert.equal(windowsQuantileBound([w1, w2], name, 0.99), 0.1);
  assert.equal(windowsQuantileBound([{ before: w1.after, after: w1.after }], name, 0.99), null);
});

test("the node's GC pauses over a window, per kind", () => {
  const scrape = (majorCount: number, majorSum: number, minorCount: number, minorSum: number) =>
    [
      '# HELP fieldtrack_nodejs_gc_duration_seconds Garbage collection duration by kind',
      `fieldtrack_nodejs_gc_duration_seconds_sum{kind="minor"} ${minorSum}`,
      `fieldtrack_nodejs_gc_duration_seconds_count{kind="minor"} ${minorCount}`,
      `fieldtrack_nodejs_gc_duration_seconds_sum{kind="major"} ${majorSum}`,
      `fieldtrack_nodejs_gc_duration_seconds_count{kind="major"} ${majorCount}`,
    ].join('\n');
  // In 10 s: 2 major pauses of 60 ms on average and 100 minor ones of 2 ms: 0.32 s of 10 s.
  const gc = gcPauses(scrape(1, 0.05, 10, 0.02), scrape(3, 0.17, 110, 0.22), 10);
  assert.deepEqual(gc, { share: 0.032, major: { count: 2, meanMs: 60 }, minor: { count: 100, meanMs: 2 } });
  assert.equal(gcText(gc), '3.2% (2 x 60 ms / 100 x 2 ms)');
  assert.equal(gcText(null), 'n/a');
});

test("an SOS's time split at the node: each half's p99, n/a where nothing was seen", () => {
  const q = (p99: number, count: number) => ({ count, p50: p99 / 2, p99, p999: p99, max: p99 });
  const sos = { ...q(60, 10), sent: 10, seen: 10, toNode: q(52, 10), fromNode: q(7.5, 10) };
  assert.equal(sosSplitText(sos), '52.0 ms / 7.5 ms');
  assert.equal(sosSplitText({ ...sos, toNode: q(0, 0), fromNode: q(0, 0) }), 'n/a / n/a');
});

test("the node's wait for a CPU, n/a where the kernel did not say", () => {
  assert.equal(runQueueText(37), '37 ms/s');
  assert.equal(runQueueText(null), 'n/a');
});
