/**
 * The archive writer's worker thread on its own: it reads and encodes exactly the batch
 * the main thread would (same rows, same bodies, same end position), answers a corrupt
 * spool with the read's error and lives on, never holds a process open while idle, and
 * ends cleanly when closed.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { Worker } from 'node:worker_threads';
import type { ArchiveRecord } from '../../src/telemetry/archive.js';
import { BatchWorker } from '../../src/telemetry/batch-worker.js';
import { encodeBatch } from '../../src/telemetry/schema.js';
import { Spool } from '../../src/telemetry/spool.js';
import { tempDirs } from '../support/fixtures.js';

const freshDir = tempDirs('batch-worker');

function ping(tech: string, ts: number): ArchiveRecord {
  return { table: 'pings', row: { tech, ts, lat: 48.1, lon: 11.5, acc: 4, spd: null, hdg: 90.5, bat: 0.5 } };
}

function alert(id: string, ts: number): ArchiveRecord {
  return {
    table: 'alert_events',
    row: {
      alert: id,
      kind: 'sos',
      level: 1,
      state: 'open',
      tech: 't\t1',
      order: null,
      ts,
      raisedAt: ts,
      lat: null,
      lon: null,
      detail: '{"note":"line\\nbreak"}',
    },
  };
}

/** Runs `code` (an ES module body) in a fresh node process; resolves with its exit code. */
function runChild(code: string): Promise<number | null> {
  const child = spawn(process.execPath, ['--input-type=module', '-e', code], {
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  return new Promise((resolve) => child.on('exit', (c) => resolve(c)));
}

describe('BatchWorker', () => {
  it('reads and encodes the same batch as the main thread, record by record, up to about maxRows', async () => {
    const dir = await freshDir();
    const spool = await Spool.open({ dir, maxBytes: 1 << 24 });
    const day = 86_400_000;
    for (let w = 0; w < 30; w++) {
      // Rows over three days and two tables, so that a batch has several parts.
      await spool.write([ping(`t${w % 4}`, w * day * 0.1), ping('x', w), alert(`a${w}`, w * 1000)]);
    }
    const worker = new BatchWorker();
    try {
      const range = spool.readRange();
      const got = await worker.read({ ...range, maxRows: 40 });
      const here = await spool.readBatch(40);
      assert.ok(got && here);
      assert.equal(got.rows, here.rows);
      assert.equal(got.rows, 42, 'whole records: 14 writes of 3 rows');
      assert.deepEqual(got.next, here.next);
      assert.equal(got.oldestAt, here.oldestAt);
      assert.equal(got.newestAt, here.newestAt);
      const expected = encodeBatch(here.records);
      assert.deepEqual(
        got.parts.map((p) => [p.table, p.day, p.rows, Buffer.from(p.body).toString()]),
        expected.tables.map((t) => [t.table, t.day, t.rows, t.body.toString()]),
      );
      assert.ok(got.parts.length >= 3);
      assert.ok(Buffer.isBuffer(got.parts[0]!.body));
      // The rest, from where the first batch ends; then nothing is left.
      const rest = await worker.read({ ...spool.readRange(got.next), maxRows: 1000 });
      assert.equal(rest?.rows, 90 - 42);
      assert.equal(await worker.read({ ...spool.readRange(rest!.next), maxRows: 1000 }), null);
      assert.equal(worker.deaths, 0);
    } finally {
      await worker.close();
      await spool.close();
    }
  });

  it('answers a corrupt spool with the read error and goes on serving', async () => {
    const dir = await freshDir();
    const spool = await Spool.open({ dir, maxBytes: 1 << 24 });
    for (let w = 0; w < 3; w++) await spool.write([ping('c', w)]);
    const range = spool.readRange();
    await spool.close();
    // Flip a byte inside the first record: its checksum no longer matches.
    const fh = await open(join(dir, '000000000001.seg'), 'r+');
    await fh.write(Buffer.from([0xff]), 0, 1, 20);
    await fh.close();
    const worker = new BatchWorker();
    try {
      await assert.rejects(worker.read({ ...range, maxRows: 10 }), { name: 'LogCorruptError', message: /checksum/ });
      const after = await worker.read({ ...range, from: range.end, maxRows: 10 });
      assert.equal(after, null, 'the same thread answers the next request');
      assert.equal(worker.deaths, 0);
    } finally {
      await worker.close();
    }
  });

  // The timeout only ends a hang, which is the failure this test looks for; nothing is timed.
  it('lets a process exit on its own with an idle thread, and ends the thread on close', {
    timeout: 60_000,
  }, async () => {
    const dir = await freshDir();
    const spool = await Spool.open({ dir, maxBytes: 1 << 24 });
    await spool.write([ping('e', 1)]);
    await spool.close();
    const url = (path: string): string => JSON.stringify(new URL(path, import.meta.url).href);
    const body = (closeIt: boolean, warm = false): string => `
      const { BatchWorker } = await import(${url('../../src/telemetry/batch-worker.js')});
      const { Spool } = await import(${url('../../src/telemetry/spool.js')});
      const spool = await Spool.open({ dir: ${JSON.stringify(dir)}, maxBytes: 1 << 24 });
      const worker = new BatchWorker();
      ${warm ? 'worker.warm(); await new Promise((r) => setTimeout(r, 200));' : ''}
      const batch = await worker.read({ ...spool.readRange(), maxRows: 10 });
      if (batch?.rows !== 1) process.exit(3);
      await spool.close();
      ${closeIt ? 'await worker.close(); await worker.read({ ...spool.readRange(), maxRows: 1 }).then(() => process.exit(4), () => undefined);' : ''}
    `;
    assert.equal(await runChild(body(false)), 0, 'exits with the thread idle and never closed');
    assert.equal(await runChild(body(true)), 0, 'exits after close, which refuses later reads');
    assert.equal(await runChild(body(false, true)), 0, 'exits with a thread started at once (warm) and idle');
  });

  it('warm starts the thread once, and reads use that thread', async () => {
    const dir = await freshDir();
    const spool = await Spool.open({ dir, maxBytes: 1 << 24 });
    await spool.write([ping('w', 1)]);
    let started = 0;
    const worker = new BatchWorker(() => {
      started++;
      return new Worker(new URL('../../src/telemetry/batch-worker-thread.js', import.meta.url), { execArgv: [] });
    });
    try {
      worker.warm();
      worker.warm();
      assert.equal(started, 1, 'started at once, and only once');
      const batch = await worker.read({ ...spool.readRange(), maxRows: 10 });
      assert.equal(batch?.rows, 1);
      assert.equal(started, 1, 'the read used the warm thread');
    } finally {
      await worker.close();
      await spool.close();
    }
  });
});
