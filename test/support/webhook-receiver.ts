/**
 * A webhook receiver as a real process (`node dist/test/support/webhook-receiver.js FILE
 * [PORT]`): every POST to `/hook` is appended to FILE as one JSON line `{at, headers,
 * body}` (raw body text, so tests can check signatures over the exact bytes) and answered
 * according to the mode: `ok` (200), `fail` (500) or `hang` (never answered). Modes are set
 * with `POST /_mode {"mode", "delayMs"}`; `delayMs` delays every answer. The file outlives
 * the process, so a receiver killed and started again on the same port keeps its history.
 * Prints `{"listening": port}` on stdout once it listens.
 */
import { appendFileSync } from 'node:fs';
import { createServer, type IncomingMessage } from 'node:http';

const [file, portArg] = process.argv.slice(2);
if (file === undefined) {
  process.stderr.write('usage: webhook-receiver FILE [PORT]\n');
  process.exit(2);
}
let mode: 'ok' | 'fail' | 'hang' = (process.env.RECEIVER_MODE as 'ok' | 'fail' | 'hang' | undefined) ?? 'ok';
let delayMs = Number(process.env.RECEIVER_DELAY_MS ?? 0);

function bodyOf(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

const server = createServer((req, res) => {
  void (async () => {
    const body = await bodyOf(req);
    if (req.url === '/_mode') {
      const m = JSON.parse(body) as { mode?: typeof mode; delayMs?: number };
      if (m.mode !== undefined) mode = m.mode;
      if (m.delayMs !== undefined) delayMs = m.delayMs;
      res.end('{}');
      return;
    }
    if (req.method !== 'POST' || req.url !== '/hook') {
      res.statusCode = 404;
      res.end();
      return;
    }
    const answerAs = mode;
    if (answerAs === 'hang') return;
    if (delayMs > 0) await new Promise((r) => setTimeout(r, delayMs));
    // Recorded when answered 2xx only: what the receiver accepted, in the order it accepted it.
    if (answerAs === 'ok') {
      appendFileSync(file, `${JSON.stringify({ at: Date.now(), headers: req.headers, body })}\n`);
      res.statusCode = 200;
    } else res.statusCode = 500;
    res.end();
  })();
});
server.keepAliveTimeout = 60_000;
server.listen(Number(portArg ?? 0), '127.0.0.1', () => {
  const address = server.address();
  process.stdout.write(`${JSON.stringify({ listening: typeof address === 'object' && address ? address.port : 0 })}\n`);
});
