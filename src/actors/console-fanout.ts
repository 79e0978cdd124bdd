/**
 * Feeds safety consoles from the alert feed, so a console on any node sees every alert
 * change of every node, in the feed's order. Every alert change, local ones included,
 * reaches consoles only through the feed's tail: one order for every console.
 *
 * The fan-out keeps a view of the alerts it has seen (the feed's snapshot, then every
 * change of its tail). `attach` sends a console the view's unresolved alerts and
 * subscribes it in one synchronous step, so the console sees every change exactly once:
 * inside its snapshot or as a push after it. With the in-process feed, the tail runs
 * inside `append`, so a local change reaches consoles in the same step that commits it.
 */
import type { Logger } from '../log.js';
import type { Alert, AlertState, SafetyPush } from '../protocol.js';
import type { AlertFeed } from '../shared/alert-feed.js';
import type { SafetyLink } from './api.js';
import { isUnresolved } from './records.js';

/** See the module comment. One per node. */
export class ConsoleFanout {
  private readonly view = new Map<string, Alert>();
  private readonly links = new Set<SafetyLink>();
  private stopTail: (() => Promise<void>) | null = null;
  private starting: Promise<void> = Promise.resolve();
  private stopped = false;

  constructor(
    private readonly feed: AlertFeed,
    private readonly log: Logger,
  ) {}

  /**
   * Loads the feed's snapshot and starts following its tail. Resolves once that is done or
   * after `waitMs`, whichever comes first: a node whose Redis is down at start-up still
   * starts, and when the snapshot finally arrives its alerts are pushed to the consoles
   * attached meanwhile, as changes.
   */
  async start(waitMs: number): Promise<void> {
    this.starting = (async () => {
      for (;;) {
        try {
          const snap = await this.feed.snapshot();
          if (this.stopped) return;
          for (const a of snap.alerts) this.apply(a);
          this.stopTail = this.feed.tail(snap.position, (entry) => this.apply(entry.alert));
          return;
        } catch (err) {
          if (this.stopped) return;
          this.log.warn({ err: (err as Error).message }, 'alert feed snapshot failed; retrying');
          await new Promise((r) => setTimeout(r, 1000));
        }
      }
    })();
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([this.starting, new Promise((r) => (timer = setTimeout(r, waitMs)))]);
    clearTimeout(timer);
  }

  /** The latest version of alert `id` seen on the feed. */
  get(id: string): Alert | undefined {
    return this.view.get(id);
  }

  /** Alerts seen on the feed in `state` (all when undefined). */
  list(state?: AlertState): Alert[] {
    const out: Alert[] = [];
    for (const a of this.view.values()) if (state === undefined || a.state === state) out.push(a);
    return out;
  }

  /** Drops a resolved alert from the view (retention). */
  forget(id: string): void {
    const a = this.view.get(id);
    if (a !== undefined && !isUnresolved(a)) this.view.delete(id);
  }

  /** Sends the snapshot of unresolved alerts to `link`, then every change: no gap, no duplicate. */
  attach(link: SafetyLink): void {
    const alerts = this.list()
      .filter(isUnresolved)
      .sort((a, b) => b.ts - a.ts || (a.id < b.id ? 1 : -1));
    this.links.add(link);
    this.send(link, { t: 'snapshot', alerts });
  }

  /** Stops pushing to `link`. */
  detach(link: SafetyLink): void {
    this.links.delete(link);
  }

  /** Stops following the feed. */
  async stop(): Promise<void> {
    this.stopped = true;
    await this.stopTail?.();
    this.stopTail = null;
    this.links.clear();
  }

  private apply(alert: Alert): void {
    this.view.set(alert.id, alert);
    const msg = { t: 'alert', alert } as const;
    for (const link of this.links) this.send(link, msg);
  }

  private send(link: SafetyLink, msg: SafetyPush): void {
    try {
      link.push(msg);
    } catch (err) {
      // One broken console must not keep the others from hearing about an alert.
      this.log.warn({ err }, 'safety link push failed');
    }
  }
}
