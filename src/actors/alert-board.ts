/**
 * The alert board: every alert of this node's actors, and the one place where alert
 * changes are persisted and published.
 *
 * Publishing: an alert change is committed to the in-memory board and appended to the
 * alert feed in the same synchronous step, after it is durable (journal fsync). Consoles
 * are fed from the feed (console-fanout.ts), never from here, so every console of every
 * node sees changes in the feed's one order. The append is not awaited: the journal is
 * the node's durable record, and a feed that is unreachable (Redis down) queues the
 * append and sends it when it is back, so local behaviour never waits on it.
 *
 * SOS incidents are announced while they are stored: the change goes to the feed (and so
 * to every console) when its write starts, not when its fsync ends, because a disk busy
 * with the archive's merges takes tens of milliseconds per fsync at p99, and an operator
 * should not wait for the disk to learn that someone is in danger. A new incident goes
 * even sooner, before its actor's turn (`announceNewSos`), which under load waits behind
 * every other actor message already queued. Whoever caused the
 * change (the device for an SOS, the operator for an ack) is still answered only once it
 * is durable. If the write fails, consoles get the stored version again (a change of an
 * existing incident is undone on their screens); a new incident that could not be stored
 * stays announced, and the technician's next press (the device presses again when it gets
 * no ack) is given the same incident id, so a failing disk shows one incident, not one per
 * press.
 *
 * Changes of one alert are serialised (a per-alert promise chain), so an operator's ack
 * racing an escalation cannot reorder what is stored and what consoles see.
 */
import { randomBytes } from 'node:crypto';
import type { Clock } from '../clock.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import type { Outcome, Refusal } from '../outcome.js';
import type { Alert, AlertState } from '../protocol.js';
import type { AlertFeed } from '../shared/alert-feed.js';
import type { AlertChange } from './alert-rules.js';
import type { Persistence, SpoolPolicy } from './persistence.js';
import { isUnresolved } from './records.js';
import type { WorkCounter } from './work.js';

/** Whether changes of `alert` reach consoles while they are stored rather than after (module comment). */
function announcedWhileStored(alert: Alert): boolean {
  return alert.kind === 'sos';
}

function isRefusal(x: Alert | Refusal): x is Refusal {
  return (x as Refusal).ok === false;
}

/** See the module comment. One per node. */
export class AlertBoard {
  private readonly alerts = new Map<string, Alert>();
  /** Per technician, its SOS incident that is not resolved: at most one, since later presses join it. */
  private readonly openSos = new Map<string, string>();
  private readonly chains = new Map<string, Promise<unknown>>();
  /** Feed appends not yet confirmed, so a hand-over can wait for them. */
  private readonly appending = new Set<Promise<unknown>>();
  /** New SOS incidents announced while their first write is in progress. */
  private readonly announcing = new Map<string, Alert>();
  /** Per technician, a new SOS incident announced to consoles whose write failed. */
  private readonly unstoredSos = new Map<string, string>();
  /** Random per process, so ids made in the same millisecond by two process lifetimes differ. */
  private readonly nonce = randomBytes(3).toString('hex');
  private counter = 0;
  private unresolved = 0;

  constructor(
    private readonly persistence: Persistence,
    private readonly clock: Clock,
    private readonly metrics: Metrics,
    private readonly log: Logger,
    private readonly work: WorkCounter,
    private readonly feed: AlertFeed,
  ) {}

  /** Puts replayed alerts back without persisting or pushing them (recovery). */
  load(alerts: Iterable<Alert>): void {
    for (const a of alerts) {
      this.alerts.set(a.id, a);
      this.indexSos(a);
    }
    this.unresolved = [...this.alerts.values()].filter(isUnresolved).length;
    this.metrics.openAlerts.set(this.unresolved);
  }

  /** A new unique alert id, `a-<time36>-<process nonce><counter36>`. */
  newId(): string {
    return `a-${this.clock.now().toString(36)}-${this.nonce}${(this.counter++).toString(36)}`;
  }

