/**
 * A node that falls behind refuses pings and batches at once instead of queueing them
 * (MAX_FIXES_IN_FLIGHT): each shed frame is answered `rate_limited` with a `retryMs`, the
 * refused fixes are not stored, the acked ones all are, an SOS sent in the middle of the
 * flood is never shed, and the typed client's FixUplink gets every fix through in the end.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { FixUplink, type Reply } from '../src/client/index.js';
import { eventually } from './support/eventually.js';
import { PLACES } from './support/fixtures.js';
import { ServerProcess, token } from './support/server-process.js';

const HOME = PLACES.berlin;

async function trackTimes(server: ServerProcess, tech: string, from: number, to: number): Promise<number[]> {
  const res = await server.http('GET', `/v1/technicians/${tech}/track?from=${from}&to=${to}&limit=10000`, {
    role: 'safety',
  });
  return ((res.body as { points?: number[][] }).points ?? []).map((p) => p[0] as number);
}

describe('load shedding of pings and batches', () => {
  let server: ServerProcess;
  before(async () => {
    server = await ServerProcess.start({
      env: { MAX_FIXES_IN_FLIGHT: '3', RATE_LIMIT_PER_SEC: '100000', RATE_LIMIT_BURST: '100000' },
    });
  });
  after(async () => {
    await server.stop();
  });

  it('answers a flood at once: shed pings get rate_limited with retryMs and are not stored; an SOS is never shed', async () => {
    const d = await server.device('tech-shed');
    const t0 = Date.now() - 60_000;
    const pings: Promise<Reply>[] = [];
    for (let i = 0; i < 300; i++) {
      pings.push(d.ping({ ts: t0 + i, ...HOME }));
      if (i === 150) pings.push(d.sos({ ts: Date.now(), ...HOME, note: 'in the middle of a flood' }));
    }
    const replies = await Promise.all(pings);
    const sos = replies.splice(151, 1)[0] as Reply;
    assert.equal(sos.t, 'ack', `the SOS is never shed: ${JSON.stringify(sos)}`);
    const shed = replies.flatMap((r, i) => (r.t === 'err' ? [{ r, ts: t0 + i }] : []));
    const acked = replies.flatMap((r, i) => (r.t === 'ack' ? [t0 + i] : []));
    assert.ok(shed.length > 0, 'some pings were shed');
    assert.ok(acked.length > 0, 'some pings were taken');
    for (const { r } of shed) {
      assert.equal(r.code, 'rate_limited');
      assert.match(String(r.msg), /node busy/);
      const retryMs = Number((r as { retryMs?: unknown }).retryMs);
      assert.ok(retryMs >= 250 && retryMs <= 4000, `retryMs ${retryMs}`);
    }
    const stored = await eventually('every acked ping archived', async () => {
      const times = await trackTimes(server, 'tech-shed', t0, t0 + 299);
      return acked.every((ts) => times.includes(ts)) ? times : undefined;
    });
    assert.ok(!shed.some(({ ts }) => stored.includes(ts)), 'a shed ping is not stored');
    const metrics = (await server.http('GET', '/metrics')).text;
    assert.match(metrics, /fieldtrack_load_shed_total\{type="ping"\} [1-9]/);
    await d.close();
  });

  it('the typed client gets every fix through a shedding node, later, in batches', async () => {
    const d = await server.device('tech-shed-2');
    const uplink = new FixUplink(d);
    const t0 = Date.now() - 120_000;
    const fixes = Array.from({ length: 300 }, (_, i) => ({ ts: t0 + i, ...HOME }));
    const replies = await Promise.all(fixes.map((f) => uplink.send(f)));
    assert.ok(uplink.rateLimited > 0, 'the node shed some of them');
    assert.deepEqual(
      replies.map((r) => r.t),
      fixes.map(() => 'ack'),
    );
    const stored = await eventually('all 300 fixes archived', async () => {
      const times = await trackTimes(server, 'tech-shed-2', t0, t0 + 299);
      return times.length >= fixes.length ? times : undefined;
    });
    assert.deepEqual(
      stored,
      fixes.map((f) => f.ts),
    );
    uplink.stop();
    await d.close();
  });
});

// On a node of its own: its 200 HTTP connections never share a node with the socket tests.
describe("load shedding of a tracker app's fixes", () => {
  let server: ServerProcess;
  before(async () => {
    server = await ServerProcess.start({
      env: { MAX_FIXES_IN_FLIGHT: '3', RATE_LIMIT_PER_SEC: '100000', RATE_LIMIT_BURST: '100000' },
    });
  });
  after(async () => {
    await server.stop();
  });

  it("sheds a tracker app's fixes the same way: 429 with Retry-After, nothing stored", async () => {
    const deviceToken = await token('tech-shed-app', 'device');
    const t0 = Date.now() - 180_000;
    const send = (i: number): Promise<Response> =>
      fetch(
        `${server.httpUrl}/v1/osmand/${deviceToken}?id=tech-shed-app&lat=${HOME.lat}&lon=${HOME.lon}&timestamp=${t0 + i}`,
        { method: 'POST' },
      );
    const answers = await Promise.all(Array.from({ length: 200 }, (_, i) => send(i)));
    const statuses = answers.map((r) => r.status);
    const shed = answers.flatMap((r, i) => (r.status === 429 ? [{ r, ts: t0 + i }] : []));
    const taken = answers.flatMap((r, i) => (r.status === 200 ? [t0 + i] : []));
    assert.ok(shed.length > 0, `some requests were shed: ${[...new Set(statuses)]}`);
    assert.ok(taken.length > 0, 'some were taken');
    assert.equal(shed.length + taken.length, answers.length, `only 200 and 429: ${[...new Set(statuses)]}`);
    for (const { r } of shed) assert.match(r.headers.get('retry-after') ?? '', /^[1-9][0-9]*$/);
    const stored = await eventually('every taken fix archived', async () => {
      const times = await trackTimes(server, 'tech-shed-app', t0, t0 + 199);
      return taken.every((ts) => times.includes(ts)) ? times : undefined;
    });
    assert.ok(!shed.some(({ ts }) => stored.includes(ts)), 'a shed fix is not stored');
  });
});
