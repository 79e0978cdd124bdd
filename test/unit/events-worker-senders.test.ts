/**
 * The webhook senders on a worker thread (src/events/worker-senders.ts, send-worker.ts)
 * against a real HTTP receiver in this process: every outcome comes back to its own
 * attempt (answers out of order, several webhooks, one batch), signed with the right
 * secret; a worker that crashes or stops answering fails its attempts (never silently
 * drops them), is counted, logged without secrets and replaced, and a delivery whose attempt
 * died with it is retried and delivered, while time the main thread stood still is not
 * held against a worker; private addresses are refused at every
 * connection; a node that never closes its senders still exits.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { after, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { systemClock } from '../../src/clock.js';
import { WebhookDelivery } from '../../src/events/delivery.js';
import type { SendResult } from '../../src/events/http-sender.js';
import { verifySignature } from '../../src/events/signature.js';
import { WorkerSenders } from '../../src/events/worker-senders.js';
import { createLogger } from '../../src/log.js';
import { Metrics } from '../../src/metrics.js';
import type { DispatchEvent } from '../../src/protocol.js';
import { eventually } from '../support/eventually.js';
import { tempDirs } from '../support/fixtures.js';

const tempDir = tempDirs('worker-senders');
const FAULTY = new URL('../support/faulty-send-worker.js', import.meta.url);
const SECRET_A = 'whsec_worker-test-secret-A-0123456789';
const SECRET_B = 'whsec_worker-test-secret-B-0123456789';
const OPTS = { timeoutMs: 10_000, allowPrivate: true, maxSockets: 8 };

interface Received {
  path: string;
  headers: IncomingMessage['headers'];
  body: string;
}

/**
 * A receiver on 127.0.0.1: answers each POST after a random delay (so answers come back
 * out of order), 200 for an event id ending in an even digit and 500 otherwise.
 */
async function receiver(): Promise<{ url: string; got: Received[]; server: Server }> {
  const got: Received[] = [];
  const server = createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (d: string) => {
      body += d;
    });
    req.on('end', () => {
      got.push({ path: req.url ?? '', headers: req.headers, body });
      const id = String(req.headers['fieldtrack-event-id'] ?? '');
      const even = Number(id.at(-1)) % 2 === 0;
      setTimeout(() => {
        res.statusCode = even ? 200 : 500;
        res.end();
      }, Math.random() * 20);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  after(() => {
    server.closeAllConnections();
    server.close();
  });
  return { url: `http://127.0.0.1:${port}`, got, server };
}

function capture(): { log: ReturnType<typeof createLogger>; lines: string[] } {
  const lines: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      lines.push(chunk.toString());
      done();
    },
  });
  return { log: createLogger('debug', sink), lines };
}

function ev(id: string, order: string): DispatchEvent {
  return { id, type: 'order.assigned', ts: 0, order, tech: `t-${order}`, data: { n: id } };
}

async function restarts(metrics: Metrics): Promise<number> {
  const m = await metrics.webhookSenderRestarts.get();
  return m.values[0]?.value ?? 0;
}

