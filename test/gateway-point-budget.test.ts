/**
 * Per-connection budgets on the real server, and clients that honour them: the message
 * rate limit and the `batch` points budget (BATCH_POINTS_*) answer `rate_limited` with
 * `retryMs` at once; a refused message stores nothing; the typed client's FixUplink waits
 * and carries refused fixes into a later batch, so every fix arrives.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { type BatchPoint, type DeviceClient, ErrorCode, FixUplink, type Reply } from '../src/client/index.js';
import { RateLimiter } from '../src/gateway/rate-limit.js';
import { eventually } from './support/eventually.js';
import { PLACES } from './support/fixtures.js';
import { ServerProcess } from './support/server-process.js';

const HOME = PLACES.berlin;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** `count` points one second apart ending at `end`, slightly moving. */
function points(count: number, end: number): BatchPoint[] {
  return Array.from({ length: count }, (_, i) => [end - (count - i) * 1000, HOME.lat + i * 1e-6, HOME.lon]);
}

/** Archived points of `tech` between `from` and `to`. */
async function trackPoints(server: ServerProcess, tech: string, from: number, to: number): Promise<unknown[][]> {
  const res = await server.http('GET', `/v1/technicians/${tech}/track?from=${from}&to=${to}&limit=10000`, {
    role: 'safety',
  });
  assert.equal(res.status, 200, res.text);
  return (res.body as { points: unknown[][] }).points;
}

function retryMsOf(reply: Reply): number {
  assert.equal(reply.t, 'err', JSON.stringify(reply));
  assert.equal(reply.t === 'err' && reply.code, ErrorCode.rateLimited);
  const retryMs = reply.t === 'err' ? reply.retryMs : undefined;
  assert.ok(typeof retryMs === 'number' && Number.isInteger(retryMs) && retryMs > 0, `retryMs ${retryMs}`);
  return retryMs;
}

describe('rate limiter (unit)', () => {
  it('spends a cost per request and says how long until it fits', () => {
    const l = new RateLimiter(100, 1000, 0);
    assert.equal(l.take(0, 1000), true);
    assert.equal(l.take(0, 500), false);
    assert.equal(l.retryMs(0, 500), 5000);
    assert.equal(l.retryMs(2000, 500), 3000);
    assert.equal(l.take(5000, 500), true);
    assert.equal(l.retryMs(5000, 1), 10);
    assert.equal(l.retryMs(5000, 5000), 10_000, 'a cost above the burst waits for a full bucket');
  });
});

describe('message rate limit with retryMs', () => {
  let server: ServerProcess;
  before(async () => {
    server = await ServerProcess.start({ env: { RATE_LIMIT_PER_SEC: '2', RATE_LIMIT_BURST: '3' } });
  });
  after(async () => {
    await server.stop();
  });

  it('answers rate_limited with a retryMs after which the next message is taken', async () => {
    const d = await server.device('tech-pb1');
    const replies = await Promise.all(Array.from({ length: 5 }, (_, i) => d.ping({ ts: Date.now() + i, ...HOME })));
    assert.deepEqual(
      replies.map((r) => r.t),
      ['ack', 'ack', 'ack', 'err', 'err'],
    );
    const wait = retryMsOf(replies[4]!);
    assert.ok(wait <= 500, `one token at 2 per second is at most 500 ms away, got ${wait}`);
    await sleep(wait);
    assert.equal((await d.ping({ ts: Date.now(), ...HOME })).t, 'ack');
    await d.close();
  });

  it('never refuses an SOS or an operator ack for rate, even with the budget spent', async () => {
    const d = await server.device('tech-pb-sos');
    const pings = await Promise.all(Array.from({ length: 5 }, (_, i) => d.ping({ ts: Date.now() + i, ...HOME })));
    assert.ok(
      pings.some((r) => r.t === 'err' && r.code === 'rate_limited'),
      'the budget is spent',
    );
    const sos = await d.sos({ ts: Date.now(), ...HOME, note: 'after a burst of pings' });
    assert.equal(sos.t, 'ack', JSON.stringify(sos));
    const operator = await server.safety('op-pb');
    // Past the burst of 3: every one is answered on its merits (not_found), none rate_limited.
    const many = await Promise.all(
      Array.from({ length: 6 }, () => operator.request({ t: 'ack', id: 'no-such-alert' })),
    );
    assert.deepEqual(
      many.map((r) => (r.t === 'err' ? r.code : r.t)),
      many.map(() => 'not_found'),
    );
    const ack = await operator.request({ t: 'ack', id: String(sos.incident) });
    assert.equal(ack.t, 'ack', JSON.stringify(ack));
    await operator.close();
    await d.close();
  });

  it('the typed client carries rate-limited pings into a later batch: every fix arrives', async () => {
    const d = await server.device('tech-pb2');
    const uplink = new FixUplink(d);
    const t0 = Date.now() - 60_000;
    const fixes = Array.from({ length: 8 }, (_, i) => ({ ts: t0 + i * 1000, ...HOME, acc: 5 }));
    const replies = await Promise.all(fixes.map((f) => uplink.send(f)));
    assert.ok(uplink.rateLimited > 0, 'some pings were refused with rate_limited');
    assert.deepEqual(
      replies.map((r) => r.t),
      fixes.map(() => 'ack'),
    );
    assert.equal(uplink.pending, 0);
    const track = await eventually('all 8 fixes archived', async () => {
      const pts = await trackPoints(server, 'tech-pb2', t0, t0 + 10_000);
      return pts.length >= fixes.length ? pts : undefined;
    });
    assert.deepEqual(
      track.map((p) => p[0]),
      fixes.map((f) => f.ts),
    );
    uplink.stop();
    await d.close();
  });
});

