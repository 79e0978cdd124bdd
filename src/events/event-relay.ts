/**
 * Multi-node mode: copies this node's event log (event-log.ts), in order, into the one
 * Redis stream of events (event-stream-redis.ts). The node stores every event in its own
 * log first, with the journal record of its change; the relay follows the log at once
 * (each fsync kicks it). A change that made an event is answered only once the relay has
 * put that event in the stream (`relayed`, awaited by actors/persistence.ts), so an acked
 * change's event is in the stream even if the node is killed right after the ack. While
 * Redis does not answer, that wait is bounded (RELAY_WAIT_MS, then the answer goes out;
 * an SOS is never held up by shared storage) and, until the relay has caught up again,
 * answers do not wait at all: those events reach the stream when Redis answers.
 *
 * The relay is a cursor over the local log (the newest local id known to be in the
 * stream), so while Redis is unreachable it holds no copies: it retries every second and,
 * once Redis answers, reads on from the log. Each batch goes through the stream's
 * idempotent script keyed by this node's relay id (kept in `DATA_DIR/events-relay-node`,
 * so it survives restarts) and local id: a batch repeated after a crash adds nothing.
 *
 * `flush` waits until every event stored so far is in the stream: a node handing a
 * technician over (takeover.ts) flushes first, so the technician's events enter the stream
 * before any event of its new node (this matters for the events nobody waited on:
 * `technician.online`/`offline`, and those of deadlines and escalations). A node killed
 * with events not yet relayed (those, or any stored while the relay was behind) relays
 * them when it starts again on the same DATA_DIR (they then come after events other nodes
 * relayed meanwhile).
 *
 * Retention of the local log: whole segments older than the retention that are relayed.
 */
