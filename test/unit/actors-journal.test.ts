/**
 * The journal's correctness under write failures, on real files: a record whose write
 * failed never becomes state (not after a compaction, not after a restart); a failure is
 * cleared by the next write that succeeds, or by the probe when no write comes; and a put
 * that arrives in the middle of a compaction is neither lost nor overwritten by the
 * compaction's older copy of its key. Failures are real fsync failures injected through the
 * log's `openFile` option (test/support/flaky-disk.ts).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { LiveKinds, LiveRecord } from '../../src/actors/records.js';
import { ManualClock } from '../../src/clock.js';
import { createLogger } from '../../src/log.js';
import type { Alert } from '../../src/protocol.js';
import { segmentWriteFlags } from '../../src/storage/append-log.js';
import { Journal } from '../../src/storage/journal.js';
import { eventually } from '../support/eventually.js';
import { tempDirs } from '../support/fixtures.js';
import { FlakyDisk } from '../support/flaky-disk.js';

const freshDir = tempDirs('journal');

const log = createLogger('silent');

function alert(id: string, level: number): LiveRecord {
  const a: Alert = { id, kind: 'sos', level, state: 'open', tech: 't-1', ts: 1_000, detail: {} };
  return { k: 'a', a };
}

/** Alert levels by id, as a fresh start of the journal in `dir` replays them. */
async function replayed(dir: string): Promise<Record<string, number>> {
  const { journal, records } = await Journal.open<LiveKinds>(dir, new ManualClock(), log, { reserveBytes: 0 });
  await journal.close();
  const out: Record<string, number> = {};
  for (const r of records) if (r.k === 'a') out[r.a.id] = r.a.level;
  return out;
}

/** A journal with no reserve in a fresh folder, on a disk whose fsyncs a test can fail. */
async function onFlakyDisk(): Promise<{ dir: string; disk: FlakyDisk; journal: Journal<LiveKinds> }> {
  const dir = await freshDir();
  const disk = new FlakyDisk();
  const { journal } = await Journal.open<LiveKinds>(dir, new ManualClock(), log, {
    reserveBytes: 0,
    openFile: disk.openFile,
  });
  return { dir, disk, journal };
}

describe('journal under write failures', () => {
  it('never makes a refused write state: not through compaction, not after a restart', async () => {
    const { dir, disk, journal } = await onFlakyDisk();
    await journal.put(alert('a-1', 1));

    disk.failSyncs = 1;
    await assert.rejects(journal.put(alert('a-1', 2)), /EIO/);
    await journal.put(alert('a-2', 1));

    // A compaction rewrites the live state: the refused level 2 must not be part of it.
    await journal.compact();
    await journal.close();
    assert.deepEqual(await replayed(dir), { 'a-1': 1, 'a-2': 1 });
  });

  it('reports the failure until the next write succeeds', async () => {
    const { disk, journal } = await onFlakyDisk();
    assert.equal(journal.health().ok, true);
    disk.failSyncs = 1;
    await assert.rejects(journal.put(alert('a-1', 1)), /EIO/);
    const down = journal.health();
    assert.equal(down.ok, false);
    assert.match(down.detail ?? '', /EIO/);

    await journal.put(alert('a-1', 1));
    assert.deepEqual(journal.health().ok, true);
    await journal.close();
  });

  it('clears the failure by a probe when no write comes', async () => {
    const dir = await freshDir();
    const disk = new FlakyDisk();
    const clock = new ManualClock();
    const { journal } = await Journal.open<LiveKinds>(dir, clock, log, {
      reserveBytes: 0,
      probeMs: 2000,
      openFile: disk.openFile,
    });
    disk.failSyncs = 1;
    await assert.rejects(journal.put(alert('a-1', 1)), /EIO/);
    assert.equal(journal.health().ok, false);

    // Not yet due: still failed.
    clock.advance(1000);
    await new Promise((r) => setImmediate(r));
    assert.equal(journal.health().ok, false);
    clock.advance(1000);
    await eventually('the probe to clear the failure', () => journal.health().ok);
    await journal.close();
    // The probe's record is not state.
    assert.deepEqual(await replayed(dir), {});
  });

  it('keeps a put that arrives in the middle of a compaction, with its newest value', async () => {
    const { dir, disk, journal } = await onFlakyDisk();
    await journal.put(alert('a-1', 1));
    await journal.put(alert('a-2', 1));

    // The compaction's rotation opens a new segment: that is when the puts arrive, after the
    // old segment was flushed and before the snapshot of the live state is taken.
    const during: Promise<void>[] = [];
    disk.onOpen = (_name, flags) => {
      if (flags !== segmentWriteFlags(true) || during.length > 0) return;
      during.push(journal.put(alert('a-1', 2)), journal.put(alert('a-3', 1)));
    };
    await journal.compact();
    assert.equal(during.length, 2, 'the puts were made during the compaction');
    await Promise.all(during);
    await journal.close();
    assert.deepEqual(await replayed(dir), { 'a-1': 2, 'a-2': 1, 'a-3': 1 });
  });
});
