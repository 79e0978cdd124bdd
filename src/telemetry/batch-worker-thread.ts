/**
 * The archive writer's worker thread (see batch-worker.ts): reads one batch of the spool
 * from its files with blocking reads, decodes it and encodes it for the store, and posts
 * the bodies back by transfer. It never touches the store: chDB loaded in a worker crashed
 * the process at exit. Every answer carries the request's id; a failure is answered as an
 * error, never thrown, so the thread lives on.
 */
import { parentPort } from 'node:worker_threads';
import { readLogSync } from '../storage/append-log.js';
import type { BatchRequest, BatchResponse, WorkerBatch } from './batch-worker.js';
import { BatchEncoder } from './schema.js';
import { decodeRecord, recordSpooledAt } from './spool-record.js';

/** Reads and encodes the batch `req` asks for; null when the range holds no record. */
function readBatch(req: BatchRequest): { batch: WorkerBatch | null; transfer: ArrayBuffer[] } {
  const encoder = new BatchEncoder();
  let rows = 0;
  let next = null;
  let oldestAt = 0;
  let newestAt = 0;
  for (const e of readLogSync(req.dir, req.from, req.end)) {
    newestAt = recordSpooledAt(e.record);
    if (next === null) oldestAt = newestAt;
    const records = decodeRecord(e.record);
    for (const r of records) encoder.add(r);
    rows += records.length;
    next = e.next;
    // Whole log records only: the checkpoint can only point between them.
    if (rows >= req.maxRows) break;
  }
  if (next === null) return { batch: null, transfer: [] };
  const encoded = encoder.finish();
  const transfer: ArrayBuffer[] = [];
  const parts = encoded.tables.map((t) => {
    // A body that is a view of a shared pool is copied out: only a whole buffer can move.
    let body: Uint8Array = t.body;
    if (body.byteOffset !== 0 || body.byteLength !== body.buffer.byteLength) body = new Uint8Array(body);
    transfer.push(body.buffer as ArrayBuffer);
    return { table: t.table, day: t.day, rows: t.rows, body };
  });
  return {
    batch: { from: req.from, rows, next, oldestAt, newestAt, parts, rejected: encoded.rejected },
    transfer,
  };
}

const port = parentPort;
if (!port) throw new Error('batch-worker-thread.js runs as a worker thread only');
port.on('message', (req: BatchRequest) => {
  let answer: BatchResponse;
  let transfer: ArrayBuffer[] = [];
  try {
    const read = readBatch(req);
    answer = { id: req.id, batch: read.batch };
    transfer = read.transfer;
  } catch (err) {
    const e = err instanceof Error ? err : new Error(String(err));
    answer = { id: req.id, error: { name: e.name, message: e.message } };
  }
  port.postMessage(answer, transfer);
});
