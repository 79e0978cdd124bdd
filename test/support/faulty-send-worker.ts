/**
 * Webhook sender workers that fail on purpose, for test/unit/events-worker-senders.test.ts
 * (started through `WorkerSenders`' `workerFile`, with `FAULT` in the worker's environment):
 * - `crash-once:<flag file>`: the real worker (send-worker.ts), which throws an uncaught
 *   error on the first batch holding an attempt while the flag file exists (and removes
 *   it first, so the next worker runs normally);
 * - `silent`: takes every batch and never answers (a stuck worker).
 */
import { existsSync, unlinkSync } from 'node:fs';
import { parentPort } from 'node:worker_threads';
import type { SendBatch } from '../../src/events/send-worker.js';

const fault = process.env.FAULT ?? '';
if (fault.startsWith('crash-once:')) {
  await import('../../src/events/send-worker.js');
  const flag = fault.slice('crash-once:'.length);
  parentPort?.on('message', (batch: SendBatch) => {
    if (batch.ids.length > 0 && existsSync(flag)) {
      unlinkSync(flag);
      throw new Error('injected worker crash');
    }
  });
} else if (fault === 'silent') {
  parentPort?.on('message', () => {});
} else {
  throw new Error(`unknown FAULT ${fault}`);
}
