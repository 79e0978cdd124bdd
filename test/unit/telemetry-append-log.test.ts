/**
 * AppendLog: round trip, group commit, torn tails, rotation and trimming, reading from a
 * position, and acknowledged records surviving a kill -9 of a real process.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { appendFile, constants, open, readdir, stat, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { describe, it } from 'node:test';
import { AppendLog, type LogEntry, type LogPosition, segmentWriteFlags } from '../../src/storage/append-log.js';
import { tempDirs } from '../support/fixtures.js';

const freshDir = tempDirs('log');

async function readAll(log: AppendLog, from?: LogPosition): Promise<LogEntry[]> {
  const out: LogEntry[] = [];
  for await (const e of log.read(from)) out.push(e);
  return out;
}
const text = (entries: LogEntry[]): string[] => entries.map((e) => e.record.toString());
const segmentFiles = async (dir: string): Promise<string[]> => (await readdir(dir)).filter((n) => n.endsWith('.seg'));

describe('AppendLog', () => {
  it('reads back what was appended, in order, also after reopening', async () => {
    const dir = await freshDir();
    const log = await AppendLog.open({ dir });
    const records = ['a', '', 'ccc', 'x'.repeat(3 * 1024 * 1024)];
    const positions: LogPosition[] = [];
    for (const r of records) positions.push(await log.append(Buffer.from(r)));
    const entries = await readAll(log);
    assert.deepEqual(text(entries), records);
    assert.deepEqual(
      entries.map((e) => e.pos),
      positions,
    );
    for (let i = 1; i < entries.length; i++) assert.deepEqual(entries[i]!.pos, entries[i - 1]!.next);
    assert.equal(log.diskBytes, entries.at(-1)!.next.offset);
    await log.close();
    await assert.rejects(log.append(Buffer.from('late')), /not writable/);

    const again = await AppendLog.open({ dir });
    assert.deepEqual(text(await readAll(again)), records);
    const pos = await again.append(Buffer.from('after reopen'));
    assert.deepEqual(pos, entries.at(-1)!.next);
    await again.close();
  });

  it('shares one write+fsync among appends made while another is in flight', async () => {
    const log = await AppendLog.open({ dir: await freshDir() });
    const n = 2000;
    const acks = await Promise.all(Array.from({ length: n }, (_, i) => log.append(Buffer.from(`r${i}`))));
    // Appends issued in one tick go into a single write; allow a few rounds for scheduling.
    assert.ok(log.syncCount <= 3, `expected group commit, got ${log.syncCount} fsyncs for ${n} appends`);
    const entries = await readAll(log);
    assert.deepEqual(
      text(entries),
      Array.from({ length: n }, (_, i) => `r${i}`),
    );
    assert.deepEqual(
      acks,
      entries.map((e) => e.pos),
    );

    // Appends arriving in many separate ticks while fsyncs are running are still batched.
    const before = log.syncCount;
    const staggered: Promise<LogPosition>[] = [];
    for (let i = 0; i < 500; i++) {
      staggered.push(log.append(Buffer.from(`s${i}`)));
      if (i % 10 === 0) await new Promise((r) => setImmediate(r));
    }
    await Promise.all(staggered);
    assert.ok(log.syncCount - before < 500, `got ${log.syncCount - before} fsyncs for 500 appends`);
    await log.close();
  });

  it('makes a round durable in one write, through O_DSYNC, with no fdatasync after it', async () => {
    const dir = await freshDir();
    const calls: string[] = [];
    const flagsSeen: Array<string | number> = [];
    const log = await AppendLog.open({
      dir,
      openFile: async (path, flags) => {
        flagsSeen.push(flags);
        const fh = await open(path, flags);
        return {
          read: (buf, off, len, pos) => fh.read(buf, off, len, pos),
          write: (buf, off, len, pos) => {
            calls.push('write');
            return fh.write(buf, off, len, pos);
          },
          datasync: () => {
            calls.push('datasync');
            return fh.datasync();
          },
          sync: () => fh.sync(),
          truncate: (len) => fh.truncate(len),
          stat: () => fh.stat(),
          close: () => fh.close(),
        };
      },
    });
    await Promise.all([log.append(Buffer.from('a')), log.append(Buffer.from('b'))]);
    await log.append(Buffer.from('c'));
    assert.equal(flagsSeen.length, 1);
    assert.equal(flagsSeen[0], segmentWriteFlags(true));
    assert.ok(segmentWriteFlags(true) & constants.O_DSYNC, 'new segments are opened O_DSYNC');
    assert.ok(segmentWriteFlags(false) & constants.O_DSYNC, 'reopened segments are opened O_DSYNC');
    assert.deepEqual(calls, ['write', 'write'], 'one write per round and nothing else');
    await log.close();
    assert.deepEqual(text(await readAll(await AppendLog.open({ dir }))), ['a', 'b', 'c']);
  });
  it('appendMany keeps its records together and returns the last position', async () => {
    const log = await AppendLog.open({ dir: await freshDir(), segmentBytes: 64 });
    await log.append(Buffer.from('first'));
    const last = await log.appendMany([Buffer.from('x'.repeat(30)), Buffer.from('y'.repeat(30))]);
    const entries = await readAll(log);
    assert.deepEqual(text(entries), ['first', 'x'.repeat(30), 'y'.repeat(30)]);
    // The pair did not fit behind 'first' in a 64-byte segment, so both went to the next one.
    assert.equal(entries[1]!.pos.segment, entries[0]!.pos.segment + 1);
    assert.equal(entries[2]!.pos.segment, entries[1]!.pos.segment);
    assert.deepEqual(last, entries[2]!.pos);
    await assert.rejects(log.appendMany([]), RangeError);
    await log.close();
  });

  it('truncates a torn or garbage tail on reopen and keeps every whole record', async () => {
    for (const damage of ['partial-frame', 'garbage', 'zeros', 'bad-crc'] as const) {
      const dir = await freshDir();
      const log = await AppendLog.open({ dir });
      await log.append(Buffer.from('one'));
      const second = await log.append(Buffer.from('two'));
      await log.close();
      const [file] = await segmentFiles(dir);
      const path = join(dir, file!);
      const goodSize = (await stat(path)).size;
      if (damage === 'partial-frame') {
        // A header announcing 100 bytes followed by only 10 of them: a crash mid-write.
        const head = Buffer.alloc(8);
        head.writeUInt32LE(100, 0);
        await appendFile(path, Buffer.concat([head, Buffer.alloc(10, 7)]));
      } else if (damage === 'garbage') {
        await appendFile(path, Buffer.from('\xff\xff\xff\x7fnot a frame at all'));
      } else if (damage === 'zeros') {
        await appendFile(path, Buffer.alloc(4096));
      } else {
        // Flip the last byte of the last record: its frame no longer checks out.
        await truncate(path, goodSize - 1);
        await appendFile(path, Buffer.from('X'));
      }
      const reopened = await AppendLog.open({ dir });
      const expected = damage === 'bad-crc' ? ['one'] : ['one', 'two'];
      assert.deepEqual(text(await readAll(reopened)), expected, damage);
      const size = (await stat(path)).size;
      assert.equal(size, damage === 'bad-crc' ? second.offset : goodSize, damage);
      await reopened.append(Buffer.from('three'));
      assert.deepEqual(text(await readAll(reopened)), [...expected, 'three'], damage);
      await reopened.close();
    }
  });

  it('rotates, reads from a position and trims whole segments before it', async () => {
    const dir = await freshDir();
    const log = await AppendLog.open({ dir, segmentBytes: 1024 });
    for (let i = 0; i < 100; i++) await log.append(Buffer.from(`old-${i}`.padEnd(40, '.')));
    assert.ok((await segmentFiles(dir)).length > 2, 'small segments roll over');
    const bytesBefore = log.diskBytes;
    const start = await log.rotate();
    assert.equal(start.offset, 0);
    assert.deepEqual(await log.rotate(), start, 'rotating an empty segment reuses it');
    await log.append(Buffer.from('snapshot'));
    const tailPos = await log.append(Buffer.from('after'));
    await log.append(Buffer.from('later'));

    assert.deepEqual(text(await readAll(log, start)), ['snapshot', 'after', 'later']);
    assert.deepEqual(text(await readAll(log, tailPos)), ['after', 'later']);

    // The end of the last full segment counts as past it: it goes, the current one stays.
    const lastOld = (await readAll(log)).find(
      (e) => e.next.segment === start.segment - 1 && e.record.includes('old-99'),
    );
    assert.ok(lastOld);
    await log.trimBefore(lastOld.next);
    assert.equal((await segmentFiles(dir)).length, 1);
    await log.trimBefore(start);
    assert.deepEqual(await segmentFiles(dir), [`${String(start.segment).padStart(12, '0')}.seg`]);
    assert.ok(log.diskBytes < bytesBefore);
    assert.equal(log.diskBytes, (await stat(join(dir, (await segmentFiles(dir))[0]!))).size);
    assert.deepEqual(text(await readAll(log)), ['snapshot', 'after', 'later'], 'oldest kept is now the snapshot');
    // A position inside a trimmed segment starts at the oldest kept one.
    assert.deepEqual(text(await readAll(log, { segment: 1, offset: 0 })), ['snapshot', 'after', 'later']);
    await log.close();

    const reopened = await AppendLog.open({ dir, segmentBytes: 1024 });
    assert.deepEqual(text(await readAll(reopened)), ['snapshot', 'after', 'later']);
    assert.equal(reopened.diskBytes, log.diskBytes);
    await reopened.close();
  });

  it('read stops at the end that existed when it was called', async () => {
    const log = await AppendLog.open({ dir: await freshDir() });
    await log.append(Buffer.from('a'));
    await log.append(Buffer.from('b'));
    const seen: string[] = [];
    for await (const e of log.read()) {
      seen.push(e.record.toString());
      await log.append(Buffer.from(`during-${seen.length}`));
    }
    assert.deepEqual(seen, ['a', 'b']);
    await log.close();
  });

  it('reports corruption inside a closed segment instead of skipping it', async () => {
    const dir = await freshDir();
    const log = await AppendLog.open({ dir, segmentBytes: 64 });
    await log.append(Buffer.from('x'.repeat(40)));
    await log.append(Buffer.from('y'.repeat(40)));
    const [first] = (await segmentFiles(dir)).sort();
    await writeFile(join(dir, first!), Buffer.alloc(48, 1));
    await assert.rejects(readAll(log), /corrupt/);
    await log.close();
  });

  it('keeps every acknowledged record when the writing process is killed with SIGKILL', async () => {
    const dir = await freshDir();
    const moduleUrl = new URL('../../src/storage/append-log.js', import.meta.url).href;
    // The child appends from 8 concurrent loops and prints each position once it is acked.
    const child = spawn(
      process.execPath,
      [
        '--input-type=module',
        '-e',
        `
        const { AppendLog } = await import(${JSON.stringify(moduleUrl)});
        const log = await AppendLog.open({ dir: ${JSON.stringify(dir)}, segmentBytes: 64 * 1024 });
        let n = 0;
        const loop = async (w) => {
          for (;;) {
            const id = \`w\${w}-\${n++}\`;
            const pos = await log.append(Buffer.from(id.padEnd(200, '.')));
            process.stdout.write(\`\${id} \${pos.segment} \${pos.offset}\\n\`);
          }
        };
        for (let w = 0; w < 8; w++) loop(w);
        `,
      ],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    const acked = new Map<string, LogPosition>();
    const lines = createInterface({ input: child.stdout! });
    const exited = new Promise((resolve) => child.on('exit', resolve));
    for await (const line of lines) {
      const [id, segment, offset] = line.split(' ');
      acked.set(id!, { segment: Number(segment), offset: Number(offset) });
      // Kill while the child is busy, mid-stream, after a fair number of acks and rollovers.
      if (acked.size === 3000) child.kill('SIGKILL');
    }
    await exited;
    assert.ok(acked.size >= 3000);

    const log = await AppendLog.open({ dir, segmentBytes: 64 * 1024 });
    const stored = new Map<string, LogPosition>();
    for await (const e of log.read()) stored.set(e.record.toString().replace(/\.+$/, ''), e.pos);
    for (const [id, pos] of acked) assert.deepEqual(stored.get(id), pos, `acked record ${id} is missing or moved`);
    // The log is still appendable after the crash.
    const pos = await log.append(Buffer.from('after crash'));
    const tail = await readAll(log, pos);
    assert.deepEqual(text(tail), ['after crash']);
    await log.close();
  });
});
