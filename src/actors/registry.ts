/**
 * Supervision and registry for one kind of actor (technicians, orders or incidents).
 *
 * - Spawns the actor of an id on first use (`send`), from the committed record if there
 *   is one (after passivation or recovery).
 * - Commits: after each message the new state is stored in `records` (the plain Map that
 *   outlives the actor) and only then are the message's effects (replies, pushes, sends
 *   to other actors, timers) run. So a reply never announces a state that is not there.
 * - Crash: a handler that throws gets its request answered `internal`, and nact's `reset`
 *   restarts the actor from `records`: its last committed state. Later messages proceed.
 * - Passivation: a sweep stops actors idle for PASSIVATE_AFTER_MS whose state allows it;
 *   the record stays in the Map and the next message re-activates the actor with it.
 *   The sweep runs every quarter of PASSIVATE_AFTER_MS, so an idle actor stops between
 *   1x and 1.25x that time after its last message. A registry made with 0 stops such an
 *   actor as soon as its mailbox is empty (orders: see tracker.ts).
 * - Timers: each actor has at most one deadline (`arm`), owned here rather than by the
 *   actor, so it survives passivation and wakes the actor with a `tick`. The deadlines of
 *   all actors of the kind share one clock timer (clock.ts, `DeadlineQueue`).
 * - Retiring or replacing an actor's state (retention, erasure, a technician moving to
 *   another node) is a message in its mailbox: messages already sent run first, the
 *   replacement runs next, messages sent after it see the new state. Nobody polls for an
 *   idle moment.
 */
import { type ActorSystemRef, dispatch, type Ref, spawn, stop } from 'nact';
import { type Clock, type Deadline, DeadlineQueue } from '../clock.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import type { Outcome } from '../outcome.js';
import type { Tick } from './messages.js';
import { compactChildPaths, releaseFinishedTurns, shareEmptyChildMaps } from './nact-release.js';
import { StorageUnavailableError } from './persistence.js';
import type { WorkCounter } from './work.js';

/** Post-commit effects of one message, run in order once the new state is committed. */
export type Effects = Array<() => void>;

/** The behaviour of one kind of actor. */
export interface ActorSpec<S, M extends { t: string }> {
  /** Label for metrics and actor names. */
  readonly kind: string;
  /** Handles one message; returns the next state (undefined: there is still none). Throwing is a crash. */
  handle(id: string, state: S | undefined, msg: M, fx: Effects): Promise<S | undefined>;
  /** Answers the request carried by `msg` (if any) after a crash. */
  replyCrash(msg: M, answer: Outcome<never>): void;
  /** Whether an idle actor in this state may be stopped (its record kept). */
  passivable(state: S | undefined): boolean;
}

/** A new state, or how to make it from the committed one when the replacement runs. */
export type Replacement<S> = S | undefined | { from: (current: S | undefined) => S | undefined };

/**
 * The registry's own message: replace the committed state with `rec` (undefined: drop it
 * and stop the actor) unless `keep` says the state it finds must stay.
 */
interface Retire<S> {
  t: '$retire';
  rec: Replacement<S>;
  keep?: (current: S) => boolean;
  done: (replaced: boolean) => void;
}

interface Live<M, S> {
  ref: Ref<M | Retire<S>>;
  /** Messages sent and not yet handled. */
  busy: number;
  lastUsed: number;
}

/** Delay before a crashed actor re-checks its deadlines. */
const CRASH_RETRY_MS = 1000;

// Every actor is spawned here: from now on none keeps its last message alive, a childless one
// has no child maps of its own, and its path is an exact-length array (nact-release.ts).
releaseFinishedTurns();
shareEmptyChildMaps();
compactChildPaths();

/** Every actor's `afterStop`: nact would make a fresh no-op closure for each. */
const NOTHING_AFTER_STOP = (): void => {};

const INTERNAL: Outcome<never> = { ok: false, code: 'internal', msg: 'internal error' };

/** See the module comment. */
export class Registry<S, M extends { t: string }> {
  /** Committed state of every entity of this kind, live or passivated. */
  readonly records = new Map<string, S>();
  private readonly live = new Map<string, Live<M, S>>();
  /** The armed deadline of each entity that has one; `deadlines` holds them all, on one clock timer. */
  private readonly timers = new Map<string, Deadline<string>>();
  private readonly deadlines: DeadlineQueue<string>;
  /** Retire messages sent and not yet handled, answered `false` if the registry stops first. */
  private readonly retiring = new Set<(replaced: boolean) => void>();
  private spawned = 0;
  private cancelSweep: (() => void) | null = null;
  private stopped = false;
  /** Restarts after crashes, for tests and logs. */
  crashes = 0;
  /**
   * Whether this node may fire the deadlines of `id` now (multi-node: it holds the lease of
   * the entity's technician). A timer that comes due without it is dropped: the node that
   * holds the lease runs the deadline, and a node that takes the lease wakes its actors.
   */
  gate: (id: string) => boolean = () => true;

