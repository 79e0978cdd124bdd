/**
 * Reads and encodes the archive writer's batches on a worker thread. Under overload the
 * main thread's loop turns take tens of milliseconds each, and the writer's own work there
 * (reading the spool through the shared I/O threads, which queue behind every fsync,
 * decoding it and encoding the rows, a slice per turn) took most of a second per batch:
 * the archive fell behind exactly when traffic peaked. Here the thread reads the spool's
 * files with blocking reads and hands back the encoded bodies by transfer (no copy); the
 * main thread only inserts them (the store stays on the main thread: chDB loaded in a
 * worker crashed the process at exit) and commits.
 *
 * The thread holds no state the archive needs: it reads between positions the spool gives
 * it, which only ever name durable, unarchived data. If it dies, every request it had is
 * rejected with `WorkerDiedError` (the writer reads that batch on the main thread instead,
 * nothing is committed meanwhile) and the next request starts a new thread. It never keeps
 * the process alive while idle, and `close` ends it.
 */
import { Worker } from 'node:worker_threads';
import { WORKER_YOUNG_GENERATION_MB } from '../node-flags.js';
import type { LogPosition } from '../storage/append-log.js';
import type { ArchiveRecord } from './archive.js';
import type { TableName } from './schema.js';

/** What the main thread asks: up to about `maxRows` rows of the spool in `dir`, from `from`, never past `end`. */
export interface BatchRequest {
  id: number;
  dir: string;
  from: LogPosition;
  end: LogPosition;
  maxRows: number;
}

/** One table and day partition of a batch, encoded for an insert. */
export interface WorkerPart {
  table: TableName;
  day: string;
  rows: number;
  body: Uint8Array;
}

/** A batch read and encoded by the thread: where it lies in the spool, its bodies and the records it could not encode. */
export interface WorkerBatch {
  from: LogPosition;
  rows: number;
  next: LogPosition;
  oldestAt: number;
  newestAt: number;
  parts: WorkerPart[];
  rejected: { record: ArchiveRecord; reason: string }[];
}

/** The thread's answer to one request. */
export type BatchResponse =
  | { id: number; batch: WorkerBatch | null }
  | { id: number; error: { name: string; message: string } };

/** The thread ended (crashed, ran out of memory, was terminated) with requests of it unanswered. */
export class WorkerDiedError extends Error {
  constructor(reason: string) {
    super(`archive batch worker died: ${reason}`);
    this.name = 'WorkerDiedError';
  }
}

/** Starts a thread; tests hand in their own. */
export type SpawnWorker = () => Worker;

const WORKER_URL = new URL('./batch-worker-thread.js', import.meta.url);

interface Waiting {
  resolve: (batch: WorkerBatch | null) => void;
  reject: (err: Error) => void;
}

/** The main thread's side of the worker; see the module comment. */
export class BatchWorker {
  /** Threads that died so far. */
  deaths = 0;
  private worker: Worker | null = null;
  private nextId = 1;
  private readonly waiting = new Map<number, Waiting>();
  private closed = false;

  // No node options of the process: some are refused in a worker (`--input-type`) and
  // would kill every thread at start; the thread needs none.
  constructor(
    private readonly spawn: SpawnWorker = () =>
      new Worker(WORKER_URL, {
        execArgv: [],
        resourceLimits: { maxYoungGenerationSizeMb: WORKER_YOUNG_GENERATION_MB },
      }),
  ) {}

  /**
   * Starts the thread now rather than at the first batch: the node pays for it (about
   * 10 MiB resident) once, at start, and the first batch under load does not wait for a
   * thread to boot. Idle, it still never holds the process open.
   */
  warm(): void {
    if (!this.closed && this.worker === null) this.start();
  }

  /** Reads and encodes a batch on the thread (started if needed); null when the range holds no record. */
  read(req: Omit<BatchRequest, 'id'>): Promise<WorkerBatch | null> {
    if (this.closed) return Promise.reject(new Error('archive batch worker is closed'));
    const worker = this.worker ?? this.start();
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.waiting.set(id, { resolve, reject });
      // Kept alive only while it owes an answer: an idle thread never holds the process open.
      if (this.waiting.size === 1) worker.ref();
      worker.postMessage({ ...req, id } satisfies BatchRequest);
    });
  }

  private start(): Worker {
    const worker = this.spawn();
    worker.unref();
    worker.on('message', (m: BatchResponse) => this.answer(worker, m));
    worker.on('error', (err) => this.died(worker, err.message));
    worker.on('exit', (code) => this.died(worker, `exited with code ${code}`));
    this.worker = worker;
    return worker;
  }

  private answer(worker: Worker, m: BatchResponse): void {
    const w = this.waiting.get(m.id);
    if (!w) return;
    this.waiting.delete(m.id);
    if (this.waiting.size === 0) worker.unref();
    if ('error' in m) {
      // The same error the main thread's read would have thrown (e.g. a corrupt spool).
      const err = new Error(m.error.message);
      err.name = m.error.name;
      w.reject(err);
      return;
    }
    const { batch } = m;
    // Transferred bodies arrive as plain Uint8Arrays; a Buffer over the same memory, no copy.
    if (batch) for (const p of batch.parts) p.body = Buffer.from(p.body.buffer, p.body.byteOffset, p.body.byteLength);
    w.resolve(batch);
  }

  private died(worker: Worker, reason: string): void {
    // 'error' is followed by 'exit', and a closed or replaced thread is no news.
    if (this.worker !== worker) return;
    this.worker = null;
    if (!this.closed) this.deaths++;
    const err = this.closed ? new Error('archive batch worker is closed') : new WorkerDiedError(reason);
    for (const w of this.waiting.values()) w.reject(err);
    this.waiting.clear();
  }

  /** Ends the thread; requests still waiting are rejected. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const worker = this.worker;
    if (!worker) return;
    const exited = new Promise((resolve) => worker.once('exit', resolve));
    await worker.terminate();
    await exited;
    this.died(worker, 'closed');
  }
}
