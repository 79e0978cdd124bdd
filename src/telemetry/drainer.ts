/**
 * The batching writer between the spool and the store: one loop that reads the spool in
 * order, inserts large batches (up to `batchRows` rows, or whatever is there once the
 * oldest row has waited `batchMs`), commits each batch that landed (the spool moves its
 * checkpoint) and retries with backoff while the store is down. Never one insert per ping.
 * While a backlog waits, the next batch is read and encoded during the insert. Reading and
 * encoding run on a worker thread when the archive gives one (batch-worker.ts), else on
 * the main thread in time slices; the inserts and commits always run here.
 *
 * A batch is inserted as one body per table and day partition (see `BatchEncoder`). A
 * failure is classified (store-failure.ts): a transient one retries the parts of the batch
 * that have not landed yet, with backoff; a permanent one (the engine refused those rows,
 * which no retry can change) moves that part to the dead-letter folder and the loop goes
 * on. After a crash a batch is inserted again from its start: ReplacingMergeTree and the
 * FINAL reads make that harmless, which keeps this loop simple.
 */

import type { Logger } from 'pino';
import type { Metrics } from '../metrics.js';
import type { LogPosition } from '../storage/append-log.js';
import type { ArchiveRecord } from './archive.js';
import { type BatchWorker, WorkerDiedError } from './batch-worker.js';
import type { DeadLetterFolder } from './dead-letter.js';
import { BatchEncoder, columnsOf, type EncodedBatch, encodeBatch, type TableName } from './schema.js';
import type { Spool, SpoolBatch } from './spool.js';
import type { Store } from './store.js';
import { classifyStoreFailure } from './store-failure.js';
import { WorkSlices } from './work-slices.js';

/** Rows encoded between two looks at the clock: a few microseconds each. */
const ROWS_PER_CLOCK_CHECK = 64;
/** Worker threads that may die in a row (no batch read in between) before the writer reads on the main thread for good. */
export const MAX_WORKER_DEATHS = 3;

/**
 * Encodes a batch in slices of a few milliseconds: 10 000 rows take tens of milliseconds
 * to format, which would otherwise stall every acknowledgement waiting behind them.
 */
async function encodeInSlices(batch: SpoolBatch, slices: WorkSlices): Promise<EncodedBatch> {
  const encoder = new BatchEncoder();
  const { records } = batch;
  for (let i = 0; i < records.length; i++) {
    encoder.add(records[i]!);
    if (i % ROWS_PER_CLOCK_CHECK === ROWS_PER_CLOCK_CHECK - 1) await slices.pause();
  }
  return encoder.finish();
}

/** Where a batch lies in the spool: `from` up to `next`. */
type BatchRange = Pick<SpoolBatch, 'rows' | 'next' | 'oldestAt' | 'newestAt'> & { from: LogPosition };

/** The rows of one table and day partition, encoded for one insert. */
interface Part {
  table: TableName;
  day: string;
  columns: readonly string[];
  rows: number;
  body: Buffer;
  /** The records behind `body` when the batch was read on the main thread; else read again if the store refuses them. */
  records?: ArchiveRecord[];
}

/** A batch being inserted: its encoded parts and which of them are done (landed or dead-lettered). */
interface BatchWork {
  batch: BatchRange;
  parts: Part[];
  rejected: EncodedBatch['rejected'];
  done: boolean[];
  rejectedDone: boolean;
}

/** Reads and encodes the batch at `from` (default: the checkpoint) on the main thread; null when there is none. */
async function prepareHere(spool: Spool, maxRows: number, from?: LogPosition): Promise<BatchWork | null> {
  const slices = new WorkSlices();
  const start = spool.readRange(from).from;
  const batch = await spool.readBatch(maxRows, from, slices);
  if (!batch) return null;
  const encoded = await encodeInSlices(batch, slices);
  return {
    batch: { from: start, rows: batch.rows, next: batch.next, oldestAt: batch.oldestAt, newestAt: batch.newestAt },
    parts: encoded.tables,
    rejected: encoded.rejected,
    done: encoded.tables.map(() => false),
    rejectedDone: false,
  };
}

/** Tuning of the drainer; the defaults come from the configuration. */
export interface DrainerOptions {
  batchRows: number;
  batchMs: number;
  /** Where rows the store refuses for good are written. */
  deadLetters: DeadLetterFolder;
  /** First retry delay after a failed insert; doubles up to `maxBackoffMs`. */
  minBackoffMs?: number;
  maxBackoffMs?: number;
  /** Interval of the backlog progress log line. */
  progressEveryMs?: number;
  now?: () => number;
  /**
   * Reads and encodes batches on a worker thread (the archive passes one); without it, or
   * after `MAX_WORKER_DEATHS` deaths in a row, on the main thread in time slices.
   */
  worker?: BatchWorker | null;
}

