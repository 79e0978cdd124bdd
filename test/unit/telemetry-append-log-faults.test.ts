/**
 * AppendLog under failing fsyncs: a batch whose fsync fails is refused and cut off the
 * segment, the cut is itself fsynced before anything else is written, and a log that
 * cannot make its cut durable refuses every later append instead of acknowledging
 * records that might sit behind garbage after a crash.
 *
 * The segment files are real; only their `datasync` is made to fail on demand (a real
 * disk cannot be told to fail one fsync), through the log's `openFile` option.
 */
import assert from 'node:assert/strict';
import { basename, join } from 'node:path';
import { describe, it } from 'node:test';
import { AppendLog, LogClosedError } from '../../src/storage/append-log.js';
import { tempDirs } from '../support/fixtures.js';
import { FlakyDisk } from '../support/flaky-disk.js';

const freshDir = tempDirs('logfault');

async function texts(log: AppendLog): Promise<string[]> {
  const out: string[] = [];
  for await (const e of log.read()) out.push(e.record.toString());
  return out;
}

describe('AppendLog with failing fsyncs', () => {
  it('refuses the batch whose fsync failed, cuts it off and fsyncs the cut before the next write', async () => {
    const dir = await freshDir();
    const disk = new FlakyDisk();
    const log = await AppendLog.open({ dir, openFile: disk.openFile });
    const first = await log.append(Buffer.from('one'));
    const durableEnd = log.end.offset;

    disk.ops.length = 0;
    disk.failSyncs = 1;
    await assert.rejects(log.append(Buffer.from('two')), /EIO/);
    const seg = basename(join(dir, '000000000001.seg'));
    assert.deepEqual(disk.ops, [
      `write ${seg}`,
      `datasync-failed ${seg}`,
      `truncate(${durableEnd}) ${seg}`,
      // Without this fsync a crash could resurrect the refused frame.
      `datasync ${seg}`,
    ]);
    assert.equal(log.end.offset, durableEnd);

    // The log stays writable: the cut is durable, so later records follow whole ones.
    await log.append(Buffer.from('three'));
    assert.deepEqual(await texts(log), ['one', 'three']);
    await log.close();
    const reopened = await AppendLog.open({ dir });
    assert.deepEqual(await texts(reopened), ['one', 'three']);
    assert.equal(first.offset, 0);
    await reopened.close();
  });

  it('refuses every later append when the fsync of the cut fails too', async () => {
    const dir = await freshDir();
    const disk = new FlakyDisk();
    const log = await AppendLog.open({ dir, openFile: disk.openFile });
    await log.append(Buffer.from('one'));

    disk.failSyncs = 2;
    await assert.rejects(log.append(Buffer.from('two')), /EIO/);
    await assert.rejects(log.append(Buffer.from('three')), LogClosedError);
    assert.equal(disk.failSyncs, 0, 'both the write and the rollback fsynced');
    await log.close();
    const reopened = await AppendLog.open({ dir });
    assert.deepEqual(await texts(reopened), ['one']);
    await reopened.close();
  });

  it('rejects every append of a batch whose fsync failed, and the appends queued behind it go on', async () => {
    const dir = await freshDir();
    const disk = new FlakyDisk();
    const log = await AppendLog.open({ dir, openFile: disk.openFile });
    disk.failSyncs = 1;
    // One loop turn: these three share one write and its failed fsync.
    const batch = ['a', 'b', 'c'].map((r) => log.append(Buffer.from(r)));
    const results = await Promise.allSettled(batch);
    assert.deepEqual(
      results.map((r) => r.status),
      ['rejected', 'rejected', 'rejected'],
    );
    await log.append(Buffer.from('d'));
    assert.deepEqual(await texts(log), ['d']);
    await log.close();
  });
});
