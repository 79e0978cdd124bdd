/**
 * Retention of finished business in live state (README): completed/cancelled orders and
 * resolved alerts stay queryable here for RETAIN_FINISHED_MS after they finished, then
 * live only in the archive (order_events, alert_events). Without it memory and the
 * journal snapshot would grow with every order ever handled.
 */
import type { CancelTimer, Clock } from '../clock.js';
import type { Alert } from '../protocol.js';
import type { AlertBoard } from './alert-board.js';
import type { ConsoleFanout } from './console-fanout.js';
import type { LiveActors } from './deps.js';
import { isTerminalState, type LiveJournal, type OrderRecord } from './records.js';

/** How long finished orders and resolved alerts stay in live state. */
export const RETAIN_FINISHED_MS = 24 * 60 * 60 * 1000;
/** How often the retention rule runs. */
const RETENTION_EVERY_MS = 60 * 60 * 1000;

/** What retention forgets from. */
export interface RetentionDeps extends Pick<LiveActors, 'orders' | 'incidents'> {
  clock: Clock;
  journal: LiveJournal;
  board: AlertBoard;
  fanout: ConsoleFanout;
}

/** When alert `a` was resolved (its own time for alerts resolved before that was recorded). */
function resolvedAt(a: Alert): number {
  return typeof a.detail?.resolvedAt === 'number' ? a.detail.resolvedAt : a.ts;
}

/** See the module comment. One per node; runs at once on `start`, then every RETENTION_EVERY_MS. */
export class Retention {
  private cancel: CancelTimer | null = null;
  private stopped = false;

  constructor(private readonly d: RetentionDeps) {}

  /** Runs the rule now and re-arms it. */
  start(): void {
    this.run();
  }

  /** Stops re-arming. */
  stop(): void {
    this.stopped = true;
    this.cancel?.();
  }

  private run(): void {
    const { clock, journal, board, fanout, orders, incidents } = this.d;
    const cutoff = clock.now() - RETAIN_FINISHED_MS;
    // Decided again when the removal runs, after the messages already sent to the order.
    const old = (o: OrderRecord): boolean => isTerminalState(o.state) && (o.timeline.at(-1)?.ts ?? 0) < cutoff;
    for (const [id, o] of orders.records) {
      if (!old(o)) continue;
      void orders.forget(id, (now) => !old(now)).then((gone) => gone && journal.forget('o', id));
    }
    for (const a of board.list('resolved')) {
      if (resolvedAt(a) >= cutoff) continue;
      void board.forget(a.id).then(async (gone) => {
        if (!gone) return;
        await incidents.forget(a.id);
        journal.forget('a', a.id);
        fanout.forget(a.id);
      });
    }
    for (const a of fanout.list('resolved')) {
      if (resolvedAt(a) < cutoff && board.get(a.id) === undefined) fanout.forget(a.id);
    }
    if (!this.stopped) this.cancel = clock.setTimer(clock.now() + RETENTION_EVERY_MS, () => this.run());
  }
}
