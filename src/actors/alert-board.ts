/**
 * The alert board: every alert of the node, the safety consoles attached to it, and the
 * one place where alert changes are persisted and pushed.
 *
 * Consistency with consoles: an alert change is committed to the in-memory board and
 * pushed to every attached console in the same synchronous step, after it is durable.
 * `attach` sends the snapshot and subscribes in one synchronous step too, so a console
 * sees every change exactly once: either inside its snapshot or as a push after it.
 *
 * Changes of one alert are serialised (a per-alert promise chain), so an operator's ack
 * racing an escalation cannot reorder what is stored and what consoles see.
 */
import { randomBytes } from 'node:crypto';
import type { Clock } from '../clock.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import type { Alert, AlertState } from '../protocol.js';
import type { Outcome, Refusal, SafetyLink } from './api.js';
import { isUnresolved } from './records.js';
import type { SpoolPolicy, Store } from './store.js';
import type { WorkCounter } from './work.js';

/** How a change rule answers: a new alert, "nothing to change" (null: idempotent), or a refusal. */
export type AlertChange = (current: Alert) => Alert | null | Refusal;

function isRefusal(x: Alert | Refusal): x is Refusal {
  return (x as Refusal).ok === false;
}

/** See the module comment. One per node. */
export class AlertBoard {
  private readonly alerts = new Map<string, Alert>();
  private readonly links = new Set<SafetyLink>();
  private readonly chains = new Map<string, Promise<unknown>>();
  /** Random per process, so ids made in the same millisecond by two process lifetimes differ. */
  private readonly nonce = randomBytes(3).toString('hex');
  private counter = 0;
  private unresolved = 0;

  constructor(
    private readonly store: Store,
    private readonly clock: Clock,
    private readonly metrics: Metrics,
    private readonly log: Logger,
    private readonly work: WorkCounter,
  ) {}

  /** Puts replayed alerts back without persisting or pushing them (recovery). */
  load(alerts: Iterable<Alert>): void {
    for (const a of alerts) this.alerts.set(a.id, a);
    this.unresolved = [...this.alerts.values()].filter(isUnresolved).length;
    this.metrics.openAlerts.set(this.unresolved);
  }

  /** A new unique alert id, `a-<time36>-<process nonce><counter36>`. */
  newId(): string {
    return `a-${this.clock.now().toString(36)}-${this.nonce}${(this.counter++).toString(36)}`;
  }

  /** Persists a new alert, then commits and pushes it. */
  raise(alert: Alert, policy: SpoolPolicy): Promise<Outcome<Alert>> {
    return this.serial(alert.id, async () => {
      const existing = this.alerts.get(alert.id);
      if (existing !== undefined) return { ok: true, value: existing };
      const refused = await this.store.saveAlert(alert, alert.ts, policy);
      if (refused !== null) return refused;
      this.metrics.alerts.inc({ kind: alert.kind });
      this.commit(alert);
      return { ok: true, value: alert };
    });
  }

  /** Applies `change` to the current version of alert `id`, persists and pushes the result. */
  change(id: string, change: AlertChange, policy: SpoolPolicy): Promise<Outcome<Alert>> {
    return this.serial(id, async () => {
      const current = this.alerts.get(id);
      if (current === undefined) return { ok: false, code: 'not_found', msg: `no alert ${id}` };
      const next = change(current);
      if (next === null) return { ok: true, value: current };
      if (isRefusal(next)) return next;
      const refused = await this.store.saveAlert(next, this.clock.now(), policy);
      if (refused !== null) return refused;
      this.commit(next);
      return { ok: true, value: next };
    });
  }

  /** Drops a resolved alert from memory (retention); unresolved alerts are never dropped. */
  forget(id: string): boolean {
    const a = this.alerts.get(id);
    if (a === undefined || isUnresolved(a) || this.chains.has(id)) return false;
    this.alerts.delete(id);
    return true;
  }

  /** Whether a change of alert `id` (for example its raise) is being persisted right now. */
  pending(id: string): boolean {
    return this.chains.has(id);
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

  /** Sends the snapshot of unresolved alerts to `link`, then every change: no gap, no duplicate. */
  attach(link: SafetyLink): void {
    const alerts = this.list().filter(isUnresolved);
    this.links.add(link);
    this.send(link, { t: 'snapshot', alerts });
  }

  /** Stops pushing to `link`. */
  detach(link: SafetyLink): void {
    this.links.delete(link);
  }

  private commit(alert: Alert): void {
    const before = this.alerts.get(alert.id);
    this.unresolved += (isUnresolved(alert) ? 1 : 0) - (before !== undefined && isUnresolved(before) ? 1 : 0);
    this.metrics.openAlerts.set(this.unresolved);
    this.alerts.set(alert.id, alert);
    const msg = { t: 'alert', alert } as const;
    for (const link of this.links) this.send(link, msg);
  }

  private send(link: SafetyLink, msg: Parameters<SafetyLink['push']>[0]): void {
    try {
      link.push(msg);
    } catch (err) {
      // One broken console must not keep the others from hearing about an alert.
      this.log.warn({ err }, 'safety link push failed');
    }
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
