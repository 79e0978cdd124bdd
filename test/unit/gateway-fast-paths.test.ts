/**
 * The per-ping fast paths of the gateway: the hand-written `ack` frame is byte for byte
 * what the encoder writes, and the load shedder's adaptive limit shrinks only when the
 * node is really queueing (slow answers and a busy event loop) and grows back after.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { Packr, Unpackr } from 'msgpackr';
import { encodeAck, encodeMessage, RefusalFrames } from '../../src/gateway/codec.js';
import { LoadShedder } from '../../src/gateway/load-shed.js';
import { peekTypeAndSeq } from '../../src/gateway/msgpack-scan.js';
import { type ServerMessage, WIRE_MSGPACK_OPTIONS } from '../../src/protocol.js';

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

describe('RefusalFrames', () => {
  it('decodes to the same refusal the encoder writes, for any seq and retryMs', () => {
    const reader = new Unpackr(WIRE_MSGPACK_OPTIONS);
    const frames = new RefusalFrames({ code: 'rate_limited', msg: 'node busy: keep the fixes and send them later' });
    fc.assert(
      fc.property(fc.nat({ max: 0xffffffff }), fc.nat({ max: 0xffffffff }), (seq, retryMs) => {
        const expected: ServerMessage = {
          t: 'err',
          seq,
          code: 'rate_limited',
          msg: 'node busy: keep the fixes and send them later',
          retryMs,
        };
        assert.deepEqual(reader.unpack(frames.encode(seq, retryMs)), expected);
        assert.deepEqual(reader.unpack(frames.encode(seq, retryMs)), reader.unpack(encodeMessage(expected)));
      }),
      { numRuns: 2000 },
    );
    assert.equal(RefusalFrames.fits(2 ** 32, 1), false);
    assert.equal(RefusalFrames.fits(1, -1), false);
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

/**
 * A node model in 1 ms steps: each fix costs `fixCost` ms of the single event loop and is
 * answered `answerMs` after it is taken if the loop has had time for it by then (otherwise
 * it waits: the queue); a refusal costs `shedCost` of the loop.
 */
function nodeModel(opts: { fixCost: number; shedCost: number; answerMs: number; min?: number; max?: number }) {
  const due: number[] = [];
  let debt = 0;
  let now = 0;
  const s = new LoadShedder({
    maxInFlight: opts.max ?? 100_000,
    minInFlight: opts.min ?? 50,
    targetMs: 250,
    intervalMs: 100,
  });
  return {
    shedder: s,
    /** Offers `offeredPerMs` fixes a ms for `ms`; returns fixes answered, refused, the most in flight, the longest answer. */
    run(ms: number, offeredPerMs: number) {
      let answered = 0;
      let shed = 0;
      let peak = 0;
      let slowest = 0;
      const end = now + ms;
      for (; now < end; now++) {
        let budget = 1 - debt;
        while (due.length > 0 && (due[0] as number) <= now && budget >= opts.fixCost) {
          const ready = due.shift() as number;
          const took = now - ready + opts.answerMs;
          s.end(took);
          budget -= opts.fixCost;
          answered += 1;
          slowest = Math.max(slowest, took);
        }
        for (let k = 0; k < offeredPerMs; k++) {
          if (s.shouldShed(now)) {
            shed += 1;
            budget -= opts.shedCost;
          } else {
            s.begin();
            due.push(now + opts.answerMs);
          }
        }
        debt = Math.max(0, -budget);
        peak = Math.max(peak, s.size);
      }
      return { answered, shed, peak, slowest };
    },
  };
}

describe('LoadShedder', () => {
  it('refuses past the limit in force, and never past the ceiling', () => {
    const s = new LoadShedder({ maxInFlight: 100, minInFlight: 10, targetMs: 250, intervalMs: 100 });
    for (let k = 0; k < 100; k++) {
      assert.equal(s.shouldShed(0), false);
      s.begin();
    }
    assert.equal(s.shouldShed(0), true);
    const node = nodeModel({ fixCost: 0.01, shedCost: 0.001, answerMs: 50, max: 300 });
    assert.ok(node.run(5000, 20).peak <= 300);
  });

  it('refuses nothing while the node keeps up, however slow its answers (a slow disk)', () => {
    // 5 fixes per ms at 0.1 ms each: half the loop; each answered after 400 ms.
    const node = nodeModel({ fixCost: 0.1, shedCost: 0.01, answerMs: 400 });
    node.run(2000, 5);
    const r = node.run(10_000, 5);
    assert.equal(r.shed, 0);
  });

  it('under 2.5x overload answers at least 0.9x capacity, each admitted fix within a second', () => {
    // Capacity 10 fixes per ms (0.1 ms each); 25 offered; a refusal costs a twentieth of a fix.
    const node = nodeModel({ fixCost: 0.1, shedCost: 0.005, answerMs: 5 });
    node.run(3000, 25);
    const r = node.run(10_000, 25);
    assert.ok(r.answered >= 0.9 * 0.875 * 10 * 10_000, `goodput ${r.answered}`);
    assert.ok(r.shed > 0);
    assert.ok(r.slowest < 1000, `slowest answer ${r.slowest} ms`);
    // Without the shedder the same node would hold the whole backlog: 15 a ms for 13 s.
    assert.ok(r.peak < 5000, `in flight at most ${r.peak}`);
  });

  it('grows back once the overload ends', () => {
    const node = nodeModel({ fixCost: 0.1, shedCost: 0.005, answerMs: 5, min: 20 });
    node.run(5000, 25);
    node.run(1000, 5);
    assert.equal(node.run(10_000, 5).shed, 0, 'nothing refused at half load');
  });

  it('tells refused devices to wait longer the more it refuses, spread so they do not return together', () => {
    const s = new LoadShedder({ maxInFlight: 10, minInFlight: 10, targetMs: 250, intervalMs: 100 });
    const low = Array.from({ length: 200 }, () => s.retryMs());
    assert.ok(
      Math.min(...low) >= 250 && Math.max(...low) <= 500,
      `quiet node: ${Math.min(...low)}-${Math.max(...low)} ms`,
    );
    assert.ok(new Set(low).size > 50, 'spread');
    for (let k = 0; k < 10; k++) s.begin();
    for (let t = 0; t <= 1000; t++) s.shouldShed(t);
    const high = Array.from({ length: 200 }, () => s.retryMs());
    assert.ok(
      Math.min(...high) >= 1750 && Math.max(...high) <= 4000,
      `refusing all: ${Math.min(...high)}-${Math.max(...high)} ms`,
    );
  });

  it('never goes below the floor', () => {
    const s = new LoadShedder({ maxInFlight: 1000, minInFlight: 64, targetMs: 250, intervalMs: 100 });
    for (let t = 0; t < 10_000; t += 100) s.shouldShed(t);
    assert.equal(s.limit, 64);
  });
});
