/**
 * The alert board's publishing order (actors/alert-board.ts): an SOS change reaches
 * consoles when its write starts, while whoever caused it is answered only once it is
 * stored; other alerts are published once stored; a change that could not be stored is
 * undone on the consoles; a new incident that could not be stored keeps its id for the
 * technician's next press.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { AlertBoard } from '../../src/actors/alert-board.js';
import { acknowledge } from '../../src/actors/alert-rules.js';
import type { Persistence } from '../../src/actors/persistence.js';
import { WorkCounter } from '../../src/actors/work.js';
import { ManualClock } from '../../src/clock.js';
import { createLogger } from '../../src/log.js';
import { Metrics } from '../../src/metrics.js';
import type { Refusal } from '../../src/outcome.js';
import type { Alert } from '../../src/protocol.js';
import { MemoryAlertFeed } from '../../src/shared/alert-feed-memory.js';

/** One pending write: the test decides when and how it ends. */
interface Write {
  alert: Alert;
  done(result: Refusal | null): void;
  fail(err: Error): void;
}

/** A board whose writes wait for the test, and the versions its consoles were pushed. */
function boardOnHeldWrites() {
  const writes: Write[] = [];
  const persistence = {
    saveAlert: (alert: Alert) =>
      new Promise<Refusal | null>((resolve, reject) => writes.push({ alert, done: resolve, fail: reject })),
  } as unknown as Persistence;
  const feed = new MemoryAlertFeed();
  const pushed: Alert[] = [];
  feed.tail('', (entry) => pushed.push(entry.alert));
  const board = new AlertBoard(
    persistence,
    new ManualClock(),
    new Metrics(),
    createLogger('silent'),
    new WorkCounter(),
    feed,
  );
  /** Waits until `n` writes have started. */
  const started = async (n: number): Promise<Write> => {
    for (let i = 0; i < 100 && writes.length < n; i++) await new Promise((r) => setImmediate(r));
    const w = writes[n - 1];
    assert.ok(w, `write ${n} started`);
    return w;
  };
  return { board, pushed, started };
}

const alert = (id: string, kind: Alert['kind']): Alert => ({
  id,
  kind,
  level: 1,
  state: 'open',
  tech: 'tech-1',
  lat: 45.76,
  lon: 4.83,
  ts: 1,
});

/** Whether `p` has settled by the time a few turns have passed. */
async function settled(p: Promise<unknown>): Promise<boolean> {
  let done = false;
  p.then(
    () => (done = true),
    () => (done = true),
  );
  for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
  return done;
}

describe('alert board publishing', () => {
  test('an SOS reaches consoles when its write starts; its raise is answered once the write ends', async () => {
    const { board, pushed, started } = boardOnHeldWrites();
    const raised = board.raise(alert('a-1', 'sos'), 'tolerate');
    const write = await started(1);
    assert.deepEqual(
      pushed.map((a) => a.id),
      ['a-1'],
      'pushed while the write is in progress',
    );
    assert.equal(await settled(raised), false, 'not answered before it is stored');
    assert.equal(board.get('a-1'), undefined, 'not committed yet');
    assert.equal(board.announcedSos('a-1')?.id, 'a-1', 'an operator can already answer it');
    write.done(null);
    const out = await raised;
    assert.ok(out.ok);
    assert.equal(board.get('a-1')?.state, 'open');
    assert.equal(board.announcedSos('a-1'), undefined);
    assert.equal(pushed.length, 1, 'pushed once, not again at commit');
  });

  test('other alerts reach consoles only once stored', async () => {
    const { board, pushed, started } = boardOnHeldWrites();
    const raised = board.raise(alert('a-2', 'late_arrival'), 'tolerate');
    const write = await started(1);
    assert.equal(pushed.length, 0);
    write.done(null);
    assert.ok((await raised).ok);
    assert.deepEqual(
      pushed.map((a) => a.id),
      ['a-2'],
    );
  });

  test('an ack is pushed (and its callback runs) while stored; refused, consoles get the stored version back', async () => {
    const { board, pushed, started } = boardOnHeldWrites();
    const raised = board.raise(alert('a-3', 'sos'), 'tolerate');
    (await started(1)).done(null);
    await raised;
    const told: string[] = [];
    const acked = board.change('a-3', acknowledge('op', 5), 'refuse', (next) => told.push(next.state));
    const write = await started(2);
    assert.deepEqual(told, ['acknowledged'], 'the technician is told while the ack is stored');
    assert.deepEqual(
      pushed.map((a) => a.state),
      ['open', 'acknowledged'],
    );
    write.done({ ok: false, code: 'unavailable', msg: 'disk full' });
    const out = await acked;
    assert.equal(out.ok, false);
    assert.deepEqual(
      pushed.map((a) => a.state),
      ['open', 'acknowledged', 'open'],
      'the change that was not stored is undone on the consoles',
    );
    assert.equal(board.get('a-3')?.state, 'open');
  });

  test('a new SOS that could not be stored gives its id to the next press, once', async () => {
    const { board, pushed, started } = boardOnHeldWrites();
    const first = board.raise(alert('a-4', 'sos'), 'tolerate');
    (await started(1)).fail(new Error('disk gone'));
    await assert.rejects(first, /disk gone/);
    assert.equal(board.get('a-4'), undefined);
    assert.equal(board.newSosId('tech-1'), 'a-4', 'the press after it reuses the announced id');
    const again = board.raise(alert('a-4', 'sos'), 'tolerate');
    (await started(2)).done(null);
    assert.ok((await again).ok);
    assert.equal(board.get('a-4')?.state, 'open');
    assert.notEqual(board.newSosId('tech-1'), 'a-4', 'stored now: a later incident gets a new id');
    assert.deepEqual(
      pushed.map((a) => a.id),
      ['a-4', 'a-4'],
      'one incident on the consoles',
    );
  });
});
