/**
 * `GET /v1/events/stream` (Server-Sent Events) on a real node: it resumes after
 * `Last-Event-ID` without a gap or a repeat, after a reconnect and after a restart of the
 * node; without it only new events come; it needs a dispatch token.
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import type { DispatchEvent } from '../src/protocol.js';
import { EventStreamReader as Stream } from './support/event-stream-reader.js';
import { PLACES, tempDirs } from './support/fixtures.js';
import { ServerProcess, token } from './support/server-process.js';

const tempDir = tempDirs('events-stream');
const running: ServerProcess[] = [];
after(async () => {
  for (const s of running.splice(0)) await s.stop().catch(() => undefined);
});

const order = (tech: string) => ({
  technician: tech,
  ...PLACES.lyon,
  scheduledAt: Date.now() + 3_600_000,
  durationMin: 30,
});

describe('the event stream (Server-Sent Events)', () => {
  it('resumes after Last-Event-ID without gaps or repeats, across a reconnect and a node restart', async () => {
    const dataDir = await tempDir();
    let s = await ServerProcess.start({ dataDir });
    running.push(s);
    const put = async (node: ServerProcess, id: string) =>
      assert.equal((await node.http('PUT', `/v1/orders/${id}`, { role: 'dispatch', body: order('st-1') })).status, 200);

    const live = await Stream.open(s);
    assert.equal(live.status, 200);
    for (let i = 0; i < 5; i++) await put(s, `s-${i}`);
    const first = await live.until(5);
    live.close();
    const lastSeen = first[4]?.id as string;

    for (let i = 5; i < 10; i++) await put(s, `s-${i}`);
    const resumed = await Stream.open(s, { 'last-event-id': lastSeen });
    await resumed.until(5);
    for (let i = 10; i < 13; i++) await put(s, `s-${i}`);
    await resumed.until(8);
    resumed.close();

    // Without Last-Event-ID: only what is stored from now on.
    const fresh = await Stream.open(s);
    await put(s, 's-13');
    const onlyNew = await fresh.until(1);
    assert.equal(onlyNew[0]?.order, 's-13');
    fresh.close();

    const seenBeforeRestart = [...first, ...resumed.events];
    assert.equal(seenBeforeRestart.length, 13);
    s.terminate(); // SIGTERM: a graceful restart on the same DATA_DIR
    assert.equal(await s.waitForExit(), 0);
    s = await ServerProcess.start({ dataDir });
    running.push(s);
    await put(s, 's-14');
    const afterRestart = await Stream.open(s, { 'last-event-id': seenBeforeRestart[12]?.id as string });
    await afterRestart.until(2); // s-13 (missed while not listening) and s-14
    afterRestart.close();

    const all = [...seenBeforeRestart, ...afterRestart.events];
    const pulled = await s.http('GET', '/v1/events?after=0&limit=1000', { role: 'dispatch' });
    const stored = (pulled.body as { events: DispatchEvent[] }).events;
    assert.deepEqual(
      all.map((e) => e.id),
      stored.map((e) => e.id),
      'every stored event seen exactly once, in order',
    );
    assert.deepEqual(
      all.map((e) => e.order),
      Array.from({ length: 15 }, (_, i) => `s-${i}`),
    );

    // `?after=` works as Last-Event-ID does, for clients that cannot set headers.
    const fromQuery = await Stream.open(s, {}, `?after=${stored[12]?.id}`);
    assert.deepEqual(
      (await fromQuery.until(2)).map((e) => e.order),
      ['s-13', 's-14'],
    );
    fromQuery.close();
  });

  it('needs a dispatch token and a well-formed Last-Event-ID', async () => {
    const s = await ServerProcess.start();
    running.push(s);
    assert.equal((await fetch(`${s.httpUrl}/v1/events/stream`)).status, 401);
    const safety = await fetch(`${s.httpUrl}/v1/events/stream`, {
      headers: { authorization: `Bearer ${await token('op', 'safety')}` },
    });
    assert.equal(safety.status, 403);
    const bad = await Stream.open(s, { 'last-event-id': 'garbage' });
    assert.equal(bad.status, 400);
  });
});
