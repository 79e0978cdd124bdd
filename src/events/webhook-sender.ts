/**
 * What a webhook's delivery sends through: one signed attempt per call. Two backends share
 * this port: `WorkerSenders` (worker-senders.ts), which signs and sends on a worker thread
 * so that the node's main thread (the one that acks devices) does little per delivery, and
 * `directSenders` here, which signs on the calling thread and hands the request to a plain
 * `Send` (tests replace HTTP with one).
 */
import type { Send, SendResult } from './http-sender.js';
import { signatureHeader } from './signature.js';

/** The sender of one webhook (its own connections where there are any). */
export interface WebhookSender {
  /** One attempt to deliver event `ev` (JSON `body`), signed with timestamp `unixSeconds`. */
  send(ev: { id: string; type: string }, body: string, unixSeconds: number): Promise<SendResult>;
  /** Drops this webhook's connections; attempts still in flight fail. */
  close(): void;
}

/** Makes the sender of each webhook and stops them all. */
export interface SenderPool {
  /** The sender of a webhook that posts to `url`, signing with `secret`. */
  open(url: URL, secret: string): WebhookSender;
  /** Stops every sender; attempts still in flight fail. */
  close(): Promise<void>;
}

/** The headers of one delivery (PROTOCOL.md, "Webhooks"). */
export function deliveryHeaders(
  secret: string,
  ev: { id: string; type: string },
  body: string,
  unixSeconds: number,
): Record<string, string> {
  return {
    'content-type': 'application/json',
    'user-agent': 'fieldtrack-webhooks/1',
    'fieldtrack-event-id': ev.id,
    'fieldtrack-event-type': ev.type,
    'fieldtrack-signature': signatureHeader(secret, unixSeconds, body),
  };
}

/** Senders that sign on the calling thread and pass each request to `send`. */
export function directSenders(send: Send): SenderPool {
  return {
    open: (url, secret) => ({
      send: (ev, body, unixSeconds) => send(url, deliveryHeaders(secret, ev, body, unixSeconds), body),
      close: () => {},
    }),
    close: async () => {},
  };
}
