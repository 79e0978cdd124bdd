/**
 * What the gateway manages webhooks through (PROTOCOL.md, "Webhooks"): on one node the
 * webhook service itself (webhooks.ts), in multi-node mode the shared one
 * (shared-webhooks.ts), which keeps subscriptions in Redis so every node serves them.
 */
import type { Outcome } from '../outcome.js';
import type { DeadEvent, RetryPolicy } from './delivery.js';

/** How webhooks behave (from Config). */
export interface WebhookOptions {
  allowPrivate: boolean;
  maxInFlight: number;
  /** Pending events one webhook holds in memory at most; the rest are read back from where events are stored. */
  maxPendingInMemory: number;
  timeoutMs: number;
  retry: RetryPolicy;
  /** Events are kept at least this long (and as long as a webhook still needs them). */
  retentionMs: number;
  /** The delivery thread's nice value (WEBHOOK_THREAD_NICE); 0 when not given. */
  threadNice?: number;
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

/** See the module comment. */
export interface WebhookApi {
  /** Creates a webhook after checking where its URL points; the answer holds the secret, once. */
  create(input: WebhookInput): Promise<Outcome<CreatedWebhook>>;
  /** Every webhook, oldest first. */
  list(): WebhookView[] | Promise<WebhookView[]>;
  get(id: string): Outcome<WebhookView> | Promise<Outcome<WebhookView>>;
  /** Deletes a webhook; its pending and dead events go with it. */
  remove(id: string): Promise<Outcome<{ id: string; deleted: true }>>;
  /** The dead events of a webhook, oldest first. */
  dead(id: string): Outcome<DeadEvent[]> | Promise<Outcome<DeadEvent[]>>;
  /** Puts dead events (all, or `ids`) back into delivery. */
  redeliver(id: string, ids?: string[]): Promise<Outcome<{ redelivered: number; ids: string[] }>>;
}

/** The answer for an unknown webhook id. */
export const webhookNotFound = (id: string) => ({
  ok: false as const,
  code: 'not_found' as const,
  msg: `no webhook ${id}`,
});
