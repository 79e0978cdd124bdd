/**
 * AppendLog under steady traffic: appendDeferred's record is made when the flush that
 * writes it starts, so a caller can keep adding to it while the previous write+fsync is in
 * flight; it keeps its place in the log, and a failure reaches it like any append. And a
 * rotate or trim gets its turn while appends keep arriving.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { AppendLog, LogClosedError } from '../../src/storage/append-log.js';
import { tempDirs } from '../support/fixtures.js';
import { FlakyDisk } from '../support/flaky-disk.js';

const freshDir = tempDirs('logdeferred');

async function texts(log: AppendLog): Promise<string[]> {
  const out: string[] = [];
  for await (const e of log.read()) out.push(e.record.toString());
  return out;
}

const turn = (): Promise<void> => new Promise((r) => setImmediate(r));

describe('AppendLog.appendDeferred', () => {
  it('makes the record at flush time, so what is added in the same turn is in it', async () => {
    const log = await AppendLog.open({ dir: await freshDir() });
    const parts: string[] = [];
    let builds = 0;
    const done = log.appendDeferred(() => {
      builds++;
      return Buffer.from(parts.join(','));
    });
    parts.push('a', 'b');
    parts.push('c');
    const pos = await done;
    assert.equal(builds, 1);
    assert.deepEqual(await texts(log), ['a,b,c']);
    assert.deepEqual(pos, { segment: 1, offset: 0 });
    await log.close();
  });

  it('is not made while the previous write+fsync is in flight, and lands right after it', async () => {
    const disk = new FlakyDisk();
    const log = await AppendLog.open({ dir: await freshDir(), openFile: disk.openFile });
    disk.hold();
    const first = log.append(Buffer.from('first'));
    while (disk.held === 0) await turn();

    const parts = ['x'];
    let builds = 0;
    const deferred = log.appendDeferred(() => {
      builds++;
      return Buffer.from(parts.join(''));
    });
    for (let i = 0; i < 5; i++) {
      await turn();
      parts.push(String(i));
    }
    assert.equal(builds, 0, 'made while the fsync before it was still running');
    disk.release();
    await first;
    await deferred;
    assert.equal(builds, 1);
    assert.equal(log.syncCount, 2);
    assert.deepEqual(await texts(log), ['first', 'x01234']);
    await log.close();
  });

  it('keeps its place among plain appends, and a build that throws fails only its own append', async () => {
    const log = await AppendLog.open({ dir: await freshDir() });
    const results = await Promise.allSettled([
      log.append(Buffer.from('one')),
      log.appendDeferred(() => Buffer.from('two')),
      log.appendDeferred(() => {
        throw new Error('cannot make it');
      }),
      log.append(Buffer.from('three')),
      log.appendDeferred(() => Buffer.from('four')),
    ]);
    assert.deepEqual(
      results.map((r) => r.status),
      ['fulfilled', 'fulfilled', 'rejected', 'fulfilled', 'fulfilled'],
    );
    assert.match(String((results[2] as PromiseRejectedResult).reason), /cannot make it/);
    assert.deepEqual(await texts(log), ['one', 'two', 'three', 'four']);
    assert.equal(log.syncCount, 1, 'one write+fsync for the whole turn');
    await log.close();
  });

  it('starts a new segment for a deferred record that does not fit, and reopens with it', async () => {
    const dir = await freshDir();
    const log = await AppendLog.open({ dir, segmentBytes: 64 });
    await log.append(Buffer.from('a'.repeat(30)));
    const pos = await log.appendDeferred(() => Buffer.from('b'.repeat(40)));
    assert.deepEqual(pos, { segment: 2, offset: 0 });
    await log.close();
    const reopened = await AppendLog.open({ dir, segmentBytes: 64 });
    assert.deepEqual(await texts(reopened), ['a'.repeat(30), 'b'.repeat(40)]);
    await reopened.close();
  });

  it('rejects when the fsync fails, and never calls build on a closed log', async () => {
    const dir = await freshDir();
    const disk = new FlakyDisk();
    const log = await AppendLog.open({ dir, openFile: disk.openFile });
    disk.failSyncs = 1;
    await assert.rejects(
      log.appendDeferred(() => Buffer.from('lost')),
      /EIO/,
    );
    await log.appendDeferred(() => Buffer.from('kept'));
    assert.deepEqual(await texts(log), ['kept']);

    const queued = log.appendDeferred(() => Buffer.from('made by close'));
    await log.close();
    await queued;
    let called = false;
    await assert.rejects(
      log.appendDeferred(() => {
        called = true;
        return Buffer.from('late');
      }),
      LogClosedError,
    );
    assert.equal(called, false);
    const reopened = await AppendLog.open({ dir });
    assert.deepEqual(await texts(reopened), ['kept', 'made by close']);
    await reopened.close();
  });

  it('lets a rotate and a trim through while appends keep arriving during every fsync', async () => {
    const disk = new FlakyDisk();
    // Every fsync spans a few loop turns, and every turn brings an append: there is always
    // something queued when a write+fsync ends.
    disk.syncTurns = 3;
    const log = await AppendLog.open({ dir: await freshDir(), openFile: disk.openFile });
    const LIMIT = 100;
    let done = false;
    const appends: Promise<unknown>[] = [];
    const traffic = (async () => {
      while (!done && log.syncCount < LIMIT) {
        appends.push(log.append(Buffer.from(`r${appends.length}`.padEnd(100, '.'))));
        await turn();
      }
    })();
    while (log.syncCount < 3) await turn();
    const rotated = await log.rotate();
    await log.trimBefore(rotated);
    const syncsAtTrim = log.syncCount;
    done = true;
    await traffic;
    await Promise.all(appends);
    assert.ok(syncsAtTrim < LIMIT, 'rotate and trim waited until the traffic stopped');
    // What was appended after the rotate is all that is left, in order.
    const kept = (await texts(log)).map((t) => t.replace(/\.+$/, ''));
    const all = appends.map((_, i) => `r${i}`);
    assert.ok(kept.length > 0 && kept.length < all.length, `${kept.length} of ${all.length} kept`);
    assert.deepEqual(kept, all.slice(all.length - kept.length));
    await log.close();
  });
});
