/**
 * The webhook senders of a node on one worker thread (send-worker.ts), so that the HTTP
 * work of deliveries (connections, requests, answers) and their signatures cost the main
 * thread, which acks devices, only a queued record per attempt and a resolved promise per
 * answer.
 *
 * - Batches: the attempts (and opens and closes of webhooks) of one turn of the event loop
 *   go to the worker as one message, in columns, each event's body once however many
 *   webhooks it goes to; the worker answers in batches the same way.
 * - Each webhook has its own keep-alive connections in the worker (a receiver that hangs
 *   holds none of another webhook's sockets), refuses private addresses at every connection
 *   unless allowed, and times an attempt out after `timeoutMs`.
 * - Started with the first attempt, stopped by `close` (terminated). It keeps the process
 *   alive only while attempts wait for an answer, so a node that exits without closing its
 *   senders does not hang on an idle worker.
 * - If the worker dies (an uncaught error, or it stops answering: an attempt unanswered
 *   `timeoutMs` + STUCK_GRACE_MS after it was posted gets the worker terminated; time the
 *   whole process stood still, SIGSTOP or a stall, is not counted against it), every
 *   attempt it held fails with a message saying so (the delivery retries it on its schedule,
 *   so nothing is lost), the failure is logged and counted
 *   (`fieldtrack_webhook_sender_restarts_total`), and a new worker is started, at most one
 *   per RESTART_MIN_MS, with every open webhook opened again.
 */
import { Worker } from 'node:worker_threads';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import { WORKER_YOUNG_GENERATION_MB } from '../node-flags.js';
import type { HttpSenderOptions, SendResult } from './http-sender.js';
import type { SendBatch, SendResults, SendWorkerData } from './send-worker.js';
import type { SenderPool, WebhookSender } from './webhook-sender.js';

/** How long past its timeout an attempt may stay unanswered before the worker counts as stuck. */
export const STUCK_GRACE_MS = 5_000;
/** Least time between two starts of the worker. */
export const RESTART_MIN_MS = 1_000;
/** How often attempts are checked for a worker that stopped answering. */
const WATCH_MS = 1_000;

/** How the worker senders behave. */
export interface WorkerSendersOptions extends HttpSenderOptions {
  /** The worker's script (tests start a faulty one); send-worker.js by default. */
  workerFile?: URL;
  /** STUCK_GRACE_MS unless given (tests). */
  stuckGraceMs?: number;
}

interface Waiting {
  resolve(result: SendResult): void;
  postedAt: number;
}

/** An operation as queued, until this turn's batch is made (send-worker.ts's `SendBatch`). */
type QueuedOp =
  | { k: 'open'; pool: number; url: string; secret: string }
  | { k: 'send'; id: number; pool: number; ev: string; type: string; t: number; body: string }
  | { k: 'close'; pool: number };

/** See the module comment. */
export class WorkerSenders implements SenderPool {
  private worker: Worker | null = null;
  private startedAt = Number.NEGATIVE_INFINITY;
  private restartTimer: NodeJS.Timeout | null = null;
  private watch: NodeJS.Timeout | null = null;
  /** Operations not yet posted (this turn's batch). */
  private queue: QueuedOp[] = [];
  private flushScheduled = false;
  /** Attempts not answered, by id, oldest first (`postedAt` 0: not posted yet). */
  private readonly waiting = new Map<number, Waiting>();
  /** Open webhooks, opened again in a new worker. */
  private readonly pools = new Map<number, { url: string; secret: string }>();
  private nextPool = 1;
  private nextId = 1;
  private closed = false;
  /** Whether the current worker is ref'd (keeps the process alive). */
  private held = false;
  /** When the last check for a stuck worker ran. */
  private lastCheck = performance.now();
  private readonly file: URL;
  private readonly data: SendWorkerData;
  private readonly stuckGraceMs: number;

