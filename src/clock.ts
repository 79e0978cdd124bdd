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
