/**
 * The archive writer against an in-memory store: a backlog drains in order, every row
 * once, with the next batch read and encoded while the previous one is being inserted,
 * and the batch read ahead is kept, not lost or doubled, through a store outage. The same
 * on the worker thread that reads and encodes batches off the main thread, including a
 * thread that dies (once, or every time) and rows the store refuses for good.
 */
import assert from 'node:assert/strict';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { Worker } from 'node:worker_threads';
import { createLogger } from '../../src/log.js';
import { Metrics } from '../../src/metrics.js';
import type { LogPosition } from '../../src/storage/append-log.js';
import type { ArchiveRecord } from '../../src/telemetry/archive.js';
import { BatchWorker } from '../../src/telemetry/batch-worker.js';
import { DeadLetterFolder } from '../../src/telemetry/dead-letter.js';
import { MAX_WORKER_DEATHS, SpoolDrainer } from '../../src/telemetry/drainer.js';
import type { TableName } from '../../src/telemetry/schema.js';
import { Spool } from '../../src/telemetry/spool.js';
import { type Store, StoreError } from '../../src/telemetry/store.js';
import { tempDirs } from '../support/fixtures.js';

const freshDir = tempDirs('drainer');
const turn = (): Promise<void> => new Promise((r) => setImmediate(r));

/** Waits up to `turns` loop turns (with a short sleep each) for `cond`. */
async function until(cond: () => boolean, what: string, turns = 5000): Promise<void> {
  for (let i = 0; i < turns; i++) {
    if (cond()) return;
    await new Promise((r) => setTimeout(r, 1));
  }
  assert.fail(`gave up waiting for ${what}`);
}

/** A store that keeps the `tech ts` of every inserted row; inserts can be held or failed. */
class MemoryStore implements Store {
  readonly name = 'memory';
  readonly rows: string[] = [];
  inserts = 0;
  failures = 0;
  /** Inserts into this table are refused for good (a ClickHouse parse error). */
  refuse: TableName | null = null;
  private gate: { promise: Promise<void>; open: () => void } | null = null;

  hold(): void {
    let open!: () => void;
    const promise = new Promise<void>((r) => {
      open = r;
    });
    this.gate = { promise, open };
  }

  release(): void {
    this.gate?.open();
    this.gate = null;
  }

  async exec(): Promise<void> {}
  async query(): Promise<unknown[][]> {
    return [];
  }
  async insert(table: TableName, _columns: readonly string[], body: Buffer): Promise<void> {
    this.inserts++;
    await this.gate?.promise;
    if (table === this.refuse) {
      throw new StoreError(
        this.name,
        'insert',
        Object.assign(new Error('Code: 27. Cannot parse input'), { code: '27' }),
      );
    }
    if (this.failures > 0) {
      this.failures--;
      throw new StoreError(this.name, 'insert', new Error('connect ECONNREFUSED'));
    }
    for (const line of body.toString().split('\n')) {
      if (line) this.rows.push(line.split('\t').slice(0, 2).join(' '));
    }
  }
  async ping(): Promise<boolean> {
    return true;
  }
  async close(): Promise<void> {}
}

function ping(tech: string, ts: number): ArchiveRecord {
  return { table: 'pings', row: { tech, ts, lat: 48.1, lon: 11.5, acc: 4, spd: null, hdg: null, bat: 0.5 } };
}

/** A spool holding `writes` writes of `rows` pings each, and the `tech ts` of every row in order. */
async function backlog(dir: string, writes: number, rows: number): Promise<{ spool: Spool; expected: string[] }> {
  const spool = await Spool.open({ dir, maxBytes: 1 << 30 });
  const expected: string[] = [];
  const base = Date.now() - 3_600_000;
  for (let w = 0; w < writes; w++) {
    const records = Array.from({ length: rows }, (_, i) => ping(`t${w % 7}`, base + w * rows + i));
    for (const r of records) expected.push(`${r.row.tech} ${r.row.ts}`);
    // Sequential writes: one log record each, so batches end between them.
    await spool.write(records);
  }
  return { spool, expected };
}

