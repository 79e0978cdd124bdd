/**
 * The customer streams' hub over a tracker whose answers the test sets: a revocation ends
 * exactly the streams of links made up to it (a link made later keeps streaming), a
 * revocation known as a stream opens refuses it, and an order that cannot be read for a
 * while (another node unreachable) keeps its streams open, while an order that is gone
 * ends them.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Tracker } from '../../src/actors/api.js';
import { ManualClock } from '../../src/clock.js';
import { StraightLineEstimator } from '../../src/eta/index.js';
import { createLogger } from '../../src/log.js';
import type { Outcome } from '../../src/outcome.js';
import { ErrorCode, type OrderView, type TechnicianView } from '../../src/protocol.js';
import { GONE_EVENT, ShareHub, type ShareSink } from '../../src/share/share-hub.js';

const ORDER: OrderView = {
  id: 'o1',
  technician: 't1',
  state: 'assigned',
  scheduledAt: Date.UTC(2026, 0, 1, 12),
  durationMin: 30,
  lat: 52.52,
  lon: 13.405,
  radius: 100,
  timeline: [],
};

/** A tracker whose order answer the test switches. */
class FakeTracker implements Pick<Tracker, 'getOrder' | 'getTechnician'> {
  answer: Outcome<OrderView> = { ok: true, value: ORDER };
  reads = 0;
  async getOrder(): Promise<Outcome<OrderView>> {
    this.reads++;
    return this.answer;
  }
  async getTechnician(id: string): Promise<Outcome<TechnicianView>> {
    return { ok: true, value: { id, online: true } };
  }
}

class Sink implements ShareSink {
  readonly chunks: string[] = [];
  ended = false;
  write(chunk: string): void {
    this.chunks.push(chunk);
  }
  end(): void {
    this.ended = true;
  }
  get gone(): boolean {
    return this.chunks.includes(GONE_EVENT);
  }
}

function hub(tracker: FakeTracker, revoked: Map<string, number>, pollMs = 0): ShareHub {
  return new ShareHub({
    tracker,
    eta: new StraightLineEstimator(10),
    clock: new ManualClock(Date.UTC(2026, 0, 1, 9)),
    log: createLogger('silent'),
    lingerMs: 60_000,
    maxStreams: 100,
    maxStreamsPerOrder: 10,
    pollMs,
    heartbeatMs: 60_000,
    revokedAt: (order) => revoked.get(order),
  });
}

const EXP = Date.UTC(2026, 0, 2);
const until = async (what: string, check: () => boolean): Promise<void> => {
  for (let i = 0; i < 200 && !check(); i++) await new Promise((r) => setTimeout(r, 10));
  assert.ok(check(), what);
};

describe('share hub', () => {
  it('a revocation ends the streams of links made up to it, not of links made later', async () => {
    const h = hub(new FakeTracker(), new Map());
    const early = new Sink();
    const late = new Sink();
    assert.equal(await h.open('o1', { iat: 1000, exp: EXP }, early), 'opened');
    assert.equal(await h.open('o1', { iat: 3000, exp: EXP }, late), 'opened');
    h.revoke('o1', 2000);
    assert.equal(early.gone && early.ended, true);
    assert.equal(late.gone || late.ended, false);
    assert.equal(h.streams, 1);
    h.stop();
  });

  it('refuses to open a stream of a link revoked while it was opening', async () => {
    const revoked = new Map<string, number>();
    const tracker = new FakeTracker();
    const h = hub(tracker, revoked);
    const opening = h.open('o1', { iat: 1000, exp: EXP }, new Sink());
    // Heard (from another node) between the token check and the stream's registration.
    revoked.set('o1', 1500);
    assert.equal(await opening, 'gone');
    assert.equal(await h.open('o1', { iat: 2000, exp: EXP }, new Sink()), 'opened');
    h.stop();
  });

  it('keeps streams open while the order cannot be read, and ends them once it is gone', async () => {
    const tracker = new FakeTracker();
    const h = hub(tracker, new Map(), 10);
    const sink = new Sink();
    assert.equal(await h.open('o1', { iat: 1000, exp: EXP }, sink), 'opened');
    tracker.answer = { ok: false, code: ErrorCode.unavailable, msg: 'owner unreachable' };
    const reads = tracker.reads;
    await until('refreshed during the outage', () => tracker.reads >= reads + 3);
    assert.equal(sink.gone || sink.ended, false, 'told gone while the order was only unreadable');
    assert.deepEqual(await h.answer('o1', EXP), { live: true, state: JSON.parse(sink.chunks.at(-1)!.slice(6)) });
    const other = hub(tracker, new Map());
    assert.deepEqual(await other.answer('o1', EXP), { live: false, unavailable: 'owner unreachable' });
    assert.equal(await other.open('o1', { iat: 1000, exp: EXP }, new Sink()), 'unavailable');
    assert.equal(other.streams, 0);
    tracker.answer = { ok: false, code: ErrorCode.notFound, msg: 'no such order' };
    await until('the stream ended', () => sink.ended);
    assert.equal(sink.gone, true);
    h.stop();
    other.stop();
  });
});