/** What `health()` needs to know about the store, as last seen by the drainer. */
export interface StoreStatus {
  ok: boolean;
  /** The last failure, while not ok. */
  error: string | null;
}

/** Drains a spool into a store; see the module comment. */
export class SpoolDrainer {
  private readonly opts: Required<DrainerOptions>;
  private wake: (() => void) | null = null;
  private wantRows = 1;
  private stopping = false;
  private deadline = Number.POSITIVE_INFINITY;
  private loop: Promise<void> = Promise.resolve();
  private schemaReady = false;
  private failures = 0;
  private status: StoreStatus = { ok: true, error: null };
  private progress = { at: 0, rows: 0, logged: false };
  private worker: BatchWorker | null;
  private workerDeaths = 0;

  constructor(
    private readonly spool: Spool,
    private readonly store: Store,
    private readonly schema: () => Promise<void>,
    private readonly log: Logger,
    private readonly metrics: Metrics,
    options: DrainerOptions,
  ) {
    this.opts = {
      minBackoffMs: 100,
      maxBackoffMs: 5000,
      progressEveryMs: 5000,
      now: Date.now,
      worker: null,
      ...options,
    };
    this.worker = this.opts.worker;
  }

  /** True while batches are read and encoded on the worker thread. */
  get usesWorker(): boolean {
    return this.worker !== null;
  }

  /** Starts the loop. */
  start(): void {
    this.updateGauges();
    this.loop = this.run().catch((err: unknown) => {
      // The loop handles store errors itself; reaching this is a bug or a broken spool.
      this.status = { ok: false, error: `archive writer stopped: ${(err as Error).message}` };
      this.log.error({ err }, 'archive writer stopped unexpectedly');
    });
  }

  /** Tells the loop that rows were spooled. */
  notify(): void {
    this.updateGauges();
    if (this.wake && this.spool.pendingRows >= this.wantRows) this.wake();
  }

  /** Store reachability as seen by the last insert or probe. */
  get storeStatus(): StoreStatus {
    return this.status;
  }

  /** Records the result of an out-of-band probe (the archive pings an idle store). */
  reportProbe(ok: boolean, error: string | null): void {
    if (ok && this.failures === 0) this.status = { ok: true, error: null };
    if (!ok) this.status = { ok: false, error };
  }

  /**
   * Inserts what is spooled without waiting for `batchMs`, until the spool is empty or
   * `deadline` (epoch ms) passes, then ends the loop. Resolves when the loop has ended.
   */
  async stop(deadline: number): Promise<void> {
    this.stopping = true;
    this.deadline = deadline;
    this.wake?.();
    await this.loop;
  }

  private async run(): Promise<void> {
    let ahead: Promise<BatchWork | null> | null = null;
    while (!this.shouldExit()) {
      const work = await (ahead ?? this.nextBatch());
      ahead = null;
      if (!work) continue;
      // While a backlog waits, the next batch is read and encoded while this one is
      // inserted: on a busy server both mostly wait for turns of the event loop (the insert
      // runs on the engine's threads), and one after the other they fell behind the pings.
      if (this.spool.pendingRows - work.batch.rows >= this.opts.batchRows) {
        ahead = this.prepare(work.batch.next);
        // Its failure is seen when it is awaited; a loop that exits first never awaits it.
        ahead.catch(() => undefined);
      }
      while (!(await this.insert(work))) {
        if (this.shouldExit()) return;
        await this.sleep(this.backoff(), Number.POSITIVE_INFINITY);
        if (this.shouldExit()) return;
      }
    }
  }

  private shouldExit(): boolean {
    return this.stopping && (this.spool.pendingRows === 0 || this.opts.now() >= this.deadline);
  }

  /** Waits until a batch is due, then reads and encodes it; null when woken with nothing to do. */
  private async nextBatch(): Promise<BatchWork | null> {
    if (this.spool.pendingRows === 0) {
      await this.sleep(Number.POSITIVE_INFINITY, 1);
      return null;
    }
    const oldest = this.spool.oldestAt ?? this.opts.now();
    const due = oldest + this.opts.batchMs - this.opts.now();
    if (!this.stopping && this.spool.pendingRows < this.opts.batchRows && due > 0) {
      await this.sleep(due, this.opts.batchRows);
    }
    if (this.shouldExit()) return null;
    const work = await this.prepare();
    if (!work) {
      // Counted rows still being fsynced: they are announced again once durable.
      await this.sleep(this.opts.batchMs, 1);
    }
    return work;
  }