/** Records the position each `readBatch` call started from (undefined: the checkpoint). */
function spyReads(spool: Spool): (LogPosition | undefined)[] {
  const froms: (LogPosition | undefined)[] = [];
  const read = spool.readBatch.bind(spool);
  spool.readBatch = (maxRows, from, slices) => {
    froms.push(from);
    return read(maxRows, from, slices);
  };
  return froms;
}

async function drainerFor(
  spool: Spool,
  store: Store,
  batchRows: number,
  worker: BatchWorker | null = null,
  deadLetterDir?: string,
  metrics = new Metrics(),
): Promise<SpoolDrainer> {
  return new SpoolDrainer(spool, store, async () => undefined, createLogger('silent'), metrics, {
    batchRows,
    batchMs: 10,
    deadLetters: new DeadLetterFolder(deadLetterDir ?? (await freshDir())),
    minBackoffMs: 1,
    maxBackoffMs: 5,
    worker,
  });
}

/** A thread that exits at the first request it gets, as a crashed one would. */
/** Drains the whole spool, stops, and checks the writer is still on its worker thread and every row landed once, in order. */
async function drainOnTheWorker(
  drainer: SpoolDrainer,
  spool: Spool,
  store: MemoryStore,
  expected: string[],
): Promise<void> {
  drainer.start();
  await until(() => spool.pendingRows === 0, 'the backlog to drain');
  await drainer.stop(Date.now() + 5000);
  assert.ok(drainer.usesWorker, 'still on the worker thread');
  await drainer.closeWorker();
  assert.deepEqual(store.rows, expected);
}

const dyingThread = (): Worker =>
  new Worker("require('node:worker_threads').parentPort.on('message', () => process.exit(7));", { eval: true });

