/**
 * Delivery of events to one webhook: ordering, concurrency and the retry schedule, on an
 * injected clock (tests replay 24 hours of retries in milliseconds).
 *
 * Ordering: every event has ordering keys, its order (`o:<id>`) and its technician
 * (`t:<id>`). Each key has a queue of the webhook's unsettled events in id order, and an
 * event is sent only while it heads the queue of every key it has: a later event of an
 * order or of a technician waits until the earlier one is delivered or dead, while events
 * of other orders and technicians go ahead in parallel, at most `maxInFlight` at a time.
 *
 * Retries: a failed attempt is tried again after `min(maxMs, baseMs * 2^(n-1))` scaled by
 * a random factor in [0.5, 1) (jitter, so receivers coming back are not hit in lockstep);
 * once `forMs` (24 hours) have passed since the first attempt, the last failure makes the
 * event dead: it leaves the queues (the events behind it go on) and is kept in the dead
 * list until redelivered.
 *
 * Nothing here waits on a receiver for anyone else: each webhook has its own queues and
 * in-flight cap, and device acks never wait on delivery at all.
 *
 * Memory: with a `Backlog`, at most `maxInMemory` pending events are held. An event offered
 * while that many are pending is not kept: from it on, the webhook's events stay only where
 * they are stored (the node's event log, or the shared stream) and are read back from
 * there, in id order and a page at a time, once at most half the bound is left in memory;
 * when a read reaches the newest stored event, offered events are kept again. Every event
 * in memory is older than every event left in the store (redelivered ones aside), so the
 * order per order and per technician is the same as with everything in memory; an event
 * read back gets its first attempt (and so its retry window) then.
 */
import type { CancelTimer, Clock } from '../clock.js';
import type { DispatchEvent, EventType } from '../protocol.js';
import { eventIdBefore } from './event-id.js';
import type { SendResult } from './http-sender.js';

/** The retry schedule. */
export interface RetryPolicy {
  baseMs: number;
  maxMs: number;
  forMs: number;
}

/** Delay before retry number `attempt` (1 = after the first failure), before the deadline; `random` in [0, 1). */
export function retryDelay(policy: RetryPolicy, attempt: number, random: number): number {
  const exp = Math.min(policy.maxMs, policy.baseMs * 2 ** Math.min(attempt - 1, 40));
  return Math.max(1, Math.round(exp * (0.5 + random / 2)));
}

/** The ordering keys of an event. */
export function orderingKeys(ev: DispatchEvent): string[] {
  const keys: string[] = [];
  if (ev.order !== undefined) keys.push(`o:${ev.order}`);
  if (ev.tech !== undefined) keys.push(`t:${ev.tech}`);
  return keys;
}

/** An event given up on after `forMs` of failures. */
export interface DeadEvent {
  event: DispatchEvent;
  attempts: number;
  lastError: string;
  deadAt: number;
}

/** What the delivery tells its owner, to make it durable and count it. */
export interface DeliveryObserver {
  delivered(ev: DispatchEvent, attempts: number): void;
  retried(ev: DispatchEvent, error: string): void;
  dead(dead: DeadEvent): void;
}

/** Where the events of a webhook beyond its in-memory bound are read back from; see the module comment. */
export interface Backlog {
  /** At most this many pending events are kept in memory (at least 1). */
  maxInMemory: number;
  /** Up to `limit` stored events with ids after `after` (null: from the oldest kept), in id order. */
  read(after: string | null, limit: number): Promise<DispatchEvent[]>;
  /** Whether a stored event is still to be delivered to this webhook (created before it, not settled). */
  isPending(ev: DispatchEvent): boolean;
  /** A read failed (told once until one succeeds); it is tried again BACKLOG_RETRY_MS later. */
  failed(err: Error): void;
}

/** Events read back from a backlog at once, at most. */
const BACKLOG_PAGE = 1000;
/** Delay before a failed backlog read is tried again. */
export const BACKLOG_RETRY_MS = 1000;

/** One attempt to deliver an event to this webhook. */
export type Attempt = (ev: DispatchEvent) => Promise<SendResult>;

