/**
 * The archive's local spool: every `write` lands here durably (an AppendLog in
 * `${DATA_DIR}/spool`) before it is acknowledged, and the archive writer drains it into
 * the store in order. A checkpoint file remembers how far the writer got; whole segments
 * before it are deleted. The disk budget is enforced here: past it writes are refused.
 *
 * The writes of one group-commit round share one log record (spool-record.ts): at
 * thousands of pings a second, one record per write meant as many frames to write and,
 * worse, as many to read back and decode one by one while the server is busiest. The
 * record stays open for more writes until the log starts the flush that writes it.
 */
import { join } from 'node:path';
import { AppendLog, comparePositions, FRAME_OVERHEAD, type LogPosition, type OpenFile } from '../storage/append-log.js';
import { readCheckpoint, writeCheckpoint } from '../storage/checkpoint.js';
import { type ArchiveRecord, SpoolFullError } from './archive.js';
import {
  decodeRecord,
  packWrite,
  RECORD_OVERHEAD,
  RecordBuilder,
  recordRows,
  recordSpooledAt,
} from './spool-record.js';
import { WorkSlices } from './work-slices.js';

const CHECKPOINT_FILE = 'archived-upto.json';
/** How often the checkpoint is saved while a backlog drains (see `commit`). */
const CHECKPOINT_EVERY_MS = 2000;
/** Disk bytes of a record besides its writes' packed rows. */
const RECORD_COST = RECORD_OVERHEAD + FRAME_OVERHEAD;
/**
 * A record takes no more writes past this size, so that reading one back is a short slice
 * of work and a batch overshoots `maxRows` by little; a larger single write is its own record.
 */
const RECORD_TARGET_BYTES = 64 * 1024;

/** A log record still taking writes, and the fsync every write of it waits for. */
interface OpenRecord {
  builder: RecordBuilder;
  durable: Promise<unknown>;
}

/** Options of `Spool.open`. */
export interface SpoolOptions {
  dir: string;
  /** Disk budget in bytes (`SPOOL_MAX_BYTES`). */
  maxBytes: number;
  /** Segment size; default: an eighth of the budget, between 64 KiB and 64 MiB, so drained space is freed in steps. */
  segmentBytes?: number;
  now?: () => number;
  /** How the log opens its files (default: the real disk); tests inject failing or slow ones. */
  openFile?: OpenFile;
}

/** Records read from the spool for one insert, and where the spool continues after them. */
export interface SpoolBatch {
  records: ArchiveRecord[];
  rows: number;
  /** Position right after the last record of the batch: the checkpoint once it has landed. */
  next: LogPosition;
  /** When the first record of the batch was spooled (ms). */
  oldestAt: number;
  /** When the last record of the batch was spooled (ms): anything after it is newer. */
  newestAt: number;
}

/** What `commit` needs of a batch, however it was read (here or on the writer's worker thread). */
export type CommittedBatch = Pick<SpoolBatch, 'rows' | 'next' | 'newestAt'>;

/** Where a batch read outside the spool (the writer's worker thread) may look: the folder, `from`, and the durable end now. */
export interface SpoolRange {
  dir: string;
  from: LogPosition;
  end: LogPosition;
}

/** The durable queue in front of the archive store. */
export class Spool {
  private cursor: LogPosition;
  private rows = 0;
  /** Disk bytes of the records not yet fsynced (frames included), for the budget. */
  private inflightBytes = 0;
  /** The record the next write joins, until the log starts writing it. */
  private open: OpenRecord | null = null;
  private oldest: number | null = null;
  /** Size of the last refused write, to tell whether the spool is still too full for it. */
  private refusedBytes: number | null = null;
  /** The position in the checkpoint file. */
  private saved: LogPosition;
  /** When the last save started (ms); saves run one after the other on this chain. */
  private lastSaveAt = Number.NEGATIVE_INFINITY;
  private saves: Promise<void> = Promise.resolve();
  /** A save made beside the writer's work that failed, reported by the next `commit`. */
  private saveFailure: Error | null = null;

  private constructor(
    private readonly log: AppendLog,
    private readonly checkpointPath: string,
    private readonly opts: Required<Omit<SpoolOptions, 'openFile'>>,
    cursor: LogPosition,
  ) {
    this.cursor = cursor;
    this.saved = cursor;
  }

