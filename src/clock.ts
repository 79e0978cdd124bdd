/**
 * The one source of time for behaviour. Actors take a `Clock` so that tests drive
 * 15-minute deadlines in milliseconds with `ManualClock.advance` instead of sleeping.
 */

/** Cancels a timer made by `Clock.setTimer`; calling it twice is harmless. */
export type CancelTimer = () => void;

export interface Clock {
  /** Milliseconds since the Unix epoch. */
  now(): number;
  /** Runs `fn` once at (or, if `at` has passed, right after) the epoch time `at`. */
  setTimer(at: number, fn: () => void): CancelTimer;
  /**
   * Milliseconds on a clock that only moves forward at a steady rate, whatever happens to
   * the wall clock (NTP steps, an operator's `date`): what lease validity is measured on.
   * It keeps running while the process is frozen (SIGSTOP, a VM stall), which is the point.
   */
  monotonic(): number;
}

/** Longest delay Node's setTimeout honours; longer timers are re-armed in steps. */
const MAX_TIMEOUT_MS = 2 ** 31 - 1;

/** Wall-clock time with real timers. Timers are unref'd: they never keep the process alive. */
export const systemClock: Clock = {
  now: () => Date.now(),
  monotonic: () => performance.now(),
  setTimer(at, fn) {
    let handle: NodeJS.Timeout;
    const arm = (): void => {
      const delay = Math.max(0, at - Date.now());
      handle = setTimeout(delay > MAX_TIMEOUT_MS ? arm : fn, Math.min(delay, MAX_TIMEOUT_MS));
      handle.unref();
    };
    arm();
    return () => clearTimeout(handle);
  },
};

interface PendingTimer {
  at: number;
  order: number;
  fn: () => void;
}

/** A clock for tests: time moves only when `advance` or `set` is called, firing due timers in order. */
export class ManualClock implements Clock {
  private time: number;
  private timers: PendingTimer[] = [];
  private created = 0;

  constructor(start = Date.UTC(2026, 0, 1, 9, 0, 0)) {
    this.time = start;
  }

  now(): number {
    return this.time;
  }

  /** Manual time is monotonic: it moves only forward, with `advance` and `set`. */
  monotonic(): number {
    return this.time;
  }

  setTimer(at: number, fn: () => void): CancelTimer {
    const timer: PendingTimer = { at, order: this.created++, fn };
    this.timers.push(timer);
    return () => {
      this.timers = this.timers.filter((t) => t !== timer);
    };
  }

  /** Moves time forward by `ms`, running every timer that falls due, earliest first. */
  advance(ms: number): void {
    this.set(this.time + ms);
  }

  /** Moves time to `target`, running every timer that falls due on the way, earliest first. */
  set(target: number): void {
    for (;;) {
      const due = this.timers.filter((t) => t.at <= target).sort((a, b) => a.at - b.at || a.order - b.order)[0];
      if (due === undefined) break;
      this.timers = this.timers.filter((t) => t !== due);
      this.time = Math.max(this.time, due.at);
      due.fn();
    }
    this.time = Math.max(this.time, target);
  }

  /** Timers not yet fired. */
  get pending(): number {
    return this.timers.length;
  }
}

/** Runs `fn` every `ms` on `clock` (first after `ms`) until the returned function is called. */
export function every(clock: Clock, ms: number, fn: () => void): CancelTimer {
  let cancel: CancelTimer | null = null;
  let stopped = false;
  const arm = (): void => {
    cancel = clock.setTimer(clock.now() + ms, () => {
      if (stopped) return;
      fn();
      if (!stopped) arm();
    });
  };
  arm();
  return () => {
    stopped = true;
    cancel?.();
  };
}

/** Resolves after `ms` on `clock`. */
export function sleep(clock: Clock, ms: number): Promise<void> {
  return new Promise((resolve) => clock.setTimer(clock.now() + ms, resolve));
}

/** A deadline held in a `DeadlineQueue`: the time it falls due and what it is for. */
export interface Deadline<K> {
  readonly at: number;
  readonly key: K;
}

interface QueuedDeadline<K> extends Deadline<K> {
  /** Insertion order: deadlines due at the same time fire in the order they were added. */
  readonly order: number;
  /** Place in the heap; -1 once fired or cancelled. */
  index: number;
}

