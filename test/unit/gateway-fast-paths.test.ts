/**
 * The per-ping fast paths of the gateway: the hand-written `ack` frame is byte for byte
 * what the encoder writes, and the load shedder's adaptive limit shrinks only when the
 * node is really queueing (slow answers and a busy event loop) and grows back after.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { Unpackr } from 'msgpackr';
import { encodeAck, encodeMessage } from '../../src/gateway/codec.js';
import { LoadShedder } from '../../src/gateway/load-shed.js';
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
