/**
 * The customer streams of this node (`/t/<token>/stream`), fanned out per order: one
 * `Watch` per order with open streams holds the order, its technician's live position, the
 * ETA and the last event sent, and every stream of that order gets the same bytes. The
 * hub hears of changes from the actors (`LiveObserver`: positions and order changes,
 * after they are durable), so a ping reaches the page one event-loop turn after its ack
 * plus the ETA; a position of a technician nobody watches costs one Map lookup. In multi-node mode
 * a technician may run on another node, whose events do not come here: then `pollMs`
 * refreshes each watched order from the `Tracker` port (one read per order, not per stream).
 *
 * Cheap per ping while streams are open: a change computes the order's state and encodes its
 * SSE frame once, whatever the number of streams; the frames go out after the turn's device
 * acks (a timer, so the outbox's flush of acks runs first), at most FLUSH_BUDGET_MS (a
 * quarter of a millisecond) of writes per turn, the newest frame per order only (older
 * ones not yet sent are dropped).
 * Heartbeats go only to orders that would otherwise stay silent for `heartbeatMs`, checked
 * in steps so they do not all fall in one turn.
 *
 * Bounded: at most `maxStreams` streams on the node and `maxStreamsPerOrder` per order. A
 * stream ends (an SSE `gone` event) when its link dies: its `exp`, the order completed or
 * cancelled SHARE_LINGER_MIN ago, a revocation (made on this node or heard from another),
 * or the order leaving live state.
 */
import type { LiveObserver, Tracker } from '../actors/api.js';
import type { CancelTimer, Clock } from '../clock.js';
import type { Eta, EtaEstimator } from '../eta/eta.js';
import type { Logger } from '../log.js';
import { ErrorCode, type OrderView, type ShareState } from '../protocol.js';
import { type Fix, liveUntil, shareState } from './share-state.js';

/** One open stream, as the hub sees it; the gateway writes the bytes (and handles backpressure). */
export interface ShareSink {
  /**
   * Sends one SSE chunk: a state event (bytes, encoded once per order and shared by its
   * streams: never modified), a heartbeat comment or the `gone` event (strings).
   */
  write(chunk: string | Uint8Array): void;
  /** Ends the stream: the link is dead (a `gone` event was written just before). */
  end(): void;
}

export interface ShareHubDeps {
  tracker: Pick<Tracker, 'getOrder' | 'getTechnician'>;
  eta: EtaEstimator;
  clock: Clock;
  log: Logger;
  lingerMs: number;
  maxStreams: number;
  maxStreamsPerOrder: number;
  /** Refresh every watched order from the tracker this often (multi-node); 0: events only. */
  pollMs: number;
  /** No stream stays silent longer than this: an idle order's streams then get a comment. */
  heartbeatMs: number;
  /** Called with the number of open streams whenever it changes (a gauge). */
  onStreams?: (open: number) => void;
  /**
   * The last revocation of an order's links this node knows of (no I/O). Checked again as a
   * stream is registered, so a revocation heard while the stream was opening still ends it.
   */
  revokedAt: (order: string) => number | undefined;
}

/** The link a stream was opened with: when it was made and when it dies at the latest. */
export interface StreamLink {
  readonly iat: number;
  readonly exp: number;
}

/** One stream as its watch holds it: its link and the last state frame written to it. */
interface Stream extends StreamLink {
  sent: Uint8Array | null;
}

/**
 * Longest the hub writes state frames in one event-loop turn; the rest waits for the next.
 * Short, since a device ack that becomes ready meanwhile (its durable write landed) waits
 * for the slice to end: a write to a stream costs about 10-25 us, so this is a few orders'
 * streams per slice.
 */
const FLUSH_BUDGET_MS = 0.25;
/**
 * Heartbeats are checked this many times per `heartbeatMs`, so idle orders beat at spread
 * times; an order beats once it was silent for `heartbeatMs` less one step, so no stream is
 * silent for longer than about `heartbeatMs`.
 */
const BEAT_STEPS = 4;

/**
 * The answer to a link: its state, gone (`410`), or `unavailable` with why (`503`: the order
 * cannot be read now, as when its technician runs on another node and Redis is down).
 */
export type ShareAnswer = { live: true; state: ShareState } | { live: false; unavailable?: string };

/** Why a stream was not opened. */
export type OpenResult = 'opened' | 'gone' | 'unavailable' | 'node_full' | 'order_full';