import { randomBytes } from 'node:crypto';
import { readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { type CancelTimer, type Clock, every } from '../clock.js';
import type { Logger } from '../log.js';
import type { EventLog } from './event-log.js';
import type { RedisEventStream } from './event-stream-redis.js';

const BATCH = 200;
const RETRY_MS = 1000;
/**
 * Default of the longest an answer waits for its events to reach the stream (`relayed`)
 * while Redis does not answer (EVENTS_RELAY_WAIT_MS); after that the relay counts as behind
 * and answers stop waiting until it has caught up (README, "Events on several nodes").
 */
export const RELAY_WAIT_MS = 1000;

/** This data folder's relay id, made once and kept in `DATA_DIR/events-relay-node`. */
export async function relayNodeId(dataDir: string): Promise<string> {
  const path = join(dataDir, 'events-relay-node');
  try {
    const id = (await readFile(path, 'utf8')).trim();
    if (/^[a-z0-9-]{8,64}$/.test(id)) return id;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  const id = `relay-${randomBytes(8).toString('hex')}`;
  await writeFile(`${path}.tmp`, `${id}\n`, { flush: true });
  await rename(`${path}.tmp`, path);
  return id;
}

interface Waiter {
  target: string;
  /** An answer's wait (`relayed`): ends as soon as the relay fails, as it is behind from then on. */
  answer: boolean;
  /** true: the target is in the stream; false: given up (timeout, stop). */
  resolve: (relayed: boolean) => void;
}

/** See the module comment. One per node in multi-node mode. */
export class EventRelay {
  /** Newest local id known to be in the stream; undefined until Redis said. */
  private cursor: string | null | undefined = undefined;
  private busy = false;
  private again = false;
  private stopped = false;
  private failing = false;
  /**
   * Redis failed, or a `relayed` wait gave up, and the relay has not caught up with the log
   * since: answers do not wait for the stream meanwhile.
   */
  private behind = false;
  private retry: CancelTimer | null = null;
  private waiters: Waiter[] = [];
  private readonly unsubscribe: () => void;
  private readonly stopRetention: CancelTimer;

  constructor(
    private readonly events: EventLog,
    private readonly stream: RedisEventStream,
    /** This node's relay id (`relayNodeId`). */
    readonly node: string,
    private readonly clock: Clock,
    private readonly log: Logger,
    private readonly retentionMs: number,
    /** Longest an answer waits (`relayed`) while Redis does not answer; 0: answers never wait. */
    private readonly waitMs: number = RELAY_WAIT_MS,
  ) {
    this.unsubscribe = events.subscribe(() => this.kick());
    this.stopRetention = every(clock, 60 * 60 * 1000, () => this.trimLocal());
    this.kick();
  }

  /** Newest local id known to be relayed (null: none; undefined: not known yet). */
  get relayedUpTo(): string | null | undefined {
    return this.cursor;
  }

  /** Whether answers skip waiting for the stream now (Redis failed or stalled, not caught up since). */
  get lagging(): boolean {
    return this.behind;
  }

  /**
   * Resolves once every event handed to the log before the call (stored, or with its fsync
   * still under way: a `technician.offline` of the device just moved on) is in the stream
   * (true), or after `timeoutMs` (false: Redis unreachable, or an append that failed; the
   * caller goes on; the events follow later).
   */
  flush(timeoutMs: number): Promise<boolean> {
    const target = this.events.newestGivenId;
    if (target === null) return Promise.resolve(true);
    return this.waitFor(target, timeoutMs, false);
  }

  /**
   * Resolves once local event `id` (stored) is in the stream: what an answer to the change
   * that made it waits for. When Redis does not answer, after `waitMs`; when it fails
   * (refused, unreachable), as soon as the relay's call fails; and at once while the relay
   * is behind (see `behind`), so an outage costs each answer at most one bounded wait, and
   * most answers none.
   */
  relayed(id: string): Promise<void> {
    if (this.waitMs === 0 || this.done(id) || this.behind || this.stopped) return Promise.resolve();
    return this.waitFor(id, this.waitMs, true).then((ok) => {
      if (ok || this.behind || this.stopped) return;
      this.behind = true;
      this.log.warn(
        { waitedMs: this.waitMs },
        'event relay: redis did not take an event in time; answering without waiting for the shared stream until it catches up',
      );
    });
  }

  private waitFor(target: string, timeoutMs: number, answer: boolean): Promise<boolean> {
    if (this.done(target)) return Promise.resolve(true);
    if (this.stopped) return Promise.resolve(false);
    return new Promise<boolean>((resolve) => {
      const timer = this.clock.setTimer(this.clock.now() + timeoutMs, () => {
        this.waiters = this.waiters.filter((w) => w !== waiter);
        resolve(false);
      });
      const waiter: Waiter = {
        target,
        answer,
        resolve: (relayed) => {
          timer();
          resolve(relayed);
        },
      };
      this.waiters.push(waiter);
      this.kick();
    });
  }

  private done(target: string): boolean {
    return typeof this.cursor === 'string' && this.cursor >= target;
  }

  private kick(): void {
    if (this.stopped) return;
    if (this.busy) {
      this.again = true;
      return;
    }
    this.busy = true;
    this.pump()
      .then(
        () => {
          if (this.failing) this.log.info('event relay: redis reachable again; relaying');
          this.failing = false;
        },
        (err: Error) => {
          if (!this.failing)
            this.log.warn({ err: err.message }, 'event relay: redis unreachable; retrying every second');
          this.failing = true;
          this.behind = true;
          // Answers stop waiting now; a hand-over's flush waits on for its own timeout.
          const answers = this.waiters.filter((w) => w.answer);
          this.waiters = this.waiters.filter((w) => !w.answer);
          for (const w of answers) w.resolve(false);
          this.retry ??= this.clock.setTimer(this.clock.now() + RETRY_MS, () => {
            this.retry = null;
            this.kick();
          });
        },
      )
      .finally(() => {
        this.busy = false;
        if (this.again && !this.failing) this.kick();
      });
  }

  private async pump(): Promise<void> {
    if (this.cursor === undefined) this.cursor = await this.stream.relayedUpTo(this.node);
    for (;;) {
      this.again = false;
      const batch = await this.events.read(this.cursor, BATCH);
      if (batch.length === 0) {
        if (this.again) continue;
        if (this.behind) this.log.info('event relay: caught up; answers wait for the shared stream again');
        this.behind = false;
        return;
      }
      await this.stream.relay(this.node, this.clock.now(), batch);
      this.cursor = (batch.at(-1) as { id: string }).id;
      const ready = this.waiters.filter((w) => this.done(w.target));
      this.waiters = this.waiters.filter((w) => !this.done(w.target));
      for (const w of ready) w.resolve(true);
    }
  }

  private trimLocal(): void {
    const keepFrom = this.cursor;
    if (typeof keepFrom !== 'string') return;
    this.events
      .trim(this.clock.now() - this.retentionMs, keepFrom)
      .catch((err: Error) => this.log.error({ err }, 'event log retention failed'));
  }

  /** Stops relaying (the events not relayed yet go after a restart). */
  stop(): void {
    this.stopped = true;
    this.unsubscribe();
    this.stopRetention();
    this.retry?.();
    const waiting = this.waiters;
    this.waiters = [];
    for (const w of waiting) w.resolve(false);
  }
}
