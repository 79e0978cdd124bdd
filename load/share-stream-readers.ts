/**
 * The customers of `npm run bench:share`, in a process of their own: opens `streams`
 * Server-Sent Event streams `/t/<token>/stream` over `tokens` (as many customers' pages
 * would, each on its own connection), reports when all are open, and counts the events
 * they receive. Apart from the devices' process so that reading thousands of streams does
 * not delay the devices' own timing of their acks: the figure compared is the node's.
 *
 * As cheap as it can be, since it runs on the node's cores: plain TCP sockets reading into
 * one shared buffer (`onread`, no allocation per read), the response head checked for
 * `200`, then events counted by their `data: ` field (the body is chunked; a field split
 * between two reads is found with the tail of the previous read). No HTTP client, no SSE
 * parser: what a page does with an event is not the node's cost.
 *
 * Plan as JSON in argv[2]: {httpUrl, tokens, streams}. Asked {t:'open', url?}, opens the
 * streams (at `url`, by default `httpUrl`: the control arm opens them at another server)
 * and answers {t:'open', open, failed} once every one was answered; asked {t:'close'},
 * closes them all and answers {t:'closed'}; asked {t:'count'}, answers {t:'events', events}
 * (events received since the start).
 */
import { connect, type Socket } from 'node:net';
import { countFields, nextCarry } from './sse-count.js';

const plan = JSON.parse(process.argv[2] ?? '{}') as { httpUrl: string; tokens: string[]; streams: number };
/** Where the streams are opened: the node, or the control arm's server. */
let target = new URL(plan.httpUrl);
let events = 0;
let open = 0;
let failed = 0;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const HEAD_END = Buffer.from('\r\n\r\n');
/** Every socket reads into this one buffer: the callbacks run one at a time. */
const shared = Buffer.allocUnsafe(65_536);

/** The open sockets, to close them all between rounds. */
const sockets = new Set<Socket>();

function openOne(token: string): void {
  /** The response head until it is complete; null once the body started. */
  let head: Buffer | null = Buffer.alloc(0);
  let carry: Buffer = Buffer.alloc(0);
  const socket = connect({
    host: target.hostname,
    port: Number(target.port),
    onread: {
      buffer: shared,
      callback(n) {
        let from = 0;
        if (head !== null) {
          head = Buffer.concat([head, shared.subarray(0, n)]);
          const end = head.indexOf(HEAD_END);
          if (end < 0) return true;
          if (head.subarray(0, 12).toString('latin1') === 'HTTP/1.1 200') open++;
          else failed++;
          // The body bytes of this read start after the head.
          from = n - (head.length - end - HEAD_END.length);
          head = null;
        }
        const body = shared.subarray(from, n);
        events += countFields(body, carry);
        carry = nextCarry(carry, body);
        return true;
      },
    },
  });
  socket.on('connect', () =>
    socket.write(`GET /t/${token}/stream HTTP/1.1\r\nHost: ${target.host}\r\nAccept: text/event-stream\r\n\r\n`),
  );
  socket.on('error', () => {});
  sockets.add(socket);
  socket.on('close', () => sockets.delete(socket));
}

async function openAll(url: string): Promise<void> {
  target = new URL(url);
  open = 0;
  failed = 0;
  for (let s = 0; s < plan.streams; s++) {
    openOne(plan.tokens[s % plan.tokens.length] as string);
    if (s % 200 === 199) await sleep(50);
  }
  while (open + failed < plan.streams) await sleep(200);
  process.send?.({ t: 'open', open, failed });
}

/** Closes every stream (as the customers leaving); the node sees each connection end. */
async function closeAll(): Promise<void> {
  for (const socket of sockets) socket.destroy();
  while (sockets.size > 0) await sleep(50);
  process.send?.({ t: 'closed' });
}

process.on('message', (m: { t: string; url?: string }) => {
  if (m.t === 'open') void openAll(m.url ?? plan.httpUrl);
  if (m.t === 'close') void closeAll();
  if (m.t === 'count') process.send?.({ t: 'events', events });
  if (m.t === 'stop') process.exit(0);
});
// The bench that forked this process went away (it failed or was stopped): so does this one.
process.on('disconnect', () => process.exit(0));
