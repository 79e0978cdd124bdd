/**
 * The customer tracking link on a real node (PROTOCOL.md, "Customer tracking link"), with
 * an OSRM router on loopback (ROUTER_URL): links made and refused, the state hiding the
 * technician until departure and after arrival, the stream following a drive with a
 * falling ETA from the router, the router's failure falling back to the straight line
 * (counted), `order.approaching` once (a device notice; not again after kill -9 and a
 * restart), links and revocations surviving the restart, `410` after completion plus
 * SHARE_LINGER_MIN and after revocation, `404` for tampered tokens, and link tokens
 * refused on `/v1`.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import WebSocket from 'ws';
import type { DeviceClient, DevicePush } from '../src/client/index.js';
import type { ShareLink, ShareState } from '../src/protocol.js';
import { eventually } from './support/eventually.js';
import { Inbox } from './support/inbox.js';
import { ServerProcess } from './support/server-process.js';
import { north, OsrmStub, SseReader } from './support/share.js';

const HOME = { lat: 52.52, lon: 13.405 };
/** 3 s: the test waits for the link to die. */
const LINGER_MIN = '0.05';

describe('customer tracking link', () => {
  let router: OsrmStub;
  let server: ServerProcess;
  let device: DeviceClient;
  let notices: Inbox<DevicePush>;
  const streams: SseReader[] = [];
  const env = () => ({
    ROUTER_URL: router.url,
    SHARE_LINGER_MIN: LINGER_MIN,
    APPROACH_SEC: '60',
    APPROACH_M: '500',
    ARCHIVE_BATCH_MS: '100',
  });

  before(async () => {
    router = await OsrmStub.start();
    server = await ServerProcess.start({ env: env() });
  });
  after(async () => {
    for (const s of streams) s.close();
    await device?.close().catch(() => {});
    await server?.stop();
    await router?.close();
  });

  const share = async (order: string) => {
    const res = await server.http('POST', `/v1/orders/${order}/share`, { role: 'dispatch' });
    assert.equal(res.status, 201, res.text);
    return res.body as ShareLink;
  };
  const state = (token: string) => fetch(`${server.httpUrl}/t/${token}/state`);
  const stream = async (token: string) => {
    const s = await SseReader.open(`${server.httpUrl}/t/${token}/stream`);
    streams.push(s);
    return s;
  };
  const putOrder = async (id: string, tech: string) => {
    const body = { technician: tech, ...HOME, scheduledAt: Date.now() + 3_600_000, durationMin: 30 };
    const res = await server.http('PUT', `/v1/orders/${id}`, { role: 'dispatch', body });
    assert.equal(res.status, 200, res.text);
  };
  const connect = async () => {
    device = await server.newDevice('tech-1');
    notices = new Inbox<DevicePush>(device);
    await device.connect();
  };
  let ts = Date.now() - 60_000;
  const ping = async (p: { lat: number; lon: number }) => {
    ts += 1000;
    const reply = await device.ping({ ts, ...p, acc: 5 });
    assert.equal(reply.t, 'ack', JSON.stringify(reply));
    return ts;
  };
  const approaching = () => notices.items.filter((n) => n.t === 'notice' && n.kind === 'approaching');

  let link: ShareLink;
  let revoked: ShareLink;

  it('makes links for dispatch only, for known orders that are not finished', async () => {
    await putOrder('job-1', 'tech-1');
    assert.equal((await server.http('POST', '/v1/orders/nope/share', { role: 'dispatch' })).status, 404);
    assert.equal((await server.http('POST', '/v1/orders/job-1/share', { role: 'safety' })).status, 403);
    assert.equal((await server.http('POST', '/v1/orders/job-1/share', { role: 'device', sub: 'tech-1' })).status, 403);
    assert.equal((await server.http('POST', '/v1/orders/job-1/share')).status, 401);
    const before = Date.now();
    link = await share('job-1');
    assert.equal(link.url, `${server.httpUrl}/t/${link.token}`);
    assert.ok(link.expiresAt >= before + 24 * 3_600_000 - 1000 && link.expiresAt <= Date.now() + 24 * 3_600_000);
    assert.match(link.token, /^[A-Za-z0-9_.-]+$/);
  });

  it('refuses tampered and foreign tokens with 404, and link tokens on every /v1 route', async () => {
    const t = link.token;
    const flipped = `${t.slice(0, -2)}${t.at(-2) === 'A' ? 'B' : 'A'}${t.at(-1)}`;
    const otherOrder = `${Buffer.from('job-2').toString('base64url')}${t.slice(t.indexOf('.'))}`;
    for (const bad of [flipped, otherOrder, 'garbage', `${t}x`]) {
      for (const path of [`/t/${bad}`, `/t/${bad}/state`, `/t/${bad}/stream`]) {
        const res = await fetch(server.httpUrl + path);
        assert.equal(res.status, 404, `${path} answered ${res.status}`);
        await res.body?.cancel();
      }
    }
    for (const [method, path] of [
      ['GET', '/v1/orders/job-1'],
      ['GET', '/v1/technicians/tech-1'],
      ['GET', '/v1/alerts'],
      ['POST', '/v1/orders/job-1/share'],
      ['GET', `/v1/technicians/tech-1/track`],
    ]) {
      const res = await server.http(method!, path!, { token: t });
      assert.equal(res.status, 401, `${method} ${path} with a link token answered ${res.status}`);
    }
    for (const endpoint of ['/v1/safety', '/v1/device']) {
      const status = await new Promise<number>((resolve, reject) => {
        const ws = new WebSocket(`${server.wsUrl}${endpoint}?token=${t}`);
        ws.on('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
        ws.on('open', () => reject(new Error(`${endpoint} upgraded with a link token`)));
        ws.on('error', () => {});
      });
      assert.equal(status, 401, endpoint);
    }
  });

  it('revokes: every earlier link of the order dies with 410 and its stream ends; a new one lives', async () => {
    await putOrder('job-2', 'tech-2');
    const a = await share('job-2');
    revoked = await share('job-2');
    const open = await stream(revoked.token);
    await open.next((s) => s.order.state === 'assigned', 'the first state');
    assert.equal((await server.http('DELETE', '/v1/orders/job-2/share', { role: 'safety' })).status, 403);
    assert.equal((await server.http('DELETE', '/v1/orders/nope/share', { role: 'dispatch' })).status, 404);
    const del = await server.http('DELETE', '/v1/orders/job-2/share', { role: 'dispatch' });
    assert.equal(del.status, 200, del.text);
    await open.end();
    assert.equal(open.gone, true);
    for (const token of [a.token, revoked.token]) {
      assert.equal((await state(token)).status, 410);
      assert.equal((await fetch(`${server.httpUrl}/t/${token}`)).status, 410);
      assert.equal((await SseReader.open(`${server.httpUrl}/t/${token}/stream`)).status, 410);
    }
    const fresh = await share('job-2');
    assert.equal((await state(fresh.token)).status, 200);
  });

  it('shows the order but not the technician before departure', async () => {
    await connect();
    await ping(north(HOME, 3000));
    const res = await state(link.token);
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('cache-control'), 'no-store');
    assert.equal(res.headers.get('referrer-policy'), 'no-referrer');
    const s = (await res.json()) as ShareState;
    assert.deepEqual(s.order, { state: 'assigned', scheduledAt: s.order.scheduledAt, ...HOME });
    assert.equal(s.technician, null);
    assert.equal(s.eta, null);
  });

  it('streams the drive: departure, positions within the stream, an ETA from the router that falls', async () => {
    const live = await stream(link.token);
    await live.next((s) => s.order.state === 'assigned', 'the assigned state');
    assert.equal((await device.depart('job-1')).t, 'ack');
    const departed = await live.next((s) => s.order.state === 'departed' && s.technician !== null, 'departure');
    assert.equal(departed.eta?.source, 'route');
    const etas: number[] = [];
    for (const m of [2600, 2200, 1800, 1400, 1000, 700]) {
      const at = await ping(north(HOME, m));
      const s = await live.next((x) => x.technician?.ts === at && x.eta !== null, `the fix ${m} m out`);
      assert.deepEqual(s.technician, { ...north(HOME, m), ts: at });
      assert.equal(s.eta?.source, 'route');
      // The stub's road: 1.4 times the straight line at 10 m/s.
      assert.ok(Math.abs(s.eta!.metres - m * 1.4) < 5, JSON.stringify(s.eta));
      etas.push(s.eta!.seconds);
    }
    assert.deepEqual(
      etas,
      [...etas].sort((a, b) => b - a),
      `ETA falls: ${etas}`,
    );
    assert.equal(new Set(etas).size, etas.length);
    assert.equal(approaching().length, 0, 'not approaching 700 m out (route ETA 98 s, 980 m)');
  });

  it('falls back to the straight line when the router fails, and counts it', async () => {
    router.mode = 'fail';
    const live = streams.at(-1)!;
    const at = await ping(north(HOME, 600));
    const s = await live.next((x) => x.technician?.ts === at, 'the fix during the router outage');
    assert.equal(s.eta?.source, 'straight_line');
    const metrics = await (await fetch(`${server.httpUrl}/metrics`)).text();
    assert.match(metrics, /fieldtrack_eta_fallback_total\{reason="status"\} [1-9]/);
    router.mode = 'route';
  });

  it('fires order.approaching once, as a notice to the device', async () => {
    await ping(north(HOME, 400)); // route: 56 s and 560 m: under APPROACH_SEC
    const notice = await notices.next((n) => n.t === 'notice' && n.kind === 'approaching');
    assert.deepEqual(notice, {
      t: 'notice',
      kind: 'approaching',
      order: 'job-1',
      msg: notice.t === 'notice' ? notice.msg : '',
    });
    await ping(north(HOME, 300));
    await ping(north(HOME, 250));
    const metrics = await (await fetch(`${server.httpUrl}/metrics`)).text();
    assert.match(metrics, /fieldtrack_order_approaching_total 1\b/);
    assert.equal(approaching().length, 1);
    // And one order.approaching event for the dispatch system, with the ETA that fired it.
    const events = await eventually('the order.approaching event', async () => {
      const res = await server.http('GET', '/v1/events?limit=1000', { role: 'dispatch' });
      const all = (res.body as { events: Array<{ type: string; order?: string; data: { eta?: unknown } }> }).events;
      const mine = all.filter((e) => e.type === 'order.approaching' && e.order === 'job-1');
      return mine.length > 0 ? mine : undefined;
    });
    assert.equal(events.length, 1);
    assert.equal((events[0]?.data.eta as { source?: string } | undefined)?.source, 'route');
  });

  it('keeps links, revocations and the approaching mark across kill -9 and a restart', async () => {
    for (const s of streams) s.close();
    await device.close();
    await server.crash();
    server = await ServerProcess.start({ env: env(), dataDir: server.dataDir });
    assert.equal((await state(revoked.token)).status, 410, 'a revocation survives the restart');
    const live = await stream(link.token);
    await live.next((s) => s.order.state === 'departed', 'the departed state after the restart');
    await connect();
    const at = await ping(north(HOME, 150));
    await live.next((s) => s.technician?.ts === at && s.eta !== null, 'a fix after the restart');
    // A check-in goes through the order's mailbox after that fix's ETA: once it is acked,
    // any approaching the ETA caused has been pushed.
    const checkin = await device.checkin({ order: 'job-1', ts: Date.now(), ...north(HOME, 10), acc: 5 });
    assert.equal(checkin.t, 'ack', JSON.stringify(checkin));
    assert.equal(approaching().length, 0, 'approaching fired again after the restart');
    const metrics = await (await fetch(`${server.httpUrl}/metrics`)).text();
    assert.match(metrics, /fieldtrack_order_approaching_total 0\b/);
  });

  it('hides the technician once arrived, and dies SHARE_LINGER_MIN after completion', async () => {
    const live = streams.at(-1)!;
    const arrived = await live.next((s) => s.order.state === 'arrived', 'arrival');
    assert.equal(arrived.technician, null);
    assert.equal(arrived.eta, null);
    await ping(north(HOME, 5));
    const s = (await (await state(link.token)).json()) as ShareState;
    assert.equal(s.technician, null, 'no position after arrival');
    assert.equal((await device.start('job-1')).t, 'ack');
    assert.equal((await device.complete('job-1')).t, 'ack');
    const done = await live.next((x) => x.order.state === 'completed', 'completion');
    assert.equal(done.technician, null);
    assert.equal((await state(link.token)).status, 200, 'still answering during the linger');
    await live.end(30_000);
    assert.equal(live.gone, true, 'the stream said gone');
    assert.equal((await state(link.token)).status, 410);
    assert.equal((await fetch(`${server.httpUrl}/t/${link.token}`)).status, 410);
    assert.equal((await server.http('POST', '/v1/orders/job-1/share', { role: 'dispatch' })).status, 409);
  });
});
