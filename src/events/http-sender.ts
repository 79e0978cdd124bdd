/**
 * One webhook delivery attempt over HTTP(S) with Node's own client: `POST` of the event's
 * JSON with its id and signature headers; a 2xx answer within `timeoutMs` (10 s by
 * default) delivers it, anything else (another status, a redirect, a timeout, a refused
 * connection, a private address) is a failure the caller retries. Keep-alive agents are
 * shared per webhook so a busy receiver is not handshaken once per event. Connections go
 * through `guardedLookup`, so a host that resolves to a private address is refused at
 * every connection, not only when the webhook was created. In a node it runs on the webhook
 * sender's worker thread (send-worker.ts), not on the thread that acks devices.
 */
import { Agent as HttpAgent, request as httpRequest } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import { isIP } from 'node:net';
import { guardedLookup, hostOf, isPrivateAddress } from './address-guard.js';

/** Outcome of one attempt: delivered, or the reason it was not (kept as the webhook's `lastError`). */
export type SendResult = { ok: true } | { ok: false; error: string };

/** One attempt to send `body` with `headers` to `url`. */
export type Send = (url: URL, headers: Record<string, string>, body: string) => Promise<SendResult>;

/** How the HTTP sender behaves. */
export interface HttpSenderOptions {
  timeoutMs: number;
  allowPrivate: boolean;
  /** Connections kept per receiver (at least the in-flight cap). */
  maxSockets: number;
}

/** A sender over node:http/https; `close` destroys its idle connections. */
export function httpSender(opts: HttpSenderOptions): { send: Send; close(): void } {
  const lookup = guardedLookup(opts.allowPrivate);
  const httpAgent = new HttpAgent({ keepAlive: true, maxSockets: opts.maxSockets, lookup } as object);
  const httpsAgent = new HttpsAgent({ keepAlive: true, maxSockets: opts.maxSockets, lookup } as object);
  const send: Send = (url, headers, body) =>
    new Promise<SendResult>((resolve) => {
      const host = hostOf(url);
      if (isIP(host) !== 0 && !opts.allowPrivate && isPrivateAddress(host)) {
        resolve({ ok: false, error: `${host} is a private address (WEBHOOK_ALLOW_PRIVATE is off)` });
        return;
      }
      const https = url.protocol === 'https:';
      let settled = false;
      const finish = (result: SendResult): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        resolve(result);
      };
      const req = (https ? httpsRequest : httpRequest)(url, {
        method: 'POST',
        agent: https ? httpsAgent : httpAgent,
        lookup,
        headers: { ...headers, 'content-length': String(Buffer.byteLength(body)) },
      });
      const timer = setTimeout(() => {
        finish({ ok: false, error: `no answer within ${opts.timeoutMs} ms` });
        req.destroy();
      }, opts.timeoutMs);
      req.on('error', (err: NodeJS.ErrnoException) => finish({ ok: false, error: err.message || String(err.code) }));
      req.on('response', (res) => {
        const status = res.statusCode ?? 0;
        // Read (and drop) the answer so the connection can be reused.
        res.on('data', () => {});
        res.on('error', (err) => finish({ ok: false, error: err.message }));
        res.on('end', () =>
          finish(status >= 200 && status < 300 ? { ok: true } : { ok: false, error: `HTTP ${status}` }),
        );
      });
      req.end(body);
    });
  return {
    send,
    close() {
      httpAgent.destroy();
      httpsAgent.destroy();
    },
  };
}
