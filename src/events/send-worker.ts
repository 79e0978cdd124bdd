/**
 * The webhook sender's worker thread (started by worker-senders.ts; no other module runs
 * here, and it loads nothing but node:http/https, node:crypto and address-guard.ts). It
 * holds one HTTP sender (http-sender.ts: keep-alive agents, the guarded DNS lookup that
 * refuses private addresses at every connection, the timeout) per webhook, signs each
 * attempt and sends it, and posts the outcomes back in batches, at most one message per
 * turn of its event loop. It never logs: what went wrong goes back as the attempt's error.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { type HttpSenderOptions, httpSender } from './http-sender.js';
import { deliveryHeaders } from './webhook-sender.js';

/** One operation for the worker. */
export type SendOp =
  /** Opens webhook `pool`'s sender (ignored when already open). */
  | { k: 'open'; pool: number; url: string; secret: string }
  /** One attempt: answered with the same `id`; `body` indexes the batch's bodies. */
  | { k: 'send'; id: number; pool: number; ev: string; type: string; t: number; body: number }
  /** Closes webhook `pool`'s sender; its attempts in flight fail. */
  | { k: 'close'; pool: number };

/**
 * One message to the worker: operations applied in order, and the bodies they send, each
 * once however many webhooks send it (copying it to the worker is most of a message's cost).
 */
export interface SendBatch {
  ops: SendOp[];
  bodies: string[];
}

/** The outcomes of some attempts: `errors[i]` is null when attempt `ids[i]` was delivered. */
export interface SendResults {
  ids: number[];
  errors: Array<string | null>;
}

/** What the worker is started with. */
export type SendWorkerData = HttpSenderOptions;

if (parentPort === null) throw new Error('send-worker.ts runs only as a worker thread');
const port = parentPort;
const opts = workerData as SendWorkerData;
const pools = new Map<number, { url: URL; secret: string; sender: ReturnType<typeof httpSender> }>();
let done: SendResults = { ids: [], errors: [] };
let flushing = false;

function answer(id: number, error: string | null): void {
  done.ids.push(id);
  done.errors.push(error);
  if (flushing) return;
  flushing = true;
  setImmediate(() => {
    flushing = false;
    const batch = done;
    done = { ids: [], errors: [] };
    port.postMessage(batch);
  });
}

port.on('message', ({ ops, bodies }: SendBatch) => {
  for (const op of ops) {
    if (op.k === 'open') {
      if (!pools.has(op.pool))
        pools.set(op.pool, { url: new URL(op.url), secret: op.secret, sender: httpSender(opts) });
    } else if (op.k === 'close') {
      pools.get(op.pool)?.sender.close();
      pools.delete(op.pool);
    } else {
      const pool = pools.get(op.pool);
      if (pool === undefined) {
        answer(op.id, 'the webhook was closed');
        continue;
      }
      const ev = { id: op.ev, type: op.type };
      const body = bodies[op.body] as string;
      pool.sender.send(pool.url, deliveryHeaders(pool.secret, ev, body, op.t), body).then(
        (r) => answer(op.id, r.ok ? null : r.error),
        (err: Error) => answer(op.id, err.message),
      );
    }
  }
});
