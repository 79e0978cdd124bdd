/**
 * Property-based tests of the frame decoder and every message validator, and a bounded
 * fuzz of the live server: hostile MessagePack never crashes, never changes state and is
 * always answered with bad_request.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import { Packr } from 'msgpackr';
import WebSocket from 'ws';
import { decodeFrame } from '../src/gateway/codec.js';
import { validateDeviceMessage, validateOrderInput, validateSafetyMessage } from '../src/gateway/messages.js';
import { timeWindow } from '../src/gateway/time-window.js';
import { eventually } from './support/eventually.js';
import { ServerProcess, token } from './support/server-process.js';

const packr = new Packr({ useRecords: false });
const now = Date.UTC(2026, 0, 1);
const window = timeWindow(now, 30);

/** Values a hostile client would put in a field: wrong types, non-finite, huge, nested. */
const hostile: fc.Arbitrary<unknown> = fc.oneof(
  fc.constantFrom(Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY, -1, -1e308, 1e308, 2 ** 64, -0.5),
  fc.constantFrom(null, true, false, '', 'x'.repeat(5000), '../../etc/passwd', 'a b', 'é'),
  fc.constant(Array.from({ length: 10_000 }, () => 0)),
  fc.constant(Object.fromEntries(Array.from({ length: 2000 }, (_, i) => [`k${i}`, i]))),
  fc.constant(nest(200)),
  fc.uint8Array({ maxLength: 64 }),
  fc.bigInt({ min: -(2n ** 63n), max: 2n ** 64n - 1n }),
  fc.object({ maxDepth: 3 }),
  fc.array(fc.anything({ maxDepth: 2 }), { maxLength: 8 }),
);

/** A short description of any value, even one that cannot be turned into a string. */
function show(v: unknown): string {
  try {
    return (JSON.stringify(v) ?? typeof v).slice(0, 60);
  } catch {
    return typeof v;
  }
}

function nest(depth: number): unknown {
  let v: unknown = 1;
  for (let i = 0; i < depth; i++) v = { a: [v] };
  return v;
}

const valid = (): Record<string, Record<string, unknown>> => ({
  ping: { t: 'ping', seq: 1, ts: now - 1000, lat: 52.5, lon: 13.4, acc: 5, spd: 1, hdg: 90, bat: 50 },
  batch: { t: 'batch', seq: 1, pts: [[now - 2000, 52.5, 13.4, 5, 1, 90]] },
  depart: { t: 'depart', seq: 1, order: 'o-1', ts: now - 1000 },
  checkin: { t: 'checkin', seq: 1, order: 'o-1', ts: now - 1000, lat: 52.5, lon: 13.4, acc: 5 },
  start: { t: 'start', seq: 1, order: 'o-1' },
  complete: { t: 'complete', seq: 1, order: 'o-1' },
  sos: { t: 'sos', seq: 1, ts: now - 1000, lat: 52.5, lon: 13.4, note: 'help' },
  sos_cancel: { t: 'sos_cancel', seq: 1, incident: 'i-1' },
  ack: { t: 'ack', seq: 1, id: 'a-1' },
  resolve: { t: 'resolve', seq: 1, id: 'a-1', note: 'ok' },
});
const deviceTypes = ['ping', 'batch', 'depart', 'checkin', 'start', 'complete', 'sos', 'sos_cancel'];

/**
 * Whether `v` makes an acceptable value for field `field` of a valid message, judged on the
 * frame as the server decodes it: MessagePack turns some hostile values into valid ones
 * (a BigInt arrives as a plain number), and such a mutation is not hostile any more.
 */
function stillValid(type: string, field: string, v: unknown): boolean {
  const decoded = decodeFrame(packr.pack({ ...valid()[type], [field]: v }));
  if (!decoded.ok) return false;
  return deviceTypes.includes(type)
    ? validateDeviceMessage(decoded.value, window).ok
    : validateSafetyMessage(decoded.value).ok;
}

/** A valid message of any type with one field replaced by a hostile value that is not itself valid. */
const mutated = fc
  .record({
    type: fc.constantFrom(...Object.keys(valid())),
    fieldIndex: fc.nat(),
    value: hostile,
  })
  .map(({ type, fieldIndex, value }) => {
    const msg = valid()[type] as Record<string, unknown>;
    const fields = Object.keys(msg).filter((f) => f !== 't' && f !== 'seq');
    const field = fields[fieldIndex % fields.length] as string;
    return { type, field, value, frame: { ...msg, [field]: value } };
  })
  .filter(({ type, field, value }) => !stillValid(type, field, value));

