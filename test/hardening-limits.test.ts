/**
 * Abuse limits on the real server: total connections, connections per source address,
 * upgrade rate per address, batch size and id rules (length, characters, in the token's
 * sub too). Each limit is set low through configuration and pushed past.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type WebSocket from 'ws';
import { ErrorCode, MAX_BATCH_POINTS } from '../src/protocol.js';
import { eventually } from './support/eventually.js';
import { ServerProcess, token } from './support/server-process.js';
import { attempt, closeAll } from './support/upgrade.js';

describe('total connection ceiling', () => {
  let server: ServerProcess;
  before(async () => {
    server = await ServerProcess.start({ env: { MAX_CONNECTIONS: '3' } });
  });
  after(async () => {
    await server.stop();
  });

  it('answers 503 past MAX_CONNECTIONS, keeps the open ones working, and admits again after a close', async () => {
    const url = `${server.wsUrl}/v1/device`;
    const open = await Promise.all(
      ['lim-a', 'lim-b', 'lim-c'].map(async (s) => attempt(url, await token(s, 'device'))),
    );
    assert.deepEqual(
      open.map((a) => a.status),
      [101, 101, 101],
    );
    const refused = await attempt(url, await token('lim-d', 'device'));
    assert.equal(refused.status, 503);
    assert.equal(JSON.parse(refused.body).code, ErrorCode.unavailable);
    const safety = await attempt(`${server.wsUrl}/v1/safety`, await token('op', 'safety'));
    assert.equal(safety.status, 503, 'the ceiling counts both endpoints');
    // The open connections still work: a ping over a raw socket gets its ack.
    const first = open[0]?.ws as WebSocket;
    const { Packr } = await import('msgpackr');
    const packr = new Packr({ useRecords: false });
    const reply = new Promise<{ t: string }>((resolve) =>
      first.once('message', (d) => resolve(packr.unpack(d as Buffer))),
    );
    first.send(packr.pack({ t: 'ping', seq: 1, ts: Date.now(), lat: 1, lon: 1 }));
    assert.equal((await reply).t, 'ack');
    await closeAll([first]);
    await eventually(
      'a slot freed by a close',
      async () => (await attempt(url, await token('lim-e', 'device'))).status === 101,
    );
    await closeAll(open.map((a) => a.ws));
  });
});

describe('per-address ceiling', () => {
  let server: ServerProcess;
  before(async () => {
    server = await ServerProcess.start({ env: { MAX_CONNECTIONS_PER_ADDRESS: '2' } });
  });
  after(async () => {
    await server.stop();
  });

  it('answers 429 past MAX_CONNECTIONS_PER_ADDRESS; refused tokens do not hold a slot', async () => {
    const url = `${server.wsUrl}/v1/device`;
    for (let i = 0; i < 4; i++) assert.equal((await attempt(url, 'not-a-token')).status, 401);
    const a = await attempt(url, await token('pa-1', 'device'));
    const b = await attempt(url, await token('pa-2', 'device'));
    assert.equal(a.status, 101);
    assert.equal(b.status, 101, 'failed upgrades released their slots');
    const c = await attempt(url, await token('pa-3', 'device'));
    assert.equal(c.status, 429);
    assert.equal(JSON.parse(c.body).code, ErrorCode.rateLimited);
    await closeAll([a.ws]);
    await eventually('a slot freed by a close', async () => {
      const again = await attempt(url, await token('pa-4', 'device'));
      await closeAll([again.ws]);
      return again.status === 101;
    });
    await closeAll([b.ws]);
  });
});

describe('upgrade rate per address', () => {
  let server: ServerProcess;
  before(async () => {
    server = await ServerProcess.start({ env: { UPGRADE_RATE_PER_SEC: '0.01', UPGRADE_BURST: '3' } });
  });
  after(async () => {
    await server.stop();
  });

  it('answers 429 once the burst of upgrade attempts is spent, whatever their outcome', async () => {
    const url = `${server.wsUrl}/v1/device`;
    assert.equal((await attempt(url, 'garbage')).status, 401);
    const ok = await attempt(url, await token('ur-1', 'device'));
    assert.equal(ok.status, 101);
    await closeAll([ok.ws]);
    assert.equal((await attempt(url, await token('ur-2', 'device'))).status, 101);
    const limited = await attempt(url, await token('ur-3', 'device'));
    assert.equal(limited.status, 429);
    assert.match(JSON.parse(limited.body).msg, /connection attempts per second/);
    // HTTP routes are not upgrades and are not limited by it.
    assert.equal((await server.http('GET', '/v1/alerts', { role: 'safety' })).status, 200);
  });
});

describe('batch size and id rules', () => {
  let server: ServerProcess;
  before(async () => {
    server = await ServerProcess.start();
  });
  after(async () => {
    await server.stop();
  });

  it(`refuses a batch over ${MAX_BATCH_POINTS} points with bad_request and archives none of it`, async () => {
    const d = await server.device('tech-batch');
    const now = Date.now();
    const pts = Array.from({ length: MAX_BATCH_POINTS + 1 }, (_, i) => [now - 10_000 + i, 1, 1]);
    const reply = await d.request({ t: 'batch', pts } as never);
    assert.equal(reply.t === 'err' && reply.code, ErrorCode.badRequest);
    const tech = await server.http('GET', '/v1/technicians/tech-batch', { role: 'safety' });
    assert.equal(tech.status, 404);
    const full = await d.request({ t: 'batch', pts: pts.slice(0, MAX_BATCH_POINTS) } as never);
    assert.equal(full.t, 'ack', 'exactly the maximum is accepted');
    await d.close();
    // The archive holds the accepted batch and not the one point only the refused batch had.
    const onlyInRefused = now - 10_000 + MAX_BATCH_POINTS;
    const track = await eventually('the accepted batch archived', async () => {
      const res = await server.http('GET', `/v1/technicians/tech-batch/track?from=${now - 10_000}&to=${now}`, {
        role: 'safety',
      });
      const points = (res.body as { points?: number[][] }).points ?? [];
      return points.length >= MAX_BATCH_POINTS ? points : undefined;
    });
    assert.equal(track.length, MAX_BATCH_POINTS);
    assert.ok(!track.some((p) => p[0] === onlyInRefused), 'nothing of the refused batch was archived');
  });

  it('refuses order and incident ids that are too long or use other characters', async () => {
    const d = await server.device('tech-ids');
    for (const order of ['x'.repeat(129), '', 'a b', 'a/b', '<script>', 'é', 'a\nb', '../x']) {
      const reply = await d.request({ t: 'start', order } as never);
      assert.equal(reply.t === 'err' && reply.code, ErrorCode.badRequest, `order id ${JSON.stringify(order)}`);
    }
    const reply = await d.request({ t: 'sos_cancel', incident: 'x'.repeat(129) } as never);
    assert.equal(reply.t === 'err' && reply.code, ErrorCode.badRequest);
    await d.close();
  });

  it('refuses a technician id (token sub) that breaks the id rules, and bad ids in HTTP paths', async () => {
    const url = `${server.wsUrl}/v1/device`;
    for (const sub of ['x'.repeat(129), 'a b', 'a/b', 'tech\u0000']) {
      assert.equal((await attempt(url, await token(sub, 'device'))).status, 401, `sub ${JSON.stringify(sub)}`);
    }
    const order = { technician: 'bad id', lat: 1, lon: 1, scheduledAt: Date.now(), durationMin: 30 };
    assert.equal((await server.http('PUT', '/v1/orders/o-1', { role: 'dispatch', body: order })).status, 400);
    const longPath = await server.http('GET', `/v1/technicians/${'x'.repeat(129)}`, { role: 'safety' });
    assert.ok(longPath.status === 400 || longPath.status === 404, `got ${longPath.status}`);
  });
});