  /**
   * Reads and encodes the batch at `from` (default: the checkpoint), on the worker thread
   * when there is one; null when there is none. A worker that dies costs nothing but the
   * time: nothing was committed, so this batch is read again on the main thread and the
   * next request starts a new thread.
   */
  private async prepare(from?: LogPosition): Promise<BatchWork | null> {
    const worker = this.worker;
    if (worker) {
      const range = this.spool.readRange(from);
      try {
        const batch = await worker.read({ ...range, maxRows: this.opts.batchRows });
        this.workerDeaths = 0;
        if (!batch) return null;
        this.spool.noteRead(range.from, batch.oldestAt);
        const parts = batch.parts.map((p) => ({ ...p, columns: columnsOf(p.table), body: p.body as Buffer }));
        return {
          batch: {
            from: batch.from,
            rows: batch.rows,
            next: batch.next,
            oldestAt: batch.oldestAt,
            newestAt: batch.newestAt,
          },
          parts,
          rejected: batch.rejected,
          done: parts.map(() => false),
          rejectedDone: false,
        };
      } catch (err) {
        if (!(err instanceof WorkerDiedError)) throw err;
        this.workerDied(worker, err);
      }
    }
    return prepareHere(this.spool, this.opts.batchRows, from);
  }

  private workerDied(worker: BatchWorker, err: WorkerDiedError): void {
    this.metrics.archiveWorkerDeaths.inc();
    this.workerDeaths++;
    if (this.workerDeaths < MAX_WORKER_DEATHS) {
      this.log.error(
        { err },
        'archive: the batch worker thread died; reading this batch on the main thread, starting a new thread for the next',
      );
      return;
    }
    // A thread that cannot live (out of memory, a broken install) must not cost a restart per batch.
    this.log.error(
      { err, deaths: this.workerDeaths },
      'archive: the batch worker thread died again; reading and encoding on the main thread from now on',
    );
    if (this.worker === worker) this.worker = null;
    worker.close().catch(() => undefined);
  }

  /** Stops the worker thread, if any (after `stop`). */
  async closeWorker(): Promise<void> {
    const worker = this.worker;
    this.worker = null;
    await worker?.close();
  }

  /** Inserts what is left of one batch and commits it; false when it must be retried. */
  private async insert(work: BatchWork): Promise<boolean> {
    // The rate window opens when work starts, so the first batch's own time counts.
    if (this.progress.at === 0) this.progress.at = this.opts.now();
    const { batch, parts: tables, rejected } = work;
    try {
      if (!work.rejectedDone) {
        // Retrying cannot fix these; keeping them would block the spool forever.
        await this.setAsideUnencodable(rejected);
        work.rejectedDone = true;
      }
      if (!this.schemaReady) {
        await this.schema();
        this.schemaReady = true;
      }
      for (let i = 0; i < tables.length; i++) {
        if (work.done[i]) continue;
        const t = tables[i]!;
        const stopTimer = this.metrics.insertLatency.startTimer();
        try {
          await this.store.insert(t.table, t.columns, t.body);
          this.metrics.rowsArchived.inc({ table: t.table }, t.rows);
        } catch (err) {
          if (classifyStoreFailure(err).kind === 'transient') throw err;
          await this.setAsideRefused(t, await this.recordsOf(batch, t), err);
        } finally {
          stopTimer();
        }
        work.done[i] = true;
      }
    } catch (err) {
      this.failures++;
      this.metrics.insertFailures.inc();
      // The store may have lost the tables (a new server, UNKNOWN_TABLE): the retry creates them first.
      this.schemaReady = false;
      // An outage is not drain time: the rate window restarts with the next attempt.
      this.progress = { at: 0, rows: 0, logged: this.progress.logged };
      this.status = { ok: false, error: (err as Error).message };
      // Log the first failure of an outage, then only every tenth, not every retry.
      if (this.failures === 1 || this.failures % 10 === 0) {
        this.log.warn(
          { err, failures: this.failures, spooledRows: this.spool.pendingRows },
          'archive insert failed; rows stay in the spool and will be retried',
        );
      }
      return false;
    }
    try {
      await this.spool.commit(batch);
    } catch (err) {
      // The rows landed but the checkpoint did not move (e.g. disk full): inserting the
      // batch again on retry is harmless, losing the loop would not be.
      this.failures++;
      this.status = { ok: false, error: `spool checkpoint failed: ${(err as Error).message}` };
      this.log.error({ err }, 'archive: could not save the spool checkpoint; the batch will be inserted again');
      return false;
    }
    if (this.failures > 0) {
      this.log.info({ failures: this.failures }, 'archive store reachable again');
    }
    this.failures = 0;
    this.status = { ok: true, error: null };
    this.updateGauges();
    this.logProgress(batch.rows);
    return true;
  }