  constructor(
    opts: WorkerSendersOptions,
    private readonly log: Logger,
    private readonly metrics?: Metrics,
  ) {
    this.file = opts.workerFile ?? new URL('./send-worker.js', import.meta.url);
    this.stuckGraceMs = opts.stuckGraceMs ?? STUCK_GRACE_MS;
    this.data = { timeoutMs: opts.timeoutMs, allowPrivate: opts.allowPrivate, maxSockets: opts.maxSockets };
  }

  open(url: URL, secret: string): WebhookSender {
    const pool = this.nextPool++;
    const href = url.href;
    this.pools.set(pool, { url: href, secret });
    this.enqueue({ k: 'open', pool, url: href, secret });
    return {
      send: (ev, body, t) => {
        if (this.closed) return Promise.resolve({ ok: false, error: 'the webhook sender is closed' });
        if (!this.pools.has(pool)) return Promise.resolve({ ok: false, error: 'the webhook was closed' });
        const id = this.nextId++;
        return new Promise<SendResult>((resolve) => {
          this.waiting.set(id, { resolve, postedAt: 0 });
          this.enqueue({ k: 'send', id, pool, ev: ev.id, type: ev.type, t, body });
        });
      },
      close: () => {
        if (!this.pools.delete(pool)) return;
        this.enqueue({ k: 'close', pool });
      },
    };
  }

  /** Stops the worker; attempts still in flight fail. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.queue = [];
    if (this.restartTimer !== null) clearTimeout(this.restartTimer);
    if (this.watch !== null) clearInterval(this.watch);
    const worker = this.worker;
    this.worker = null;
    this.failWaiting('the webhook sender is closed');
    if (worker !== null) await worker.terminate();
  }

  /** The worker's thread id, or null while none runs (tests). */
  get threadId(): number | null {
    return this.worker?.threadId ?? null;
  }

  private enqueue(op: QueuedOp): void {
    if (this.closed) return;
    this.queue.push(op);
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    setImmediate(() => this.flush());
  }

  private flush(): void {
    this.flushScheduled = false;
    if (this.closed || this.queue.length === 0) return;
    const worker = this.worker ?? this.start();
    if (worker === null) return; // restarting soon: the queue waits for it
    const queued = this.queue;
    this.queue = [];
    const now = performance.now();
    let n = 0;
    for (const op of queued) if (op.k === 'send') n++;
    const batch: SendBatch = {
      opens: [],
      ids: new Float64Array(n),
      pools: new Int32Array(n),
      ts: new Float64Array(n),
      events: new Int32Array(n),
      evIds: [],
      types: [],
      bodies: [],
      closes: [],
    };
    // The same event to several webhooks (one body string per event): copied once.
    const eventAt = new Map<string, number>();
    let i = 0;
    for (const op of queued) {
      if (op.k === 'open') batch.opens.push({ pool: op.pool, url: op.url, secret: op.secret });
      else if (op.k === 'close') batch.closes.push(op.pool);
      else {
        const w = this.waiting.get(op.id);
        if (w !== undefined) w.postedAt = now;
        let at = eventAt.get(op.ev);
        if (at === undefined) {
          at = batch.bodies.push(op.body) - 1;
          batch.evIds.push(op.ev);
          batch.types.push(op.type);
          eventAt.set(op.ev, at);
        }
        batch.ids[i] = op.id;
        batch.pools[i] = op.pool;
        batch.ts[i] = op.t;
        batch.events[i] = at;
        i++;
      }
    }
    worker.postMessage(batch);
    this.holdWhileWaiting();
  }

  /**
   * Keeps the process alive while attempts wait for an answer (as a request of Node's own
   * client would), and not while the worker is idle: a node that exits without closing its
   * senders does not hang on the worker.
   */
  private holdWhileWaiting(): void {
    const worker = this.worker;
    if (worker === null) return;
    const hold = this.waiting.size > 0;
    if (hold === this.held) return;
    this.held = hold;
    if (hold) worker.ref();
    else worker.unref();
  }

