/**
 * Sends a device's fixes the way PROTOCOL.md asks a device under load to: each fix as a
 * `ping` while the server takes them, and when it answers `rate_limited` (or
 * `unavailable`) the refused fix and every later one wait `retryMs` (1 s when none is
 * given), then go out together in `batch`es. A fix leaves the
 * queue only when an `ack` (or an error that retrying cannot fix) answered it, so nothing
 * the server did not acknowledge is dropped; a connection that closes meanwhile keeps the
 * queue until it is open again.
 */
import { type BatchPoint, ErrorCode, MAX_BATCH_POINTS, type PingMsg } from '../protocol.js';
import type { DeviceClient, Reply } from './client.js';

/** One fix as a `ping` carries it. */
export type Fix = Omit<PingMsg, 't' | 'seq'>;

/** Wait used when a `rate_limited` answer gives no `retryMs` (an older server). */
const DEFAULT_RETRY_MS = 1000;

interface Queued {
  point: BatchPoint;
  /** Resolves the `send`/`sendAll` promise of this fix with the answer that carried it. */
  done: (reply: Reply) => void;
}

function toPoint(f: Fix): BatchPoint {
  const p: BatchPoint = [f.ts, f.lat, f.lon];
  // Trailing fields only: a point cannot skip a position, so stop at the first one missing.
  if (f.acc !== undefined) {
    p.push(f.acc);
    if (f.spd !== undefined) {
      p.push(f.spd);
      if (f.hdg !== undefined) p.push(f.hdg);
    }
  }
  return p;
}

/**
 * An answer that asks to send again later: `rate_limited` (with `retryMs`), or
 * `unavailable` (the node cannot store data right now; nothing was stored).
 */
function isRetryLater(reply: Reply): reply is Reply & { t: 'err'; retryMs?: number } {
  return reply.t === 'err' && (reply.code === ErrorCode.rateLimited || reply.code === ErrorCode.unavailable);
}

/** A device's outgoing fixes, honouring the server's `retryMs`. */
export class FixUplink {
  private readonly queue: Queued[] = [];
  private holdUntil = 0;
  private timer: NodeJS.Timeout | undefined;
  private flushing = false;
  private stopped = false;
  /** `rate_limited` or `unavailable` answers received (pings and batches), for tools that report them. */
  rateLimited = 0;
  private readonly onOpen = (): void => this.schedule();

  constructor(
    private readonly client: DeviceClient,
    private readonly maxBatch = MAX_BATCH_POINTS,
  ) {
    client.on('open', this.onOpen);
  }

  /** Fixes waiting to be sent or answered. */
  get pending(): number {
    return this.queue.length;
  }

  /**
   * Sends one fix: as a `ping` when nothing waits, else into the next `batch`. Resolves with
   * the answer that finally carried it: an `ack` of the ping or of its batch, or an error
   * that retrying cannot fix (such as `bad_request`).
   */
  send(fix: Fix): Promise<Reply> {
    if (this.queue.length > 0 || this.flushing || Date.now() < this.holdUntil || !this.client.isOpen) {
      return this.enqueue([toPoint(fix)]).then((replies) => replies[0] as Reply);
    }
    return this.client.ping(fix).then(
      (reply) => {
        if (!isRetryLater(reply)) return reply;
        this.hold(reply.retryMs);
        return this.enqueue([toPoint(fix)]).then((replies) => replies[0] as Reply);
      },
      // Closed before its answer: keep the fix for the next connection.
      () => this.enqueue([toPoint(fix)]).then((replies) => replies[0] as Reply),
    );
  }

  /** Sends an offline backlog in batches; resolves with the answer of each point, in order. */
  sendAll(points: BatchPoint[]): Promise<Reply[]> {
    return this.enqueue(points);
  }

  /** Stops timers and listeners; queued fixes stay unanswered. */
  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
    this.timer = undefined;
    this.client.off('open', this.onOpen);
  }

  private enqueue(points: BatchPoint[]): Promise<Reply[]> {
    const answers = points.map(
      (point) =>
        new Promise<Reply>((done) => {
          this.queue.push({ point, done });
        }),
    );
    this.schedule();
    return Promise.all(answers);
  }

  private hold(retryMs: number | undefined): void {
    this.rateLimited += 1;
    const wait = typeof retryMs === 'number' && Number.isFinite(retryMs) && retryMs > 0 ? retryMs : DEFAULT_RETRY_MS;
    this.holdUntil = Math.max(this.holdUntil, Date.now() + wait);
  }

  private schedule(): void {
    if (this.stopped || this.flushing || this.timer !== undefined || this.queue.length === 0) return;
    this.timer = setTimeout(
      () => {
        this.timer = undefined;
        void this.flush();
      },
      Math.max(0, this.holdUntil - Date.now()),
    );
  }

  /** Sends the queue in batches until it is empty, the server asks to wait, or the connection is gone. */
  private async flush(): Promise<void> {
    if (this.flushing) return;
    this.flushing = true;
    try {
      while (this.queue.length > 0 && !this.stopped && Date.now() >= this.holdUntil && this.client.isOpen) {
        const chunk = this.queue.splice(0, this.maxBatch);
        let reply: Reply;
        try {
          reply = await this.client.batch(chunk.map((q) => q.point));
        } catch {
          // Not answered: the points go back in front and wait for the next open.
          this.queue.unshift(...chunk);
          return;
        }
        if (isRetryLater(reply)) {
          this.queue.unshift(...chunk);
          this.hold(reply.retryMs);
          continue;
        }
        for (const q of chunk) q.done(reply);
      }
    } finally {
      this.flushing = false;
      // A later open (or the end of a hold) sends what is left.
      if (this.client.isOpen) this.schedule();
    }
  }
}