describe('decoder and validators under random input (property-based)', () => {
  it('every valid template passes, so the mutation properties below test something', () => {
    for (const [type, msg] of Object.entries(valid())) {
      const r = deviceTypes.includes(type) ? validateDeviceMessage(msg, window) : validateSafetyMessage(msg);
      assert.ok(r.ok, `${type} template must be valid`);
    }
  });

  it('decodeFrame never throws on random bytes and only accepts plain maps', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 512 }), (bytes) => {
        const d = decodeFrame(bytes);
        if (d.ok) assert.equal(Object.getPrototypeOf(d.value), Object.prototype);
        else assert.equal(typeof d.reason, 'string');
      }),
      { numRuns: 5000 },
    );
  });

  it('decodeFrame never throws on truncated and bit-flipped valid frames', () => {
    const frames = Object.values(valid()).map((m) => packr.pack(m));
    fc.assert(
      fc.property(
        fc.constantFrom(...frames),
        fc.nat(),
        fc.nat(),
        fc.integer({ min: 0, max: 255 }),
        (frame, cut, pos, byte) => {
          const truncated = frame.subarray(0, cut % frame.length);
          const d1 = decodeFrame(truncated);
          if (d1.ok) assert.equal(Object.getPrototypeOf(d1.value), Object.prototype);
          const flipped = Buffer.from(frame);
          flipped[pos % flipped.length] = byte;
          const d2 = decodeFrame(flipped);
          if (d2.ok) {
            // Whatever decodes must still go through validation without throwing.
            validateDeviceMessage(d2.value, window);
            validateSafetyMessage(d2.value);
          }
        },
      ),
      { numRuns: 5000 },
    );
  });

  it('refuses non-map frames: arrays, scalars, binaries and extension types', () => {
    const refused = [
      packr.pack([1, 2, 3]),
      packr.pack(42),
      packr.pack('ping'),
      packr.pack(null),
      Buffer.from([0xc4, 0x02, 0x01, 0x02]), // bin 8
      Buffer.from([0xd4, 0x05, 0x01]), // fixext 1, type 5
      Buffer.from([0xd6, 0xff, 0x00, 0x00, 0x00, 0x01]), // timestamp extension
      Buffer.from([0xc7, 0x03, 0x7f, 1, 2, 3]), // ext 8, type 127
      Buffer.from([0xdd, 0xff, 0xff, 0xff, 0xff]), // array 32 claiming 4 billion items
      Buffer.from([0xdf, 0xff, 0xff, 0xff, 0xff]), // map 32 claiming 4 billion entries
      Buffer.from([0xdb, 0xff, 0xff, 0xff, 0xff]), // str 32 claiming 4 GiB
      Buffer.from([0xc1]), // reserved byte
      Buffer.alloc(0),
    ];
    for (const frame of refused) {
      const d = decodeFrame(frame);
      assert.equal(d.ok, false, `frame ${frame.toString('hex')} must be refused`);
    }
  });

  it('decodes deep nesting without a stack overflow crash', () => {
    // 100,000 nested fixarrays inside a map value.
    const depth = 100_000;
    const frame = Buffer.concat([Buffer.from([0x81, 0xa1, 0x74]), Buffer.alloc(depth, 0x91), Buffer.from([0x01])]);
    const d = decodeFrame(frame);
    if (d.ok) assert.equal(validateDeviceMessage(d.value, window).ok, false);
  });

  it('every validator refuses a message with one hostile field, with a message and the seq', () => {
    fc.assert(
      fc.property(mutated, ({ type, frame }) => {
        const r = deviceTypes.includes(type) ? validateDeviceMessage(frame, window) : validateSafetyMessage(frame);
        assert.equal(r.ok, false);
        if (!r.ok) {
          assert.equal(r.seq, 1);
          assert.ok(r.msg.length > 0 && r.msg.length < 500, 'a short, clear message');
        }
      }),
      { numRuns: 3000 },
    );
  });

  it('random objects are refused, echoing seq only when it is a valid one', () => {
    fc.assert(
      fc.property(fc.dictionary(fc.string({ maxLength: 8 }), fc.anything({ maxDepth: 3 })), (frame) => {
        for (const r of [validateDeviceMessage(frame, window), validateSafetyMessage(frame)]) {
          assert.equal(r.ok, false, `accepted ${JSON.stringify(frame)}`);
          if (!r.ok) {
            const seq = frame.seq;
            const seqValid = typeof seq === 'number' && Number.isSafeInteger(seq) && seq >= 0;
            assert.equal(r.seq, seqValid ? seq : null);
          }
        }
      }),
      { numRuns: 5000 },
    );
  });

  it('a wrong seq (negative, fractional, huge, non-number) is refused with seq null', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...deviceTypes),
        fc.oneof(
          fc.integer({ max: -1 }),
          fc.double({ noInteger: true }),
          fc.constantFrom(2 ** 53, 1e300, Number.NaN, Number.POSITIVE_INFINITY),
          fc.string(),
          fc.constant(null),
        ),
        (type, seq) => {
          const r = validateDeviceMessage({ ...valid()[type], seq }, window);
          assert.equal(r.ok, false);
          assert.equal(r.ok ? undefined : r.seq, null);
        },
      ),
      { numRuns: 2000 },
    );
  });

  it('the order body validator refuses hostile fields and never throws on anything', () => {
    const order = { technician: 't-1', lat: 1, lon: 1, scheduledAt: now, durationMin: 60 };
    assert.ok(validateOrderInput(order).ok);
    // What PROTOCOL.md allows in each field, written independently of the schema under test.
    const isNumberIn = (v: unknown, lo: number, hi: number): boolean =>
      typeof v === 'number' && Number.isFinite(v) && v >= lo && v <= hi;
    const acceptable: Record<keyof typeof order, (v: unknown) => boolean> = {
      technician: (v) => typeof v === 'string' && /^[A-Za-z0-9._:@-]{1,128}$/.test(v),
      lat: (v) => isNumberIn(v, -90, 90),
      lon: (v) => isNumberIn(v, -180, 180),
      scheduledAt: (v) => Number.isSafeInteger(v) && (v as number) >= 0,
      durationMin: (v) => isNumberIn(v, Number.MIN_VALUE, 7 * 24 * 60),
    };
    let refusals = 0;
    fc.assert(
      fc.property(fc.constantFrom(...(Object.keys(order) as (keyof typeof order)[])), hostile, (field, value) => {
        const r = validateOrderInput({ ...order, [field]: value });
        assert.equal(r.ok, acceptable[field](value), `${field} = ${show(value)}`);
        if (!r.ok) {
          refusals++;
          assert.ok(r.msg.length > 0 && r.msg.length < 500, 'a short, clear message');
        }
      }),
      { numRuns: 2000 },
    );
    assert.ok(refusals > 1000, `most hostile values are refused (${refusals} of 2000)`);
    fc.assert(
      fc.property(fc.anything({ maxDepth: 4 }), (body) => {
        validateOrderInput(body);
      }),
      { numRuns: 3000 },
    );
  });
});