/** The order could not be read now (a refusal other than `not_found`); the watch keeps what it had. */
class OrderUnreadable extends Error {}

/** The SSE event that tells a page its link died; the stream ends after it. */
export const GONE_EVENT = 'event: gone\ndata: {}\n\n';

interface Watch {
  readonly id: string;
  order: OrderView | null;
  fix: Fix | null;
  eta: Eta | null;
  /** Each stream with its link and what it was sent. */
  readonly sinks: Map<ShareSink, Stream>;
  /** The newest state event, so an unchanged state is not sent again. */
  chunk: string | null;
  /** `chunk` encoded once for every stream of the order. */
  frame: Uint8Array | null;
  /** When (performance.now()) the order's streams were last written a frame or a heartbeat. */
  lastWrite: number;
  /** Bumped by each change; an ETA that comes back after a newer change is dropped. */
  seq: number;
  timer: CancelTimer | null;
  /** A refresh is in flight: the next one waits its turn (a slow read must not pile up reads). */
  polling: boolean;
}

const eventOf = (state: ShareState): string => `data: ${JSON.stringify(state)}\n\n`;

/** See the module comment. */
export class ShareHub implements LiveObserver {
  private readonly watches = new Map<string, Watch>();
  private readonly byTech = new Map<string, Set<Watch>>();
  private open_ = 0;
  private readonly intervals: NodeJS.Timeout[] = [];
  /** Watches with a frame not yet written to their streams, and the timer that writes them. */
  private readonly dirty = new Set<Watch>();
  private flushTimer: NodeJS.Timeout | null = null;

  constructor(private readonly d: ShareHubDeps) {
    const beat = setInterval(() => this.heartbeat(), Math.max(1, Math.floor(d.heartbeatMs / BEAT_STEPS)));
    beat.unref();
    this.intervals.push(beat);
    if (d.pollMs > 0) {
      const poll = setInterval(() => this.poll(), d.pollMs);
      poll.unref();
      this.intervals.push(poll);
    }
  }

  /** Open streams on this node. */
  get streams(): number {
    return this.open_;
  }

  /** The state of order `id` for a link expiring at `exp`, read fresh (or from its watch). */
  async answer(id: string, exp: number): Promise<ShareAnswer> {
    let w = this.watches.get(id);
    if (w === undefined) {
      w = this.newWatch(id);
      try {
        await this.load(w);
      } catch (err) {
        if (err instanceof OrderUnreadable) return { live: false, unavailable: err.message };
        throw err;
      }
    }
    if (w.order === null || this.d.clock.now() >= liveUntil(w.order, exp, this.d.lingerMs)) return { live: false };
    const eta = await this.estimate(w);
    return { live: true, state: shareState(w.order, w.fix, eta) };
  }

  /** Opens a stream of order `id` for `link`; on `opened` its first event is written. */
  async open(id: string, link: StreamLink, sink: ShareSink): Promise<OpenResult> {
    if (this.open_ >= this.d.maxStreams) return 'node_full';
    let w = this.watches.get(id);
    if (w !== undefined && w.sinks.size >= this.d.maxStreamsPerOrder) return 'order_full';
    // Counted before the first await, so concurrent opens cannot pass the limit together.
    this.setOpen(this.open_ + 1);
    try {
      if (w === undefined) {
        w = this.newWatch(id);
        this.watches.set(id, w);
        await this.load(w);
      } else if (w.order === null) {
        await this.load(w);
      }
    } catch (err) {
      this.setOpen(this.open_ - 1);
      if (w !== undefined) this.dropIfIdle(w);
      if (err instanceof OrderUnreadable) return 'unavailable';
      throw err;
    }
    const revoked = this.d.revokedAt(id);
    if (
      w.order === null ||
      this.d.clock.now() >= liveUntil(w.order, link.exp, this.d.lingerMs) ||
      (revoked !== undefined && link.iat <= revoked)
    ) {
      this.setOpen(this.open_ - 1);
      this.dropIfIdle(w);
      return 'gone';
    }
    const stream: Stream = { iat: link.iat, exp: link.exp, sent: null };
    w.sinks.set(sink, stream);
    if (w.chunk === null) await this.publish(w);
    // The first event now; the flush skips a stream that already has the newest frame.
    if (w.frame !== null && w.sinks.get(sink) === stream && stream.sent !== w.frame) {
      stream.sent = w.frame;
      sink.write(w.frame);
    }
    this.arm(w);
    return 'opened';
  }

