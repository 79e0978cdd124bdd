/**
 * The control arm of `npm run bench:share`: a process that is not the node but serves the
 * customers' streams the way the node does (uWS, `/t/<token>/stream`, one corked write of
 * the same frame to every stream of an order), at the node's rate (each order's streams
 * get a frame `hz` times a second, the orders spread over the second as the devices'
 * pings are). While it runs, the node serves the same devices with no stream open.
 *
 * What it separates: the machine's part of what 5,000 streams cost the devices' acks (the
 * kernel's loopback work, the customers' process waking, a second busy CPU) from the
 * node's own part (its main thread writing between acks). The first would be on other
 * machines in production; the second is the node's.
 *
 * Plan as JSON in argv[2]: {tokens, hz, frameBytes}. Sends {t:'listening', port} once it
 * listens on a loopback port; asked {t:'stop'}, exits.
 */
import { type HttpResponse, loadUws } from '../src/gateway/uws.js';

const plan = JSON.parse(process.argv[2] ?? '{}') as { tokens: string[]; hz: number; frameBytes: number };
const uws = loadUws();

/** A state event of `frameBytes` bytes, as the node's frames for these orders are. */
const frame = (() => {
  const head = 'data: {"pad":"';
  const tail = '"}\n\n';
  return Buffer.from(`${head}${'x'.repeat(Math.max(0, plan.frameBytes - head.length - tail.length))}${tail}`);
})();

interface Stream {
  res: HttpResponse;
  aborted: boolean;
}
const orderOf = new Map(plan.tokens.map((t, i) => [t, i]));
const byOrder: Array<Set<Stream>> = plan.tokens.map(() => new Set());

const app = uws.App();
app.get('/t/:token/stream', (res, req) => {
  const order = orderOf.get(req.getParameter(0) ?? '');
  if (order === undefined) {
    res.writeStatus('404 Not Found').end();
    return;
  }
  const stream: Stream = { res, aborted: false };
  const streams = byOrder[order] as Set<Stream>;
  streams.add(stream);
  res.onAborted(() => {
    stream.aborted = true;
    streams.delete(stream);
  });
  res.cork(() => {
    res.writeStatus('200 OK');
    res.writeHeader('content-type', 'text/event-stream; charset=utf-8');
    res.write('retry: 1000\n\n');
  });
});

/** Writes the frame to every stream of `order`, as the node's hub does for one change. */
function deliver(order: number): void {
  for (const s of byOrder[order] as Set<Stream>) {
    if (s.aborted) continue;
    s.res.cork(() => s.res.write(frame));
  }
}

// Each order changes `hz` times a second, the orders spread evenly over the period: every
// tick writes the orders whose turn came since the last one.
const periodMs = 1000 / plan.hz;
const start = performance.now();
let next = 0;
const tick = setInterval(() => {
  const due = Math.floor(((performance.now() - start) / periodMs) * plan.tokens.length);
  for (; next < due; next++) deliver(next % plan.tokens.length);
}, 1);

app.listen('127.0.0.1', 0, (listen) => {
  if (!listen) {
    process.stderr.write('share-stream-blaster: could not listen\n');
    process.exit(1);
  }
  process.send?.({ t: 'listening', port: uws.us_socket_local_port(listen) });
});

process.on('message', (m: { t: string }) => {
  if (m.t !== 'stop') return;
  clearInterval(tick);
  process.exit(0);
});
// The bench that forked this process went away (it failed or was stopped): so does this one.
process.on('disconnect', () => process.exit(0));
