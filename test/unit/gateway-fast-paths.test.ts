/**
 * The per-ping fast paths of the gateway: the hand-written `ack` frame is byte for byte
 * what the encoder writes, and the load shedder's adaptive limit shrinks only when the
 * node is really queueing (slow answers and a busy event loop) and grows back after.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { Packr, Unpackr } from 'msgpackr';
import { encodeAck, encodeMessage } from '../../src/gateway/codec.js';
import { LoadShedder } from '../../src/gateway/load-shed.js';
import { peekTypeAndSeq } from '../../src/gateway/msgpack-scan.js';
import { WIRE_MSGPACK_OPTIONS } from '../../src/protocol.js';

describe('encodeAck', () => {
  it('writes exactly the bytes of encodeMessage({t:"ack", seq}) for any seq', () => {
    const edges = [0, 1, 127, 128, 255, 256, 65535, 65536, 0xffffffff, 0x100000000, 2 ** 53 - 1];
    for (const seq of edges) assert.deepEqual(encodeAck(seq), encodeMessage({ t: 'ack', seq }), `seq ${seq}`);
    fc.assert(
      fc.property(fc.nat({ max: Number.MAX_SAFE_INTEGER }), (seq) => {
        assert.deepEqual(encodeAck(seq), encodeMessage({ t: 'ack', seq }));
      }),
      { numRuns: 2000 },
    );
  });

  it('decodes to the ack with any MessagePack reader settings the protocol names', () => {
    const reader = new Unpackr(WIRE_MSGPACK_OPTIONS);
    for (const seq of [0, 200, 40_000, 3_000_000_000])
      assert.deepEqual(reader.unpack(encodeAck(seq)), { t: 'ack', seq });
  });

  it('gives every ack its own buffer', () => {
    const a = encodeAck(5);
    const b = encodeAck(6);
    assert.equal(a[a.length - 1], 5);
    assert.equal(b[b.length - 1], 6);
  });
});

describe('peekTypeAndSeq', () => {
  const packr = new Packr(WIRE_MSGPACK_OPTIONS);
  // A fixmap writer, as most MessagePack libraries other than msgpackr write small maps.
  const fixmap = (pairs: Array<[string, Uint8Array]>): Uint8Array =>
    Buffer.concat([Buffer.from([0x80 | pairs.length]), ...pairs.flatMap(([k, v]) => [packr.pack(k), v])]);

  it('reads t and seq of any map, whatever else it holds and in any key order', () => {
    const extra = fc.dictionary(
      fc.string({ maxLength: 12 }).filter((k) => k !== 't' && k !== 'seq'),
      fc.jsonValue({ maxDepth: 3 }),
      { maxKeys: 6 },
    );
    fc.assert(
      fc.property(
        fc.string({ maxLength: 31 }),
        fc.nat({ max: 0xffffffff }),
        extra,
        fc.boolean(),
        (t, seq, rest, tFirst) => {
          const msg = tFirst ? { t, ...rest, seq } : { seq, ...rest, t };
          assert.deepEqual(peekTypeAndSeq(packr.pack(msg)), { t, seq });
        },
      ),
      { numRuns: 1000 },
    );
    const pts = Array.from({ length: 500 }, (_, i) => [1_700_000_000_000 + i, 48.1, 11.5, 5]);
    assert.deepEqual(peekTypeAndSeq(packr.pack({ t: 'batch', seq: 70_000, pts })), { t: 'batch', seq: 70_000 });
    assert.deepEqual(
      peekTypeAndSeq(
        fixmap([
          ['seq', packr.pack(3)],
          ['t', packr.pack('ping')],
        ]),
      ),
      {
        t: 'ping',
        seq: 3,
      },
    );
  });

  it('never throws, and agrees with the decoder whenever it answers', () => {
    const reader = new Unpackr(WIRE_MSGPACK_OPTIONS);
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), (bytes) => {
        const peeked = peekTypeAndSeq(bytes);
        if (peeked === null) return;
        const decoded = reader.unpack(bytes) as { t?: unknown; seq?: unknown };
        assert.equal(decoded.t, peeked.t);
        assert.equal(decoded.seq, peeked.seq);
      }),
      { numRuns: 5000 },
    );
  });

  it('answers null for what it cannot read cheaply: not a map, no t or seq, a negative or fractional seq, a cut frame', () => {
    for (const value of [
      [1, 2],
      'ping',
      { t: 'ping' },
      { seq: 1 },
      { t: 'ping', seq: -1 },
      { t: 'ping', seq: 1.5 },
      { t: 7, seq: 1 },
    ]) {
      assert.equal(peekTypeAndSeq(packr.pack(value)), null, JSON.stringify(value));
    }
    const whole = packr.pack({ t: 'ping', lat: 1, seq: 9 });
    assert.equal(peekTypeAndSeq(whole.subarray(0, whole.length - 1)), null);
    assert.equal(peekTypeAndSeq(new Uint8Array(0)), null);
  });
});

/** A shedder on a scripted clock and event loop. */
function shedder(busy: number[], opts: Partial<ConstructorParameters<typeof LoadShedder>[0]> = {}) {
  let i = 0;
  return new LoadShedder({
    maxInFlight: 1000,
    minInFlight: 10,
    targetMs: 20,
    intervalMs: 100,
    loopBusy: () => busy[Math.min(i++, busy.length - 1)] as number,
    ...opts,
  });
}