  /** Starts a worker with every open webhook, or schedules that and answers null. */
  private start(): Worker | null {
    const now = performance.now();
    if (now - this.startedAt < RESTART_MIN_MS) {
      this.restartTimer ??= setTimeout(
        () => {
          this.restartTimer = null;
          this.flush();
        },
        RESTART_MIN_MS - (now - this.startedAt),
      ).unref();
      return null;
    }
    this.startedAt = now;
    const worker = new Worker(this.file, {
      workerData: this.data,
      resourceLimits: { maxYoungGenerationSizeMb: WORKER_YOUNG_GENERATION_MB },
    });
    this.worker = worker;
    // Every open webhook first (a restart); the worker ignores an open of one it has.
    const opens: QueuedOp[] = [...this.pools].map(([pool, p]) => ({ k: 'open', pool, url: p.url, secret: p.secret }));
    this.queue = [...opens, ...this.queue];
    worker.on('message', (batch: SendResults) => {
      if (this.worker !== worker) return;
      for (let i = 0; i < batch.ids.length; i++) {
        const id = batch.ids[i] as number;
        const w = this.waiting.get(id);
        if (w === undefined) continue;
        this.waiting.delete(id);
        const error = batch.errors[i] ?? null;
        w.resolve(error === null ? { ok: true } : { ok: false, error });
      }
      this.holdWhileWaiting();
    });
    worker.on('error', (err) => {
      if (this.worker === worker) this.lost(worker, `crashed: ${err.message}`);
    });
    worker.on('exit', (code) => {
      if (this.worker === worker) this.lost(worker, `exited with code ${code}`);
    });
    // Idle, the worker keeps nobody alive; see `holdWhileWaiting`. (After the listeners: adding one refs it again.)
    this.held = true;
    this.holdWhileWaiting();
    if (this.watch === null) {
      this.lastCheck = performance.now();
      this.watch = setInterval(() => this.checkStuck(), WATCH_MS).unref();
    }
    return worker;
  }

  /** The worker died or stopped answering: fail what it held, start another for what waits. */
  private lost(worker: Worker, why: string): void {
    this.worker = null;
    void worker.terminate();
    this.metrics?.webhookSenderRestarts.inc();
    this.log.error({ why, attempts: this.inFlight() }, 'webhook sender worker lost; its attempts will be retried');
    this.failWaiting(`the webhook sender worker ${why}`, true);
    // Attempts queued meanwhile go to the next worker (started now, or RESTART_MIN_MS after the last).
    if (this.queue.length > 0) this.flush();
  }

  /** Attempts posted to the worker and not answered. */
  private inFlight(): number {
    let n = 0;
    for (const w of this.waiting.values()) if (w.postedAt > 0) n++;
    return n;
  }

  /** Fails the attempts waiting for an answer: every one, or with `postedOnly` those the lost worker held. */
  private failWaiting(error: string, postedOnly = false): void {
    for (const [id, w] of this.waiting) {
      if (postedOnly && w.postedAt === 0) continue;
      this.waiting.delete(id);
      w.resolve({ ok: false, error });
    }
  }

  private checkStuck(): void {
    const now = performance.now();
    const gap = now - this.lastCheck;
    this.lastCheck = now;
    const worker = this.worker;
    if (worker === null) return;
    if (gap > 3 * WATCH_MS) {
      // The whole process stood still (SIGSTOP, a stall), the worker with it: that time is not the worker's fault.
      for (const w of this.waiting.values()) if (w.postedAt > 0) w.postedAt += gap - WATCH_MS;
      return;
    }
    const limit = this.data.timeoutMs + this.stuckGraceMs;
    for (const w of this.waiting.values()) {
      if (w.postedAt === 0) continue;
      if (now - w.postedAt > limit) this.lost(worker, `did not answer within ${limit} ms`);
      // Oldest first: the first one posted decides.
      return;
    }
  }
}
