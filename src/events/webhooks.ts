/**
 * The webhooks of one node (several nodes share theirs through Redis instead:
 * shared-webhooks.ts): subscriptions (durable in webhook-store.ts), one
 * `WebhookDelivery` per webhook fed from the event log, signatures, the dead list and
 * redelivery, metrics, and the event log's retention (which must keep every event a
 * webhook still needs).
 *
 * A webhook receives the events stored after it was created, of the types it asked for.
 * After a restart every event not recorded as delivered or dead is sent again, in order:
 * delivery is at least once, and receivers deduplicate on the event id.
 */
import { type CancelTimer, type Clock, every } from '../clock.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import type { Outcome } from '../outcome.js';
import type { DispatchEvent } from '../protocol.js';
import type { DeadEvent } from './delivery.js';
import type { EventLog } from './event-log.js';
import type { Send } from './http-sender.js';
import {
  type CreatedWebhook,
  webhookNotFound as notFound,
  type WebhookApi,
  type WebhookInput,
  type WebhookOptions,
  type WebhookView,
} from './webhook-api.js';
import { createdAnswer, newWebhook } from './webhook-create.js';
import { type LiveWebhook as Live, liveWebhook, pendingFor, scanStartOf, viewOf as view } from './webhook-live.js';
import { directSenders, type SenderPool } from './webhook-sender.js';
import { type StoredWebhook, WebhookStore } from './webhook-store.js';
import { WorkerSenders } from './worker-senders.js';

export type { CreatedWebhook, WebhookInput, WebhookOptions, WebhookView };

/** See the module comment. */
export class Webhooks implements WebhookApi {
  private readonly live = new Map<string, Live>();
  private unsubscribe: (() => void) | null = null;
  private stopRetention: CancelTimer | null = null;
  /** The webhooks' senders: on a worker thread (worker-senders.ts), or `send` in tests. */
  private readonly senders: SenderPool;

  private constructor(
    private readonly store: WebhookStore,
    private readonly events: EventLog,
    private readonly clock: Clock,
    private readonly log: Logger,
    private readonly metrics: Metrics,
    private readonly opts: WebhookOptions,
    send?: Send,
  ) {
    this.senders =
      send !== undefined
        ? directSenders(send)
        : new WorkerSenders(
            {
              timeoutMs: opts.timeoutMs,
              allowPrivate: opts.allowPrivate,
              maxSockets: opts.maxInFlight,
              nice: opts.threadNice ?? 0,
            },
            log,
            metrics,
          );
    metrics.webhookPendingSource = () =>
      [...this.live].map(([id, l]) => [id, l.delivery.pendingCount, l.delivery.inMemoryCount]);
  }

  /**
   * Opens the store under `dataDir`, puts every webhook's unsettled events back into
   * delivery, follows the event log and starts retention. `send` replaces HTTP in tests.
   */
  static async open(
    deps: { dataDir: string; events: EventLog; clock: Clock; log: Logger; metrics: Metrics; send?: Send },
    opts: WebhookOptions,
  ): Promise<Webhooks> {
    const store = await WebhookStore.open(deps.dataDir);
    const hooks = new Webhooks(store, deps.events, deps.clock, deps.log, deps.metrics, opts, deps.send);
    await hooks.recover();
    hooks.unsubscribe = deps.events.subscribe((ev) => {
      for (const l of hooks.live.values()) l.delivery.offer(ev);
    });
    hooks.stopRetention = every(deps.clock, 60 * 60 * 1000, () => hooks.runRetention());
    hooks.runRetention();
    return hooks;
  }

  private async recover(): Promise<void> {
    let scanFrom: string | null | undefined;
    for (const st of this.store.states.values()) {
      const l = this.liveOf(st.hook);
      for (const d of st.dead.values()) l.delivery.deadEvents.set(d.event.id, d);
      this.live.set(st.hook.id, l);
      const start = scanStartOf(st);
      scanFrom = scanFrom === undefined ? start : minId(scanFrom, start);
    }
    if (scanFrom === undefined) return;
    let recovered = 0;
    for await (const ev of this.events.scan(scanFrom)) {
      for (const st of this.store.states.values()) {
        if (!pendingFor(st, ev)) continue;
        const l = this.live.get(st.hook.id) as Live;
        if (!l.delivery.wants(ev.type)) continue;
        l.delivery.offer(ev);
        recovered++;
      }
    }
    for (const st of this.store.states.values()) {
      const l = this.live.get(st.hook.id) as Live;
      for (const ev of st.requeued.values()) l.delivery.restore(ev);
    }
    await this.store.compact((id) => this.belowOf(id));
    this.log.info({ webhooks: this.live.size, pending: recovered }, 'webhooks recovered');
  }