  /**
   * The records behind a part: at hand when the batch was read on the main thread, else
   * read from the spool again (the batch is not committed yet, so its rows are still there)
   * and encoded the same way, which puts the same records in the same table and day.
   */
  private async recordsOf(batch: BatchRange, part: Part): Promise<ArchiveRecord[]> {
    if (part.records) return part.records;
    const again = await this.spool.readBatch(Number.POSITIVE_INFINITY, batch.from, new WorkSlices(), batch.next);
    const same = encodeBatch(again?.records ?? []).tables.find((t) => t.table === part.table && t.day === part.day);
    if (!same || same.rows !== part.rows) {
      throw new Error(
        `archive: the spool no longer holds the ${part.rows} ${part.table} rows of ${part.day} the store refused`,
      );
    }
    return same.records;
  }

  /** Moves rows the store refused for good to the dead-letter folder, with a log line and the metric. */
  private async setAsideRefused(t: Part, records: ArchiveRecord[], err: unknown): Promise<void> {
    const { code } = classifyStoreFailure(err);
    const reason = (err as Error).message;
    const file = await this.opts.deadLetters.add({
      at: this.opts.now(),
      store: this.store.name,
      table: t.table,
      day: t.day,
      code,
      reason,
      records,
    });
    this.metrics.deadLetterRows.inc({ table: t.table }, t.rows);
    this.log.error(
      { table: t.table, day: t.day, rows: t.rows, code, reason, file, dir: this.opts.deadLetters.dir },
      'archive: the store refused rows for a reason retrying cannot fix; moved them to the dead-letter folder (replay with npm run replay-dead-letter)',
    );
  }

  /** Moves records that could not be encoded to the dead-letter folder, one file per table. */
  private async setAsideUnencodable(rejected: EncodedBatch['rejected']): Promise<void> {
    const byTable = new Map<string, { records: ArchiveRecord[]; reason: string }>();
    for (const r of rejected) {
      const table = String(r.record.table);
      const group = byTable.get(table) ?? { records: [], reason: r.reason };
      group.records.push(r.record);
      byTable.set(table, group);
    }
    for (const [table, group] of byTable) {
      const file = await this.opts.deadLetters.add({
        at: this.opts.now(),
        store: 'encoder',
        table,
        day: null,
        code: null,
        reason: group.reason,
        records: group.records,
      });
      this.metrics.deadLetterRows.inc({ table }, group.records.length);
      this.log.error(
        { table, rows: group.records.length, reason: group.reason, file, dir: this.opts.deadLetters.dir },
        'archive: records that cannot be encoded moved to the dead-letter folder',
      );
    }
  }

  /** While a backlog larger than one batch drains, logs rows left and rows/s every few seconds. */
  private logProgress(rows: number): void {
    const now = this.opts.now();
    const left = this.spool.pendingRows;
    this.progress.rows += rows;
    const elapsed = now - this.progress.at;
    if (left > this.opts.batchRows && elapsed > 0 && elapsed >= this.opts.progressEveryMs) {
      const rowsPerSec = Math.round((this.progress.rows * 1000) / elapsed);
      this.log.info({ rowsLeft: left, rowsPerSec }, 'archive: draining spool backlog');
      this.progress = { at: now, rows: 0, logged: true };
    } else if (left === 0) {
      if (this.progress.logged) this.log.info('archive: spool backlog drained');
      this.progress = { at: 0, rows: 0, logged: false };
    }
  }

  private backoff(): number {
    const base = Math.min(this.opts.maxBackoffMs, this.opts.minBackoffMs * 2 ** Math.min(20, this.failures - 1));
    // Jitter keeps several nodes from retrying against a recovering server in lockstep.
    return base * (0.8 + Math.random() * 0.4);
  }

  /**
   * Sleeps up to `ms`, or until at least `rows` are spooled (notify), or until stop. While
   * stopping, no sleep outlasts the deadline.
   */
  private sleep(ms: number, rows: number): Promise<void> {
    const limit = this.stopping ? Math.min(ms, this.deadline - this.opts.now()) : ms;
    return new Promise((resolve) => {
      let timer: NodeJS.Timeout | null = null;
      const done = (): void => {
        if (timer) clearTimeout(timer);
        this.wake = null;
        resolve();
      };
      if (Number.isFinite(limit)) timer = setTimeout(done, Math.max(0, limit));
      this.wantRows = rows;
      this.wake = done;
    });
  }

  /** Sets the spool gauges (rows, bytes, age of the oldest row); also called periodically so the age keeps rising during an outage. */
  updateGauges(): void {
    this.metrics.spoolRows.set(this.spool.pendingRows);
    this.metrics.spoolBytes.set(this.spool.diskBytes);
    const oldest = this.spool.oldestAt;
    this.metrics.oldestUnarchivedAge.set(oldest === null ? 0 : Math.max(0, (this.opts.now() - oldest) / 1000));
  }
}
