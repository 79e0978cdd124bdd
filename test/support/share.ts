/**
 * Helpers of the customer tracking link tests: a Server-Sent Events reader over fetch, an
 * HTTP router on loopback that speaks OSRM's `/route/v1` JSON, and points at a distance
 * from a customer.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { distanceMeters } from '../../src/geofence/distance.js';
import type { ShareState } from '../../src/protocol.js';

const M_PER_DEG_LAT = 111_195;

/** The point `northM` metres north of `p`. */
export function north(p: { lat: number; lon: number }, northM: number): { lat: number; lon: number } {
  return { lat: p.lat + northM / M_PER_DEG_LAT, lon: p.lon };
}

/** One open `/t/<token>/stream`: every state received, and whether the link was declared gone. */
export class SseReader {
  readonly states: ShareState[] = [];
  gone = false;
  ended = false;
  status = 0;
  private readonly abort = new AbortController();
  private waiters: Array<() => void> = [];

  private constructor() {}

  /** Opens the stream at `url`; resolves once the response headers arrived. */
  static async open(url: string): Promise<SseReader> {
    const r = new SseReader();
    const res = await fetch(url, { signal: r.abort.signal });
    r.status = res.status;
    if (res.body === null || res.status !== 200) {
      r.ended = true;
      return r;
    }
    void r.read(res.body);
    return r;
  }

  private async read(body: ReadableStream<Uint8Array>): Promise<void> {
    const decoder = new TextDecoder();
    let buffer = '';
    try {
      for await (const chunk of body) {
        buffer += decoder.decode(chunk, { stream: true });
        for (let end = buffer.indexOf('\n\n'); end >= 0; end = buffer.indexOf('\n\n')) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          const lines = block.split('\n');
          const event = lines.find((l) => l.startsWith('event: '))?.slice(7) ?? 'message';
          const data = lines.filter((l) => l.startsWith('data: ')).map((l) => l.slice(6));
          if (event === 'gone') this.gone = true;
          else if (data.length > 0) this.states.push(JSON.parse(data.join('\n')) as ShareState);
          this.wake();
        }
      }
    } catch {
      // aborted by close()
    }
    this.ended = true;
    this.wake();
  }

  private wake(): void {
    for (const w of this.waiters.splice(0)) w();
  }

  /** The first state (received or to come) that matches; rejects after `timeoutMs`. */
  async next(match: (s: ShareState) => boolean, what: string, timeoutMs = 15_000): Promise<ShareState> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = this.states.find(match);
      if (found !== undefined) return found;
      if (this.ended) throw new Error(`stream ended before ${what}; got ${JSON.stringify(this.states.slice(-3))}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no ${what} within ${timeoutMs} ms; got ${JSON.stringify(this.states.slice(-3))}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  /** Resolves once the stream ended (the server closed it); rejects after `timeoutMs`. */
  async end(timeoutMs = 15_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!this.ended) {
      if (Date.now() > deadline) throw new Error('stream did not end');
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, 100);
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  close(): void {
    this.abort.abort();
  }
}

/** How the router stub answers. */
export type RouterMode = 'route' | 'fail';

/**
 * An OSRM router on loopback: `/route/v1/driving/lon,lat;lon,lat` answers a road 1.4 times
 * the straight line, driven at 10 m/s; in `fail` mode every request gets 503.
 */
export class OsrmStub {
  mode: RouterMode = 'route';
  requests = 0;

  private constructor(
    private readonly server: Server,
    readonly url: string,
  ) {}

  static async start(): Promise<OsrmStub> {
    let stub: OsrmStub | undefined;
    const server = createServer((req, res) => {
      if (stub !== undefined) stub.requests++;
      const m = /^\/route\/v1\/driving\/([-\d.]+),([-\d.]+);([-\d.]+),([-\d.]+)\?/.exec(req.url ?? '');
      if (stub?.mode === 'fail' || m === null) {
        res.writeHead(503).end();
        return;
      }
      const [lon1, lat1, lon2, lat2] = m.slice(1).map(Number) as [number, number, number, number];
      const distance = distanceMeters(lat1, lon1, lat2, lon2) * 1.4;
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ code: 'Ok', routes: [{ duration: distance / 10, distance }], waypoints: [] }));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    stub = new OsrmStub(server, `http://127.0.0.1:${(server.address() as AddressInfo).port}`);
    return stub;
  }

  close(): Promise<void> {
    this.server.closeAllConnections();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}
