/**
 * The worker client against real threads running a tiny script: answers reach the request
 * with their id whatever their order, the thread is ref'd exactly while it owes an answer
 * (seen through the spawn hook), a death fails what the thread held and the next request
 * starts a new thread, and close fails what waits.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Worker } from 'node:worker_threads';
import { type Waiter, WorkerClient } from '../../src/worker-client.js';

/**
 * Answers `{ id, v }` with `{ id, v }`; `hold` keeps requests unanswered until a `flush`,
 * which answers them newest first; `die` exits, `throw` crashes.
 */
const THREAD = `
const { parentPort } = require('node:worker_threads');
const held = [];
parentPort.on('message', (m) => {
  if (m.op === 'die') process.exit(3);
  if (m.op === 'throw') throw new Error('boom');
  if (m.op === 'hold') return void held.push(m);
  if (m.op === 'flush') {
    while (held.length > 0) { const h = held.pop(); parentPort.postMessage({ id: h.id, v: h.v }); }
    return;
  }
  parentPort.postMessage({ id: m.id, v: m.v });
});
`;

interface Answer {
  id: number;
  v: string;
}

interface Pending extends Waiter {
  resolve(v: string): void;
}

/** A thread whose ref state the test can read. */
interface Spawned {
  worker: Worker;
  refd: boolean;
}

function setup(): {
  client: WorkerClient<Answer, Pending>;
  spawned: Spawned[];
  causes: (Error | string)[];
  request(op: string, v?: string): Promise<string>;
} {
  const spawned: Spawned[] = [];
  const causes: (Error | string)[] = [];
  const client = new WorkerClient<Answer, Pending>({
    spawn: () => {
      const worker = new Worker(THREAD, { eval: true });
      const s: Spawned = { worker, refd: true };
      const ref = worker.ref.bind(worker);
      const unref = worker.unref.bind(worker);
      worker.ref = () => {
        s.refd = true;
        ref();
      };
      worker.unref = () => {
        s.refd = false;
        unref();
      };
      spawned.push(s);
      return worker;
    },
    answer: (m, take) => take(m.id)?.resolve(m.v),
    died: (cause, fail) => {
      causes.push(cause);
      fail(new Error(`died: ${typeof cause === 'string' ? cause : cause.message}`));
    },
    closedError: () => new Error('closed'),
  });
  const request = (op: string, v = ''): Promise<string> => {
    const id = client.nextId();
    return new Promise((resolve, reject) => client.post({ op, id, v }, [[id, { resolve, fail: reject }]]));
  };
  return { client, spawned, causes, request };
}

/** Lets the thread's messages arrive. */
const roundTrip = async (request: (op: string) => Promise<string>): Promise<void> => {
  await request('echo');
};

describe('WorkerClient', () => {
  it('matches answers to requests by id, whatever their order', async () => {
    const { client, request } = setup();
    try {
      const a = request('hold', 'a');
      const b = request('hold', 'b');
      const c = request('hold', 'c');
      client.post({ op: 'flush' }, []);
      assert.deepEqual(await Promise.all([a, b, c]), ['a', 'b', 'c']);
      assert.equal(client.pending, 0);
    } finally {
      await client.close();
    }
  });

  it('refs the thread only while it owes an answer', async () => {
    const { client, spawned, request } = setup();
    try {
      client.start();
      const s = spawned[0] as Spawned;
      assert.equal(s.refd, false, 'idle after start');
      const a = request('hold', 'a');
      assert.equal(s.refd, true, 'owes a');
      const b = request('hold', 'b');
      assert.equal(s.refd, true, 'owes a and b');
      client.post({ op: 'flush' }, []);
      await Promise.all([a, b]);
      assert.equal(s.refd, false, 'idle again once both answered');
      const c = request('hold', 'c');
      assert.equal(s.refd, true, 'owes c');
      const d = request('echo', 'd');
      assert.equal(await d, 'd');
      assert.equal(s.refd, true, 'still owes c after d is answered');
      client.post({ op: 'flush' }, []);
      await c;
      assert.equal(s.refd, false);
      assert.equal(spawned.length, 1);
    } finally {
      await client.close();
    }
  });

  it('fails what a thread that exited held, counts the death, and starts a new thread on the next request', async () => {
    const { client, spawned, causes, request } = setup();
    try {
      const held = request('hold', 'a');
      const dying = request('die');
      await Promise.all([
        assert.rejects(held, /^Error: died: exited with code 3$/),
        assert.rejects(dying, /^Error: died: exited with code 3$/),
      ]);
      assert.equal(client.deaths, 1);
      assert.equal(client.pending, 0);
      assert.equal(client.thread, null);
      assert.equal(await request('echo', 'b'), 'b');
      assert.equal(spawned.length, 2);
      assert.notEqual(client.thread, spawned[0]?.worker);
      assert.equal(client.deaths, 1, "the first thread's 'error' and 'exit' are one death");
      assert.deepEqual(causes, ['exited with code 3']);
    } finally {
      await client.close();
    }
  });

  it("hands a crash's error to the owner and counts it once", async () => {
    const { client, spawned, causes, request } = setup();
    try {
      await assert.rejects(request('throw'), /died: boom/);
      // The 'exit' that follows the 'error' is no second death.
      await new Promise((resolve) => spawned[0]?.worker.once('exit', resolve));
      await roundTrip(request);
      assert.equal(client.deaths, 1);
      assert.equal(causes.length, 1);
      assert.ok(causes[0] instanceof Error);
      assert.equal(spawned.length, 2);
    } finally {
      await client.close();
    }
  });

  it('kill ends a thread that stopped answering like a death', async () => {
    const { client, spawned, causes, request } = setup();
    try {
      const held = request('hold', 'a');
      client.kill('did not answer');
      await assert.rejects(held, /died: did not answer/);
      assert.equal(client.deaths, 1);
      assert.deepEqual(causes, ['did not answer']);
      assert.equal(await request('echo', 'b'), 'b');
      assert.equal(spawned.length, 2);
    } finally {
      await client.close();
    }
  });

  it('close fails what waits, ends the thread and refuses later requests', async () => {
    const { client, spawned, causes, request } = setup();
    const held = assert.rejects(request('hold', 'a'), /^Error: closed$/);
    const exited = new Promise((resolve) => spawned[0]?.worker.once('exit', resolve));
    await client.close();
    await held;
    await exited;
    assert.equal(client.thread, null);
    assert.equal(client.deaths, 0, 'a closed thread is no death');
    assert.deepEqual(causes, []);
    await assert.rejects(request('echo'), /^Error: closed$/);
    assert.equal(client.start(), null);
    assert.equal(spawned.length, 1);
  });
});
