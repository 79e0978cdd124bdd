/**
 * Journal reconciliation's decision (src/cluster/journal-merge.ts) on crafted states: what
 * a journal adds to the state a node runs, and what it must never add or roll back.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { LiveRecord, OrderRecord } from '../../src/actors/records.js';
import {
  aheadOf,
  type Journaled,
  type Known,
  missingFrom,
  type Present,
  staleInShared,
} from '../../src/cluster/journal-merge.js';
import type { Alert } from '../../src/protocol.js';
import { sosAlert } from '../support/fixtures.js';

function order(id: string, states: OrderRecord['state'][], extra: Partial<OrderRecord> = {}): OrderRecord {
  return {
    id,
    tech: 't-1',
    lat: 1,
    lon: 2,
    radius: 50,
    scheduledAt: 0,
    durationMin: 30,
    state: states.at(-1) ?? 'assigned',
    timeline: states.map((state, i) => ({ state, ts: i })),
    inServiceAt: null,
    fired: [],
    watch: { outsideSince: null, outsideFixes: 0, fired: false },
    dwellAt: null,
    ...extra,
  };
}

const pos = (ts: number) => ({ pos: { ts, lat: 1, lon: 2, acc: null, spd: null }, quietSince: ts });
const none: Known = { orders: new Set(), alerts: new Set() };
const journal = (j: Partial<Journaled>): Journaled => ({ tech: 't-1', orders: [], alerts: [], position: null, ...j });
const present = (p: { orders?: OrderRecord[]; alerts?: Alert[]; position?: number }): Present => ({
  orders: new Map((p.orders ?? []).map((o) => [o.id, o])),
  alerts: new Map((p.alerts ?? []).map((a) => [a.id, a])),
  position: p.position === undefined ? null : pos(p.position).pos,
});
const ids = (recs: ReturnType<typeof missingFrom>) =>
  recs.map((r) =>
    r.k === 'o' ? `o:${r.o.id}:${r.o.state}` : r.k === 'a' ? `a:${r.a.id}:${r.a.state}` : `p:${r.pos.ts}`,
  );

describe('journal reconciliation decides', () => {
  it('adds an SOS the present state never had, and a transition it lacks', () => {
    const j = journal({ alerts: [sosAlert('s1')], orders: [order('o1', ['assigned', 'departed'])], position: pos(9) });
    const p = present({ orders: [order('o1', ['assigned'])], position: 5 });
    assert.deepEqual(ids(missingFrom(j, p, none)), ['o:o1:departed', 'a:s1:open', 'p:9']);
  });

  it('never rolls anything back', () => {
    const j = journal({ alerts: [sosAlert('s1')], orders: [order('o1', ['assigned'])], position: pos(5) });
    const p = present({
      alerts: [sosAlert('s1', { state: 'acknowledged' })],
      orders: [order('o1', ['assigned', 'departed'])],
      position: 9,
    });
    assert.deepEqual(missingFrom(j, p, none), []);
  });

  it('moves an alert forward: acknowledged over open, level 2 over level 1', () => {
    const j = journal({ alerts: [sosAlert('s1', { state: 'acknowledged' }), sosAlert('s2', { level: 2 })] });
    const p = present({ alerts: [sosAlert('s1', { level: 3 }), sosAlert('s2')] });
    assert.deepEqual(ids(missingFrom(j, p, none)), ['a:s1:acknowledged', 'a:s2:open']);
    assert.ok(aheadOf(sosAlert('x', { state: 'resolved' }), sosAlert('x', { level: 3 })));
    assert.ok(!aheadOf(sosAlert('x'), sosAlert('x')));
  });

  it('does not bring back what shared storage held and finished since', () => {
    const j = journal({ alerts: [sosAlert('s1')], orders: [order('o1', ['assigned'])] });
    const known: Known = { orders: new Set(['o1']), alerts: new Set(['s1']) };
    assert.deepEqual(missingFrom(j, present({}), known), []);
    // Nor a finished order or a resolved alert it never saw: nothing to serve any more.
    const done = journal({ alerts: [sosAlert('s2', { state: 'resolved' })], orders: [order('o2', ['cancelled'])] });
    assert.deepEqual(missingFrom(done, present({}), none), []);
  });

  it('adds no second alert for one cause', () => {
    const offline = (id: string): Alert => ({ id, kind: 'offline', level: 1, state: 'open', tech: 't-1', ts: 1 });
    const late = (id: string): Alert => ({ ...offline(id), kind: 'late_departure', order: 'o1' });
    const j = journal({ alerts: [offline('off-a'), late('late-a'), sosAlert('s-a')] });
    const p = present({ alerts: [offline('off-b'), late('late-b'), sosAlert('s-b')] });
    // Every SOS press the device was acked for stays; the deadline and the silence were raised once already.
    assert.deepEqual(ids(missingFrom(j, p, none)), ['a:s-a:open']);
    // The order's mark alone (its alert resolved and gone) is enough.
    const marked = present({ orders: [order('o1', ['assigned'], { fired: ['late_departure'] })] });
    assert.deepEqual(ids(missingFrom(journal({ alerts: [late('late-a')] }), marked, none)), []);
  });
});

describe('after redis lost writes, the node that runs the technician writes again', () => {
  const local = (j: Partial<Journaled>): LiveRecord[] => [
    ...(j.orders ?? []).map((o): LiveRecord => ({ k: 'o', o })),
    ...(j.alerts ?? []).map((a): LiveRecord => ({ k: 'a', a })),
    ...(j.position ? [{ k: 'p' as const, id: 't-1', ...j.position }] : []),
  ];

  it('what redis lacks or holds an older version of', () => {
    const mine = local({
      orders: [order('o1', ['assigned', 'departed']), order('o2', ['assigned'])],
      alerts: [sosAlert('s1'), sosAlert('s2', { state: 'acknowledged' })],
      position: pos(9),
    });
    const redis = present({ orders: [order('o1', ['assigned'])], alerts: [sosAlert('s2')], position: 5 });
    assert.deepEqual(ids(staleInShared(mine, redis)), [
      'o:o1:departed',
      'o:o2:assigned',
      'a:s1:open',
      'a:s2:acknowledged',
      'p:9',
    ]);
  });

  it('a finished order or resolved alert redis still shows open (its removal was lost), and nothing else', () => {
    const done = order('o1', ['assigned', 'departed', 'arrived', 'in_service', 'completed']);
    const gone = order('o2', ['assigned', 'cancelled']);
    const mine = local({
      orders: [done, gone],
      alerts: [sosAlert('s1', { state: 'resolved' }), sosAlert('s2', { state: 'resolved' })],
      position: pos(5),
    });
    const redis = present({ orders: [order('o1', ['assigned', 'departed'])], alerts: [sosAlert('s1')], position: 5 });
    assert.deepEqual(ids(staleInShared(mine, redis)), ['o:o1:completed', 'a:s1:resolved']);
  });

  it('nothing when redis is up to date', () => {
    const mine = local({ orders: [order('o1', ['assigned'])], alerts: [sosAlert('s1')], position: pos(5) });
    const redis = present({ orders: [order('o1', ['assigned'])], alerts: [sosAlert('s1')], position: 5 });
    assert.deepEqual(staleInShared(mine, redis), []);
  });
});
