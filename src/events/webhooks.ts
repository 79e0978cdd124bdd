/**
 * The webhooks of one node: subscriptions (durable in webhook-store.ts), one
 * `WebhookDelivery` per webhook fed from the event log, signatures, the dead list and
 * redelivery, metrics, and the event log's retention (which must keep every event a
 * webhook still needs).
 *
 * A webhook receives the events stored after it was created, of the types it asked for.
 * After a restart every event not recorded as delivered or dead is sent again, in order:
 * delivery is at least once, and receivers deduplicate on the event id.
 */
import { randomBytes } from 'node:crypto';
import { type CancelTimer, type Clock, every } from '../clock.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import type { Outcome } from '../outcome.js';
import { type DispatchEvent, type EventType, WEBHOOKS_MAX } from '../protocol.js';
import { checkWebhookTarget } from './address-guard.js';
import { type DeadEvent, type RetryPolicy, WebhookDelivery } from './delivery.js';
import type { EventLog } from './event-log.js';
import { httpSender, type Send } from './http-sender.js';
import { newSecret, signatureHeader } from './signature.js';
import { type StoredWebhook, WebhookStore } from './webhook-store.js';

/** How webhooks behave (from Config). */
export interface WebhookOptions {
  allowPrivate: boolean;
  maxInFlight: number;
  timeoutMs: number;
  retry: RetryPolicy;
  /** Events are kept at least this long (and as long as a webhook still needs them). */
  retentionMs: number;
}

/** What `POST /v1/webhooks` takes, validated by the gateway. */
export interface WebhookInput {
  url: string;
  events: string[];
  secret?: string;
}

/** A webhook as `GET /v1/webhooks/:id` shows it: never its secret. */
export interface WebhookView {
  id: string;
  url: string;
  events: string[];
  createdAt: number;
  pending: number;
  delivered: number;
  dead: number;
  lastError: string | null;
}

/** The answer of `POST /v1/webhooks`: the only time the secret is shown. */
export type CreatedWebhook = Pick<WebhookView, 'id' | 'url' | 'events'> & { secret: string; createdAt: number };

interface Live {
  hook: StoredWebhook;
  delivery: WebhookDelivery;
  /** Its own connections: a receiver that hangs holds none of another webhook's sockets, even on the same host. */
  sender: { send: Send; close(): void };
}

/** See the module comment. */
export class Webhooks {
  private readonly live = new Map<string, Live>();
  private unsubscribe: (() => void) | null = null;
  private stopRetention: CancelTimer | null = null;

