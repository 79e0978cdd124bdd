import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { SosStatusLedger } from '../../src/actors/sos-status-ledger.js';

describe('SosStatusLedger', () => {
  test('tells each state of an incident once, and never an earlier state after a later one', () => {
    const told = new SosStatusLedger();
    const ack = { t: 'sos_status', incident: 'a-1', state: 'acknowledged' } as const;
    const resolved = { t: 'sos_status', incident: 'a-1', state: 'resolved' } as const;
    assert.deepEqual(
      [ack, ack, resolved, ack, resolved].map((p) => told.tellsNews(p)),
      [true, false, true, false, false],
    );
    assert.equal(told.tellsNews({ t: 'sos_status', incident: 'a-2', state: 'resolved' }), true, 'incidents apart');
  });

  test('forgets the incidents told longest ago once it holds 10,000', () => {
    const told = new SosStatusLedger();
    const ack = (n: number) => ({ t: 'sos_status', incident: `a-${n}`, state: 'acknowledged' }) as const;
    for (let n = 0; n <= 10_000; n++) assert.equal(told.tellsNews(ack(n)), true);
    assert.equal(told.tellsNews(ack(10_000)), false, 'the newest is remembered');
    assert.equal(told.tellsNews(ack(1)), false, 'the second oldest is remembered');
    assert.equal(told.tellsNews(ack(0)), true, 'the oldest was forgotten');
  });
});