interface Item {
  ev: DispatchEvent;
  keys: string[];
  attempts: number;
  firstAt: number | null;
  dueAt: number;
  sending: boolean;
  timer: CancelTimer | null;
}

/** A FIFO of event ids with O(1) removal at the head. */
class IdQueue {
  private items: string[] = [];
  private head = 0;

  get first(): string | undefined {
    return this.items[this.head];
  }

  get size(): number {
    return this.items.length - this.head;
  }

  /** Adds `id`, keeping id order (redelivered events may be older than queued ones). */
  add(id: string): void {
    const last = this.items[this.items.length - 1];
    if (this.size === 0 || last === undefined || last < id) {
      this.items.push(id);
      return;
    }
    let i = this.items.length;
    while (i > this.head && (this.items[i - 1] as string) > id) i--;
    this.items.splice(i, 0, id);
  }

  /** Removes `id`: normally the head; a redelivered older event may have been put before it. */
  remove(id: string): void {
    if (this.first === id) {
      this.shift();
      return;
    }
    const at = this.items.indexOf(id, this.head);
    if (at >= 0) this.items.splice(at, 1);
  }

  shift(): void {
    this.head++;
    if (this.head > 1024 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
  }
}

/** The delivery state of one webhook; see the module comment. */
export class WebhookDelivery {
  private readonly pending = new Map<string, Item>();
  private readonly queues = new Map<string, IdQueue>();
  /** Heads that are due and not being sent, taken oldest first. */
  private readonly ready = new ReadyHeap();
  private inFlight = 0;
  private stopped = false;
  readonly deadEvents = new Map<string, DeadEvent>();
  delivered = 0;
  lastError: string | null = null;
  /** Events from the one after this id on are left in the backlog (undefined: none are). */
  private spillAfter: string | null | undefined = undefined;
  /** How many events wanted by this webhook were offered and left in the backlog. */
  private spilled = 0;
  /** The newest id offered while spilling: a read back that has not reached it is not caught up. */
  private spilledNewest: string | null = null;
  private filling = false;
  private fillTimer: CancelTimer | null = null;
  /** The last backlog read failed (reported once until one succeeds). */
  private fillFailing = false;

  constructor(
    private readonly types: ReadonlySet<EventType> | '*',
    private readonly clock: Clock,
    private readonly policy: RetryPolicy,
    private readonly maxInFlight: number,
    private readonly attempt: Attempt,
    private readonly observer: DeliveryObserver,
    private readonly random: () => number = Math.random,
    /** Without one, every pending event is held in memory. */
    private readonly backlog?: Backlog,
  ) {}

  /** Whether this webhook wants events of `type`. */
  wants(type: EventType): boolean {
    return this.types === '*' || this.types.has(type);
  }

  /** Events not yet delivered nor dead (in memory and left in the backlog). */
  get pendingCount(): number {
    return this.pending.size + this.spilled;
  }

  /** Pending events held in memory: at most the backlog's `maxInMemory`, redelivered ones aside. */
  get inMemoryCount(): number {
    return this.pending.size;
  }

  /**
   * The oldest event id not settled, or null. While events are left in the backlog it may
   * be `<id>~` (sorting after `<id>` and before every later id): every event after `<id>`
   * may be pending.
   */
  get oldestPending(): string | null {
    let oldest: string | null = null;
    for (const id of this.pending.keys()) if (oldest === null || id < oldest) oldest = id;
    if (this.spillAfter !== undefined) {
      const mark = this.spillAfter === null ? '' : `${this.spillAfter}~`;
      if (oldest === null || mark < oldest) oldest = mark;
    }
    return oldest;
  }