  private constructor(
    private readonly store: WebhookStore,
    private readonly events: EventLog,
    private readonly clock: Clock,
    private readonly log: Logger,
    private readonly metrics: Metrics,
    private readonly opts: WebhookOptions,
    private readonly send?: Send,
  ) {
    metrics.webhookPendingSource = () => [...this.live].map(([id, l]) => [id, l.delivery.pendingCount]);
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
      // `below` is inclusive of pending events, `after` exclusive: start one step before `below`.
      const start = maxId(st.hook.after, st.below === null ? null : st.below.slice(0, -1));
      scanFrom = scanFrom === undefined ? start : minId(scanFrom, start);
    }
    if (scanFrom === undefined) return;
    let recovered = 0;
    for await (const ev of this.events.scan(scanFrom)) {
      for (const st of this.store.states.values()) {
        if (st.hook.after !== null && ev.id <= st.hook.after) continue;
        if (st.below !== null && ev.id < st.below) continue;
        if (st.settled.has(ev.id) || st.dead.has(ev.id) || st.requeued.has(ev.id)) continue;
        const l = this.live.get(st.hook.id) as Live;
        if (!l.delivery.wants(ev.type)) continue;
        l.delivery.offer(ev);
        recovered++;
      }
    }
    for (const st of this.store.states.values()) {
      const l = this.live.get(st.hook.id) as Live;
      for (const ev of st.requeued.values()) l.delivery.offer(ev);
    }
    await this.store.compact((id) => this.belowOf(id));
    this.log.info({ webhooks: this.live.size, pending: recovered }, 'webhooks recovered');
  }

  private liveOf(hook: StoredWebhook): Live {
    const types: ReadonlySet<EventType> | '*' = hook.events.includes('*') ? '*' : new Set(hook.events as EventType[]);
    const url = new URL(hook.url);
    const labels = { webhook: hook.id };
    const sender =
      this.send !== undefined
        ? { send: this.send, close: () => {} }
        : httpSender({
            timeoutMs: this.opts.timeoutMs,
            allowPrivate: this.opts.allowPrivate,
            maxSockets: this.opts.maxInFlight,
          });
    const delivery = new WebhookDelivery(
      types,
      this.clock,
      this.opts.retry,
      this.opts.maxInFlight,
      (ev) => {
        const body = JSON.stringify(ev);
        const t = Math.floor(this.clock.now() / 1000);
        return sender.send(
          url,
          {
            'content-type': 'application/json',
            'user-agent': 'fieldtrack-webhooks/1',
            'fieldtrack-event-id': ev.id,
            'fieldtrack-event-type': ev.type,
            'fieldtrack-signature': signatureHeader(hook.secret, t, body),
          },
          body,
        );
      },
      {
        delivered: (ev) => {
          this.metrics.webhookDelivered.inc(labels);
          this.metrics.webhookLatency.observe(Math.max(0, this.clock.now() - storedAt(ev)) / 1000);
          this.store.delivered(hook.id, ev.id).catch((err: Error) => this.storeFailed(err));
          this.maybeCompact();
        },
        retried: (ev, error) => {
          this.metrics.webhookRetried.inc(labels);
          this.log.debug({ webhook: hook.id, event: ev.id, error }, 'webhook delivery failed; will retry');
        },
        dead: (d) => {
          this.metrics.webhookDead.inc(labels);
          this.log.warn(
            { webhook: hook.id, event: d.event.id, attempts: d.attempts, error: d.lastError },
            'webhook event dead after the retry window',
          );
          this.store.dead(hook.id, d).catch((err: Error) => this.storeFailed(err));
          this.maybeCompact();
        },
      },
    );
    return { hook, delivery, sender };
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
    if (this.live.size >= WEBHOOKS_MAX) {
      return { ok: false, code: 'conflict', msg: `at most ${WEBHOOKS_MAX} webhooks; delete one first` };
    }
    const refused = await checkWebhookTarget(new URL(input.url), this.opts.allowPrivate);
    if (refused !== null) return { ok: false, code: 'bad_request', msg: refused };
    const hook: StoredWebhook = {
      id: `wh_${randomBytes(9).toString('base64url')}`,
      url: input.url,
      events: input.events,
      secret: input.secret ?? newSecret(),
      createdAt: this.clock.now(),
      after: this.events.newestId,
    };
    await this.store.create(hook);
    this.live.set(hook.id, this.liveOf(hook));
    // Logged without its secret (the logger also redacts `secret` anywhere).
    this.log.info({ webhook: hook.id, events: hook.events }, 'webhook created');
    return {
      ok: true,
      value: { id: hook.id, url: hook.url, events: hook.events, secret: hook.secret, createdAt: hook.createdAt },
    };
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
    await this.store.close();
  }
}

function view(l: Live): WebhookView {
  return {
    id: l.hook.id,
    url: l.hook.url,
    events: l.hook.events,
    createdAt: l.hook.createdAt,
    pending: l.delivery.pendingCount,
    delivered: l.delivery.delivered,
    dead: l.delivery.deadEvents.size,
    lastError: l.delivery.lastError,
  };
}

const notFound = (id: string) => ({ ok: false as const, code: 'not_found' as const, msg: `no webhook ${id}` });

/** When the event was stored: the millisecond part of its id. */
function storedAt(ev: DispatchEvent): number {
  return Number(ev.id.slice(0, 13));
}

function maxId(a: string | null, b: string | null): string | null {
  if (a === null) return b;
  if (b === null) return a;
  return a > b ? a : b;
}

function minId(a: string | null, b: string | null): string | null {
  if (a === null || b === null) return null;
  return a < b ? a : b;
}