  constructor(
    private readonly system: ActorSystemRef,
    private readonly spec: ActorSpec<S, M>,
    private readonly tick: M & Tick,
    private readonly clock: Clock,
    private readonly passivateAfterMs: number,
    private readonly metrics: Metrics,
    private readonly log: Logger,
    private readonly work: WorkCounter,
  ) {
    this.deadlines = new DeadlineQueue(clock, (id) => {
      this.timers.delete(id);
      if (this.gate(id)) this.send(id, this.tick);
    });
    this.scheduleSweep();
  }

  /** Delivers `msg` to the actor of `id`, spawning (or re-activating) it if needed. */
  send(id: string, msg: M): void {
    if (this.stopped) {
      this.spec.replyCrash(msg, { ok: false, code: 'internal', msg: 'shutting down' });
      return;
    }
    const live = this.live.get(id) ?? this.spawn(id);
    live.busy++;
    live.lastUsed = this.clock.now();
    this.work.begin();
    dispatch(live.ref, msg);
  }

  /** Whether the actor of `id` is in memory now (not passivated). */
  isLive(id: string): boolean {
    return this.live.has(id);
  }

  /** Number of actors in memory now. */
  get liveCount(): number {
    return this.live.size;
  }

  /**
   * Makes sure the actor of `id` gets a `tick` at `at` (null: none needed). Keeps an
   * earlier timer already armed: when it fires, the actor re-arms for the right time.
   * This keeps the per-ping cost at a comparison instead of a timer re-arm. A time that
   * has already come sends the tick at once.
   */
  arm(id: string, at: number | null): void {
    const cur = this.timers.get(id);
    if (at === null) {
      if (cur !== undefined) {
        this.deadlines.cancel(cur);
        this.timers.delete(id);
      }
      return;
    }
    if (this.stopped || (cur !== undefined && cur.at <= at)) return;
    if (cur !== undefined) this.deadlines.cancel(cur);
    if (at <= this.clock.now()) {
      // Already due (an order created after its deadline, a rung missed while down): look now.
      this.timers.delete(id);
      if (this.gate(id)) this.send(id, this.tick);
      return;
    }
    this.timers.set(id, this.deadlines.add(at, id));
  }

  /**
   * Forgets an entity (retention, erasure): its record, actor and timer, after the
   * messages already sent to it; unless `keep`, asked then, says the state it finds must
   * stay. Resolves with whether it was forgotten.
   */
  forget(id: string, keep?: (current: S) => boolean): Promise<boolean> {
    return this.retire(id, undefined, keep);
  }

  /**
   * Replaces the committed state of `id` with `rec` (another node's state taken over), or
   * drops it (`rec` undefined), after the messages already sent to it; later messages see
   * the new state. Its timer is cancelled: the caller wakes it if it has deadlines.
   */
  async replace(id: string, rec: Replacement<S>): Promise<void> {
    await this.retire(id, rec);
  }

  /** See `forget` and `replace`: done at once for an actor not in memory, else as a message in its mailbox. */
  private retire(id: string, rec: Replacement<S>, keep?: (current: S) => boolean): Promise<boolean> {
    const l = this.live.get(id);
    if (l === undefined || this.stopped) return Promise.resolve(this.swap(id, rec, keep) !== null);
    return new Promise((resolve) => {
      const done = (replaced: boolean): void => {
        if (this.retiring.delete(done)) resolve(replaced);
      };
      this.retiring.add(done);
      l.busy++;
      this.work.begin();
      dispatch(l.ref, { t: '$retire', rec, ...(keep !== undefined ? { keep } : {}), done });
    });
  }

  /** Commits `rec` as the state of `id` (or drops it) and cancels its timer; false when `keep` kept it. */
  private swap(id: string, replacement: Replacement<S>, keep?: (current: S) => boolean): S | undefined | null {
    const cur = this.records.get(id);
    if (keep !== undefined && cur !== undefined && keep(cur)) return null;
    const rec = isDerived(replacement) ? replacement.from(cur) : replacement;
    this.arm(id, null);
    if (rec === undefined) this.records.delete(id);
    else this.records.set(id, rec);
    return rec;
  }

