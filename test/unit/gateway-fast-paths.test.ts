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

function shedder(opts: Partial<ConstructorParameters<typeof LoadShedder>[0]> = {}): LoadShedder {
  return new LoadShedder({ maxInFlight: 10_000, minInFlight: 50, intervalMs: 100, ...opts });
}

/**
 * A node model in 1 ms steps: it answers each fix `answerMs` after taking it, at most
 * `capacityPerMs` a millisecond (the rest wait), and asks `s` about every offered fix.
 */
function nodeModel(s: LoadShedder, capacityPerMs: number, answerMs: number) {
  const due: number[] = [];
  return {
    /** Offers `offeredPerMs` for `ms` from `t0`; returns fixes answered, refused, and the most in flight. */
    run(t0: number, ms: number, offeredPerMs: number): { answered: number; shed: number; peak: number } {
      let answered = 0;
      let shed = 0;
      let peak = 0;
      for (let t = t0; t < t0 + ms; t++) {
        let credit = capacityPerMs;
        while (due.length > 0 && (due[0] as number) <= t && credit >= 1) {
          const ready = due.shift() as number;
          s.end(t - ready + answerMs);
          credit -= 1;
          answered += 1;
        }
        for (let k = 0; k < offeredPerMs; k++) {
          if (s.shouldShed(t)) shed += 1;
          else {
            s.begin();
            due.push(t + answerMs);
          }
        }
        peak = Math.max(peak, s.size);
      }
      return { answered, shed, peak };
    },
  };
}

describe('LoadShedder', () => {
  it('refuses past the limit in force, and never past the ceiling', () => {
    const s = shedder({ maxInFlight: 100, minInFlight: 100 });
    for (let k = 0; k < 100; k++) {
      assert.equal(s.shouldShed(0), false);
      s.begin();
    }
    assert.equal(s.shouldShed(0), true);
    const r = nodeModel(shedder({ maxInFlight: 300 }), 1000, 50).run(0, 5000, 20);
    assert.ok(r.peak <= 300, `peak ${r.peak}`);
  });

  it('grows from the floor to what a fast node needs (slow start) and sheds nothing it can take', () => {
    const s = shedder();
    // 10 fixes per ms offered, the node takes 20 per ms, each answered after 20 ms: 200 in flight needed.
    const node = nodeModel(s, 20, 20);
    const r = node.run(0, 3000, 10);
    assert.ok(s.limit >= 200, `limit ${s.limit}`);
    const later = node.run(3000, 2000, 10);
    assert.equal(later.shed, 0, 'once grown, nothing is refused');
    assert.ok(r.answered + later.answered > 0.9 * 5000 * 10, 'the offered load went through');
  });

  it('under overload keeps the queue short and the node busy: about capacity answered, the rest refused at once', () => {
    const s = shedder();
    // 25 offered per ms, capacity 10 per ms, a fix takes 5 ms when nothing waits.
    const node = nodeModel(s, 10, 5);
    node.run(0, 2000, 25);
    const r = node.run(2000, 5000, 25);
    assert.ok(r.answered >= 0.9 * 10 * 5000, `goodput ${r.answered}`);
    assert.ok(r.shed > 0);
    // Two bandwidth-delay products (10/ms x 5 ms x 2 = 100), not the thousands a queue would hold.
    assert.ok(r.peak <= 150, `in flight at most ${r.peak}`);
  });

  it('a node that answers slowly for another reason (slow disk, shared CPU) keeps enough in flight instead of starving', () => {
    const s = shedder({ minInFlight: 10 });
    // Each fix takes 200 ms whatever the load; the node could take 5 per ms: 1000 in flight needed.
    const node = nodeModel(s, 5, 200);
    node.run(0, 5000, 5);
    const r = node.run(5000, 5000, 5);
    assert.ok(r.answered >= 0.9 * 5 * 5000, `goodput ${r.answered}`);
  });

  it('never goes below the floor', () => {
    const s = shedder({ minInFlight: 64 });
    nodeModel(s, 10, 5).run(0, 3000, 0);
    assert.equal(s.limit, 64);
  });
});
