/**
 * MessagePack extension types, msgpackr's record extension included, are refused before
 * decoding: a unit check of the byte scan and the decoder, and the real server answering
 * bad_request without creating anything.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Packr } from 'msgpackr';
import { type DeviceClient, ErrorCode } from '../src/client/index.js';
import { decodeFrame } from '../src/gateway/codec.js';
import { findForbiddenType } from '../src/gateway/msgpack-scan.js';
import { WIRE_MSGPACK_OPTIONS } from '../src/protocol.js';
import { ServerProcess } from './support/server-process.js';

const records = new Packr({ useRecords: true });
const plain = new Packr(WIRE_MSGPACK_OPTIONS);

function nextUnmatched(client: DeviceClient): Promise<{ code: string; seq: null; msg: string }> {
  return new Promise((resolve) => client.once('unmatched', (msg) => resolve(msg as never)));
}

describe('extension types in frames (unit)', () => {
  it('msgpackr decodes a record frame into a plain object, so the bytes must decide', () => {
    // The premise of the scan: without it this frame passes as a map.
    const frame = records.pack({ t: 'ping', seq: 1, ts: 1, lat: 1, lon: 1 });
    const value = plain.unpack(frame) as Record<string, unknown>;
    assert.equal(Object.getPrototypeOf(value), Object.prototype);
    assert.equal(value.t, 'ping');
  });

  it('refuses record frames, top-level and nested, naming the extension type', () => {
    const frames = [
      records.pack({ t: 'ping', seq: 1, ts: 1, lat: 1, lon: 1 }),
      records.pack({ t: 'batch', seq: 1, pts: [[1, 2, 3]], extra: { a: 1, b: 2 } }),
      records.pack([{ a: 1 }, { a: 2 }]),
    ];
    for (const frame of frames) {
      const why = findForbiddenType(frame);
      assert.match(why ?? '', /extension type 0x72/, `frame ${frame.toString('hex')}`);
      const decoded = decodeFrame(frame);
      assert.equal(decoded.ok, false);
      assert.match(decoded.ok ? '' : decoded.reason, /extension/);
    }
  });

  it('refuses every extension format and msgpackr undefined anywhere in a map', () => {
    const prefix = Buffer.from([0x82, 0xa1, 0x74, 0xa4, 0x70, 0x69, 0x6e, 0x67, 0xa1, 0x78]); // {t:'ping', x: ...}
    const values = [
      [0xd4, 0x05, 0x01],
      [0xd5, 0x05, 0x01, 0x02],
      [0xd6, 0xff, 0, 0, 0, 1],
      [0xd7, 0x05, 0, 0, 0, 0, 0, 0, 0, 0],
      [0xd8, 0x05, ...new Array(16).fill(0)],
      [0xc7, 0x01, 0x05, 0x00],
      [0xc8, 0x00, 0x01, 0x05, 0x00],
      [0xc9, 0x00, 0x00, 0x00, 0x01, 0x05, 0x00],
      [0xd4, 0x00, 0x00], // msgpackr's undefined
      [0xc1],
    ];
    for (const v of values) {
      const frame = Buffer.concat([prefix, Buffer.from(v)]);
      assert.notEqual(findForbiddenType(frame), null, `frame ${frame.toString('hex')}`);
      assert.equal(decodeFrame(frame).ok, false);
    }
  });

  it('lets every plain format through: strings, binaries, arrays and maps of each width, numbers', () => {
    const value = {
      t: 'ping',
      s8: 'x'.repeat(40),
      s16: 'y'.repeat(300),
      s32: 'z'.repeat(70_000),
      bin: Buffer.alloc(300),
      a16: new Array(20).fill(1),
      m16: Object.fromEntries(Array.from({ length: 20 }, (_, i) => [`k${i}`, -i])),
      n: [0, -1, -33, 200, 70_000, 5e9, -5e9, 1.5, null, true, false],
    };
    const frame = plain.pack(value);
    assert.equal(findForbiddenType(frame), null);
    assert.equal(decodeFrame(frame).ok, true);
  });
});

describe('extension types on the real server', () => {
  let server: ServerProcess;
  before(async () => {
    server = await ServerProcess.start();
  });
  after(async () => {
    await server.stop();
  });

  it('answers a ping encoded with msgpackr records with bad_request, stores nothing, keeps the connection', async () => {
    const d = await server.device('tech-rec-1');
    const refused = nextUnmatched(d);
    d.sendRaw(records.pack({ t: 'ping', seq: 7, ts: Date.now(), lat: 52.5, lon: 13.4 }));
    const err = await refused;
    assert.equal(err.code, ErrorCode.badRequest);
    assert.match(err.msg, /extension type 0x72/);
    const tech = await server.http('GET', '/v1/technicians/tech-rec-1', { role: 'safety' });
    assert.equal(tech.status, 404, 'a refused frame must not create a technician');
    assert.equal((await d.ping({ ts: Date.now(), lat: 52.5, lon: 13.4 })).t, 'ack');
    await d.close();
  });
});
