/**
 * The customers of `npm run bench:share`, in a process of their own: opens `streams`
 * Server-Sent Event streams `/t/<token>/stream` over `tokens` (as many customers' pages
 * would, each on its own connection), reports when all are open, and counts the events
 * they receive. Apart from the devices' process so that reading thousands of streams does
 * not delay the devices' own timing of their acks: the figure compared is the node's.
 *
 * Plan as JSON in argv[2]: {httpUrl, tokens, streams}. Messages to the parent:
 * {t:'open', open} once all are open; {t:'events', events} when asked with {t:'count'}.
 */
import { request } from 'node:http';

const plan = JSON.parse(process.argv[2] ?? '{}') as { httpUrl: string; tokens: string[]; streams: number };
let events = 0;
let open = 0;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function openAll(): Promise<void> {
  for (let s = 0; s < plan.streams; s++) {
    const token = plan.tokens[s % plan.tokens.length] as string;
    const req = request(`${plan.httpUrl}/t/${token}/stream`, { agent: false }, (res) => {
      if (res.statusCode === 200) open++;
      res.on('data', (chunk: Buffer) => {
        if (chunk.includes('data: ')) events++;
      });
    });
    req.on('error', () => {});
    req.end();
    if (s % 200 === 199) await sleep(50);
  }
  while (open < plan.streams) await sleep(200);
  process.send?.({ t: 'open', open });
}

process.on('message', (m: { t: string }) => {
  if (m.t === 'count') process.send?.({ t: 'events', events });
  if (m.t === 'stop') process.exit(0);
});
void openAll();