interface Reply {
  t: string;
  seq: number | null;
  code?: string;
}

describe('bounded fuzz of the live server', () => {
  let server: ServerProcess;
  before(async () => {
    server = await ServerProcess.start({
      env: { RATE_LIMIT_PER_SEC: '100000', RATE_LIMIT_BURST: '100000', GARBAGE_DISCONNECT_AFTER: '1000000' },
    });
    const bystander = await server.device('tech-bystander');
    assert.equal((await bystander.sos({ ts: Date.now(), lat: 1, lon: 1 })).t, 'ack');
    await bystander.close();
  });
  after(async () => {
    await server.stop();
  });

  for (const [path, role, sub] of [
    ['/v1/device', 'device', 'tech-fuzz'],
    ['/v1/safety', 'safety', 'op-fuzz'],
  ] as const) {
    it(`answers every hostile frame on ${path} with bad_request and changes no state`, async () => {
      const frames: Buffer[] = [];
      // Mutated valid messages of every type (device and safety) and raw random bytes.
      for (const { frame } of fc.sample(mutated, 400)) frames.push(packr.pack(frame));
      for (const bytes of fc.sample(fc.uint8Array({ minLength: 1, maxLength: 256 }), 300))
        frames.push(Buffer.from(bytes));
      const alertsBefore = await server.http('GET', '/v1/alerts', { role: 'safety' });
      assert.ok(
        (alertsBefore.body as { alerts: unknown[] }).alerts.length > 0,
        'an open alert exists, so a hostile ack or resolve would show',
      );
      const ws = new WebSocket(`${server.wsUrl}${path}`, {
        headers: { authorization: `Bearer ${await token(sub, role)}` },
      });
      await new Promise((resolve, reject) => {
        ws.once('open', resolve);
        ws.once('error', reject);
      });
      const replies: Reply[] = [];
      ws.on('message', (data) => {
        const m = packr.unpack(data as Buffer) as Reply;
        if (m.t === 'ack' || m.t === 'err') replies.push(m);
      });
      for (const f of frames) ws.send(f);
      await eventually('one answer per frame', () => replies.length >= frames.length, 60_000);
      assert.equal(replies.length, frames.length, 'one answer per frame, no more');
      // Mutated frames are invalid by construction (filtered above); a random byte string
      // decoding to a valid message is far less likely than one in a billion.
      const refused = replies.filter((r) => r.t === 'err' && r.code === 'bad_request').length;
      assert.equal(refused, replies.length, 'every frame is refused with bad_request');
      assert.equal(ws.readyState, WebSocket.OPEN, 'the connection stays open');
      ws.close();
      const tech = await server.http('GET', `/v1/technicians/tech-fuzz`, { role: 'safety' });
      assert.equal(tech.status, 404, 'refused frames created no technician');
      const alertsAfter = await server.http('GET', '/v1/alerts', { role: 'safety' });
      assert.deepEqual(alertsAfter.body, alertsBefore.body, 'refused frames raised, acknowledged or resolved nothing');
      assert.equal(server.exitCode, undefined, 'the server did not crash');
    });
  }

  it('still serves a normal client after the fuzz', async () => {
    const d = await server.device('tech-after-fuzz');
    assert.equal((await d.ping({ ts: Date.now(), lat: 1, lon: 1 })).t, 'ack');
    await d.close();
  });
});
