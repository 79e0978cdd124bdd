/** Framing, validation, rate limiting and connection rules of /v1/device and /v1/safety on the real server. */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Packr } from 'msgpackr';
import { type DeviceClient, ErrorCode } from '../src/client/index.js';
import { ServerProcess } from './support/server-process.js';

const packr = new Packr({ useRecords: false });

function nextClose(client: DeviceClient): Promise<[number, string]> {
  return new Promise((resolve) => client.once('close', (code, reason) => resolve([code, reason])));
}

function nextUnmatched(client: DeviceClient): Promise<{ code: string; seq: null; msg: string }> {
  return new Promise((resolve) => client.once('unmatched', (msg) => resolve(msg as never)));
}

describe('frames and validation', () => {
  let server: ServerProcess;
  before(async () => {
    server = await ServerProcess.start({
      env: {
        GARBAGE_DISCONNECT_AFTER: '3',
        RATE_LIMIT_PER_SEC: '1',
        RATE_LIMIT_BURST: '5',
        RATE_LIMIT_DISCONNECT_AFTER: '10',
      },
    });
  });
  after(async () => {
    await server.stop();
  });

  it('acks a valid ping with the same seq', async () => {
    const d = await server.device('tech-f1');
    const reply = await d.ping({ ts: Date.now(), lat: 52.52, lon: 13.405, acc: 8 });
    assert.deepEqual(reply, { t: 'ack', seq: 1 });
    await d.close();
  });

  it('answers a field error with bad_request and the seq, and changes nothing', async () => {
    const d = await server.device('tech-f2');
    const reply = await d.request({ t: 'ping', ts: Date.now(), lat: 123, lon: 0 });
    assert.equal(reply.t, 'err');
    assert.equal(reply.seq, 1);
    assert.equal(reply.t === 'err' && reply.code, ErrorCode.badRequest);
    const tech = await server.http('GET', '/v1/technicians/tech-f2', { role: 'safety' });
    assert.equal(tech.status, 404, 'a refused ping must not create a technician');
    await d.close();
  });

  it('answers an unknown type with bad_request', async () => {
    const d = await server.device('tech-f3');
    const reply = await d.request({ t: 'fly' } as never);
    assert.equal(reply.t === 'err' && reply.code, ErrorCode.badRequest);
    assert.match(reply.t === 'err' ? reply.msg : '', /unknown message type/);
    await d.close();
  });

  it('answers garbage with seq null and keeps the connection open', async () => {
    const d = await server.device('tech-f4');
    const err = nextUnmatched(d);
    d.sendRaw(Buffer.from([0xc1, 0x00, 0xff]));
    assert.equal((await err).code, ErrorCode.badRequest);
    const notAMap = nextUnmatched(d);
    d.sendRaw(packr.pack([1, 2, 3]));
    assert.equal((await notAMap).code, ErrorCode.badRequest);
    assert.equal((await d.ping({ ts: Date.now(), lat: 1, lon: 1 })).t, 'ack');
    await d.close();
  });

  it('disconnects a client that keeps sending garbage with 1008', async () => {
    const d = await server.device('tech-f5');
    const closed = nextClose(d);
    for (let i = 0; i < 3; i++) d.sendRaw(Buffer.from([0xc1]));
    assert.equal((await closed)[0], 1008);
  });

  it('closes a text frame with 1003', async () => {
    const d = await server.device('tech-f6');
    const closed = nextClose(d);
    d.sendRaw('{"t":"ping"}');
    assert.equal((await closed)[0], 1003);
  });

  it('closes the connection on a frame over 64 KiB', async () => {
    const d = await server.device('tech-f7');
    const closed = nextClose(d);
    d.sendRaw(packr.pack({ t: 'ping', seq: 1, pad: 'x'.repeat(70 * 1024) }));
    const [code] = await closed;
    assert.ok(code === 1009 || code === 1006, `expected 1009 or an abrupt close, got ${code}`);
  });

  it('reads a frame just under 64 KiB', async () => {
    const d = await server.device('tech-f8');
    const reply = await d.request({ t: 'ping', ts: Date.now(), lat: 1, lon: 1, pad: 'x'.repeat(60 * 1024) } as never);
    assert.equal(reply.t, 'ack');
    await d.close();
  });

  it('rate-limits a connection and disconnects sustained abuse with 1008', async () => {
    const d = await server.device('tech-f9');
    const closed = nextClose(d);
    const burst = await Promise.all(Array.from({ length: 5 }, () => d.ping({ ts: Date.now(), lat: 1, lon: 1 })));
    assert.deepEqual(
      burst.map((r) => r.t),
      ['ack', 'ack', 'ack', 'ack', 'ack'],
    );
    const replies = await Promise.allSettled(
      Array.from({ length: 15 }, () => d.ping({ ts: Date.now(), lat: 1, lon: 1 })),
    );
    const answered = replies.filter((r) => r.status === 'fulfilled').map((r) => r.value);
    const limited = answered.filter((r) => r.t === 'err' && r.code === ErrorCode.rateLimited).length;
    assert.ok(limited >= 9, `refusals answered rate_limited, got ${limited}`);
    assert.equal((await closed)[0], 1008);
  });

  it('replaces an older connection of the same technician with 4003', async () => {
    const first = await server.device('tech-f10');
    const closed = nextClose(first);
    const second = await server.device('tech-f10');
    assert.equal((await closed)[0], 4003);
    assert.equal((await second.ping({ ts: Date.now(), lat: 1, lon: 1 })).t, 'ack');
    await second.close();
  });

  it('logs one line per connection open and close, without positions', async () => {
    const d = await server.device('tech-f11');
    await d.ping({ ts: Date.now(), lat: 48.8566123, lon: 2.3522456 });
    await d.close();
    const closeLine = await server.waitForLog((l) => l.msg === 'connection closed' && l.sub === 'tech-f11');
    assert.equal(closeLine.code, 1000);
    assert.equal(server.logs.filter((l) => l.msg === 'connection open' && l.sub === 'tech-f11').length, 1);
    assert.ok(!JSON.stringify(server.logs).includes('48.8566123'));
  });
});