  /** The stream closed (the client went away). */
  close(id: string, sink: ShareSink): void {
    const w = this.watches.get(id);
    if (w === undefined || !w.sinks.delete(sink)) return;
    this.setOpen(this.open_ - 1);
    this.dropIfIdle(w);
  }

  /** Every link of order `id` made up to `at` was revoked: their streams end now. */
  revoke(id: string, at: number): void {
    const w = this.watches.get(id);
    if (w === undefined) return;
    for (const [sink, link] of [...w.sinks]) if (link.iat <= at) this.end(w, sink);
  }

  /** LiveObserver: a technician's new live position. */
  position(tech: string, pos: { ts: number; lat: number; lon: number }): void {
    const watching = this.byTech.get(tech);
    if (watching === undefined) return;
    for (const w of watching) {
      if (w.fix !== null && w.fix.ts >= pos.ts) continue;
      w.fix = { lat: pos.lat, lon: pos.lon, ts: pos.ts };
      if (w.order?.state === 'departed') void this.publish(w);
    }
  }

  /** LiveObserver: an order changed. */
  order(view: OrderView): void {
    const w = this.watches.get(view.id);
    if (w === undefined) return;
    const before = w.order;
    this.setOrder(w, view);
    if (view.state === 'departed' && (w.fix === null || before?.technician !== view.technician)) {
      // Set off just now: the technician's live position, which this node may not have heard yet.
      void this.loadFix(w).then(() => this.publish(w));
    } else {
      void this.publish(w);
    }
    this.arm(w);
  }

  /** Ends every stream, without `gone` (the pages reconnect, maybe to another node), and stops the timers. */
  stop(): void {
    for (const t of this.intervals) clearInterval(t);
    if (this.flushTimer !== null) clearTimeout(this.flushTimer);
    this.flushTimer = null;
    this.dirty.clear();
    for (const w of [...this.watches.values()]) for (const sink of [...w.sinks.keys()]) this.end(w, sink, false);
  }

  private newWatch(id: string): Watch {
    return {
      id,
      order: null,
      fix: null,
      eta: null,
      sinks: new Map(),
      chunk: null,
      frame: null,
      lastWrite: performance.now(),
      seq: 0,
      timer: null,
      polling: false,
    };
  }

  private setOpen(n: number): void {
    this.open_ = n;
    this.d.onStreams?.(n);
  }

  private setOrder(w: Watch, view: OrderView | null): void {
    const oldTech = w.order?.technician;
    w.order = view;
    const tech = view?.technician;
    if (oldTech === tech) return;
    if (oldTech !== undefined) {
      const set = this.byTech.get(oldTech);
      set?.delete(w);
      if (set?.size === 0) this.byTech.delete(oldTech);
    }
    w.fix = null;
    if (tech !== undefined && this.watches.get(w.id) === w) {
      const set = this.byTech.get(tech) ?? new Set<Watch>();
      this.byTech.set(tech, set);
      set.add(w);
    }
  }

  /**
   * Reads the order (and, when departed, its technician's position) from the tracker. An
   * unknown order leaves the watch without one (its links are dead); any other refusal
   * throws `OrderUnreadable` and leaves the watch as it was, so a passing outage does not
   * tell customers their link died.
   */
  private async load(w: Watch): Promise<void> {
    const o = await this.d.tracker.getOrder(w.id);
    if (!o.ok && o.code !== ErrorCode.notFound) throw new OrderUnreadable(o.msg);
    this.setOrder(w, o.ok ? o.value : null);
    if (w.order?.state === 'departed') await this.loadFix(w);
  }

  private async loadFix(w: Watch): Promise<void> {
    const tech = w.order?.technician;
    if (tech === undefined) return;
    const t = await this.d.tracker.getTechnician(tech);
    if (!t.ok || t.value.lat === undefined || t.value.lon === undefined || t.value.ts === undefined) return;
    if (w.order?.technician !== tech || (w.fix !== null && w.fix.ts >= t.value.ts)) return;
    w.fix = { lat: t.value.lat, lon: t.value.lon, ts: t.value.ts };
  }

  private async estimate(w: Watch): Promise<Eta | null> {
    const o = w.order;
    if (o === null || o.state !== 'departed' || w.fix === null) return null;
    try {
      return await this.d.eta.estimate(o.id, w.fix, { lat: o.lat, lon: o.lon });
    } catch (err) {
      this.d.log.warn({ err }, 'customer link: arrival estimate failed');
      return null;
    }
  }

