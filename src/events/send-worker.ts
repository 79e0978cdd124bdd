/**
 * The webhook sender's worker thread (started by worker-senders.ts; no other module runs
 * here, and it loads nothing but node:http/https, node:crypto and address-guard.ts). It
 * holds one HTTP sender (http-sender.ts: keep-alive agents, the guarded DNS lookup that
 * refuses private addresses at every connection, the timeout) per webhook, signs each
 * attempt and sends it, and posts the outcomes back in batches, at most one message per
 * turn of its event loop. It never logs: what went wrong goes back as the attempt's error.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { niceThisThread } from '../thread-priority.js';
import { type HttpSenderOptions, httpSender } from './http-sender.js';
import { deliveryHeaders } from './webhook-sender.js';

/** Opens webhook `pool`'s sender (ignored when it is open). */
export interface OpenOp {
  pool: number;
  url: string;
  secret: string;
}

/**
 * One message to the worker, in columns: an object per attempt would cost the main thread
 * more to copy to the worker than the attempt itself. Applied in this order: `opens`, the
 * attempts, `closes` (a webhook's attempts queued before its close are sent, and fail as
 * its connections go). Attempt i has the id `ids[i]` (its answer carries it), goes to
 * webhook `pools[i]`, is signed with timestamp `ts[i]` and sends event `events[i]`, an index
 * into `evIds`, `types` and `bodies`, which hold each event of the batch once however many
 * webhooks it goes to.
 */
export interface SendBatch {
  opens: OpenOp[];
  ids: Float64Array;
  pools: Int32Array;
  ts: Float64Array;
  events: Int32Array;
  evIds: string[];
  types: string[];
  bodies: string[];
  /** Webhooks whose senders close (their attempts in flight fail). */
  closes: number[];
}

/** The outcomes of some attempts: `errors[i]` is null when attempt `ids[i]` was delivered. */
export interface SendResults {
  ids: Float64Array;
  errors: Array<string | null>;
  /** Why the thread could not lower its priority (`nice`): its first message, only then. */
  niceError?: string;
}

/** What the worker is started with. */
export interface SendWorkerData extends HttpSenderOptions {
  /** The thread's nice value (WEBHOOK_THREAD_NICE): deliveries yield the CPU to device acks. */
  nice: number;
}

if (parentPort === null) throw new Error('send-worker.ts runs only as a worker thread');
const port = parentPort;
const opts = workerData as SendWorkerData;
{
  const niceError = niceThisThread(opts.nice);
  if (niceError !== null) port.postMessage({ ids: new Float64Array(0), errors: [], niceError } satisfies SendResults);
}
const pools = new Map<number, { url: URL; secret: string; sender: ReturnType<typeof httpSender> }>();
let doneIds: number[] = [];
let doneErrors: Array<string | null> = [];
let flushing = false;

function answer(id: number, error: string | null): void {
  doneIds.push(id);
  doneErrors.push(error);
  if (flushing) return;
  flushing = true;
  setImmediate(() => {
    flushing = false;
    const batch: SendResults = { ids: Float64Array.from(doneIds), errors: doneErrors };
    doneIds = [];
    doneErrors = [];
    port.postMessage(batch);
  });
}

port.on('message', (b: SendBatch) => {
  for (const op of b.opens) {
    if (!pools.has(op.pool)) pools.set(op.pool, { url: new URL(op.url), secret: op.secret, sender: httpSender(opts) });
  }
  for (let i = 0; i < b.ids.length; i++) {
    const id = b.ids[i] as number;
    const pool = pools.get(b.pools[i] as number);
    if (pool === undefined) {
      answer(id, 'the webhook was closed');
      continue;
    }
    const at = b.events[i] as number;
    const ev = { id: b.evIds[at] as string, type: b.types[at] as string };
    const body = b.bodies[at] as string;
    pool.sender.send(pool.url, deliveryHeaders(pool.secret, ev, body, b.ts[i] as number), body).then(
      (r) => answer(id, r.ok ? null : r.error),
      (err: Error) => answer(id, err.message),
    );
  }
  for (const pool of b.closes) {
    pools.get(pool)?.sender.close();
    pools.delete(pool);
  }
});
