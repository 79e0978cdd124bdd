/**
 * A segmented append-only log on local disk with group commit. The archive spool and the
 * actors' state journal both sit on it: an append is acknowledged only after the fsync
 * that covers it, and every append that arrives while one write+fsync is in flight goes
 * into the next single write+fsync, so throughput grows with concurrency instead of
 * paying one fsync per record.
 *
 * On disk: `<dir>/<segment, 12 digits>.seg` files, each a sequence of frames
 * `[u32 LE payload length][u32 LE crc32(length bytes + payload)][payload]`. The CRC covers
 * the length so that a zero-filled tail (a file extended but not written before a crash)
 * is not mistaken for empty records. Only the last segment can have a torn tail (a crash
 * mid-write); `open` truncates it at the last whole frame. Earlier segments were fsynced
 * before the next one was created, so damage there is reported as corruption, not cut.
 *
 * Segments are written through O_DSYNC (`segmentWriteFlags`): a write returns once its data is
 * on disk, as a write followed by fdatasync would, in one thread-pool job instead of two.
 * Every job is one more event-loop turn before the appends it covers are answered, and
 * under load a turn is long (the fix lane's slice and everything read meanwhile): the
 * second job cost every ping, SOS and order change one such turn.
 */
import { closeSync, fstatSync, openSync, readdirSync, readSync } from 'node:fs';
import { constants, mkdir, open, readdir, stat, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import { atNextTurn } from '../next-turn.js';

/** Where a record starts (or where the log ends): segment number and byte offset in it. */
export interface LogPosition {
  segment: number;
  offset: number;
}

/** One record read back, with its own position and the position right after it. */
export interface LogEntry {
  pos: LogPosition;
  next: LogPosition;
  record: Buffer;
}

/**
 * The file operations the log uses on a segment: a subset of `LogFile`, so that tests
 * can hand in files whose fsync fails (there is no portable way to make a real disk do that).
 */
export interface LogFile {
  read(buffer: Buffer, offset: number, length: number, position: number): Promise<{ bytesRead: number }>;
  write(buffer: Buffer, offset: number, length: number, position: number): Promise<{ bytesWritten: number }>;
  datasync(): Promise<void>;
  sync(): Promise<void>;
  truncate(len: number): Promise<void>;
  stat(): Promise<{ size: number }>;
  close(): Promise<void>;
}

/** Opens a segment file; `flags` as for `fs.promises.open`. */
export type OpenFile = (path: string, flags: string | number) => Promise<LogFile>;

/**
 * How the segment being appended to is opened: read-write, every write durable when it
 * returns (see the module comment). `create` for a new segment, which must not exist yet.
 */
export function segmentWriteFlags(create: boolean): number {
  const { O_RDWR, O_CREAT, O_EXCL, O_DSYNC } = constants;
  return create ? O_RDWR | O_CREAT | O_EXCL | O_DSYNC : O_RDWR | O_DSYNC;
}

/** Where the log lives and how large a segment grows before a new one is started. */
export interface AppendLogOptions {
  dir: string;
  /** A segment is closed once it reaches this size (default 64 MiB); one batch never spans two segments. */
  segmentBytes?: number;
  /** How segment files are opened (default: `fs.promises.open`); tests inject failing files here. */
  openFile?: OpenFile;
}

/** Thrown by `read` when a frame inside an already closed segment fails its check. */
export class LogCorruptError extends Error {
  constructor(
    readonly file: string,
    readonly offset: number,
    reason: string,
  ) {
    super(`append log corrupt in ${file} at byte ${offset}: ${reason}`);
    this.name = 'LogCorruptError';
  }
}

/** Thrown by appends after `close` or after a write failure that could not be rolled back. */
export class LogClosedError extends Error {
  constructor(reason: string) {
    super(`append log is not writable: ${reason}`);
    this.name = 'LogClosedError';
  }
}

const HEADER = 8;
/** Bytes a record takes on disk besides its own: its frame's length and CRC. */
export const FRAME_OVERHEAD = HEADER;
/** A frame longer than this is treated as garbage: no caller writes records of 1 GiB. */
const MAX_RECORD = 1 << 30;
const SEGMENT_RE = /^(\d{12})\.seg$/;
const READ_CHUNK = 1 << 20;

const segmentName = (n: number): string => `${String(n).padStart(12, '0')}.seg`;

/** Compares two positions: negative when a is before b. */
export function comparePositions(a: LogPosition, b: LogPosition): number {
  return a.segment - b.segment || a.offset - b.offset;
}

function frame(record: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(HEADER + record.length);
  out.writeUInt32LE(record.length, 0);
  out.set(record, HEADER);
  out.writeUInt32LE(frameCrc(out, 0, record.length), 4);
  return out;
}

function frameCrc(buf: Buffer, at: number, length: number): number {
  const head = crc32(buf.subarray(at, at + 4));
  return crc32(buf.subarray(at + HEADER, at + HEADER + length), head);
}

/** A pending append: one or more records whose frames must land together. */
interface Group {
  frames: Buffer[];
  bytes: number;
  /** For `appendDeferred`: makes the record when the flush that writes it starts; null once made. */
  build: (() => Uint8Array) | null;
  resolve: (pos: LogPosition) => void;
  reject: (err: Error) => void;
}

/** Scans a segment from the start; returns where the whole frames end. */
async function scanValidEnd(fh: LogFile, size: number): Promise<number> {
  let end = 0;
  for await (const f of framesOf(fh, 0, size)) {
    if (!f.ok) break;
    end = f.next;
  }
  return end;
}

type ScannedFrame = { ok: true; at: number; next: number; record: Buffer } | { ok: false; at: number; reason: string };

/** Yields the frames of `fh` between `from` and `limit`, stopping at the first bad one. */
async function* framesOf(fh: LogFile, from: number, limit: number): AsyncGenerator<ScannedFrame> {
  let buf = Buffer.alloc(0);
  let bufStart = from; // file offset of buf[0]
  let at = from;
  while (at < limit) {
    const have = bufStart + buf.length - at;
    if (have < HEADER || have < HEADER + buf.readUInt32LE(at - bufStart)) {
      // Need more bytes: keep the unread tail and read the next chunk after it.
      const tail = buf.subarray(at - bufStart);
      const wanted = tail.length >= HEADER ? HEADER + tail.readUInt32LE(0) : HEADER;
      if (wanted > MAX_RECORD + HEADER) {
        yield { ok: false, at, reason: `frame length ${wanted - HEADER} is implausible` };
        return;
      }
      const readLen = Math.min(Math.max(READ_CHUNK, wanted - tail.length), limit - (at + tail.length));
      if (readLen <= 0) {
        yield { ok: false, at, reason: 'frame runs past the end of the segment' };
        return;
      }
      const next = Buffer.allocUnsafe(tail.length + readLen);
      tail.copy(next, 0);
      const { bytesRead } = await fh.read(next, tail.length, readLen, at + tail.length);
      buf = next.subarray(0, tail.length + bytesRead);
      bufStart = at;
      if (bytesRead === 0) {
        yield { ok: false, at, reason: 'frame runs past the end of the file' };
        return;
      }
      continue;
    }
    const i = at - bufStart;
    const length = buf.readUInt32LE(i);
    if (length > MAX_RECORD) {
      yield { ok: false, at, reason: `frame length ${length} is implausible` };
      return;
    }
    if (frameCrc(buf, i, length) !== buf.readUInt32LE(i + 4)) {
      yield { ok: false, at, reason: 'checksum mismatch' };
      return;
    }
    const next = at + HEADER + length;
    // Copy so that callers may keep the record after the chunk buffer is reused.
    yield { ok: true, at, next, record: Buffer.from(buf.subarray(i + HEADER, i + HEADER + length)) };
    at = next;
  }
}

/**
 * Replays the records of the log in `dir` from `from` up to `end` (a position the log had
 * reached: never past its durable data) with blocking reads. For a worker thread, where
 * blocking is free and the async reads would queue on the process's shared I/O threads
 * behind every fsync; the log itself reads with `read`. A segment deleted meanwhile (trimmed)
 * is skipped: it was meant to go.
 */
export function* readLogSync(dir: string, from: LogPosition, end: LogPosition): Generator<LogEntry> {
  const numbers = readdirSync(dir)
    .map((n) => SEGMENT_RE.exec(n)?.[1])
    .filter((n): n is string => n !== undefined)
    .map(Number)
    .filter((n) => n >= from.segment && n <= end.segment)
    .sort((a, b) => a - b);
  for (const n of numbers) {
    const file = join(dir, segmentName(n));
    let fd: number;
    try {
      fd = openSync(file, 'r');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') continue;
      throw err;
    }
    try {
      const start = n === from.segment ? from.offset : 0;
      const limit = n === end.segment ? end.offset : fstatSync(fd).size;
      let buf = Buffer.alloc(0);
      let bufStart = start;
      let at = start;
      while (at < limit) {
        const i = at - bufStart;
        const have = buf.length - i;
        const length = have >= HEADER ? buf.readUInt32LE(i) : -1;
        if (length > MAX_RECORD) throw new LogCorruptError(file, at, `frame length ${length} is implausible`);
        if (length < 0 || have < HEADER + length) {
          // Keep the unread tail and read the next chunk after it.
          const wanted = length < 0 ? HEADER : HEADER + length;
          const readLen = Math.min(Math.max(READ_CHUNK, wanted - have), limit - (at + have));
          if (readLen <= 0) throw new LogCorruptError(file, at, 'frame runs past the end of the segment');
          const next = Buffer.allocUnsafe(have + readLen);
          buf.copy(next, 0, i);
          const got = readSync(fd, next, have, readLen, at + have);
          if (got === 0) throw new LogCorruptError(file, at, 'frame runs past the end of the file');
          buf = next.subarray(0, have + got);
          bufStart = at;
          continue;
        }
        if (frameCrc(buf, i, length) !== buf.readUInt32LE(i + 4))
          throw new LogCorruptError(file, at, 'checksum mismatch');
        const nextAt = at + HEADER + length;
        // A view of the chunk, not a copy: each chunk is a fresh buffer that is never reused.
        yield {
          pos: { segment: n, offset: at },
          next: { segment: n, offset: nextAt },
          record: buf.subarray(i + HEADER, nextAt - bufStart),
        };
        at = nextAt;
      }
    } finally {
      closeSync(fd);
    }
  }
}

async function syncDir(dir: string): Promise<void> {
  const fh = await open(dir, constants.O_RDONLY);
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/** The log itself; see the module comment. One instance per directory. */
export class AppendLog {
  /** Number of durable write rounds so far: lets tests and benchmarks see group commit at work. */
  syncCount = 0;

  private pending: Group[] = [];
  /** A flush is scheduled or waiting in `io` and has not started: the next appends join it. */
  private flushScheduled = false;
  /** Serialises every file operation: flush, rotate, trim, close. */
  private io: Promise<void> = Promise.resolve();
  private failure: Error | null = null;
  private closed = false;
  /** Sizes of the closed segments, by number. */
  private readonly sealed = new Map<number, number>();

  private constructor(
    private readonly dir: string,
    private readonly segmentBytes: number,
    private segment: number,
    private fh: LogFile,
    /** End of the durable data in the current segment. */
    private offset: number,
    private readonly openFile: OpenFile,
  ) {}

  /** Opens (creating if needed) the log in `opts.dir`, cutting a torn tail off the last segment. */
  static async open(opts: AppendLogOptions): Promise<AppendLog> {
    const segmentBytes = opts.segmentBytes ?? 64 * 1024 * 1024;
    if (!(segmentBytes > HEADER)) throw new RangeError(`segmentBytes must be more than ${HEADER}, got ${segmentBytes}`);
    const openFile = opts.openFile ?? open;
    await mkdir(opts.dir, { recursive: true });
    const numbers = await AppendLog.listSegments(opts.dir);
    const last = numbers.at(-1);
    if (last === undefined) {
      const fh = await openFile(join(opts.dir, segmentName(1)), segmentWriteFlags(true));
      await syncDir(opts.dir);
      return new AppendLog(opts.dir, segmentBytes, 1, fh, 0, openFile);
    }
    const fh = await openFile(join(opts.dir, segmentName(last)), segmentWriteFlags(false));
    try {
      const { size } = await fh.stat();
      const end = await scanValidEnd(fh, size);
      if (end < size) {
        // A crash mid-write left a partial or garbage frame: it was never acknowledged.
        await fh.truncate(end);
        await fh.sync();
      }
      const log = new AppendLog(opts.dir, segmentBytes, last, fh, end, openFile);
      for (const n of numbers.slice(0, -1)) log.sealed.set(n, (await stat(join(opts.dir, segmentName(n)))).size);
      return log;
    } catch (err) {
      await fh.close();
      throw err;
    }
  }

  private static async listSegments(dir: string): Promise<number[]> {
    const names = await readdir(dir);
    return names
      .map((n) => SEGMENT_RE.exec(n)?.[1])
      .filter((n): n is string => n !== undefined)
      .map(Number)
      .sort((a, b) => a - b);
  }

  /** Appends one record; resolves with its position once an fsync covers it. */
  append(record: Uint8Array): Promise<LogPosition> {
    return this.appendMany([record]);
  }

  /**
   * Appends records that land together (same write, same segment); resolves with the
   * position of the last one once an fsync covers them. On failure none is acknowledged.
   */
  appendMany(records: Uint8Array[]): Promise<LogPosition> {
    if (this.closed) return Promise.reject(new LogClosedError('it was closed'));
    if (this.failure) return Promise.reject(new LogClosedError(this.failure.message));
    if (records.length === 0) return Promise.reject(new RangeError('appendMany needs at least one record'));
    return new Promise<LogPosition>((resolve, reject) => {
      const frames = records.map(frame);
      this.pending.push({ frames, bytes: frames.reduce((s, f) => s + f.length, 0), build: null, resolve, reject });
      this.scheduleFlush();
    });
  }

  /**
   * Reserves the next place in the log for one record that `build` makes later: it is
   * called once, synchronously, when the flush that writes the record starts (never, when
   * the log fails or closes before). Resolves with the record's position once an fsync
   * covers it; rejects with what `build` throws. This lets a caller keep adding to the
   * record for as long as the previous write+fsync is in flight, and make it the moment
   * it is due, without a loop turn of its own.
   */
  appendDeferred(build: () => Uint8Array): Promise<LogPosition> {
    if (this.closed) return Promise.reject(new LogClosedError('it was closed'));
    if (this.failure) return Promise.reject(new LogClosedError(this.failure.message));
    return new Promise<LogPosition>((resolve, reject) => {
      this.pending.push({ frames: [], bytes: 0, build, resolve, reject });
      this.scheduleFlush();
    });
  }

  private scheduleFlush(): void {
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    // The next turn rather than a microtask: appends issued from other callbacks of the
    // same loop turn join the batch too. At its very start (next-turn.ts): before the
    // fix lane's slice of pings, so the write is done by the same turn's poll phase.
    atNextTurn(() => {
      // Cleared when the flush starts, not when it is queued: one waiting flush serves every
      // append until then, so flushes cannot pile up in `io` ahead of a rotate or trim.
      // flush() settles every group itself; the catch only keeps a rejected chain from going unhandled.
      this.serial(() => {
        this.flushScheduled = false;
        return this.flush();
      }).catch(() => undefined);
    });
  }

  /**
   * Writes what is queued now as one durable write per touched segment. Appends that
   * arrive meanwhile are left to the flush they scheduled, queued behind this one: under
   * steady traffic a flush that also took those would never end, and a rotate or trim
   * waiting its turn (the archive writer's commit) would wait as long as the traffic lasts.
   */
  private async flush(): Promise<void> {
    let left = this.buildDeferred();
    while (left > 0) {
      let bytes = 0;
      // Start a new segment first when the next group would overflow a non-empty one.
      const first = this.pending[0]!;
      if (this.offset > 0 && this.offset + first.bytes > this.segmentBytes) {
        try {
          await this.startSegment();
        } catch (err) {
          this.fail(this.pending.splice(0), err as Error);
          return;
        }
      }
      let taken = 0;
      while (taken < left) {
        const g = this.pending[taken]!;
        if (taken > 0 && this.offset + bytes + g.bytes > this.segmentBytes) break;
        bytes += g.bytes;
        taken++;
      }
      left -= taken;
      const batch = this.pending.splice(0, taken);
      const buf = Buffer.concat(
        batch.flatMap((g) => g.frames),
        bytes,
      );
      const start = this.offset;
      try {
        let written = 0;
        // Durable as each write returns (O_DSYNC): no fdatasync of its own.
        while (written < buf.length) {
          const r = await this.fh.write(buf, written, buf.length - written, start + written);
          written += r.bytesWritten;
        }
        this.syncCount++;
      } catch (err) {
        // Rolled back before anyone hears of the failure: a caller that retries at once
        // appends behind whole frames, or is told the log is no longer writable.
        await this.rollback(err as Error);
        this.fail(batch, err as Error);
        if (this.failure) {
          this.fail(this.pending.splice(0), this.failure);
          return;
        }
        continue;
      }
      this.offset = start + bytes;
      let at = start;
      for (const g of batch) {
        let lastStart = at;
        for (const f of g.frames) {
          lastStart = at;
          at += f.length;
        }
        g.resolve({ segment: this.segment, offset: lastStart });
      }
    }
  }

  /** Makes the records of the deferred appends now due; returns how many groups are pending. */
  private buildDeferred(): number {
    let kept = 0;
    for (const g of this.pending) {
      if (g.build) {
        try {
          const f = frame(g.build());
          g.frames = [f];
          g.bytes = f.length;
          g.build = null;
        } catch (err) {
          g.reject(err as Error);
          continue;
        }
      }
      this.pending[kept++] = g;
    }
    this.pending.length = kept;
    return kept;
  }

  private fail(groups: Group[], err: Error): void {
    for (const g of groups) g.reject(err);
  }

  /**
   * After a failed write or fsync the file content past `offset` is unknown. Cutting it
   * back keeps later appends readable. The cut is fsynced too: otherwise a crash could
   * bring back the refused frames' length on disk, and with it whatever the failed write
   * left there (a whole refused frame would replay as if it had been acknowledged). If the
   * cut or its fsync fails, the log refuses further appends rather than acknowledge
   * records that may sit behind garbage.
   */
  private async rollback(err: Error): Promise<void> {
    try {
      await this.fh.truncate(this.offset);
      await this.fh.datasync();
    } catch (truncErr) {
      this.failure = new Error(`write failed (${err.message}) and rollback failed (${(truncErr as Error).message})`);
    }
  }

  private async startSegment(): Promise<void> {
    const next = this.segment + 1;
    const fh = await this.openFile(join(this.dir, segmentName(next)), segmentWriteFlags(true));
    await syncDir(this.dir);
    await this.fh.close();
    this.sealed.set(this.segment, this.offset);
    this.segment = next;
    this.fh = fh;
    this.offset = 0;
  }

  /**
   * Replays records from `from` (default: the oldest kept) up to the end the log had when
   * `read` was called. Positions before the oldest kept segment start at that segment.
   */
  async *read(from?: LogPosition): AsyncGenerator<LogEntry> {
    const end: LogPosition = { segment: this.segment, offset: this.offset };
    const numbers = (await AppendLog.listSegments(this.dir)).filter((n) => n <= end.segment);
    for (const n of numbers) {
      if (from && n < from.segment) continue;
      const start = from && n === from.segment ? from.offset : 0;
      const file = join(this.dir, segmentName(n));
      let fh: LogFile;
      try {
        fh = await this.openFile(file, 'r');
      } catch (err) {
        // trimBefore may delete a segment between listing and opening: it was meant to go.
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') continue;
        throw err;
      }
      try {
        const limit = n === end.segment ? end.offset : (await fh.stat()).size;
        for await (const f of framesOf(fh, start, limit)) {
          if (!f.ok) throw new LogCorruptError(file, f.at, f.reason);
          yield { pos: { segment: n, offset: f.at }, next: { segment: n, offset: f.next }, record: f.record };
        }
      } finally {
        await fh.close();
      }
    }
  }

  /**
   * Flushes what is queued into the current segment, then starts a new one; returns the
   * new segment's start. When the current segment is still empty it is reused.
   */
  rotate(): Promise<LogPosition> {
    return this.serial(async () => {
      await this.flush();
      if (this.failure) throw new LogClosedError(this.failure.message);
      if (this.offset > 0) await this.startSegment();
      return { segment: this.segment, offset: 0 };
    });
  }

  /**
   * Deletes the closed segments that lie entirely before `pos` (never the current one). A
   * position at the very end of a closed segment counts as past it, so a reader that has
   * consumed a whole segment can let it go before anything lands in the next one.
   */
  trimBefore(pos: LogPosition): Promise<void> {
    const doomedNow = (): number[] =>
      [...this.sealed.entries()]
        .filter(([n, size]) => n < this.segment && (n < pos.segment || (n === pos.segment && size <= pos.offset)))
        .map(([n]) => n);
    // Nothing to delete is the common case: answer it without queueing behind the flushes,
    // which under load would cost the caller a write+fsync round or two. A segment sealed
    // meanwhile is left to the next call.
    if (doomedNow().length === 0) return Promise.resolve();
    return this.serial(async () => {
      const doomed = doomedNow();
      for (const n of doomed) {
        await unlink(join(this.dir, segmentName(n))).catch((err: NodeJS.ErrnoException) => {
          if (err.code !== 'ENOENT') throw err;
        });
        this.sealed.delete(n);
      }
      if (doomed.length > 0) await syncDir(this.dir);
    });
  }

  /** The end of the durable data: where the next record will start unless a new segment begins. */
  get end(): LogPosition {
    return { segment: this.segment, offset: this.offset };
  }

  /** Bytes of all segments on disk (durable data only). */
  get diskBytes(): number {
    let sum = this.offset;
    for (const size of this.sealed.values()) sum += size;
    return sum;
  }

  /** Waits for queued appends to be written, then closes the file; later appends reject. */
  close(): Promise<void> {
    if (this.closed) return this.io;
    this.closed = true;
    return this.serial(async () => {
      await this.flush();
      await this.fh.close();
    });
  }

  private serial<T>(op: () => Promise<T>): Promise<T> {
    const result = this.io.then(op);
    this.io = result.then(
      () => undefined,
      () => undefined,
    );
    return result;
  }
}