/** One interval: `n` fixes taken and answered after `tookMs`, then the next interval begins at `t`. */
function interval(s: LoadShedder, t: number, n: number, tookMs: number): void {
  s.shouldShed(t);
  for (let k = 0; k < n; k++) s.begin();
  for (let k = 0; k < n; k++) s.end(tookMs);
}

describe('LoadShedder', () => {
  it('refuses past the ceiling even before any interval is over', () => {
    const s = shedder([0]);
    for (let k = 0; k < 1000; k++) {
      assert.equal(s.shouldShed(0), false);
      s.begin();
    }
    assert.equal(s.shouldShed(0), true);
  });

  it('shrinks the limit while the quickest answer is over target and the loop is busy', () => {
    const s = shedder([1]);
    interval(s, 0, 900, 200);
    interval(s, 100, 10, 200);
    assert.ok(s.limit < 1000, `limit ${s.limit}`);
    const before = s.limit;
    interval(s, 200, 10, 200);
    assert.ok(s.limit < before, 'shrinks again');
    for (let t = 300; t < 5000; t += 100) interval(s, t, 1, 200);
    assert.equal(s.limit, 10, 'never below the floor');
    for (let k = 0; k < 10; k++) s.begin();
    assert.equal(s.shouldShed(5000), true, 'past the limit a new fix is refused');
  });

  it('does not shrink for slow answers while the loop has idle time (a slow disk is not overload)', () => {
    const s = shedder([0.5]);
    for (let t = 0; t < 2000; t += 100) interval(s, t, 5, 500);
    assert.equal(s.limit, 1000);
  });

  it('does not shrink when one answer of the interval was quick', () => {
    const s = shedder([1]);
    for (let t = 0; t < 2000; t += 100) {
      interval(s, t, 5, 500);
      interval(s, t, 1, 2);
    }
    assert.equal(s.limit, 1000);
  });

  it('grows back once answers are quick and the traffic uses the limit', () => {
    const s = shedder([1]);
    for (let t = 0; t < 3000; t += 100) interval(s, t, 1, 300);
    const low = s.limit;
    assert.ok(low < 100);
    for (let t = 3000; t < 20_000; t += 100) {
      s.shouldShed(t);
      const n = s.limit;
      for (let k = 0; k < n; k++) s.begin();
      for (let k = 0; k < n; k++) s.end(5);
    }
    assert.equal(s.limit, 1000, 'back to the ceiling');
  });

  it('does not grow a limit the traffic does not use', () => {
    const s = shedder([1]);
    for (let t = 0; t < 3000; t += 100) interval(s, t, 1, 300);
    const low = s.limit;
    for (let t = 3000; t < 6000; t += 100) interval(s, t, 1, 5);
    assert.equal(s.limit, low);
  });
});
