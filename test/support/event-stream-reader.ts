/**
 * A Server-Sent Events reader of `GET /v1/events/stream` over fetch, as an EventSource
 * would read it: collects the events and checks that each `id:` is its event's id; and the
 * pull API read to its end.
 */
import assert from 'node:assert/strict';
import type { DispatchEvent } from '../../src/protocol.js';
import { eventually } from './eventually.js';
import { type ServerProcess, token } from './server-process.js';

/** A Server-Sent Events reader over fetch, as an EventSource would read the stream. */
export class EventStreamReader {
  readonly events: DispatchEvent[] = [];
  readonly ids: string[] = [];
  private readonly abort = new AbortController();
  status = 0;
  ended = false;

  static async open(s: ServerProcess, headers: Record<string, string> = {}, query = ''): Promise<EventStreamReader> {
    const stream = new EventStreamReader();
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

/** Every event `GET /v1/events` holds, read page by page (`pageSize` a page) until an empty one. */
export async function pullAllEvents(s: ServerProcess, pageSize = 1000): Promise<DispatchEvent[]> {
  const out: DispatchEvent[] = [];
  let after = '0';
  for (;;) {
    const res = await s.http('GET', `/v1/events?after=${after}&limit=${pageSize}`, { role: 'dispatch' });
    assert.equal(res.status, 200, res.text);
    const page = res.body as { events: DispatchEvent[]; next: string };
    out.push(...page.events);
    if (page.events.length === 0) return out;
    after = page.next;
  }
}