  /** Persists a new alert, commits and pushes it (an SOS is pushed while it is stored). */
  raise(alert: Alert, policy: SpoolPolicy): Promise<Outcome<Alert>> {
    return this.serial(alert.id, async () => {
      const existing = this.alerts.get(alert.id);
      if (existing !== undefined) return { ok: true, value: existing };
      const early = announcedWhileStored(alert);
      // A new SOS is announced before its actor's turn (`announceNewSos`); anything else here.
      if (early && this.announcing.get(alert.id) !== alert) {
        this.announcing.set(alert.id, alert);
        this.announce(alert);
      }
      let refused: Refusal | null;
      try {
        refused = await this.persistence.saveAlert(alert, alert.ts, policy, 'opened');
      } catch (err) {
        if (early) this.notStored(alert);
        throw err;
      }
      if (refused !== null) {
        if (early) this.notStored(alert);
        return refused;
      }
      this.announcing.delete(alert.id);
      this.metrics.alerts.inc({ kind: alert.kind });
      this.record(alert);
      if (!early) this.announce(alert);
      return { ok: true, value: alert };
    });
  }

  /**
   * Applies `change` to the current version of alert `id`, persists, commits and pushes the
   * result. `announced` runs once the result is pushed: for an SOS while it is stored
   * (see the module comment), for other alerts once it is committed.
   */
  change(
    id: string,
    change: AlertChange,
    policy: SpoolPolicy,
    announced?: (next: Alert) => void,
  ): Promise<Outcome<Alert>> {
    return this.serial(id, async () => {
      const current = this.alerts.get(id);
      if (current === undefined) return { ok: false, code: 'not_found', msg: `no alert ${id}` };
      const next = change(current);
      if (next === null) return { ok: true, value: current };
      if (isRefusal(next)) return next;
      const early = announcedWhileStored(next);
      if (early) {
        this.announce(next);
        announced?.(next);
      }
      let refused: Refusal | null;
      try {
        refused = await this.persistence.saveAlert(next, this.clock.now(), policy);
      } catch (err) {
        // Consoles saw a change that did not happen: they get the stored version back.
        if (early) this.announce(current);
        throw err;
      }
      if (refused !== null) {
        if (early) this.announce(current);
        return refused;
      }
      this.record(next);
      if (!early) {
        this.announce(next);
        announced?.(next);
      }
      return { ok: true, value: next };
    });
  }

  /**
   * Announces a new SOS incident to consoles now, before the incident actor's turn that
   * stores it (`raise` with this very alert): that turn comes after every actor message
   * already queued, which under load is tens of milliseconds of other technicians' pings.
   * Only for an incident not on the board (`newSosId`); the technician's `sos` handling is
   * serialised (device-intake.ts), so nothing else opens one meanwhile.
   */
  announceNewSos(alert: Alert): void {
    if (this.alerts.has(alert.id) || this.chains.has(alert.id)) return;
    this.announcing.set(alert.id, alert);
    this.announce(alert);
  }

  /**
   * The opening of `alert` (announced by `announceNewSos`) ended. If its actor failed before
   * raising it, it is treated as an incident that could not be stored; otherwise `raise`
   * has already settled it, and this does nothing.
   */
  newSosSettled(alert: Alert): void {
    if (this.announcing.get(alert.id) === alert) this.notStored(alert);
  }

  /** A new SOS incident was announced but could not be stored: its technician's next press reuses its id. */
  private notStored(alert: Alert): void {
    this.announcing.delete(alert.id);
    this.unstoredSos.set(alert.tech, alert.id);
  }

  /**
   * The id for a new SOS incident of technician `tech`: the incident announced to consoles
   * but never stored, if there is one (so it is stored under the id consoles know), else a
   * new one.
   */
  newSosId(tech: string): string {
    return this.unstoredSos.get(tech) ?? this.newId();
  }

  /** A new SOS incident announced to consoles while it is being stored (an operator may already answer it). */
  announcedSos(id: string): Alert | undefined {
    return this.announcing.get(id);
  }