describe('batch points budget', () => {
  let server: ServerProcess;
  before(async () => {
    server = await ServerProcess.start({ env: { BATCH_POINTS_PER_SEC: '1000', BATCH_POINTS_BURST: '1000' } });
  });
  after(async () => {
    await server.stop();
  });

  it('refuses a batch past the budget at once with retryMs, stores none of it, and takes it after the wait', async () => {
    const d = await server.device('tech-pb3');
    const end = Date.now() - 3_600_000;
    const first = points(1000, end - 600_000);
    const second = points(600, end);
    const ok = await d.batch(first);
    assert.equal(ok.t === 'ack' && ok.n, 1000);
    const refused = await d.batch(second);
    const wait = retryMsOf(refused);
    assert.ok(wait <= 600, `600 points at 1000 per second are at most 600 ms away, got ${wait}`);
    // A marker after the refusal: the spool drains in order, so once it is archived a stored
    // refused batch would be too.
    const marker = end + 1000;
    assert.equal((await d.ping({ ts: marker, ...HOME })).t, 'ack');
    const track = await eventually('the marker archived', async () => {
      const pts = await trackPoints(server, 'tech-pb3', 0, end + 10_000);
      return pts.some((p) => p[0] === marker) ? pts : undefined;
    });
    assert.equal(track.length, 1001, 'the refused batch stored nothing');
    await sleep(wait);
    const later = await d.batch(second);
    assert.equal(later.t === 'ack' && later.n, 600);
    await d.close();
  });

  it('the typed client sends a 3000-point backlog through the budget: refused batches arrive later', async () => {
    const d: DeviceClient = await server.device('tech-pb4');
    const uplink = new FixUplink(d);
    const end = Date.now() - 60_000;
    const backlog = points(3000, end);
    const replies = await uplink.sendAll(backlog);
    assert.ok(uplink.rateLimited >= 1, 'the budget refused at least one batch');
    assert.equal(
      replies.every((r) => r.t === 'ack'),
      true,
    );
    const track = await eventually('the whole backlog archived', async () => {
      const pts = await trackPoints(server, 'tech-pb4', 0, end + 1);
      return pts.length >= backlog.length ? pts : undefined;
    });
    assert.equal(track.length, backlog.length);
    uplink.stop();
    await d.close();
  });
});

describe('batch points budget, defaults', () => {
  let server: ServerProcess;
  before(async () => {
    server = await ServerProcess.start();
  });
  after(async () => {
    await server.stop();
  });

  it('one device cannot have 20,000 points acked at once (default burst 10,000)', async () => {
    const d = await server.device('tech-pb5');
    const end = Date.now() - 3_600_000;
    const replies = await Promise.all(Array.from({ length: 20 }, (_, k) => d.batch(points(1000, end - k * 1_000_000))));
    const acked = replies.reduce((sum, r) => sum + (r.t === 'ack' ? Number(r.n) : 0), 0);
    const limited = replies.filter((r) => r.t === 'err' && r.code === ErrorCode.rateLimited);
    assert.ok(limited.length > 0, 'some batches were refused');
    assert.ok(acked < 20_000, `acked ${acked}`);
    for (const r of limited) retryMsOf(r);
    await d.close();
  });
});
