/**
 * The alert rules as a table: for each starting state, what acknowledge, resolve, cancel,
 * escalate and press answer (a new version, nothing to change, or which refusal).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  type AlertChange,
  acknowledge,
  cancelByTechnician,
  escalate,
  PRESS_NOTES_KEPT,
  press,
  resolve,
} from '../../src/actors/alert-rules.js';
import type { Refusal } from '../../src/outcome.js';
import type { Alert, AlertState } from '../../src/protocol.js';

const NOW = 1_800_000_000_000;

function alert(state: AlertState, extra: Partial<Alert> = {}): Alert {
  return { id: 'a-1', kind: 'sos', level: 1, state, tech: 'tech-1', lat: 1, lon: 2, ts: NOW - 60_000, ...extra };
}

/** What a rule answered, in one word: the new state, "same" (nothing to change) or the refusal code. */
function outcome(rule: AlertChange, cur: Alert): string {
  const next = rule(cur);
  if (next === null) return 'same';
  if ((next as Refusal).ok === false) return (next as Refusal).code;
  return (next as Alert).state;
}

describe('alert rules', () => {
  const table: Array<[string, AlertChange, Record<AlertState, string>]> = [
    ['acknowledge', acknowledge('op-1', NOW), { open: 'acknowledged', acknowledged: 'same', resolved: 'conflict' }],
    ['resolve', resolve('op-1', 'done', NOW), { open: 'resolved', acknowledged: 'resolved', resolved: 'same' }],
    [
      'cancel by its technician',
      cancelByTechnician('tech-1', NOW),
      { open: 'resolved', acknowledged: 'resolved', resolved: 'conflict' },
    ],
    [
      'cancel by another technician',
      cancelByTechnician('tech-2', NOW),
      { open: 'forbidden', acknowledged: 'forbidden', resolved: 'forbidden' },
    ],
    [
      'escalate to level 2',
      escalate({ level: 2, slaBreached: false }, 5),
      { open: 'open', acknowledged: 'same', resolved: 'same' },
    ],
    [
      'press by its technician',
      press({ tech: 'tech-1', ts: NOW, lat: 3, lon: 4 }, NOW),
      {
        open: 'open',
        acknowledged: 'acknowledged',
        resolved: 'conflict',
      },
    ],
  ];
  for (const [name, rule, expected] of table) {
    it(`${name}: ${JSON.stringify(expected)}`, () => {
      for (const state of ['open', 'acknowledged', 'resolved'] as const) {
        assert.equal(outcome(rule, alert(state)), expected[state], `${name} from ${state}`);
      }
    });
  }

  it('records who acknowledged and resolved, and when; a resolve note is kept', () => {
    const acked = acknowledge('op-1', NOW)(alert('open')) as Alert;
    assert.deepEqual(acked.detail, { ackedBy: 'op-1', ackedAt: NOW });
    const resolved = resolve('op-2', 'police on site', NOW + 1)(acked) as Alert;
    assert.deepEqual(resolved.detail, {
      ackedBy: 'op-1',
      ackedAt: NOW,
      resolvedBy: 'op-2',
      resolvedAt: NOW + 1,
      note: 'police on site',
    });
    const cancelled = cancelByTechnician('tech-1', NOW)(alert('open')) as Alert;
    assert.deepEqual(cancelled.detail, { cancelled: true, falseAlarm: true, resolvedAt: NOW });
  });

  it('escalation only rises, and flags a broken response promise once', () => {
    assert.equal(escalate({ level: 1, slaBreached: false }, 5)(alert('open', { level: 2 })), null);
    assert.equal((escalate({ level: 3, slaBreached: false }, 5)(alert('open', { level: 2 })) as Alert).level, 3);
    assert.equal(
      (escalate({ level: 3, slaBreached: false }, 5)(alert('open', { level: 2 })) as Alert).detail?.escalatedAt,
      5,
    );
    const breached = escalate({ level: 3, slaBreached: true }, 7)(alert('open', { level: 3 })) as Alert;
    assert.equal(breached.detail?.escalatedAt, undefined, 'the SLA flag is no new level');
    assert.equal(breached.detail?.slaBreached, true);
    assert.equal(escalate({ level: 3, slaBreached: true }, 9)(breached), null);
  });

  it('a press counts, moves the alert to the newest fix only, and keeps the last notes', () => {
    let a = alert('open', { detail: { deviceTs: NOW - 60_000, presses: 1 } });
    for (let i = 1; i <= PRESS_NOTES_KEPT + 2; i++) {
      a = press({ tech: 'tech-1', ts: NOW + i, lat: 10 + i, lon: 20, note: `n${i}` }, NOW + i)(a) as Alert;
    }
    assert.equal(a.detail?.presses, PRESS_NOTES_KEPT + 3);
    assert.equal(a.lat, 10 + PRESS_NOTES_KEPT + 2);
    assert.deepEqual(
      a.detail?.pressNotes,
      Array.from({ length: PRESS_NOTES_KEPT }, (_, i) => `n${i + 3}`),
    );
    const older = press({ tech: 'tech-1', ts: NOW - 30_000, lat: -5, lon: -5 }, NOW + 99)(a) as Alert;
    assert.equal(older.lat, a.lat, 'an older fix does not move the alert');
    assert.equal(older.detail?.presses, PRESS_NOTES_KEPT + 4);
  });
});
