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
 * - The thread's lifecycle (ref'd while owed, answers by id, death, close) is
 *   worker-client.ts's; attempts not yet posted stay in this module's queue.
 */
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import { spawnThread, type Waiter, WorkerClient } from '../worker-client.js';
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
  /** The worker thread's nice value (WEBHOOK_THREAD_NICE); 0 when not given. */
  nice?: number;
  /** The worker's script (tests start a faulty one); send-worker.js by default. */
  workerFile?: URL;
  /** STUCK_GRACE_MS unless given (tests). */
  stuckGraceMs?: number;
}

interface Waiting extends Waiter {
  resolve(result: SendResult): void;
  postedAt: number;
}

/** An operation as queued, until this turn's batch is made (send-worker.ts's `SendBatch`). */
type QueuedOp =
  | { k: 'open'; pool: number; url: string; secret: string }
  | {
      k: 'send';
      id: number;
      pool: number;
      ev: string;
      type: string;
      t: number;
      body: string;
      resolve: Waiting['resolve'];
    }
  | { k: 'close'; pool: number };

/** An attempt that fails with `err`'s message instead of rejecting: the delivery retries it. */
function waiting(resolve: Waiting['resolve'], postedAt: number): Waiting {
  return { resolve, postedAt, fail: (err) => resolve({ ok: false, error: err.message }) };
}

/** See the module comment. */
export class WorkerSenders implements SenderPool {
  /** The worker and the attempts posted to it (oldest first, `postedAt` when). */
  private readonly client: WorkerClient<SendResults, Waiting>;
  private startedAt = Number.NEGATIVE_INFINITY;
  private restartTimer: NodeJS.Timeout | null = null;
  private watch: NodeJS.Timeout | null = null;
  /** Operations not yet posted (this turn's batch, or all since the worker died while a restart waits). */
  private queue: QueuedOp[] = [];
  private flushScheduled = false;
  /** Open webhooks, opened again in a new worker. */
  private readonly pools = new Map<number, { url: string; secret: string }>();
  private nextPool = 1;
  /** When the last check for a stuck worker ran. */
  private lastCheck = performance.now();
  private readonly data: SendWorkerData;
  private readonly stuckGraceMs: number;

  constructor(
    opts: WorkerSendersOptions,
    private readonly log: Logger,
    private readonly metrics?: Metrics,
  ) {
    const file = opts.workerFile ?? new URL('./send-worker.js', import.meta.url);
    this.stuckGraceMs = opts.stuckGraceMs ?? STUCK_GRACE_MS;
    this.data = {
      timeoutMs: opts.timeoutMs,
      allowPrivate: opts.allowPrivate,
      maxSockets: opts.maxSockets,
      nice: opts.nice ?? 0,
    };
    this.client = new WorkerClient({
      spawn: () => spawnThread(file, { workerData: this.data }),
      answer: (batch, take) => {
        if (batch.niceError !== undefined) {
          log.warn(
            { err: batch.niceError, nice: this.data.nice },
            'webhook sender: could not lower its thread priority',
          );
        }
        for (let i = 0; i < batch.ids.length; i++) {
          const w = take(batch.ids[i] as number);
          if (w === undefined) continue;
          const error = batch.errors[i] ?? null;
          w.resolve(error === null ? { ok: true } : { ok: false, error });
        }
      },
      died: (cause, fail) => this.lost(typeof cause === 'string' ? cause : `crashed: ${cause.message}`, fail),
      closedError: () => new Error('the webhook sender is closed'),
    });
  }

  open(url: URL, secret: string): WebhookSender {
    const pool = this.nextPool++;
    const href = url.href;
    this.pools.set(pool, { url: href, secret });
    this.enqueue({ k: 'open', pool, url: href, secret });
    return {
      send: (ev, body, t) => {
        if (this.client.closed) return Promise.resolve({ ok: false, error: 'the webhook sender is closed' });
        if (!this.pools.has(pool)) return Promise.resolve({ ok: false, error: 'the webhook was closed' });
        const id = this.client.nextId();
        return new Promise<SendResult>((resolve) => {
          this.enqueue({ k: 'send', id, pool, ev: ev.id, type: ev.type, t, body, resolve });
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
    if (this.client.closed) return;
    if (this.restartTimer !== null) clearTimeout(this.restartTimer);
    if (this.watch !== null) clearInterval(this.watch);
    const queued = this.queue;
    this.queue = [];
    const closing = this.client.close();
    for (const op of queued) if (op.k === 'send') op.resolve({ ok: false, error: 'the webhook sender is closed' });
    await closing;
  }

  /** The worker's thread id, or null while none runs (tests). */
  get threadId(): number | null {
    return this.client.thread?.threadId ?? null;
  }

  private enqueue(op: QueuedOp): void {
    if (this.client.closed) return;
    this.queue.push(op);
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    setImmediate(() => this.flush());
  }

  private flush(): void {
    this.flushScheduled = false;
    if (this.client.closed || this.queue.length === 0) return;
    if (this.client.thread === null && !this.start()) return; // restarting soon: the queue waits for it
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
    const waits: [number, Waiting][] = [];
    // The same event to several webhooks (one body string per event): copied once.
    const eventAt = new Map<string, number>();
    let i = 0;
    for (const op of queued) {
      if (op.k === 'open') batch.opens.push({ pool: op.pool, url: op.url, secret: op.secret });
      else if (op.k === 'close') batch.closes.push(op.pool);
      else {
        waits.push([op.id, waiting(op.resolve, now)]);
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
    this.client.post(batch, waits);
  }

  /** Starts a worker with every open webhook, or schedules that and answers false. */
  private start(): boolean {
    const now = performance.now();
    if (now - this.startedAt < RESTART_MIN_MS) {
      this.restartTimer ??= setTimeout(
        () => {
          this.restartTimer = null;
          this.flush();
        },
        RESTART_MIN_MS - (now - this.startedAt),
      ).unref();
      return false;
    }
    this.startedAt = now;
    this.client.start();
    // Every open webhook first (a restart); the worker ignores an open of one it has.
    const opens: QueuedOp[] = [...this.pools].map(([pool, p]) => ({ k: 'open', pool, url: p.url, secret: p.secret }));
    this.queue = [...opens, ...this.queue];
    if (this.watch === null) {
      this.lastCheck = performance.now();
      this.watch = setInterval(() => this.checkStuck(), WATCH_MS).unref();
    }
    return true;
  }

  /** The worker died or stopped answering: fail what it held, start another for what waits. */
  private lost(why: string, fail: (err: Error) => void): void {
    this.metrics?.webhookSenderRestarts.inc();
    this.log.error({ why, attempts: this.client.pending }, 'webhook sender worker lost; its attempts will be retried');
    fail(new Error(`the webhook sender worker ${why}`));
    // Attempts queued meanwhile go to the next worker (started now, or RESTART_MIN_MS after the last).
    if (this.queue.length > 0) this.flush();
  }

  private checkStuck(): void {
    const now = performance.now();
    const gap = now - this.lastCheck;
    this.lastCheck = now;
    if (this.client.thread === null) return;
    if (gap > 3 * WATCH_MS) {
      // The whole process stood still (SIGSTOP, a stall), the worker with it: that time is not the worker's fault.
      for (const w of this.client.waiters()) w.postedAt += gap - WATCH_MS;
      return;
    }
    const limit = this.data.timeoutMs + this.stuckGraceMs;
    // Oldest first: the first one posted decides.
    for (const w of this.client.waiters()) {
      if (now - w.postedAt > limit) this.client.kill(`did not answer within ${limit} ms`);
      return;
    }
  }
}