  /** Opens the spool, resuming after the last checkpoint, and counts the rows still to archive. */
  static async open(options: SpoolOptions): Promise<Spool> {
    const segmentBytes =
      options.segmentBytes ?? Math.min(64 * 1024 * 1024, Math.max(64 * 1024, Math.floor(options.maxBytes / 8)));
    const { openFile, ...rest } = options;
    const opts: Required<Omit<SpoolOptions, 'openFile'>> = { now: Date.now, ...rest, segmentBytes };
    const log = await AppendLog.open({ dir: opts.dir, segmentBytes, openFile });
    const checkpointPath = join(opts.dir, CHECKPOINT_FILE);
    let cursor = (await readCheckpoint(checkpointPath)) ?? { segment: 0, offset: 0 };
    // A checkpoint past the end would skip future rows (e.g. the spool folder was replaced):
    // start over from the oldest kept record instead; re-inserting is harmless.
    if (comparePositions(cursor, log.end) > 0) cursor = { segment: 0, offset: 0 };
    const spool = new Spool(log, checkpointPath, opts, cursor);
    for await (const e of log.read(cursor)) {
      const rows = recordRows(e.record);
      spool.rows += rows;
      if (spool.oldest === null && rows > 0) spool.oldest = recordSpooledAt(e.record);
    }
    return spool;
  }

  /**
   * Appends `records` and resolves once they are fsynced (group commit: every write of a
   * round lands in one log record). Rejects with `SpoolFullError`, storing nothing, when
   * they would take the spool past its budget.
   */
  async write(records: ArchiveRecord[]): Promise<void> {
    if (records.length === 0) return;
    const packed = packWrite(records);
    let open = this.open;
    if (open && open.builder.bytes + packed.elements.length > RECORD_TARGET_BYTES) {
      this.open = open = null;
    }
    // The write's own bytes, and the record's when it is the one that starts it: summed
    // over a record's writes that is exactly what the record takes on disk.
    const cost = packed.elements.length + (open ? 0 : RECORD_COST);
    const used = this.log.diskBytes + this.inflightBytes;
    if (used + cost > this.opts.maxBytes) {
      this.refusedBytes = cost;
      throw new SpoolFullError(used, this.opts.maxBytes);
    }
    open ??= this.startRecord();
    open.builder.add(packed);
    this.inflightBytes += cost;
    // Counted before the fsync, not after: the writer may read and commit the record in the
    // same turn the append resolves, and its subtraction must never come first.
    if (this.rows === 0) this.oldest = open.builder.spooledAt;
    this.rows += records.length;
    await open.durable;
  }

  private startRecord(): OpenRecord {
    const builder = new RecordBuilder(this.opts.now());
    const appended = this.log.appendDeferred(() => {
      // From here on the record's bytes are fixed: later writes start the next one.
      if (this.open === record) this.open = null;
      return builder.build();
    });
    // Settled once per record, before any of its writes hears of it.
    const durable = appended.then(
      () => this.settle(record),
      (err: unknown) => {
        this.settle(record);
        this.rows -= builder.rows;
        if (this.rows === 0) this.oldest = null;
        throw err;
      },
    );
    const record: OpenRecord = { builder, durable };
    this.open = record;
    return record;
  }

  private settle(record: OpenRecord): void {
    if (this.open === record) this.open = null;
    this.inflightBytes -= RECORD_COST + record.builder.bytes;
  }

  /**
   * Reads up to about `maxRows` rows from `from` (default: the checkpoint), whole log
   * records only; null when there are none yet. Reading past the checkpoint lets the writer
   * prepare the next batch while the previous one is still being inserted. Decoding
   * yields to the event loop between `slices`. With `until` it stops there instead of at
   * `maxRows`: the writer reads a batch read on its worker thread again that way, for the
   * records of rows the store refused.
   */
  async readBatch(
    maxRows: number,
    from: LogPosition = this.cursor,
    slices = new WorkSlices(),
    until?: LogPosition,
  ): Promise<SpoolBatch | null> {
    const atCheckpoint = comparePositions(from, this.cursor) === 0;
    const records: ArchiveRecord[] = [];
    let next: LogPosition | null = null;
    let oldestAt = 0;
    let newestAt = 0;
    for await (const e of this.log.read(from)) {
      newestAt = recordSpooledAt(e.record);
      if (next === null) oldestAt = newestAt;
      for (const r of decodeRecord(e.record)) records.push(r);
      next = e.next;
      if (until) {
        if (comparePositions(next, until) >= 0) break;
        continue;
      }
      // One record is never split: the checkpoint can only point between log records.
      if (records.length >= maxRows) break;
      // Decoding a large batch in one go would hold up the acknowledgements behind it.
      await slices.pause();
    }
    if (next === null) return null;
    if (atCheckpoint) this.oldest = oldestAt;
    return { records, rows: records.length, next, oldestAt, newestAt };
  }

