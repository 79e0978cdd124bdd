/**
 * The main thread's side of a helper thread (the archive's batch reader, the webhook
 * sender): one thread at a time, started when first needed and again after it dies, with
 * the requests posted to it matched to their answers by id.
 *
 * - A thread keeps the process alive only while it owes an answer: a node that exits
 *   without closing its helpers does not hang on an idle one.
 * - When the current thread dies (an uncaught error, an exit, or `kill` by an owner that
 *   saw it stop answering), the death is counted and the owner decides what its waiters
 *   fail with; the next request starts a new thread. The thread's state is never needed
 *   again: owners post only requests a new thread can serve.
 * - `close` ends the thread; what still waits fails with the owner's closed error.
 *
 * What a request and an answer look like, batching and restart pacing are the owner's.
 */
import { Worker, type WorkerOptions } from 'node:worker_threads';
import { WORKER_YOUNG_GENERATION_MB } from './node-flags.js';

/** Starts a thread running `file` with the young generation every helper thread gets (node-flags.ts). */
export function spawnThread(file: URL, options: WorkerOptions = {}): Worker {
  return new Worker(file, {
    ...options,
    resourceLimits: { maxYoungGenerationSizeMb: WORKER_YOUNG_GENERATION_MB },
  });
}

/** A request owed an answer; owners add what they resolve it with. */
export interface Waiter {
  fail(err: Error): void;
}

/** What the owner tells the client. */
export interface WorkerClientOptions<M, W extends Waiter> {
  /** Starts a thread (tests hand in their own). */
  spawn(): Worker;
  /** Settles the waiters one message of the thread answers, each taken out by its id. */
  answer(message: M, take: (id: number) => W | undefined): void;
  /**
   * The current thread died, of its 'error' (an Error) or for the reason given (its exit
   * code, or `kill`'s why). `fail` fails every waiter it held; the owner calls it with its
   * own error, in the order it needs (e.g. log how many waited first, restart after).
   */
  died(cause: Error | string, fail: (err: Error) => void): void;
  /** What waiters get when the client is closed. */
  closedError(): Error;
}

/** See the module comment. */
export class WorkerClient<M, W extends Waiter> {
  /** Threads that died so far (a closed one not counted). */
  deaths = 0;
  private current: Worker | null = null;
  private readonly waiting = new Map<number, W>();
  /** Whether the current thread is ref'd. */
  private held = false;
  private lastId = 0;
  private isClosed = false;

  constructor(private readonly opts: WorkerClientOptions<M, W>) {}

  /** The running thread, or null while none runs. */
  get thread(): Worker | null {
    return this.current;
  }

  get closed(): boolean {
    return this.isClosed;
  }

  /** Requests posted and not answered. */
  get pending(): number {
    return this.waiting.size;
  }

  /** Those requests' waiters, oldest first. */
  waiters(): IterableIterator<W> {
    return this.waiting.values();
  }

  /** An id no request of this client had. */
  nextId(): number {
    return ++this.lastId;
  }

  /** The running thread, started if none runs; null once closed. */
  start(): Worker | null {
    if (this.isClosed) return null;
    if (this.current !== null) return this.current;
    const worker = this.opts.spawn();
    worker.on('message', (m: M) => {
      if (this.current === worker) this.answer(m);
    });
    worker.on('error', (err) => this.died(worker, err));
    worker.on('exit', (code) => this.died(worker, `exited with code ${code}`));
    // After the listeners: adding one refs the thread again.
    worker.unref();
    this.held = false;
    this.current = worker;
    return worker;
  }

  /**
   * Posts `message` to the thread (started if none runs), which owes an answer for each of
   * `waits` by id. Once closed, they fail with the closed error and nothing is posted.
   */
  post(message: unknown, waits: Iterable<readonly [number, W]>): void {
    const worker = this.start();
    if (worker === null) {
      const err = this.opts.closedError();
      for (const [, w] of waits) w.fail(err);
      return;
    }
    for (const [id, w] of waits) this.waiting.set(id, w);
    this.holdWhileOwed();
    worker.postMessage(message);
  }

  /** Ends the current thread as dead (it stopped answering): its waiters fail, the next request starts another. */
  kill(why: string): void {
    if (this.current !== null) this.died(this.current, why);
  }

  /** Ends the thread; requests still waiting fail with the closed error. */
  async close(): Promise<void> {
    if (this.isClosed) return;
    this.isClosed = true;
    const worker = this.current;
    this.current = null;
    this.failAll(this.opts.closedError());
    if (worker === null) return;
    const exited = new Promise((resolve) => worker.once('exit', resolve));
    await worker.terminate();
    await exited;
  }

  private answer(m: M): void {
    this.opts.answer(m, (id) => {
      const w = this.waiting.get(id);
      if (w !== undefined) this.waiting.delete(id);
      return w;
    });
    this.holdWhileOwed();
  }

  /**
   * Refs the thread while it owes an answer (as a request of Node's own client would) and
   * unrefs it when idle.
   */
  private holdWhileOwed(): void {
    const worker = this.current;
    if (worker === null) return;
    const hold = this.waiting.size > 0;
    if (hold === this.held) return;
    this.held = hold;
    if (hold) worker.ref();
    else worker.unref();
  }

  private died(worker: Worker, cause: Error | string): void {
    // 'error' is followed by 'exit', and a closed or replaced thread is no news.
    if (this.current !== worker) return;
    this.current = null;
    // A stuck thread still runs; one that crashed is ending anyway.
    void worker.terminate();
    this.deaths++;
    this.opts.died(cause, (err) => this.failAll(err));
  }

  private failAll(err: Error): void {
    const waiters = [...this.waiting.values()];
    this.waiting.clear();
    for (const w of waiters) w.fail(err);
  }
}