  /** Computes the watch's state and writes it to its streams when it changed. */
  private async publish(w: Watch): Promise<void> {
    const seq = ++w.seq;
    const eta = await this.estimate(w);
    if (seq !== w.seq || w.order === null) return;
    w.eta = eta;
    const chunk = eventOf(shareState(w.order, w.fix, eta));
    if (chunk === w.chunk) return;
    w.chunk = chunk;
    w.frame = Buffer.from(chunk, 'utf8');
    if (w.sinks.size === 0) return;
    this.dirty.add(w);
    if (this.flushTimer === null) this.flushTimer = setTimeout(() => this.flush(), 0);
  }

  /**
   * Writes the newest frame of each changed order to its streams, for at most
   * FLUSH_BUDGET_MS; what is left goes on the next turn. Runs on a timer, so the device
   * acks of the turn that made the changes (the outbox flushes them on setImmediate) go
   * out first.
   */
  private flush(): void {
    this.flushTimer = null;
    const deadline = performance.now() + FLUSH_BUDGET_MS;
    for (const w of this.dirty) {
      this.dirty.delete(w);
      this.deliver(w);
      if (performance.now() >= deadline) break;
    }
    if (this.dirty.size > 0) this.flushTimer = setTimeout(() => this.flush(), 0);
  }

  /** Writes the watch's newest frame to every stream that does not have it yet. */
  private deliver(w: Watch): void {
    const frame = w.frame;
    if (frame === null) return;
    for (const [sink, stream] of w.sinks) {
      if (stream.sent === frame) continue;
      stream.sent = frame;
      sink.write(frame);
    }
    w.lastWrite = performance.now();
  }

  /** Arms the watch's timer at the earliest moment one of its links dies. */
  private arm(w: Watch): void {
    w.timer?.();
    w.timer = null;
    if (w.sinks.size === 0) return;
    if (w.order === null) {
      for (const sink of [...w.sinks.keys()]) this.end(w, sink);
      return;
    }
    let next = Number.POSITIVE_INFINITY;
    for (const link of w.sinks.values()) next = Math.min(next, liveUntil(w.order, link.exp, this.d.lingerMs));
    w.timer = this.d.clock.setTimer(next, () => {
      w.timer = null;
      const now = this.d.clock.now();
      for (const [sink, link] of [...w.sinks]) {
        if (w.order === null || now >= liveUntil(w.order, link.exp, this.d.lingerMs)) this.end(w, sink);
      }
      this.arm(w);
    });
  }

  private end(w: Watch, sink: ShareSink, gone = true): void {
    const stream = w.sinks.get(sink);
    if (stream === undefined) return;
    w.sinks.delete(sink);
    this.setOpen(this.open_ - 1);
    try {
      // The last state first (a completion not flushed yet), then `gone`.
      if (gone && w.frame !== null && stream.sent !== w.frame) sink.write(w.frame);
      if (gone) sink.write(GONE_EVENT);
      sink.end();
    } catch (err) {
      this.d.log.warn({ err }, 'customer link: ending a stream failed');
    }
    this.dropIfIdle(w);
  }

  private dropIfIdle(w: Watch): void {
    if (w.sinks.size > 0 || this.watches.get(w.id) !== w) return;
    w.timer?.();
    this.dirty.delete(w);
    this.watches.delete(w.id);
    const tech = w.order?.technician;
    if (tech === undefined) return;
    const set = this.byTech.get(tech);
    set?.delete(w);
    if (set?.size === 0) this.byTech.delete(tech);
  }

  /** A comment to the streams of each order that would otherwise stay silent past `heartbeatMs`. */
  private heartbeat(): void {
    const now = performance.now();
    const due = this.d.heartbeatMs - this.d.heartbeatMs / BEAT_STEPS;
    for (const w of this.watches.values()) {
      if (now - w.lastWrite < due) continue;
      w.lastWrite = now;
      for (const sink of w.sinks.keys()) sink.write(':\n\n');
    }
  }

  private poll(): void {
    for (const w of [...this.watches.values()]) {
      if (w.polling) continue;
      w.polling = true;
      this.load(w)
        .then(() => {
          this.arm(w);
          return this.publish(w);
        })
        .catch((err: Error) => this.d.log.warn({ err: err.message, order: w.id }, 'customer link: refresh failed'))
        .finally(() => {
          w.polling = false;
        });
    }
  }
}
