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
 */
import type { CancelTimer, Clock } from '../clock.js';
import type { DispatchEvent, EventType } from '../protocol.js';
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

  constructor(
    private readonly types: ReadonlySet<EventType> | '*',
    private readonly clock: Clock,
    private readonly policy: RetryPolicy,
    private readonly maxInFlight: number,
    private readonly attempt: Attempt,
    private readonly observer: DeliveryObserver,
    private readonly random: () => number = Math.random,
  ) {}

  /** Whether this webhook wants events of `type`. */
  wants(type: EventType): boolean {
    return this.types === '*' || this.types.has(type);
  }

  /** Events not yet delivered nor dead. */
  get pendingCount(): number {
    return this.pending.size;
  }

  /** The oldest event id not settled, or null. */
  get oldestPending(): string | null {
    let oldest: string | null = null;
    for (const id of this.pending.keys()) if (oldest === null || id < oldest) oldest = id;
    return oldest;
  }

  /** Takes an event to deliver (a new one, or one recovered after a restart). */
  offer(ev: DispatchEvent): void {
    if (this.stopped || this.pending.has(ev.id) || !this.wants(ev.type)) return;
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
    for (const ev of events) this.offer(ev);
    // A ready event that a redelivered one now precedes is skipped by `pump` (not a head).
    this.pump();
    return events;
  }

  /** Stops every timer; attempts in flight finish but change nothing more. */
  stop(): void {
    this.stopped = true;
    for (const item of this.pending.values()) item.timer?.();
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
