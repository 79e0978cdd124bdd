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
 * the process alive while idle, and `close` ends it (that lifecycle: worker-client.ts).
 */
import type { Worker } from 'node:worker_threads';
import type { LogPosition } from '../storage/append-log.js';
import { spawnThread, type Waiter, WorkerClient } from '../worker-client.js';
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

interface Waiting extends Waiter {
  resolve(batch: WorkerBatch | null): void;
}

const closedError = (): Error => new Error('archive batch worker is closed');

/** The main thread's side of the worker; see the module comment. */
export class BatchWorker {
  private readonly client: WorkerClient<BatchResponse, Waiting>;

  // No node options of the process: some are refused in a worker (`--input-type`) and
  // would kill every thread at start; the thread needs none.
  constructor(spawn: SpawnWorker = () => spawnThread(WORKER_URL, { execArgv: [] })) {
    this.client = new WorkerClient({
      spawn,
      answer,
      died: (cause, fail) => fail(new WorkerDiedError(typeof cause === 'string' ? cause : cause.message)),
      closedError,
    });
  }

  /** Threads that died so far. */
  get deaths(): number {
    return this.client.deaths;
  }

  /**
   * Starts the thread now rather than at the first batch: the node pays for it (about
   * 10 MiB resident) once, at start, and the first batch under load does not wait for a
   * thread to boot. Idle, it still never holds the process open.
   */
  warm(): void {
    this.client.start();
  }

  /** Reads and encodes a batch on the thread (started if needed); null when the range holds no record. */
  read(req: Omit<BatchRequest, 'id'>): Promise<WorkerBatch | null> {
    if (this.client.closed) return Promise.reject(closedError());
    const id = this.client.nextId();
    return new Promise((resolve, reject) => {
      this.client.post({ ...req, id } satisfies BatchRequest, [[id, { resolve, fail: reject }]]);
    });
  }

  /** Ends the thread; requests still waiting are rejected. */
  close(): Promise<void> {
    return this.client.close();
  }
}

function answer(m: BatchResponse, take: (id: number) => Waiting | undefined): void {
  const w = take(m.id);
  if (!w) return;
  if ('error' in m) {
    // The same error the main thread's read would have thrown (e.g. a corrupt spool).
    const err = new Error(m.error.message);
    err.name = m.error.name;
    w.fail(err);
    return;
  }
  const { batch } = m;
  // Transferred bodies arrive as plain Uint8Arrays; a Buffer over the same memory, no copy.
  if (batch) for (const p of batch.parts) p.body = Buffer.from(p.body.buffer, p.body.byteOffset, p.body.byteLength);
  w.resolve(batch);
}
