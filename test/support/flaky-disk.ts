/**
 * Real segment files whose fsync can be made to fail, or to wait, on demand, for the
 * AppendLog's `openFile` option: a real disk cannot be told to fail one fsync, nor to take
 * its time while a test acts. Every write, sync and truncate is recorded, so a test can
 * check what was made durable in which order.
 */
import { constants, open } from 'node:fs/promises';
import { basename } from 'node:path';
import type { LogFile, OpenFile } from '../../src/storage/append-log.js';

/** Real files whose next `failSyncs` datasyncs fail with EIO; every operation is recorded. */
export class FlakyDisk {
  failSyncs = 0;
  readonly ops: string[] = [];
  /** Loop turns each datasync takes before it reaches the disk, as a slow disk's would. */
  syncTurns = 0;
  /** Datasyncs waiting for `release` right now. */
  held = 0;
  private gate: { promise: Promise<void>; open: () => void } | null = null;
  /** Called when a file is opened, before the open returns (to act in the middle of a rotation). */
  onOpen: ((name: string, flags: string | number) => void) | null = null;

  /** Makes every datasync from now on wait until `release`. */
  hold(): void {
    let open!: () => void;
    const promise = new Promise<void>((resolve) => {
      open = resolve;
    });
    this.gate = { promise, open };
  }

  /** Lets the held datasyncs (and later ones) go on. */
  release(): void {
    this.gate?.open();
    this.gate = null;
  }

  readonly openFile: OpenFile = async (path, flags) => {
    const fh = await open(path, flags);
    const name = basename(path);
    this.onOpen?.(name, flags);
    const record = (op: string): void => {
      this.ops.push(`${op} ${name}`);
    };
    // The disk's part of an fsync: slow, held or failing on demand.
    const syncing = async (): Promise<void> => {
      for (let i = 0; i < this.syncTurns; i++) await new Promise((r) => setImmediate(r));
      if (this.gate) {
        this.held++;
        await this.gate.promise;
        this.held--;
      }
      if (this.failSyncs > 0) {
        this.failSyncs--;
        record('datasync-failed');
        throw Object.assign(new Error('EIO: i/o error, fdatasync'), { code: 'EIO' });
      }
      record('datasync');
    };
    // A file opened O_DSYNC syncs inside each write (the kernel reports a failed sync as
    // the write's error): its writes take the fsync's turns, hold and failure, recorded
    // as a write followed by its datasync.
    const syncsOnWrite = typeof flags === 'number' && (flags & constants.O_DSYNC) !== 0;
    const file: LogFile = {
      read: (buf, off, len, pos) => fh.read(buf, off, len, pos),
      write: async (buf, off, len, pos) => {
        record('write');
        const done = await fh.write(buf, off, len, pos);
        if (syncsOnWrite) await syncing();
        return done;
      },
      datasync: async () => {
        await syncing();
        await fh.datasync();
      },
      sync: async () => {
        record('sync');
        await fh.sync();
      },
      truncate: async (len) => {
        record(`truncate(${len})`);
        await fh.truncate(len);
      },
      stat: () => fh.stat(),
      close: () => fh.close(),
    };
    return file;
  };
}
