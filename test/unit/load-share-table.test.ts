/** The customer streams' section of bench.md (load/share-streams.ts), fed made-up figures. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { type ShareBenchResult, shareTable } from '../../load/share-streams.js';

const arm = (phase: string, clientP99Ms: number) => ({
  phase,
  acks: 15000,
  clientP50Ms: 1.8,
  clientP99Ms,
  nodeP99BoundMs: 5,
  cpuCores: { node: 0.2, devices: 0.08, readers: 0.05 },
  runQueueWaitMsPerSec: { node: 50, devices: 20 },
  streamEventsPerSec: 0,
  rounds: [],
});

test('each arm is a row, and the verdict names the ratio of the streams arm to the quiet one', () => {
  const result = {
    devices: 500,
    hz: 1,
    streams: 5000,
    rounds: 3,
    secondsPerPhase: 10,
    readersPolicy: 'SCHED_IDLE',
    phases: [arm('no streams', 4), arm('5000 streams', 4.2), arm('control: 5000 streams elsewhere', 4.1)],
    clientP99Ratio: 1.05,
    controlClientP99Ratio: 1.03,
    streamsOverControlClientP99Ratio: 1.0244,
    verdict: 'met',
  } as unknown as ShareBenchResult;
  const md = shareTable(result);
  assert.equal(md.filter((l) => l.startsWith('| ') && !l.startsWith('| arm')).length, 3);
  assert.ok(md.some((l) => l.startsWith('| 5000 streams | 15000 | 1.8 ms | 4.2 ms (<= 5 ms) |')));
  const verdict = md.at(-1) ?? '';
  assert.match(verdict, /\*\*1\.05x\*\* \(target at most 1\.10x\): \*\*met\*\*/);
  assert.match(verdict, /Control over without: 1\.03x/);
  assert.match(verdict, /streams over control: 1\.02x/);
});
