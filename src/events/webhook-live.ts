/**
 * One webhook being delivered: its `WebhookDelivery` (delivery.ts) wired to a sender of
 * its own (webhook-sender.ts; in a node, signed and sent on a worker thread), metrics and
 * logs, with the marks (delivered, dead) handed to whoever keeps them durable: the node's
 * file (webhooks.ts) or Redis (shared-webhooks.ts).
 */
import type { Clock } from '../clock.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import type { DispatchEvent, EventType } from '../protocol.js';
import { type DeadEvent, WebhookDelivery } from './delivery.js';
import type { WebhookOptions, WebhookView } from './webhook-api.js';
import type { SenderPool, WebhookSender } from './webhook-sender.js';
import type { StoredWebhook, WebhookState } from './webhook-store.js';

/** A webhook with its delivery and its own connections. */
export interface LiveWebhook {
  hook: StoredWebhook;
  delivery: WebhookDelivery;
  /** Its own connections: a receiver that hangs holds none of another webhook's sockets, even on the same host. */
  sender: WebhookSender;
}

/** What a live webhook needs around it. */
export interface LiveDeps {
  clock: Clock;
  log: Logger;
  metrics: Metrics;
  opts: WebhookOptions;
  /** Where the webhook's sender comes from (worker-senders.ts; tests: `directSenders`). */
  senders: SenderPool;
  /** Checked before every attempt: false means this node may not deliver now (multi-node). */
  mayDeliver?: () => boolean;
}

/** Where the outcome of each event goes, to be made durable. */
export interface LiveMarks {
  delivered(hook: string, ev: DispatchEvent): void;
  dead(hook: string, d: DeadEvent): void;
}

/** Where the events of a webhook past its in-memory bound are read back from (delivery.ts's `Backlog`). */
export interface LiveBacklog {
  /** Up to `limit` stored events with ids after `after` (null: from the oldest kept), in id order. */
  read(after: string | null, limit: number): Promise<DispatchEvent[]>;
  /** Whether a stored event is still to be delivered to this webhook. */
  isPending(ev: DispatchEvent): boolean;
}

/** Builds the delivery of `hook`, holding at most `opts.maxPendingInMemory` pending events in memory. */
export function liveWebhook(hook: StoredWebhook, deps: LiveDeps, marks: LiveMarks, backlog: LiveBacklog): LiveWebhook {
  const { clock, log, metrics, opts } = deps;
  const types: ReadonlySet<EventType> | '*' = hook.events.includes('*') ? '*' : new Set(hook.events as EventType[]);
  const url = new URL(hook.url);
  const labels = { webhook: hook.id };
  const sender = deps.senders.open(url, hook.secret);
  const mayDeliver = deps.mayDeliver;
  const delivery = new WebhookDelivery(
    types,
    clock,
    opts.retry,
    opts.maxInFlight,
    (ev) => {
      if (mayDeliver !== undefined && !mayDeliver()) {
        return Promise.resolve({ ok: false as const, error: 'this node no longer delivers webhooks' });
      }
      return sender.send(ev, bodyOf(ev), Math.floor(clock.now() / 1000));
    },
    {
      delivered: (ev) => {
        metrics.webhookDelivered.inc(labels);
        metrics.webhookLatency.observe(Math.max(0, clock.now() - storedAt(ev)) / 1000);
        marks.delivered(hook.id, ev);
      },
      retried: (ev, error) => {
        metrics.webhookRetried.inc(labels);
        log.debug({ webhook: hook.id, event: ev.id, error }, 'webhook delivery failed; will retry');
      },
      dead: (d) => {
        metrics.webhookDead.inc(labels);
        log.warn(
          { webhook: hook.id, event: d.event.id, attempts: d.attempts, error: d.lastError },
          'webhook event dead after the retry window',
        );
        marks.dead(hook.id, d);
      },
    },
    Math.random,
    {
      maxInMemory: opts.maxPendingInMemory,
      read: (after, limit) => backlog.read(after, limit),
      isPending: (ev) => backlog.isPending(ev),
      failed: (err) => log.warn({ webhook: hook.id, err: err.message }, 'webhooks: reading back pending events failed'),
    },
  );
  return { hook, delivery, sender };
}

/**
 * The JSON body of an event, made once however many webhooks and attempts send it (every
 * webhook is offered the same event object; it is dropped with the event).
 */
const bodies = new WeakMap<DispatchEvent, string>();
function bodyOf(ev: DispatchEvent): string {
  let body = bodies.get(ev);
  if (body === undefined) {
    body = JSON.stringify(ev);
    bodies.set(ev, body);
  }
  return body;
}

/** Whether event `ev` is still to be delivered to the webhook of state `st` (after a restart or a move). */
export function pendingFor(st: WebhookState, ev: DispatchEvent): boolean {
  if (st.hook.after !== null && ev.id <= st.hook.after) return false;
  if (st.below !== null && ev.id < st.below) return false;
  return !(st.settled.has(ev.id) || st.dead.has(ev.id) || st.requeued.has(ev.id));
}

/** Where a recovery scan must start for state `st`: `below` is inclusive of pending events, `after` exclusive. */
export function scanStartOf(st: WebhookState): string | null {
  const below = st.below === null ? null : st.below.slice(0, -1);
  if (st.hook.after === null) return below;
  if (below === null) return st.hook.after;
  if (st.hook.after > below) return st.hook.after;
  return below;
}

/** The view of a live webhook (`delivered`: as counted by the caller). */
export function viewOf(l: LiveWebhook, delivered = l.delivery.delivered): WebhookView {
  return {
    id: l.hook.id,
    url: l.hook.url,
    events: l.hook.events,
    createdAt: l.hook.createdAt,
    pending: l.delivery.pendingCount,
    delivered,
    dead: l.delivery.deadEvents.size,
    lastError: l.delivery.lastError,
  };
}

/** When the event was stored: the millisecond part of its id. */
export function storedAt(ev: DispatchEvent): number {
  return Number(ev.id.slice(0, 13));
}