  /**
   * Takes a stored event to deliver (a new one, or one recovered after a restart), in id
   * order: past the in-memory bound it is left in the backlog (see the module comment).
   */
  offer(ev: DispatchEvent): void {
    if (this.stopped) return;
    if (this.spillAfter !== undefined && (this.spillAfter === null || ev.id > this.spillAfter)) {
      if (this.spilledNewest === null || ev.id > this.spilledNewest) {
        if (this.wants(ev.type)) this.spilled++;
        this.spilledNewest = ev.id;
      }
      return;
    }
    if (this.pending.has(ev.id) || !this.wants(ev.type)) return;
    // (An event older than the backlog, offered out of order, is taken: it is not in the backlog.)
    if (this.spillAfter === undefined && this.backlog !== undefined && this.pending.size >= this.backlog.maxInMemory) {
      this.spillAfter = eventIdBefore(ev.id);
      this.spilled = 1;
      this.spilledNewest = ev.id;
      return;
    }
    this.take(ev);
  }

  /** Takes a redelivered event back (it was held as dead: not subject to the in-memory bound). */
  restore(ev: DispatchEvent): void {
    if (this.stopped || this.pending.has(ev.id) || !this.wants(ev.type)) return;
    this.take(ev);
  }

  private take(ev: DispatchEvent): void {
    const item: Item = {
      ev,
      keys: orderingKeys(ev),
      attempts: 0,
      firstAt: null,
      dueAt: 0,
      sending: false,
      timer: null,
    };
    this.pending.set(ev.id, item);
    for (const key of item.keys) {
      let q = this.queues.get(key);
      if (q === undefined) {
        q = new IdQueue();
        this.queues.set(key, q);
      }
      q.add(ev.id);
    }
    if (this.isHead(item)) this.markReady(item);
    this.pump();
  }

  /** Puts dead events (all, or those of `ids`) back into delivery, with a fresh schedule; how many. */
  redeliver(ids?: readonly string[]): DispatchEvent[] {
    const chosen = ids === undefined ? [...this.deadEvents.keys()] : ids.filter((id) => this.deadEvents.has(id));
    chosen.sort();
    const events: DispatchEvent[] = [];
    for (const id of chosen) {
      const dead = this.deadEvents.get(id) as DeadEvent;
      this.deadEvents.delete(id);
      events.push(dead.event);
    }
    for (const ev of events) this.restore(ev);
    // A ready event that a redelivered one now precedes is skipped by `pump` (not a head).
    this.pump();
    return events;
  }

  /** Stops every timer; attempts in flight finish but change nothing more. */
  stop(): void {
    this.stopped = true;
    for (const item of this.pending.values()) item.timer?.();
    this.fillTimer?.();
    this.fillTimer = null;
  }

  /**
   * Reads events back from the backlog, in id order, until the in-memory bound is reached
   * or the newest stored event is; a failed read is tried again later.
   */
  private async fill(): Promise<void> {
    const backlog = this.backlog;
    if (backlog === undefined || this.filling || this.fillTimer !== null) return;
    this.filling = true;
    try {
      while (!this.stopped && this.spillAfter !== undefined && this.pending.size < backlog.maxInMemory) {
        const limit = Math.min(BACKLOG_PAGE, backlog.maxInMemory - this.pending.size);
        const after: string | null = this.spillAfter;
        const known = this.spilledNewest;
        const page = await backlog.read(after, limit);
        this.fillFailing = false;
        if (this.stopped || this.spillAfter !== after) return;
        let read = 0;
        for (const ev of page) {
          if (this.pending.size >= backlog.maxInMemory) break;
          read++;
          this.spillAfter = ev.id;
          if (this.pending.has(ev.id) || !this.wants(ev.type) || !backlog.isPending(ev)) continue;
          this.spilled = Math.max(0, this.spilled - 1);
          this.take(ev);
        }
        // A short page read to its end reached the newest stored event, unless one was offered
        // while it was read (then read again).
        if (read === page.length && page.length < limit && this.spilledNewest === known) {
          // Every stored event is in memory (or settled) again: offers are kept from here on.
          this.spillAfter = undefined;
          this.spilled = 0;
          this.spilledNewest = null;
        }
      }
    } catch (err) {
      if (!this.fillFailing) backlog.failed(err as Error);
      this.fillFailing = true;
      if (!this.stopped) {
        this.fillTimer = this.clock.setTimer(this.clock.now() + BACKLOG_RETRY_MS, () => {
          this.fillTimer = null;
          void this.fill();
        });
      }
    } finally {
      this.filling = false;
    }
  }