describe('SpoolDrainer', () => {
  it('reads and encodes the next batch while one is inserted, and inserts every row once, in order', async () => {
    const { spool, expected } = await backlog(await freshDir(), 60, 50);
    const froms = spyReads(spool);
    const store = new MemoryStore();
    store.hold();
    const drainer = await drainerFor(spool, store, 500);
    drainer.start();
    await until(() => store.inserts === 1, 'the first insert');
    await until(() => froms.length === 2, 'the next batch to be read while the first is inserted');
    assert.equal(froms[0], undefined, 'the first batch is read at the checkpoint');
    assert.ok(froms[1], 'the second is read from where the first ends, before it is committed');
    assert.equal(spool.pendingRows, expected.length, 'nothing committed yet');
    store.release();
    await until(() => spool.pendingRows === 0, 'the backlog to drain');
    await drainer.stop(Date.now() + 5000);
    assert.deepEqual(store.rows, expected);
    await spool.close();
  });

  it('keeps the batch read ahead through a store outage and inserts it once the store is back', async () => {
    const { spool, expected } = await backlog(await freshDir(), 40, 50);
    const store = new MemoryStore();
    store.failures = 5;
    const drainer = await drainerFor(spool, store, 400);
    drainer.start();
    await until(() => spool.pendingRows === 0, 'the backlog to drain');
    await drainer.stop(Date.now() + 5000);
    assert.equal(store.failures, 0);
    assert.deepEqual(store.rows, expected);
    await spool.close();
  });

  it('drains rows spooled while it runs, every one once', async () => {
    const dir = await freshDir();
    const spool = await Spool.open({ dir, maxBytes: 1 << 30 });
    const store = new MemoryStore();
    const drainer = await drainerFor(spool, store, 300);
    drainer.start();
    const expected: string[] = [];
    const base = Date.now() - 3_600_000;
    for (let round = 0; round < 50; round++) {
      const writes: Promise<void>[] = [];
      for (let w = 0; w < 40; w++) {
        const r = ping(`t${w}`, base + round * 100 + w);
        expected.push(`${r.row.tech} ${r.row.ts}`);
        writes.push(spool.write([r]));
      }
      await Promise.all(writes);
      drainer.notify();
      await turn();
    }
    await until(() => spool.pendingRows === 0, 'the spool to drain');
    await drainer.stop(Date.now() + 5000);
    assert.deepEqual(store.rows, expected);
    await spool.close();
  });

  it('reads and encodes every batch on the worker thread, and inserts every row once, in order', async () => {
    const { spool, expected } = await backlog(await freshDir(), 60, 50);
    const froms = spyReads(spool);
    const store = new MemoryStore();
    const worker = new BatchWorker();
    const drainer = await drainerFor(spool, store, 500, worker);
    await drainOnTheWorker(drainer, spool, store, expected);
    assert.equal(froms.length, 0, 'no batch was read on the main thread');
    assert.equal(worker.deaths, 0);
    await spool.close();
  });

  it('reads the batch of a worker thread that died on the main thread, starts a new thread, and loses or doubles nothing', async () => {
    const { spool, expected } = await backlog(await freshDir(), 40, 50);
    const froms = spyReads(spool);
    const store = new MemoryStore();
    let spawned = 0;
    const worker = new BatchWorker(() =>
      spawned++ === 0
        ? dyingThread()
        : new Worker(new URL('../../src/telemetry/batch-worker-thread.js', import.meta.url)),
    );
    const metrics = new Metrics();
    const drainer = await drainerFor(spool, store, 400, worker, undefined, metrics);
    await drainOnTheWorker(drainer, spool, store, expected);
    assert.equal(worker.deaths, 1);
    assert.equal((await metrics.archiveWorkerDeaths.get()).values[0]?.value, 1);
    assert.equal(froms.length, 1, 'only the batch of the dead thread was read on the main thread');
    assert.equal(spawned, 2, 'a new thread served the batches after it');
    await spool.close();
  });

  it(`reads on the main thread for good once ${MAX_WORKER_DEATHS} threads died in a row, and still drains every row once`, async () => {
    const { spool, expected } = await backlog(await freshDir(), 40, 50);
    const store = new MemoryStore();
    const worker = new BatchWorker(dyingThread);
    const drainer = await drainerFor(spool, store, 400, worker);
    drainer.start();
    await until(() => spool.pendingRows === 0, 'the backlog to drain');
    await drainer.stop(Date.now() + 5000);
    assert.equal(drainer.usesWorker, false);
    await drainer.closeWorker();
    assert.deepEqual(store.rows, expected);
    assert.equal(worker.deaths, MAX_WORKER_DEATHS);
    await spool.close();
  });

  it('moves exactly the refused rows of a batch read on the worker thread to a dead-letter file, and goes on', async () => {
    const dir = await freshDir();
    const spool = await Spool.open({ dir, maxBytes: 1 << 30 });
    const base = Date.now() - 3_600_000;
    const expected: string[] = [];
    const events: ArchiveRecord[] = [];
    for (let w = 0; w < 20; w++) {
      const order: ArchiveRecord = {
        table: 'order_events',
        row: { order: `o${w}`, tech: 't1', state: 'departed', ts: base + w, lat: null, lon: null },
      };
      events.push(order);
      const p = ping(`t${w % 3}`, base + w);
      expected.push(`${p.row.tech} ${p.row.ts}`);
      await spool.write([p, order]);
    }
    const store = new MemoryStore();
    store.refuse = 'order_events';
    const deadDir = await freshDir();
    const worker = new BatchWorker();
    const drainer = await drainerFor(spool, store, 15, worker, deadDir);
    drainer.start();
    await until(() => spool.pendingRows === 0, 'the spool to drain');
    await drainer.stop(Date.now() + 5000);
    await drainer.closeWorker();
    assert.deepEqual(store.rows, expected, 'every ping landed once');
    const files = (await readdir(deadDir)).filter((f) => f.endsWith('.json')).sort();
    const dead: ArchiveRecord[] = [];
    for (const f of files)
      dead.push(...(JSON.parse(await readFile(join(deadDir, f), 'utf8')) as { records: ArchiveRecord[] }).records);
    dead.sort((a, b) => a.row.ts - b.row.ts);
    assert.deepEqual(dead, events, 'the refused order events, each once');
    await spool.close();
  });
});
