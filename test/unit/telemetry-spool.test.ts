/**
 * The spool without a store: the writes of one group-commit round share one log record,
 * and each write still behaves as if it were alone: acked only after the fsync that covers
 * it, refused on its own size when over budget (storing nothing), rejected when its
 * record's fsync fails. Rows read back in order, the backlog's row count and age stay
 * right across rounds, restarts and spools written before rounds were coalesced, and
 * every acked row survives a kill -9. The writer can read the next batch before the last
 * one is committed, and the checkpoint never runs ahead of what was committed; a save made
 * beside a draining backlog that fails is reported by the next commit. The blocking reader
 * of the writer's worker thread reads the same records as the log's own reader.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { describe, it } from 'node:test';
import { pack } from 'msgpackr';
import { AppendLog, type LogEntry, readLogSync } from '../../src/storage/append-log.js';
import { readCheckpoint } from '../../src/storage/checkpoint.js';
import { type ArchiveRecord, SpoolFullError } from '../../src/telemetry/archive.js';
import { Spool, type SpoolBatch } from '../../src/telemetry/spool.js';
import { tempDirs } from '../support/fixtures.js';
import { FlakyDisk } from '../support/flaky-disk.js';

const freshDir = tempDirs('spool');
const turn = (): Promise<void> => new Promise((r) => setImmediate(r));

function ping(tech: string, ts: number): ArchiveRecord {
  return { table: 'pings', row: { tech, ts, lat: 48.1, lon: 11.5, acc: 4, spd: null, hdg: null, bat: 0.5 } };
}

/** The log records in the spool folder, as [rows, spooledAt] of each. */
async function recordsOnDisk(dir: string): Promise<[number, number][]> {
  const log = await AppendLog.open({ dir });
  const out: [number, number][] = [];
  for await (const e of log.read()) out.push([e.record.readUInt32LE(0), e.record.readDoubleLE(4)]);
  await log.close();
  return out;
}

/** Every row still spooled, read batch by batch the way the drainer does, and committed. */
async function drainAll(spool: Spool, maxRows = 1000): Promise<{ rows: ArchiveRecord[]; batches: SpoolBatch[] }> {
  const rows: ArchiveRecord[] = [];
  const batches: SpoolBatch[] = [];
  for (let b = await spool.readBatch(maxRows); b; b = await spool.readBatch(maxRows)) {
    rows.push(...b.records);
    batches.push(b);
    await spool.commit(b);
  }
  return { rows, batches };
}

const techTs = (rows: ArchiveRecord[]): string[] => rows.map((r) => `${r.row.tech}@${r.row.ts}`);

