/**
 * The fault campaign's checker (load/chaos-check.ts) on crafted observations: a clean run
 * passes, and each planted violation is reported.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { check, type Observations } from '../../load/chaos-check.js';
import type { Alert } from '../../src/protocol.js';

const T0 = 1_000_000;
const sos = (extra: Partial<Alert> = {}): Alert => ({
  id: 's1',
  kind: 'sos',
  level: 1,
  state: 'open',
  tech: 'd1',
  ts: T0,
  ...extra,
});

/** A run where d1 pressed SOS once, it escalated to 2, an operator acked it at 20 s, the device was told. */
function clean(): Observations {
  return {
    level2Ms: 15_000,
    level3Ms: 30_000,
    endedAt: T0 + 120_000,
    sos: [{ tech: 'd1', incident: 's1', at: T0 + 10 }],
    sosPresses: { d1: 1 },
    changes: [
      { console: 'c#1', at: T0 + 20, alert: sos() },
      { console: 'c#1', at: T0 + 15_010, alert: sos({ level: 2, detail: { escalatedAt: T0 + 15_000 } }) },
      {
        console: 'c#1',
        at: T0 + 20_010,
        alert: sos({ level: 2, state: 'acknowledged', detail: { escalatedAt: T0 + 15_000 } }),
      },
    ],
    snapshots: [],
    sosSeen: ['s1'],
    consoleAcks: [{ incident: 's1', at: T0 + 20_000 }],
    sosStatus: { s1: ['acknowledged'] },
    connected: { d1: [[T0, T0 + 100_000]] },
    pingsAcked: { d1: [1, 2, 3] },
    archived: { d1: [1, 2, 3] },
    longestUnserved: { d1: 5_000 },
  };
}

describe('chaos checker', () => {
  it('passes a clean run', () => {
    assert.deepEqual(check(clean()), []);
  });

  it('catches an acked SOS no console saw', () => {
    const o = clean();
    o.changes = [];
    o.sosSeen = [];
    assert.match(check(o).join('\n'), /s1 of d1 acked to the device, never seen/);
  });

  it('catches a rung reached twice, a rung skipped, and a rung after the ack', () => {
    const twice = clean();
    twice.changes.splice(2, 0, {
      console: 'c#2',
      at: T0 + 15_500,
      alert: sos({ level: 2, detail: { escalatedAt: T0 + 15_400 } }),
    });
    assert.match(check(twice).join('\n'), /reached level 2 2 times/);
    // The same rung delivered again (a re-publish after a failover) is no second rung.
    const again = clean();
    again.changes.splice(2, 0, {
      console: 'c#1',
      at: T0 + 16_000,
      alert: sos({ level: 2, detail: { escalatedAt: T0 + 15_000 } }),
    });
    assert.deepEqual(check(again), []);

    const never = clean();
    never.changes = never.changes.filter((c) => c.alert.level !== 2 || c.alert.state !== 'open');
    never.consoleAcks = [{ incident: 's1', at: T0 + 27_000 }];
    assert.match(check(never).join('\n'), /never reached level 2/);

    // A rung reached while no console could hear it is seen in the next console's snapshot.
    const unheard = clean();
    unheard.changes = never.changes;
    unheard.consoleAcks = never.consoleAcks;
    unheard.snapshots = [
      { console: 'c#2', at: T0 + 26_000, alert: sos({ level: 2, detail: { escalatedAt: T0 + 15_000 } }) },
    ];
    assert.deepEqual(check(unheard), []);
    unheard.snapshots.push({
      console: 'c#3',
      at: T0 + 26_500,
      alert: sos({ level: 2, detail: { escalatedAt: T0 + 25_000 } }),
    });
    assert.match(check(unheard).join('\n'), /reached level 2 2 times/);

    const late = clean();
    late.consoleAcks = [{ incident: 's1', at: T0 + 1_000 }];
    assert.match(check(late).join('\n'), /reached level 2 although acknowledged before it/);

    const unacked = clean();
    unacked.consoleAcks = [];
    unacked.changes = unacked.changes.slice(0, 2);
    assert.match(check(unacked).join('\n'), /never reached level 3/);
  });

  it('catches acked pings missing from the archives or archived twice', () => {
    const o = clean();
    o.archived = { d1: [1, 3, 3] };
    const v = check(o).join('\n');
    assert.match(v, /1 acked pings not archived \(first ts 2\)/);
    assert.match(v, /1 acked pings archived more than once \(first ts 3\)/);
  });

  it('catches a console ack that never reached a connected device, not one that was away', () => {
    const o = clean();
    o.sosStatus = {};
    assert.match(check(o).join('\n'), /console ack of s1 never reached d1/);
    o.connected = { d1: [[T0, T0 + 21_000]] };
    assert.deepEqual(check(o), []);
  });

  it('catches a technician unserved for more than 30 s and duplicate alerts for one cause', () => {
    const o = clean();
    o.longestUnserved = { d1: 31_000 };
    const late = (id: string): Alert => ({ ...sos({ id, kind: 'late_departure', order: 'o1' }) });
    o.changes.push({ console: 'c#1', at: T0, alert: late('l1') }, { console: 'c#2', at: T0, alert: late('l2') });
    o.changes.push({ console: 'c#1', at: T0, alert: sos({ id: 's2' }) });
    const v = check(o).join('\n');
    assert.match(v, /d1 had open work and no answer for 31 s/);
    assert.match(v, /2 alerts for one cause: late_departure of order o1/);
    assert.match(v, /d1: 2 SOS incidents for 1 presses/);
  });
});