  /** The range a batch read outside the spool may cover, from `from` (default: the checkpoint). */
  readRange(from: LogPosition = this.cursor): SpoolRange {
    return { dir: this.opts.dir, from, end: this.log.end };
  }

  /** Takes note of a batch read outside the spool from `from`: when that was the checkpoint, its first row is the oldest. */
  noteRead(from: LogPosition, oldestAt: number): void {
    if (comparePositions(from, this.cursor) === 0) this.oldest = oldestAt;
  }

  /**
   * Marks `batch` as archived and frees whole drained segments. The checkpoint is saved
   * durably once the spool is caught up (awaited), and every few seconds while a backlog
   * drains, then beside the writer's next inserts rather than before them: an older
   * checkpoint only means that a crash re-inserts rows (harmless, the tables deduplicate),
   * while its temp file, two fsyncs and rename took half a second on an overloaded node,
   * every two seconds. It never runs ahead of what landed. A save that failed beside the
   * writer is thrown by the next commit, which leaves that batch uncommitted.
   */
  async commit(batch: CommittedBatch): Promise<void> {
    const now = this.opts.now();
    if (this.saveFailure) {
      const err = this.saveFailure;
      this.saveFailure = null;
      throw err;
    }
    if (this.rows - batch.rows <= 0) {
      await this.saveCheckpoint(batch.next, now);
    } else if (now - this.lastSaveAt >= CHECKPOINT_EVERY_MS) {
      this.saveCheckpoint(batch.next, now).catch((err: unknown) => {
        this.saveFailure = err as Error;
      });
    }
    this.cursor = batch.next;
    this.rows = Math.max(0, this.rows - batch.rows);
    // What is left was spooled no earlier than the batch's last record (a lower bound that
    // keeps the writer from rushing a tiny insert right after a large one).
    this.oldest = this.rows === 0 ? null : batch.newestAt;
    const end = this.log.end;
    // Caught up with a sizeable current segment: start a fresh one so that this one can be
    // deleted; otherwise the drained tail would sit on disk until the segment fills up.
    if (comparePositions(this.cursor, end) >= 0 && end.offset >= this.opts.segmentBytes / 4) {
      await this.log.rotate();
    }
    await this.log.trimBefore(this.cursor);
    if (this.refusedBytes !== null && !this.full) this.refusedBytes = null;
  }

  /** Rows spooled (or being fsynced) but not yet archived. */
  get pendingRows(): number {
    return this.rows;
  }

  /** When the oldest unarchived row was spooled (ms), or null when everything is archived. */
  get oldestAt(): number | null {
    return this.oldest;
  }

  /** Bytes of the spool on disk. */
  get diskBytes(): number {
    return this.log.diskBytes;
  }

  /** Disk budget in bytes. */
  get maxBytes(): number {
    return this.opts.maxBytes;
  }

  /** True while the last refused write would still be refused: the spool is over its budget. */
  get full(): boolean {
    return this.refusedBytes !== null && this.log.diskBytes + this.refusedBytes > this.opts.maxBytes;
  }

  /** Resolves once the checkpoint saves under way have ended (landed or failed). */
  checkpointSaves(): Promise<void> {
    return this.saves;
  }

  /** Waits for pending appends, closes the log and saves how far the writer got, for the next start. */
  async close(): Promise<void> {
    await this.log.close();
    await this.saves;
    if (comparePositions(this.saved, this.cursor) === 0) return;
    // Not saving it (a full disk at shutdown) only means rows inserted again at the next
    // start, which the tables absorb: not a reason to fail the shutdown.
    await this.saveCheckpoint(this.cursor, this.opts.now()).catch(() => undefined);
  }

  /** Saves `pos` after the saves already under way (one temp file: never two at once). */
  private saveCheckpoint(pos: LogPosition, now: number): Promise<void> {
    this.lastSaveAt = now;
    const save = this.saves.then(async () => {
      await writeCheckpoint(this.checkpointPath, pos);
      this.saved = pos;
    });
    this.saves = save.catch(() => undefined);
    return save;
  }
}
