/** The bench's targets table judged on made-up figures: met, missed, and not measured. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { allOf, type BenchFigures, benchTargets, type TargetRow } from '../../load/bench-targets.js';
import type { OverloadStep } from '../../load/overload.js';
import type { Quantiles, SimResult } from '../../load/sim.js';

const q = (p99: number, count = 100): Quantiles => ({ count, p50: p99 / 2, p99, p999: p99, max: p99 });
/** SOS-to-console figures: p99 over `count` pushes, most of it on the way to the node. */
const sosQ = (p99: number, sent: number, seen: number, count = 100): SimResult['sos'] => ({
  ...q(p99, count),
  sent,
  seen,
  toNode: q(p99 * 0.9, count),
  fromNode: q(p99 * 0.1, count),
});

function sim(over: Partial<SimResult> = {}, server: Partial<SimResult['server']> = {}): SimResult {
  return {
    target: 'full',
    devices: 15000,
    connected: 15000,
    held: 15000,
    seconds: 10,
    sent: 150000,
    sentPerSec: 15000,
    acks: 150000,
    acksPerSec: 15000,
    ack: q(10),
    frame: { ...q(10), sent: 100, over1s: 0, unanswered: 0 },
    sos: sosQ(20, 10, 10),
    consoleAck: { ...q(20), sent: 10, seen: 10 },
    errors: {},
    jobsCompleted: 0,
    rateLimited: 0,
    ...over,
    server: {
      cpuSecPer1000Pings: 0.02,
      cpuUtilisation: 0.5,
      runQueueWaitMsPerSec: 20,
      rssIdleBytes: 0,
      rssConnectedBytes: 0,
      bytesPerDevice: 5000,
      archiveRowsPerSec: 15000,
      spoolRows: { start: 0, end: 0 },
      loadShed: 0,
      nodeAnswerP99: '<= 10 ms',
      gc: null,
      ...server,
    },
  };
}

const step = (factor: number, s: SimResult, capacity = 10000): OverloadStep => ({
  factor,
  offered: capacity * factor,
  devices: (capacity * factor) / 5,
  pingHz: 5,
  sim: s,
});

function figures(over: Partial<BenchFigures> = {}): BenchFigures {
  return {
    baseline: sim({ acksPerSec: 12000 }, { cpuSecPer1000Pings: 0.015 }),
    fullMax: sim({ acksPerSec: 10000 }),
    holdDevices: 15000,
    holdRate: 15000,
    hold: sim(),
    capacity: 10000,
    overload: [
      step(0.5, sim({ sentPerSec: 5000, acksPerSec: 5000 })),
      step(2.5, sim({ sentPerSec: 25000, acksPerSec: 9500 })),
    ],
    ...over,
  };
}

const row = (rows: TargetRow[], starts: string): TargetRow => {
  const found = rows.find((r) => r.target.startsWith(starts));
  assert.ok(found, starts);
  return found;
};

test('a run that meets everything says yes on every row', () => {
  const rows = benchTargets(figures());
  for (const r of rows) assert.equal(r.met, true, r.target);
});

test('every target of the issue has a row', () => {
  const names = benchTargets(figures()).map((r) => r.target);
  for (const part of [
    'no collapse: goodput',
    'no collapse: every request frame',
    'every SOS reaches a console',
    "a console's SOS ack reaches the device",
    'server CPU per ping <=',
    'server CPU per ping in the hold',
    'full-pipeline max throughput',
    '15,000 devices held',
    'hold: ack p99',
    'memory <= 6 KB',
    'archive keeps up',
  ])
    assert.ok(
      names.some((n) => n.includes(part)),
      part,
    );
});

test('goodput under 0.9 x capacity at 2.5x is a collapse', () => {
  const f = figures();
  f.overload = [step(2.5, sim({ sentPerSec: 25000, acksPerSec: 8000 }))];
  assert.equal(row(benchTargets(f), 'no collapse: goodput').met, false);
});