describe('webhook senders on a worker thread', () => {
  it('brings every outcome back to its own attempt, signed with its webhook secret', async () => {
    const rx = await receiver();
    const senders = new WorkerSenders(OPTS, createLogger('silent'));
    after(() => senders.close());
    const a = senders.open(new URL(`${rx.url}/a`), SECRET_A);
    const b = senders.open(new URL(`${rx.url}/b?x=1`), SECRET_B);
    // All in one turn of the event loop: one batch, answered out of order.
    const sent: Array<{ id: string; hook: 'a' | 'b'; result: Promise<SendResult> }> = [];
    for (let i = 0; i < 40; i++) {
      const id = `0000000000000${String(i).padStart(3, '0')}`;
      const body = JSON.stringify(ev(id, `o${i}`));
      sent.push({ id, hook: 'a', result: a.send({ id, type: 'order.assigned' }, body, 1_700_000_000 + i) });
      // The same event to the other webhook (its body copied to the worker once).
      sent.push({ id, hook: 'b', result: b.send({ id, type: 'order.assigned' }, body, 1_700_000_000 + i) });
    }
    for (const s of sent) {
      const even = Number(s.id.at(-1)) % 2 === 0;
      assert.deepEqual(await s.result, even ? { ok: true } : { ok: false, error: 'HTTP 500' }, `${s.hook} ${s.id}`);
    }
    assert.equal(rx.got.length, 80);
    for (const r of rx.got) {
      const id = r.headers['fieldtrack-event-id'] as string;
      assert.equal((JSON.parse(r.body) as DispatchEvent).id, id, 'each request carries its own body');
      assert.equal(r.headers['fieldtrack-event-type'], 'order.assigned');
      assert.equal(r.headers['content-type'], 'application/json');
      const secret = r.path === '/a' ? SECRET_A : SECRET_B;
      assert.ok(r.path === '/a' || r.path === '/b?x=1', r.path);
      const t = 1_700_000_000 + Number(id.slice(-3));
      assert.ok(verifySignature(secret, r.headers['fieldtrack-signature'] as string, r.body, t), `signature of ${id}`);
    }
    a.close();
    assert.deepEqual(await a.send({ id: 'x', type: 'order.assigned' }, '{}', 0), {
      ok: false,
      error: 'the webhook was closed',
    });
    await senders.close();
    assert.equal(senders.threadId, null);
    assert.deepEqual(await b.send({ id: 'x', type: 'order.assigned' }, '{}', 0), {
      ok: false,
      error: 'the webhook sender is closed',
    });
  });

  it('a worker that crashes fails its attempts, is replaced, and the delivery is retried, not lost', async () => {
    const rx = await receiver();
    const flag = join(await tempDir(), 'crash');
    writeFileSync(flag, '');
    process.env.FAULT = `crash-once:${flag}`;
    const metrics = new Metrics();
    const { log, lines } = capture();
    const senders = new WorkerSenders({ ...OPTS, workerFile: FAULTY }, log, metrics);
    after(() => senders.close());
    const sender = senders.open(new URL(`${rx.url}/hook`), SECRET_A);
    const attempts: SendResult[] = [];
    const delivered: string[] = [];
    const delivery = new WebhookDelivery(
      '*',
      systemClock,
      { baseMs: 20, maxMs: 100, forMs: 60_000 },
      8,
      async (e) => {
        const r = await sender.send(e, JSON.stringify(e), Math.floor(Date.now() / 1000));
        attempts.push(r);
        return r;
      },
      { delivered: (e) => delivered.push(e.id), retried: () => {}, dead: () => assert.fail('nothing may die') },
    );
    delivery.offer(ev('0000000000002-0', 'o1'));
    delivery.offer(ev('0000000000004-0', 'o1'));
    await eventually('both events delivered', () => delivered.length === 2, 20_000);
    assert.deepEqual(delivered, ['0000000000002-0', '0000000000004-0'], 'in order');
    const first = attempts[0] as { ok: false; error: string };
    assert.equal(first.ok, false);
    assert.match(first.error, /webhook sender worker crashed: injected worker crash/);
    assert.equal(await restarts(metrics), 1);
    const logged = lines.join('');
    assert.match(logged, /webhook sender worker lost/);
    assert.ok(!logged.includes(SECRET_A), 'the secret is never logged');
    delivery.stop();
  });

  it('a worker that stops answering is terminated: its attempts fail and are counted', async () => {
    process.env.FAULT = 'silent';
    const metrics = new Metrics();
    const senders = new WorkerSenders(
      { ...OPTS, timeoutMs: 200, stuckGraceMs: 300, workerFile: FAULTY },
      createLogger('silent'),
      metrics,
    );
    after(() => senders.close());
    const sender = senders.open(new URL('http://127.0.0.1:9/hook'), SECRET_A);
    const result = await sender.send({ id: '1', type: 'order.assigned' }, '{}', 0);
    assert.deepEqual(result, { ok: false, error: 'the webhook sender worker did not answer within 500 ms' });
    assert.equal(await restarts(metrics), 1);
  });

  it('a main thread that stood still does not count against a worker that answered meanwhile', async () => {
    const metrics = new Metrics();
    const senders = new WorkerSenders({ ...OPTS, timeoutMs: 1000, stuckGraceMs: 300 }, createLogger('silent'), metrics);
    after(() => senders.close());
    // Nothing listens on port 9: the worker's answer (refused) needs nothing from the main thread.
    const sender = senders.open(new URL('http://127.0.0.1:9/hook'), SECRET_A);
    await sender.send({ id: '0', type: 'order.assigned' }, '{}', 0); // the worker is up
    const result = sender.send({ id: '2', type: 'order.assigned' }, '{}', 0);
    await new Promise((r) => setImmediate(r)); // posted
    // The main thread stands still (as under SIGSTOP) well past timeout + grace; the worker answers meanwhile.
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 3_500);
    assert.deepEqual(await result, { ok: false, error: 'connect ECONNREFUSED 127.0.0.1:9' });
    assert.equal(await restarts(metrics), 0);
  });

  it('refuses private addresses at every connection unless allowed', async () => {
    const rx = await receiver();
    const port = new URL(rx.url).port;
    const senders = new WorkerSenders({ ...OPTS, allowPrivate: false }, createLogger('silent'));
    after(() => senders.close());
    const literal = senders.open(new URL(`http://127.0.0.1:${port}/hook`), SECRET_A);
    const named = senders.open(new URL(`http://localhost:${port}/hook`), SECRET_A);
    const byLiteral = await literal.send({ id: '2', type: 'order.assigned' }, '{}', 0);
    assert.equal(byLiteral.ok, false);
    assert.match((byLiteral as { error: string }).error, /127\.0\.0\.1 is a private address/);
    const byName = await named.send({ id: '2', type: 'order.assigned' }, '{}', 0);
    assert.equal(byName.ok, false);
    assert.match((byName as { error: string }).error, /localhost resolves to .*, a private address/);
    assert.equal(rx.got.length, 0, 'nothing reached the receiver');
  });

  it('does not keep a process from exiting when never closed', async () => {
    const module = fileURLToPath(new URL('../../src/events/worker-senders.js', import.meta.url));
    // A file, not --eval: a worker inherits the process's flags, and --input-type is refused in one.
    const script = join(await tempDir(), 'never-closed.mjs');
    writeFileSync(
      script,
      `const { WorkerSenders } = await import(${JSON.stringify(module)});
      const senders = new WorkerSenders({ timeoutMs: 10000, allowPrivate: true, maxSockets: 2 }, { error() {} });
      const r = await senders.open(new URL('http://127.0.0.1:9/hook'), 's').send({ id: '1', type: 'x' }, '{}', 0);
      console.log(JSON.stringify(r));`,
    );
    const child = spawnSync(process.execPath, [script], { encoding: 'utf8', timeout: 20_000 });
    assert.equal(child.signal, null, 'exited by itself');
    assert.equal(child.status, 0, child.stderr);
    // Answered by the worker (nothing listens on port 9), not by a crash.
    assert.match(child.stdout, /"ok":false,"error":"connect ECONNREFUSED/);
  });

  it('sends from a thread at the configured nice value, leaving the main thread as it was', async (t) => {
    if (process.platform !== 'linux') {
      t.skip('per-thread nice values are Linux only');
      return;
    }
    const rx = await receiver();
    const before = threadNices();
    const senders = new WorkerSenders({ ...OPTS, nice: 7 }, createLogger('silent'));
    after(() => senders.close());
    const hook = senders.open(new URL(`${rx.url}/n`), SECRET_A);
    // The thread starts with the first attempt.
    assert.deepEqual(await hook.send({ id: '0000000000000000', type: 'order.assigned' }, '{}', 0), { ok: true });
    const started = [...threadNices()].filter(([tid]) => !before.has(tid));
    assert.ok(
      started.some(([, nice]) => nice === 7),
      `a new thread runs at nice 7 (new threads: ${JSON.stringify(started)})`,
    );
    assert.equal(threadNices().get(process.pid), before.get(process.pid), "the main thread's nice value changed");
    await senders.close();
  });
});

/** The nice value of each of this process's threads, by thread id (/proc/self/task/<tid>/stat). */
function threadNices(): Map<number, number> {
  const out = new Map<number, number>();
  for (const tid of readdirSync('/proc/self/task')) {
    const stat = readFileSync(`/proc/self/task/${tid}/stat`, 'utf8');
    // The fields after the command name (which may hold spaces) start after its ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    out.set(Number(tid), Number(fields[16]));
  }
  return out;
}