  /**
   * Drops a resolved alert from memory (retention, erasure), after the changes of it
   * already in progress; unresolved alerts are never dropped. Whether it was dropped.
   */
  forget(id: string): Promise<boolean> {
    return this.serial(id, async () => {
      const a = this.alerts.get(id);
      if (a === undefined || isUnresolved(a)) return false;
      this.alerts.delete(id);
      return true;
    });
  }

  /** Whether a change of alert `id` (for example its raise) is being persisted right now. */
  pending(id: string): boolean {
    return this.chains.has(id);
  }

  /** The id of technician `tech`'s SOS incident that is not resolved, if any (a lookup, not a scan). */
  openSosOf(tech: string): string | undefined {
    return this.openSos.get(tech);
  }

  private indexSos(alert: Alert): void {
    if (alert.kind !== 'sos') return;
    if (isUnresolved(alert)) this.openSos.set(alert.tech, alert.id);
    else if (this.openSos.get(alert.tech) === alert.id) this.openSos.delete(alert.tech);
  }

  /** The current version of an alert. */
  get(id: string): Alert | undefined {
    return this.alerts.get(id);
  }

  /** Alerts in `state` (all when undefined), newest first. */
  list(state?: AlertState): Alert[] {
    const out: Alert[] = [];
    for (const a of this.alerts.values()) if (state === undefined || a.state === state) out.push(a);
    return out.sort((a, b) => b.ts - a.ts || (a.id < b.id ? 1 : -1));
  }

  /** Makes `alert` the current version in memory. */
  private record(alert: Alert): void {
    const before = this.alerts.get(alert.id);
    this.unresolved += (isUnresolved(alert) ? 1 : 0) - (before !== undefined && isUnresolved(before) ? 1 : 0);
    this.metrics.openAlerts.set(this.unresolved);
    this.alerts.set(alert.id, alert);
    this.indexSos(alert);
    if (this.unstoredSos.get(alert.tech) === alert.id) this.unstoredSos.delete(alert.tech);
  }

  /** Appends `alert` to the feed, which pushes it to every console; not awaited (see the module comment). */
  private announce(alert: Alert): void {
    this.log.debug(
      { alert: alert.id, tech: alert.tech, kind: alert.kind, state: alert.state, rung: alert.level },
      'alert change sent to the feed',
    );
    const p: Promise<unknown> = this.feed
      .append(alert)
      // A stale write (another node holds the technician now) is counted and logged by the feed.
      .catch((err: Error) => {
        if (err.name !== 'StaleWriteError') this.log.warn({ err, alert: alert.id }, 'alert feed append failed');
      })
      .finally(() => this.appending.delete(p));
    this.appending.add(p);
  }

  /** Appends alert `id`'s current version to the feed again, after its changes in progress (the feed lacked it). */
  republish(id: string): void {
    void this.serial(id, async () => {
      const a = this.alerts.get(id);
      if (a !== undefined) this.announce(a);
    });
  }

  /** Resolves once every change committed so far is in the feed (or failed). */
  async flushFeed(): Promise<void> {
    await Promise.all(this.appending);
  }

  /**
   * Drops an alert whatever its state (its technician moved to another node, which now
   * owns it), after the changes of it already in progress.
   */
  evict(id: string): Promise<void> {
    if (!this.alerts.has(id) && !this.chains.has(id)) return Promise.resolve();
    return this.serial(id, async () => {
      const a = this.alerts.get(id);
      if (a === undefined) return;
      this.alerts.delete(id);
      if (this.openSos.get(a.tech) === id) this.openSos.delete(a.tech);
      if (isUnresolved(a)) this.unresolved--;
      this.metrics.openAlerts.set(this.unresolved);
    });
  }

  private serial<T>(id: string, op: () => Promise<T>): Promise<T> {
    const prev = this.chains.get(id) ?? Promise.resolve();
    const run = prev.then(op, op);
    const tail = run.catch(() => undefined);
    this.chains.set(id, tail);
    void tail.then(() => {
      if (this.chains.get(id) === tail) this.chains.delete(id);
    });
    return this.work.track(run);
  }
}