/**
 * Many deadlines on one clock timer: a binary min-heap ordered by time (then by insertion),
 * with a single `Clock.setTimer` armed for the earliest. Each deadline is one small object
 * instead of a timer handle plus the closures that cancel and run it, which is what a
 * deadline per connected device (token expiry) or per actor (registry ticks) costs at
 * tens of thousands of them. `fire` runs with the key of each deadline that falls due,
 * earliest first, once; a deadline whose time has passed fires right after it is added.
 */
export class DeadlineQueue<K> {
  private readonly heap: QueuedDeadline<K>[] = [];
  private added = 0;
  private cancelTimer: CancelTimer | null = null;
  /** When the clock timer is armed for; Infinity when none is. */
  private armedAt = Number.POSITIVE_INFINITY;

  constructor(
    private readonly clock: Clock,
    private readonly fire: (key: K) => void,
  ) {}

  /** Adds a deadline for `key` at epoch time `at`; keep it to cancel it. */
  add(at: number, key: K): Deadline<K> {
    const d: QueuedDeadline<K> = { at, key, order: this.added++, index: this.heap.length };
    this.heap.push(d);
    this.up(d.index);
    if (at < this.armedAt) this.arm();
    return d;
  }

  /** Removes `deadline` so it never fires; harmless when it already fired or was cancelled. */
  cancel(deadline: Deadline<K>): void {
    const d = deadline as QueuedDeadline<K>;
    const i = d.index;
    if (i < 0 || this.heap[i] !== d) return;
    this.removeAt(i);
    // The clock timer stays armed for a cancelled earliest: it finds nothing due and re-arms.
    if (this.heap.length === 0) this.disarm();
  }

  /** Deadlines not yet fired or cancelled. */
  get size(): number {
    return this.heap.length;
  }

  /** Cancels every deadline and the clock timer (shutdown). */
  clear(): void {
    for (const d of this.heap) d.index = -1;
    this.heap.length = 0;
    this.disarm();
  }

  private arm(): void {
    this.disarm();
    const first = this.heap[0];
    if (first === undefined) return;
    this.armedAt = first.at;
    this.cancelTimer = this.clock.setTimer(first.at, () => this.run());
  }

  private disarm(): void {
    this.cancelTimer?.();
    this.cancelTimer = null;
    this.armedAt = Number.POSITIVE_INFINITY;
  }

  /**
   * Fires every deadline due now, earliest first; re-arms for the next even if `fire`
   * throws. A deadline added while this runs waits for the next turn of the clock timer,
   * as a timer set from a timer callback would, so a `fire` that adds one cannot spin.
   */
  private run(): void {
    this.cancelTimer = null;
    this.armedAt = Number.POSITIVE_INFINITY;
    const addedBefore = this.added;
    try {
      const now = this.clock.now();
      for (;;) {
        const first = this.heap[0];
        // One added meanwhile, and due already, is earlier than the rest: it goes first, next turn.
        if (first === undefined || first.at > now || first.order >= addedBefore) break;
        this.removeAt(0);
        this.fire(first.key);
      }
    } finally {
      this.arm();
    }
  }

  private removeAt(i: number): void {
    const heap = this.heap;
    const gone = heap[i] as QueuedDeadline<K>;
    gone.index = -1;
    const last = heap.pop() as QueuedDeadline<K>;
    if (last === gone) return;
    heap[i] = last;
    last.index = i;
    this.up(i);
    this.down(last.index);
  }

  private before(a: QueuedDeadline<K>, b: QueuedDeadline<K>): boolean {
    return a.at < b.at || (a.at === b.at && a.order < b.order);
  }

  private up(i: number): void {
    const heap = this.heap;
    const d = heap[i] as QueuedDeadline<K>;
    while (i > 0) {
      const parentAt = (i - 1) >> 1;
      const parent = heap[parentAt] as QueuedDeadline<K>;
      if (!this.before(d, parent)) break;
      heap[i] = parent;
      parent.index = i;
      i = parentAt;
    }
    heap[i] = d;
    d.index = i;
  }

  private down(i: number): void {
    const heap = this.heap;
    const n = heap.length;
    const d = heap[i] as QueuedDeadline<K>;
    for (;;) {
      const left = 2 * i + 1;
      if (left >= n) break;
      const right = left + 1;
      let child = left;
      if (right < n && this.before(heap[right] as QueuedDeadline<K>, heap[left] as QueuedDeadline<K>)) child = right;
      const c = heap[child] as QueuedDeadline<K>;
      if (!this.before(c, d)) break;
      heap[i] = c;
      c.index = i;
      i = child;
    }
    heap[i] = d;
    d.index = i;
  }
}