  private isHead(item: Item): boolean {
    for (const key of item.keys) if (this.queues.get(key)?.first !== item.ev.id) return false;
    return true;
  }

  private markReady(item: Item): void {
    if (item.sending || item.timer !== null) return;
    if (item.dueAt > this.clock.now()) {
      item.timer = this.clock.setTimer(item.dueAt, () => {
        item.timer = null;
        if (this.pending.get(item.ev.id) === item && this.isHead(item)) {
          this.markReady(item);
          this.pump();
        }
      });
      return;
    }
    this.ready.add(item.ev.id);
  }

  private pump(): void {
    while (!this.stopped && this.inFlight < this.maxInFlight && this.ready.size > 0) {
      const id = this.ready.take();
      const item = this.pending.get(id);
      if (item === undefined || item.sending || !this.isHead(item)) continue;
      this.send(item);
    }
  }

  private send(item: Item): void {
    item.sending = true;
    item.attempts++;
    const now = this.clock.now();
    if (item.firstAt === null) item.firstAt = now;
    this.inFlight++;
    this.attempt(item.ev)
      .catch((err: unknown): SendResult => ({ ok: false, error: (err as Error).message ?? String(err) }))
      .then((result) => {
        this.inFlight--;
        item.sending = false;
        if (this.stopped) return;
        if (result.ok) {
          this.delivered++;
          this.settle(item);
          this.observer.delivered(item.ev, item.attempts);
        } else {
          this.lastError = result.error;
          this.failed(item, result.error);
        }
        this.pump();
      });
  }

  private failed(item: Item, error: string): void {
    const now = this.clock.now();
    const deadline = (item.firstAt as number) + this.policy.forMs;
    if (now >= deadline) {
      const dead: DeadEvent = { event: item.ev, attempts: item.attempts, lastError: error, deadAt: now };
      this.deadEvents.set(item.ev.id, dead);
      this.settle(item);
      this.observer.dead(dead);
      return;
    }
    item.dueAt = Math.min(deadline, now + retryDelay(this.policy, item.attempts, this.random()));
    this.observer.retried(item.ev, error);
    this.markReady(item);
  }

  /** Removes a delivered or dead event from the queues; the events behind it may go. */
  private settle(item: Item): void {
    this.pending.delete(item.ev.id);
    item.timer?.();
    for (const key of item.keys) {
      const q = this.queues.get(key) as IdQueue;
      q.remove(item.ev.id);
      if (q.size === 0) {
        this.queues.delete(key);
        continue;
      }
      const next = this.pending.get(q.first as string);
      if (next !== undefined && this.isHead(next)) this.markReady(next);
    }
    const backlog = this.backlog;
    if (backlog !== undefined && this.spillAfter !== undefined && this.pending.size <= backlog.maxInMemory / 2) {
      void this.fill();
    }
  }
}

/**
 * The ready set: a binary min-heap of ids with a membership set, so that a receiver coming
 * back to a backlog of many independent orders costs O(log n) per event, not O(n).
 */
class ReadyHeap {
  private readonly heap: string[] = [];
  private readonly members = new Set<string>();

  get size(): number {
    return this.heap.length;
  }

  add(id: string): void {
    if (this.members.has(id)) return;
    this.members.add(id);
    const h = this.heap;
    h.push(id);
    let i = h.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if ((h[parent] as string) <= id) break;
      h[i] = h[parent] as string;
      i = parent;
    }
    h[i] = id;
  }

  /** Removes and returns the smallest id; only called when not empty. */
  take(): string {
    const h = this.heap;
    const top = h[0] as string;
    const last = h.pop() as string;
    if (h.length > 0) {
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        let min = last;
        if (l < h.length && (h[l] as string) < min) {
          m = l;
          min = h[l] as string;
        }
        if (r < h.length && (h[r] as string) < min) m = r;
        if (m === i) break;
        h[i] = h[m] as string;
        i = m;
      }
      h[i] = last;
    }
    this.members.delete(top);
    return top;
  }
}
