/**
 * The bare baseline: a uWebSockets.js server that only decodes each MessagePack frame
 * and acks its `seq`. The bench drives it with the same simulator as the full node, so
 * the pipeline's cost is reported as a ratio that holds on a noisy machine.
 */
import { Packr } from 'msgpackr';
import { loadUws } from '../src/gateway/uws.js';

const packr = new Packr({ useRecords: false, mapsAsObjects: true });
const uws = loadUws();
const app = uws.App();
app.ws('/*', {
  maxPayloadLength: 64 * 1024,
  idleTimeout: 960,
  message: (ws, data, isBinary) => {
    if (!isBinary) return;
    const msg = packr.unpack(Buffer.from(data)) as { seq?: unknown };
    ws.send(packr.pack({ t: 'ack', seq: msg.seq ?? null }), true);
  },
});
app.get('/healthz', (res) => {
  res.end('ok');
});
app.listen('127.0.0.1', Number(process.env.PORT ?? 0), (socket) => {
  if (!socket) {
    process.stderr.write('baseline: cannot listen\n');
    process.exit(1);
  }
  const port = uws.us_socket_local_port(socket as unknown as Parameters<typeof uws.us_socket_local_port>[0]);
  process.stdout.write(`${JSON.stringify({ msg: 'listening', port })}\n`);
});
process.on('SIGTERM', () => process.exit(0));
