/**
 * `GET /v1/events/stream` (Server-Sent Events) on a real node: it resumes after
 * `Last-Event-ID` without a gap or a repeat, after a reconnect and after a restart of the
 * node; without it only new events come; it needs a dispatch token.
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import type { DispatchEvent } from '../src/protocol.js';
import { eventually } from './support/eventually.js';
import { PLACES, tempDirs } from './support/fixtures.js';
import { ServerProcess, token } from './support/server-process.js';

const tempDir = tempDirs('events-stream');
const running: ServerProcess[] = [];
after(async () => {
  for (const s of running.splice(0)) await s.stop().catch(() => undefined);
});

/** A Server-Sent Events reader over fetch, as an EventSource would read the stream. */
class Stream {
  readonly events: DispatchEvent[] = [];
  readonly ids: string[] = [];
  private readonly abort = new AbortController();
  status = 0;
  ended = false;

  static async open(s: ServerProcess, headers: Record<string, string> = {}, query = ''): Promise<Stream> {
    const stream = new Stream();
    const res = await fetch(`${s.httpUrl}/v1/events/stream${query}`, {
      headers: { authorization: `Bearer ${await token('dispatch-1', 'dispatch')}`, ...headers },
      signal: stream.abort.signal,
    });
    stream.status = res.status;
    if (res.status === 200 && res.body) void stream.read(res.body);
    return stream;
  }

  private async read(body: ReadableStream<Uint8Array>): Promise<void> {
    const decoder = new TextDecoder();
    let buffer = '';
    try {
      for await (const chunk of body as unknown as AsyncIterable<Uint8Array>) {
        buffer += decoder.decode(chunk, { stream: true });
        let end = buffer.indexOf('\n\n');
        while (end >= 0) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          let id: string | null = null;
          let data = '';
          for (const line of block.split('\n')) {
            if (line.startsWith('id: ')) id = line.slice(4);
            else if (line.startsWith('data: ')) data += line.slice(6);
          }
          if (data !== '') {
            const ev = JSON.parse(data) as DispatchEvent;
            assert.equal(id, ev.id, 'the SSE id is the event id');
            this.events.push(ev);
            this.ids.push(ev.id);
          }
          end = buffer.indexOf('\n\n');
        }
      }
    } catch {
      // aborted
    }
    this.ended = true;
  }

  until(n: number): Promise<DispatchEvent[]> {
    return eventually(`${n} events on the stream`, () => (this.events.length >= n ? this.events : false));
  }

  close(): void {
    this.abort.abort();
  }
}

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