  /** Stops every actor and timer; records stay. */
  stopAll(): void {
    this.stopped = true;
    this.cancelSweep?.();
    this.deadlines.clear();
    this.timers.clear();
    for (const l of this.live.values()) stop(l.ref);
    this.live.clear();
    for (const done of [...this.retiring]) done(false);
    this.metrics.activeActors.set({ kind: this.spec.kind }, 0);
  }

  /** Stops the idle actors that may be passivated; runs on its own timer, public for tests. */
  sweep(): void {
    const now = this.clock.now();
    for (const [id, l] of this.live) {
      if (l.busy > 0 || now - l.lastUsed < this.passivateAfterMs) continue;
      if (!this.spec.passivable(this.records.get(id))) continue;
      stop(l.ref);
      this.live.delete(id);
    }
    this.metrics.activeActors.set({ kind: this.spec.kind }, this.live.size);
  }

  /**
   * Stops an idle actor whose state allows it, right after its last message: for kinds
   * whose actors hear rarely from anyone (an order before departure hears a transition
   * or a deadline now and then), keeping each one in memory between those messages cost
   * more than spawning it again. Stopping from inside its own handler is safe: nact
   * processes nothing more for a stopped actor, and the next message spawns a fresh one
   * from the committed record.
   */
  private stopIfPassivable(id: string, live: Live<M, S>): void {
    if (this.live.get(id) !== live || !this.spec.passivable(this.records.get(id))) return;
    stop(live.ref);
    this.live.delete(id);
    this.metrics.activeActors.set({ kind: this.spec.kind }, this.live.size);
  }

  private scheduleSweep(): void {
    const every = Math.max(250, Math.floor(this.passivateAfterMs / 4));
    this.cancelSweep = this.clock.setTimer(this.clock.now() + every, () => {
      this.sweep();
      if (!this.stopped) this.scheduleSweep();
    });
  }

  private spawn(id: string): Live<M, S> {
    const { spec, records, work } = this;
    const name = `${spec.kind}-${(this.spawned++).toString(36)}`;
    const live: Live<M, S> = { ref: undefined as unknown as Ref<M | Retire<S>>, busy: 0, lastUsed: this.clock.now() };
    const handler = async (state: S | undefined, msg: M | Retire<S>): Promise<S | undefined> => {
      if (msg.t === '$retire') {
        const retire = msg as Retire<S>;
        const next = this.swap(id, retire.rec, retire.keep);
        live.busy--;
        work.end();
        // Dropped and nothing else queued: the actor stops; a later message spawns a fresh one.
        if (next === undefined && live.busy === 0 && this.live.get(id) === live) {
          stop(live.ref);
          this.live.delete(id);
          this.metrics.activeActors.set({ kind: spec.kind }, this.live.size);
        }
        retire.done(next !== null);
        return next === null ? state : next;
      }
      const fx: Effects = [];
      try {
        const next = await spec.handle(id, state, msg as M, fx);
        if (next !== undefined) records.set(id, next);
        for (const effect of fx) effect();
        return next;
      } finally {
        live.busy--;
        live.lastUsed = this.clock.now();
        work.end();
        if (this.passivateAfterMs === 0 && live.busy === 0) this.stopIfPassivable(id, live);
      }
    };
    live.ref = spawn(this.system, handler, name, {
      afterStop: NOTHING_AFTER_STOP,
      initialStateFunc: () => records.get(id),
      onCrash: (msg, err, ctx) => {
        this.crashes++;
        this.log.error(
          { err, actor: spec.kind, msgType: msg?.t },
          'actor crashed; restarting from its last committed state',
        );
        // A change the disk could not store has a protocol answer: retry later.
        if (msg?.t === '$retire') (msg as Retire<S>).done(false);
        else if (msg !== undefined)
          spec.replyCrash(msg as M, err instanceof StorageUnavailableError ? err.refusal : INTERNAL);
        // A crashed tick must not lose the deadline it was handling: look again shortly
        // (not at once, so a handler that keeps failing cannot spin).
        this.arm(id, this.clock.now() + CRASH_RETRY_MS);
        return ctx.reset;
      },
    });
    this.live.set(id, live);
    this.metrics.activeActors.set({ kind: spec.kind }, this.live.size);
    return live;
  }
}

function isDerived<S>(r: Replacement<S>): r is { from: (current: S | undefined) => S | undefined } {
  return typeof r === 'object' && r !== null && typeof (r as { from?: unknown }).from === 'function';
}

/** Sends a request carrying a resolver to the actor of `id`: one dispatch, no nact query timeout. */
export function ask<S, M extends { t: string }, T>(
  reg: Registry<S, M>,
  id: string,
  make: (reply: (out: Outcome<T>) => void) => NoInfer<M>,
): Promise<Outcome<T>> {
  return new Promise((resolve) => reg.send(id, make(resolve)));
}