test('a simulator that could not offer 2.5x gives no verdict on keeping up', () => {
  const f = figures();
  f.overload = [step(2.5, sim({ sentPerSec: 18000, acksPerSec: 9500 }))];
  assert.equal(row(benchTargets(f), 'no collapse: goodput').met, null);
});

test('without a 2.5x step the goodput target is not measured', () => {
  assert.equal(row(benchTargets(figures({ overload: [] })), 'no collapse: goodput').met, null);
});

test('one late or unanswered frame at any step misses the frame target', () => {
  const late = figures();
  late.overload = [step(0.5, sim({ frame: { ...q(10), sent: 100, over1s: 1, unanswered: 0 } }))];
  assert.equal(row(benchTargets(late), 'no collapse: every').met, false);
  const lost = figures();
  lost.overload = [step(0.5, sim({ frame: { ...q(10), sent: 100, over1s: 0, unanswered: 1 } }))];
  assert.equal(row(benchTargets(lost), 'no collapse: every').met, false);
});

test('an empty histogram is not a 0 ms pass', () => {
  const f = figures({
    hold: sim({ sos: sosQ(0, 0, 0, 0), consoleAck: { ...q(0, 0), sent: 0, seen: 0 } }),
  });
  const rows = benchTargets(f);
  assert.equal(row(rows, 'every SOS').met, null);
  assert.equal(row(rows, "a console's").met, null);
  assert.equal(row(benchTargets(figures({ hold: sim({ ack: q(0, 0) }) })), 'hold: ack p99').met, null);
});

test('a slow step misses the SOS target even when another has no samples', () => {
  const f = figures({ hold: sim({ sos: sosQ(0, 0, 0, 0) }) });
  f.overload = [step(2.5, sim({ sos: sosQ(80, 10, 10) }))];
  assert.equal(row(benchTargets(f), 'every SOS').met, false);
});

test('an SOS or an ack that never arrived misses its target', () => {
  const rows = benchTargets(
    figures({
      hold: sim({ sos: sosQ(20, 10, 9), consoleAck: { ...q(20), sent: 10, seen: 9 } }),
    }),
  );
  assert.equal(row(rows, 'every SOS').met, false);
  assert.equal(row(rows, "a console's").met, false);
});

test('CPU, throughput, memory and archive are judged against their limits', () => {
  const rows = benchTargets(
    figures({
      fullMax: sim({ acksPerSec: 6000 }, { cpuSecPer1000Pings: 0.04 }),
      hold: sim({}, { bytesPerDevice: 7000, archiveRowsPerSec: 100, spoolRows: { start: 10, end: 5000 } }),
    }),
  );
  assert.equal(row(rows, 'server CPU per ping <=').met, false);
  assert.equal(row(rows, 'full-pipeline').met, false);
  assert.equal(row(rows, 'memory').met, false);
  assert.equal(row(rows, 'archive').met, false);
});

test('an archive behind on rows but with a shrinking spool keeps up', () => {
  const f = figures({ hold: sim({}, { archiveRowsPerSec: 100, spoolRows: { start: 5000, end: 10 } }) });
  assert.equal(row(benchTargets(f), 'archive').met, true);
});

test('a scaled-down hold says so and leaves the 15,000-device rows unmeasured', () => {
  const rows = benchTargets(
    figures({ holdDevices: 1000, holdRate: 1000, hold: sim({ connected: 1000, held: 1000, acksPerSec: 1000 }) }),
  );
  assert.equal(row(rows, '(scaled down) 15,000 devices').met, null);
  assert.equal(row(rows, '(scaled down) memory').met, null);
  assert.equal(row(rows, '(scaled down) hold: ack p99').met, true);
});

test('verdicts combine: a miss wins, then a missing figure', () => {
  assert.equal(allOf([true, false, null]), false);
  assert.equal(allOf([true, null]), null);
  assert.equal(allOf([true, true]), true);
  assert.equal(allOf([]), null);
});