describe('Spool', () => {
  it('puts every write of one round into one log record, each acked only after its fsync', async () => {
    const dir = await freshDir();
    const disk = new FlakyDisk();
    let clock = 1000;
    const rowsOf = (i: number): ArchiveRecord[] => [ping(`t${i}`, i), ping(`t${i}`, i + 1000)];
    // A budget of exactly the record these writes make (frame, header, array head, rows):
    // each write is charged its own bytes, the record's only once.
    let exact = 8 + 12 + 5;
    for (let i = 0; i < 100; i++) exact += pack(rowsOf(i)).length - 1;
    const spool = await Spool.open({ dir, maxBytes: exact, openFile: disk.openFile, now: () => clock++ });
    disk.hold();
    const acked: number[] = [];
    const writes = Array.from({ length: 100 }, (_, i) => spool.write(rowsOf(i)).then(() => acked.push(i)));
    await assert.rejects(spool.write([ping('one-too-many', 0)]), SpoolFullError);
    while (disk.held === 0) await turn();
    for (let i = 0; i < 5; i++) await turn();
    assert.deepEqual(acked, [], 'a write was acked before the fsync covering it');
    assert.equal(spool.pendingRows, 200);
    disk.release();
    await Promise.all(writes);
    assert.equal(acked.length, 100);
    assert.equal(spool.diskBytes, exact);
    await spool.close();

    assert.deepEqual(await recordsOnDisk(dir), [[200, 1000]], 'one record, stamped with its first write');
    const reopened = await Spool.open({ dir, maxBytes: exact });
    assert.equal(reopened.pendingRows, 200);
    assert.equal(reopened.oldestAt, 1000);
    const { rows } = await drainAll(reopened);
    assert.deepEqual(techTs(rows), Array.from({ length: 100 }, (_, i) => [`t${i}@${i}`, `t${i}@${i + 1000}`]).flat());
    assert.equal(reopened.pendingRows, 0);
    assert.equal(reopened.oldestAt, null);
    await reopened.close();
  });

  it('puts writes that arrive while an fsync runs into the next record, without a loop turn of their own', async () => {
    const dir = await freshDir();
    const disk = new FlakyDisk();
    let clock = 0;
    const spool = await Spool.open({ dir, maxBytes: 1 << 20, openFile: disk.openFile, now: () => (clock += 10) });
    disk.hold();
    const first = spool.write([ping('a', 1)]);
    while (disk.held === 0) await turn();
    const later: Promise<void>[] = [];
    for (let i = 2; i <= 6; i++) {
      later.push(spool.write([ping('a', i)]));
      await turn();
    }
    disk.release();
    await Promise.all([first, ...later]);
    await spool.close();
    assert.deepEqual(await recordsOnDisk(dir), [
      [1, 10],
      [5, 20],
    ]);
  });

  it('refuses a write on its own size when over budget, storing nothing, while the others of the round land', async () => {
    const dir = await freshDir();
    // Small segments, so that draining frees whole ones and the budget has room again.
    const spool = await Spool.open({ dir, maxBytes: 4096, segmentBytes: 1024 });
    const small = (i: number): ArchiveRecord[] => [ping('s', i)];
    const big = Array.from({ length: 100 }, (_, i) => ping('big', i));
    const results = await Promise.allSettled([
      spool.write(small(1)),
      spool.write(big),
      spool.write(small(2)),
      spool.write(small(3)),
    ]);
    assert.deepEqual(
      results.map((r) => r.status),
      ['fulfilled', 'rejected', 'fulfilled', 'fulfilled'],
    );
    assert.ok((results[1] as PromiseRejectedResult).reason instanceof SpoolFullError);
    assert.equal(spool.pendingRows, 3);
    assert.ok(spool.full, 'the refused write would still be refused');
    assert.ok(spool.diskBytes <= 4096);

    // Fill up one write per round: the accounting is byte-exact, so the write that is refused
    // is the first that would not fit, and it leaves the disk within the budget.
    const recordBytes = 8 + 12 + 5 + (pack([ping('s', 10)]).length - 1);
    for (let i = 10; ; i++) {
      try {
        await spool.write(small(i));
      } catch (err) {
        assert.ok(err instanceof SpoolFullError);
        break;
      }
    }
    assert.ok(spool.diskBytes <= 4096, `${spool.diskBytes} bytes on disk for a budget of 4096`);
    assert.ok(4096 - spool.diskBytes < recordBytes, `refused with ${4096 - spool.diskBytes} bytes still free`);
    const { rows } = await drainAll(spool);
    assert.deepEqual(
      rows.map((r) => r.row.ts),
      Array.from({ length: rows.length }, (_, i) => (i < 3 ? i + 1 : i + 7)),
    );
    assert.ok(rows.every((r) => r.row.tech === 's'));
    assert.ok(!spool.full, 'room again once drained');
    await spool.close();
  });

  it('rejects every write of a record whose fsync failed, forgets its rows, and goes on', async () => {
    const dir = await freshDir();
    const disk = new FlakyDisk();
    let clock = 5000;
    const spool = await Spool.open({ dir, maxBytes: 1 << 20, openFile: disk.openFile, now: () => clock++ });
    disk.failSyncs = 1;
    const results = await Promise.allSettled([1, 2, 3].map((i) => spool.write([ping('lost', i)])));
    assert.deepEqual(
      results.map((r) => r.status),
      ['rejected', 'rejected', 'rejected'],
    );
    assert.equal(spool.pendingRows, 0);
    assert.equal(spool.oldestAt, null);

    await Promise.all([4, 5].map((i) => spool.write([ping('kept', i)])));
    assert.equal(spool.pendingRows, 2);
    assert.equal(spool.oldestAt, 5001);
    const { rows } = await drainAll(spool);
    assert.deepEqual(techTs(rows), ['kept@4', 'kept@5']);
    await spool.close();
  });

  it('splits a large round into records of bounded size, never splitting a write, and reads every row back in order', async () => {
    const dir = await freshDir();
    const spool = await Spool.open({ dir, maxBytes: 64 << 20 });
    const writes: ArchiveRecord[][] = [];
    let ts = 0;
    for (let w = 0; w < 3000; w++) writes.push(Array.from({ length: 1 + (w % 3) }, () => ping(`w${w}`, ts++)));
    // One write larger than a record's target size on its own.
    writes.splice(
      1500,
      0,
      Array.from({ length: 2000 }, () => ping('huge', ts++)),
    );
    await Promise.all(writes.map((w) => spool.write(w)));
    await spool.close();

    const onDisk = await recordsOnDisk(dir);
    assert.ok(onDisk.length > 2, `${onDisk.length} records`);
    assert.ok(onDisk.length < writes.length / 10, `${onDisk.length} records for ${writes.length} writes`);
    assert.ok(
      onDisk.some(([rows]) => rows === 2000),
      'the large write is a record of its own',
    );

    const reopened = await Spool.open({ dir, maxBytes: 64 << 20 });
    assert.equal(reopened.pendingRows, ts);
    const { rows, batches } = await drainAll(reopened, 500);
    assert.deepEqual(techTs(rows), techTs(writes.flat()));
    // A batch ends between whole writes: no write's rows are spread over two batches.
    for (let i = 1; i < batches.length; i++) {
      assert.notEqual(batches[i]!.records[0]!.row.tech, batches[i - 1]!.records.at(-1)!.row.tech);
    }
    await reopened.close();
  });

  it('reads a spool written one record per write, as before rounds were coalesced', async () => {
    const dir = await freshDir();
    const log = await AppendLog.open({ dir });
    for (let w = 0; w < 20; w++) {
      const records = Array.from({ length: w === 7 ? 40 : 2 }, (_, i) => ping(`old${w}`, w * 100 + i));
      const body = pack(records);
      const entry = Buffer.allocUnsafe(12 + body.length);
      entry.writeUInt32LE(records.length, 0);
      entry.writeDoubleLE(7000 + w, 4);
      entry.set(body, 12);
      await log.append(entry);
    }
    await log.close();

    const spool = await Spool.open({ dir, maxBytes: 1 << 20 });
    assert.equal(spool.pendingRows, 19 * 2 + 40);
    assert.equal(spool.oldestAt, 7000);
    await spool.write([ping('new', 1)]);
    const { rows } = await drainAll(spool);
    assert.equal(rows.length, 19 * 2 + 40 + 1);
    assert.equal(rows[14]!.row.tech, 'old7');
    assert.equal(rows.at(-1)!.row.tech, 'new');
    await spool.close();
  });

  it('reads the next batch before the last one is committed, without moving the checkpoint or the age', async () => {
    const dir = await freshDir();
    let clock = 100;
    const spool = await Spool.open({ dir, maxBytes: 1 << 20, now: () => clock++ });
    for (let i = 0; i < 4; i++) await spool.write([ping('r', i)]);
    const first = await spool.readBatch(2);
    assert.ok(first);
    const ahead = await spool.readBatch(2, first.next);
    assert.ok(ahead);
    assert.deepEqual(techTs(ahead.records), ['r@2', 'r@3']);
    assert.equal(spool.oldestAt, first.oldestAt, 'reading ahead does not change the age of the oldest row');
    await spool.commit(first);
    const again = await spool.readBatch(2);
    assert.deepEqual(again, ahead);
    await spool.close();
  });

  it('saves the checkpoint once caught up, every few seconds while a backlog drains, and at close', async () => {
    const dir = await freshDir();
    let clock = 0;
    const open = (): Promise<Spool> => Spool.open({ dir, maxBytes: 1 << 20, now: () => clock });
    const saved = (): Promise<unknown> => readCheckpoint(join(dir, 'archived-upto.json'));
    const spool = await open();
    for (let i = 0; i < 6; i++) await spool.write([ping('c', i)]);
    const commitNext = async (): Promise<SpoolBatch> => {
      const b = await spool.readBatch(1);
      assert.ok(b);
      await spool.commit(b);
      return b;
    };
    const b1 = await commitNext();
    // While a backlog drains the save runs beside the writer's next insert.
    await spool.checkpointSaves();
    assert.deepEqual(await saved(), b1.next);
    clock += 500;
    await commitNext();
    assert.deepEqual(await saved(), b1.next, 'saved again after half a second of a backlog');
    clock += 2000;
    const b3 = await commitNext();
    await spool.checkpointSaves();
    assert.deepEqual(await saved(), b3.next);
    await commitNext();

    // A crash now: the next start goes on from the saved checkpoint, one row early
    // (inserted again, which the tables absorb), never past a row not yet archived.
    const afterCrash = await open();
    assert.equal(afterCrash.pendingRows, 3);
    assert.equal(spool.pendingRows, 2);
    await afterCrash.close();

    const b5 = await commitNext();
    await spool.close();
    assert.deepEqual(await saved(), b5.next, 'close saves how far the writer got');
    const reopened = await open();
    assert.equal(reopened.pendingRows, 1);
    const b6 = await reopened.readBatch(10);
    assert.ok(b6);
    await reopened.commit(b6);
    assert.deepEqual(await saved(), b6.next, 'caught up: saved at once');
    await reopened.close();
  });

  it('reports a checkpoint save that failed beside a draining backlog at the next commit, which commits nothing', async () => {
    const dir = await freshDir();
    let clock = 0;
    const spool = await Spool.open({ dir, maxBytes: 1 << 20, now: () => clock });
    const saved = (): Promise<unknown> => readCheckpoint(join(dir, 'archived-upto.json'));
    for (let i = 0; i < 5; i++) await spool.write([ping('f', i)]);
    const b1 = await spool.readBatch(1);
    assert.ok(b1);
    await spool.commit(b1);
    await spool.checkpointSaves();
    assert.deepEqual(await saved(), b1.next, 'the first save is made at once');
    // The temp file of the next save cannot be created: a folder stands in its place.
    const blocker = join(dir, 'archived-upto.json.tmp');
    await mkdir(blocker);
    clock += 2000;
    const b2 = await spool.readBatch(1);
    assert.ok(b2);
    await spool.commit(b2);
    await spool.checkpointSaves();
    assert.equal(spool.pendingRows, 3);
    const b3 = await spool.readBatch(1);
    assert.ok(b3);
    await assert.rejects(spool.commit(b3), /EISDIR|illegal operation on a directory/);
    assert.equal(spool.pendingRows, 3, 'the batch after the failed save is not committed');
    assert.deepEqual(await saved(), b1.next, 'the checkpoint stays where it was');
    await rm(blocker, { recursive: true });
    await spool.commit(b3);
    assert.equal(spool.pendingRows, 2);
    await spool.close();
    assert.deepEqual(await saved(), b3.next, 'close saves how far the writer got');
  });

  it('reads the same records with the blocking reader of the worker thread, up to the end it is given', async () => {
    const dir = await freshDir();
    const spool = await Spool.open({ dir, maxBytes: 1 << 22, segmentBytes: 64 * 1024 });
    // Large writes, so that records span several segments and reads of several chunks.
    for (let w = 0; w < 40; w++) await spool.write(Array.from({ length: 300 }, (_, i) => ping(`s${w}`, i)));
    const log = await AppendLog.open({ dir });
    const end = log.end;
    const expected: LogEntry[] = [];
    for await (const e of log.read()) expected.push(e);
    await log.close();
    assert.ok(expected.length > 10 && expected.at(-1)!.pos.segment > 1, 'several segments');
    const all = [...readLogSync(dir, { segment: 0, offset: 0 }, end)];
    const view = (e: LogEntry): unknown[] => [e.pos, e.next, e.record.toString('base64')];
    assert.deepEqual(all.map(view), expected.map(view));
    const mid = expected[7]!;
    const stopAt = expected[12]!.pos;
    assert.deepEqual(
      [...readLogSync(dir, mid.pos, stopAt)].map((e) => e.pos),
      expected.slice(7, 12).map((e) => e.pos),
      'from a position, never past the end given',
    );
    await spool.close();
  });

  it('keeps every acked row when the writing process is killed with SIGKILL', async () => {
    const dir = await freshDir();
    const moduleUrl = new URL('../../src/telemetry/spool.js', import.meta.url).href;
    // 16 concurrent writers, each printing a row's id once its write is acked.
    const child = spawn(
      process.execPath,
      [
        '--input-type=module',
        '-e',
        `
        const { Spool } = await import(${JSON.stringify(moduleUrl)});
        const spool = await Spool.open({ dir: ${JSON.stringify(dir)}, maxBytes: 1 << 30, segmentBytes: 256 * 1024 });
        const loop = async (w) => {
          for (let i = 0; ; i++) {
            const rows = [0, 1, 2].slice(0, 1 + (i % 3)).map((k) => ({
              table: 'pings',
              row: { tech: \`w\${w}\`, ts: i * 10 + k, lat: 1, lon: 2, acc: null, spd: null, hdg: null, bat: null },
            }));
            await spool.write(rows);
            process.stdout.write(rows.map((r) => \`\${r.row.tech}:\${r.row.ts}\`).join('\\n') + '\\n');
          }
        };
        for (let w = 0; w < 16; w++) loop(w);
        `,
      ],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    const acked = new Set<string>();
    const exited = new Promise((resolve) => child.on('exit', resolve));
    for await (const line of createInterface({ input: child.stdout! })) {
      acked.add(line);
      if (acked.size === 20_000) child.kill('SIGKILL');
    }
    await exited;
    assert.ok(acked.size >= 20_000);

    const spool = await Spool.open({ dir, maxBytes: 1 << 30, segmentBytes: 256 * 1024 });
    const { rows } = await drainAll(spool, 10_000);
    const stored = new Set(rows.map((r) => `${r.row.tech}:${r.row.ts}`));
    for (const id of acked) assert.ok(stored.has(id), `acked row ${id} is missing`);
    // Each writer's rows are in the order it wrote them.
    const lastTs = new Map<string, number>();
    for (const r of rows) {
      assert.ok(r.row.ts > (lastTs.get(r.row.tech) ?? -1), `${r.row.tech}:${r.row.ts} out of order`);
      lastTs.set(r.row.tech, r.row.ts);
    }
    await spool.write([ping('after-crash', 1)]);
    assert.equal(spool.pendingRows, 1);
    await spool.close();
  });
});