  private liveOf(hook: StoredWebhook): Live {
    const deps = { clock: this.clock, log: this.log, metrics: this.metrics, opts: this.opts, senders: this.senders };
    const marks = {
      delivered: (id: string, ev: DispatchEvent) => {
        this.store.delivered(id, ev.id).catch((err: Error) => this.storeFailed(err));
        this.maybeCompact();
      },
      dead: (id: string, d: DeadEvent) => {
        this.store.dead(id, d).catch((err: Error) => this.storeFailed(err));
        this.maybeCompact();
      },
    };
    // Past the in-memory bound, pending events are read back from the event log, as a restart finds them.
    const backlog = {
      read: (after: string | null, limit: number) => this.events.read(after, limit),
      isPending: (ev: DispatchEvent) => {
        const st = this.store.states.get(hook.id);
        return st !== undefined && pendingFor(st, ev);
      },
    };
    return liveWebhook(hook, deps, marks, backlog);
  }

  private storeFailed(err: Error): void {
    // The event is delivered again after a restart: at least once still holds.
    this.log.error({ err }, 'webhooks: could not record a delivery');
  }

  private belowOf(id: string): string {
    const pending = this.live.get(id)?.delivery.oldestPending ?? null;
    // `~` sorts after every digit: "every event stored so far is settled".
    return pending ?? `${this.events.newestId ?? ''}~`;
  }

  private maybeCompact(): void {
    if (!this.store.wantsCompaction) return;
    this.store
      .compact((id) => this.belowOf(id))
      .catch((err: Error) => this.log.error({ err }, 'webhooks: compaction failed'));
  }

  /** Deletes event log segments past retention that no webhook needs. */
  private runRetention(): void {
    let keepFrom: string | null = null;
    for (const l of this.live.values()) {
      const p = l.delivery.oldestPending;
      if (p !== null && (keepFrom === null || p < keepFrom)) keepFrom = p;
    }
    this.events
      .trim(this.clock.now() - this.opts.retentionMs, keepFrom)
      .catch((err: Error) => this.log.error({ err }, 'event log retention failed'));
  }

  /** Creates a webhook after checking where its URL points; the answer holds the secret, once. */
  async create(input: WebhookInput): Promise<Outcome<CreatedWebhook>> {
    const made = await newWebhook(input, {
      held: this.live.size,
      allowPrivate: this.opts.allowPrivate,
      now: this.clock.now(),
      newestId: () => this.events.newestId,
    });
    if (!made.ok) return made;
    const hook = made.value;
    await this.store.create(hook);
    this.live.set(hook.id, this.liveOf(hook));
    // Logged without its secret (the logger also redacts `secret` anywhere).
    this.log.info({ webhook: hook.id, events: hook.events }, 'webhook created');
    return { ok: true, value: createdAnswer(hook) };
  }

  /** Every webhook, oldest first. */
  list(): WebhookView[] {
    return [...this.live.values()].map(view).sort((a, b) => a.createdAt - b.createdAt || (a.id < b.id ? -1 : 1));
  }

  get(id: string): Outcome<WebhookView> {
    const l = this.live.get(id);
    return l === undefined ? notFound(id) : { ok: true, value: view(l) };
  }

  /** Deletes a webhook; its pending and dead events go with it. */
  async remove(id: string): Promise<Outcome<{ id: string; deleted: true }>> {
    const l = this.live.get(id);
    if (l === undefined) return notFound(id);
    l.delivery.stop();
    l.sender.close();
    this.live.delete(id);
    await this.store.remove(id);
    this.log.info({ webhook: id }, 'webhook deleted');
    return { ok: true, value: { id, deleted: true } };
  }

  /** The dead events of a webhook, oldest first. */
  dead(id: string): Outcome<DeadEvent[]> {
    const l = this.live.get(id);
    if (l === undefined) return notFound(id);
    return { ok: true, value: [...l.delivery.deadEvents.values()].sort((a, b) => (a.event.id < b.event.id ? -1 : 1)) };
  }

  /** Puts dead events (all, or `ids`) back into delivery; how many. */
  async redeliver(id: string, ids?: string[]): Promise<Outcome<{ redelivered: number; ids: string[] }>> {
    const l = this.live.get(id);
    if (l === undefined) return notFound(id);
    const chosen = [...l.delivery.deadEvents.values()]
      .map((d) => d.event)
      .filter((ev) => ids === undefined || ids.includes(ev.id));
    // Durable first: a restart after the answer still redelivers them.
    await this.store.requeued(id, chosen);
    const events = l.delivery.redeliver(chosen.map((ev) => ev.id));
    return { ok: true, value: { redelivered: events.length, ids: events.map((ev) => ev.id) } };
  }

  /** Stops delivery (attempts in flight are abandoned: they are sent again after a restart). */
  async close(): Promise<void> {
    this.unsubscribe?.();
    this.stopRetention?.();
    for (const l of this.live.values()) {
      l.delivery.stop();
      l.sender.close();
    }
    await this.senders.close();
    await this.store.close();
  }
}

function minId(a: string | null, b: string | null): string | null {
  if (a === null || b === null) return null;
  return a < b ? a : b;
}
