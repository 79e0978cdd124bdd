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
import { ErrorCode, type OrderView, type ShareState, type TechnicianView } from '../../src/protocol.js';
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
  /** What was written, as given (a state frame is shared by the order's streams). */
  readonly raw: Array<string | Uint8Array> = [];
  ended = false;
  write(chunk: string | Uint8Array): void {
    this.raw.push(chunk);
    this.chunks.push(typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString('utf8'));
  }
  end(): void {
    this.ended = true;
  }
  get gone(): boolean {
    return this.chunks.includes(GONE_EVENT);
  }
  /** The state events received, parsed. */
  get states(): ShareState[] {
    return this.chunks.filter((c) => c.startsWith('data: ')).map((c) => JSON.parse(c.slice(6)) as ShareState);
  }
}

function hub(
  tracker: FakeTracker,
  revoked: Map<string, number>,
  pollMs = 0,
  clock = new ManualClock(Date.UTC(2026, 0, 1, 9)),
  heartbeatMs = 60_000,
): ShareHub {
  return new ShareHub({
    tracker,
    eta: new StraightLineEstimator(10),
    clock,
    log: createLogger('silent'),
    lingerMs: 60_000,
    maxStreams: 100,
    maxStreamsPerOrder: 10,
    pollMs,
    heartbeatMs,
    revokedAt: (order) => revoked.get(order),
  });
}

const EXP = Date.UTC(2026, 0, 2);
/** Lets pending promise callbacks run (an ETA, a publish), but no timer. */
const settle = async (): Promise<void> => {
  for (let i = 0; i < 20; i++) await Promise.resolve();
};
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
  it('encodes a change once for all streams of the order, and sends each stream only the newest', async () => {
    const tracker = new FakeTracker();
    tracker.answer = { ok: true, value: { ...ORDER, state: 'departed' } };
    const h = hub(tracker, new Map());
    const sinks = [new Sink(), new Sink(), new Sink()];
    for (const sink of sinks) assert.equal(await h.open('o1', { iat: 1000, exp: EXP }, sink), 'opened');
    const base = Date.UTC(2026, 0, 1, 8, 59);
    // Five fixes whose states are computed before the streams are written: one write each.
    for (let i = 1; i <= 5; i++) {
      h.position('t1', { ts: base + i * 1000, lat: 52.6 - i * 0.001, lon: 13.405 });
      await settle();
    }
    await until('the newest fix written', () => sinks.every((k) => k.states.at(-1)?.technician?.ts === base + 5000));
    for (const sink of sinks) {
      const fixes = sink.states.map((x) => x.technician?.ts).filter((t) => t !== undefined);
      assert.deepEqual(fixes, [base + 5000], `older fixes were sent: ${fixes}`);
    }
    const [a, b, c] = sinks.map((k) => k.raw.at(-1));
    assert.ok(a instanceof Uint8Array && a === b && b === c, 'one encoded frame for every stream of the order');
    h.stop();
  });

  it('sends the last state before gone when a link dies before its frame was flushed', async () => {
    const clock = new ManualClock(Date.UTC(2026, 0, 1, 9));
    const h = hub(new FakeTracker(), new Map(), 0, clock);
    const sink = new Sink();
    assert.equal(await h.open('o1', { iat: 1000, exp: EXP }, sink), 'opened');
    const done = clock.now();
    h.order({ ...ORDER, state: 'completed', timeline: [{ state: 'completed', ts: done }] });
    await settle();
    clock.advance(60_000); // SHARE_LINGER_MIN passes before the flush timer had its turn
    assert.equal(sink.ended, true);
    assert.deepEqual(
      sink.states.map((x) => x.order.state),
      ['assigned', 'completed'],
    );
    assert.equal(sink.chunks.at(-1), GONE_EVENT);
    h.stop();
  });

  it('sends heartbeats to the streams of an order that had nothing to send', async () => {
    const h = hub(new FakeTracker(), new Map(), 0, undefined, 40);
    const sink = new Sink();
    assert.equal(await h.open('o1', { iat: 1000, exp: EXP }, sink), 'opened');
    await until('a heartbeat', () => sink.chunks.includes(':\n\n'));
    h.stop();
  });
});
