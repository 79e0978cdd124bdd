/**
 * Ack latency of one node in multi-node mode (REDIS_URL, a real redis-server on loopback)
 * for messages that make events and for pings, which make none. Answers to changes that
 * make events wait until the event is in the shared stream (src/events/event-relay.ts);
 * this shows what that costs an SOS, its cancel and an order step, and that pings pay
 * nothing. One device sends one request at a time, so each figure is the path's own
 * latency, not queueing. Run it on two builds (`--label before`, `--label after`) to
 * compare: each run is kept in load/results/relay-ack.json under its label.
 *
 * `npm run bench:relay-ack -- --label after [--n 200]`
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { QUIET_DEADLINES_ENV } from '../test/support/fixtures.js';
import { RedisServer } from '../test/support/redis-server.js';
import { ServerProcess } from '../test/support/server-process.js';

const { values } = parseArgs({
  options: { label: { type: 'string', default: 'run' }, n: { type: 'string', default: '200' } },
});
const n = Number(values.n);
if (!Number.isInteger(n) || n < 10) throw new Error('--n: an integer of at least 10');
const here = dirname(fileURLToPath(import.meta.url));
const OUT = join(here, '..', '..', 'load', 'results', 'relay-ack.json');
const SITE = { lat: 48.8566, lon: 2.3522 };

/** Percentiles (ms) of `ms`. */
function summary(ms: number[]): Record<string, number> {
  const s = [...ms].sort((x, y) => x - y);
  const at = (q: number) => Number((s[Math.min(s.length - 1, Math.floor(q * s.length))] as number).toFixed(2));
  return { count: s.length, p50: at(0.5), p90: at(0.9), p99: at(0.99), max: at(1) };
}

/** Times one request; throws when it is not acked. */
async function timed(into: number[], what: string, send: () => Promise<{ t: string }>): Promise<unknown> {
  const t0 = performance.now();
  const reply = await send();
  into.push(performance.now() - t0);
  if (reply.t !== 'ack') throw new Error(`${what}: ${JSON.stringify(reply)}`);
  return reply;
}

async function main(): Promise<void> {
  const redis = await RedisServer.launch();
  const node = await ServerProcess.start({
    env: { REDIS_URL: redis.url, ...QUIET_DEADLINES_ENV },
  });
  const ping: number[] = [];
  const sos: number[] = [];
  const sosCancel: number[] = [];
  const orderStep: number[] = [];
  try {
    const tech = 'relay-ack-tech';
    const d = await node.device(tech);
    await node.waitForLog((l) => l.msg === 'technician taken over' && l.tech === tech, 60_000);
    // Warm-up, not counted.
    for (let i = 0; i < 20; i++) await d.ping({ ts: Date.now(), ...SITE });
    for (let i = 0; i < n; i++) {
      await timed(ping, 'ping', () => d.ping({ ts: Date.now(), ...SITE }));
      // Under the rate limit (50 a second).
      await new Promise((r) => setTimeout(r, 25));
    }
    for (let i = 0; i < n; i++) {
      const reply = (await timed(sos, 'sos', () => d.sos({ ts: Date.now(), ...SITE }))) as { incident: string };
      await timed(sosCancel, 'sos_cancel', () => d.sosCancel(reply.incident));
      await new Promise((r) => setTimeout(r, 25));
    }
    for (let i = 0; i < Math.ceil(n / 4); i++) {
      const id = `relay-ack-${i}`;
      const put = await node.http('PUT', `/v1/orders/${id}`, {
        role: 'dispatch',
        body: { technician: tech, ...SITE, scheduledAt: Date.now() + 3_600_000, durationMin: 60 },
      });
      if (put.status !== 200) throw new Error(`PUT ${id}: ${put.status} ${put.text}`);
      await timed(orderStep, 'depart', () => d.depart(id));
      await timed(orderStep, 'checkin', () => d.checkin({ order: id, ts: Date.now(), ...SITE, acc: 5 }));
      await timed(orderStep, 'start', () => d.start(id));
      await timed(orderStep, 'complete', () => d.complete(id));
      await new Promise((r) => setTimeout(r, 100));
    }
    await d.close();
  } finally {
    await node.stop().catch(() => node.crash());
    await redis.destroy();
  }
  let commit = 'unknown';
  try {
    commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: here, encoding: 'utf8' }).trim();
  } catch {
    // Not a checkout: the label says what was measured.
  }
  const run = {
    at: new Date().toISOString(),
    commit,
    note: 'one node with REDIS_URL (redis-server on loopback), one device, one request at a time; ack latency in ms',
    ping: summary(ping),
    sos: summary(sos),
    sosCancel: summary(sosCancel),
    orderStep: summary(orderStep),
  };
  const all = existsSync(OUT) ? (JSON.parse(readFileSync(OUT, 'utf8')) as Record<string, unknown>) : {};
  all[values.label as string] = run;
  writeFileSync(OUT, `${JSON.stringify(all, null, 2)}\n`);
  console.log(JSON.stringify({ label: values.label, ...run }, null, 2));
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
