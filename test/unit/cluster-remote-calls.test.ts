/** Requests arriving from a peer node over Redis are validated like any network input. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseRemoteCall } from '../../src/cluster/remote-calls.js';

describe('remote calls from peer nodes', () => {
  it('accepts the requests a node forwards', () => {
    assert.deepEqual(parseRemoteCall('safety', { operator: 'op', msg: { t: 'ack', seq: 3, id: 'a-1' } }), {
      op: 'safety',
      operator: 'op',
      msg: { t: 'ack', seq: 3, id: 'a-1' },
    });
    const input = {
      technician: 't1',
      lat: 1,
      lon: 2,
      scheduledAt: 3,
      durationMin: 30,
      polygon: [
        [2, 1],
        [2.001, 1],
        [2, 1.001],
      ],
    };
    assert.deepEqual(parseRemoteCall('putOrder', { id: 'o1', input }), { op: 'putOrder', id: 'o1', input });
    assert.deepEqual(parseRemoteCall('getTechnician', { id: 't1' }), { op: 'getTechnician', id: 't1' });
  });

  it('refuses malformed or unknown requests instead of running them', () => {
    const bad: [string, unknown][] = [
      ['safety', { operator: 'op', msg: { t: 'delete', seq: 1, id: 'a-1' } }],
      ['safety', { operator: '', msg: { t: 'ack', seq: 1, id: 'a-1' } }],
      ['safety', { operator: 'op', msg: { t: 'resolve', seq: 1, id: 'a-1', note: 7 } }],
      ['putOrder', { id: 'o1', input: { technician: 't1', lat: 'x', lon: 2, scheduledAt: 3, durationMin: 30 } }],
      [
        'putOrder',
        { id: 'o1', input: { technician: 't1', lat: 1, lon: 2, scheduledAt: 3, durationMin: 30, polygon: [[1]] } },
      ],
      ['cancelOrder', { id: 'x'.repeat(500) }],
      ['getOrder', null],
      ['dropDatabase', { id: 'o1' }],
    ];
    for (const [op, args] of bad) assert.equal(parseRemoteCall(op, args), null, `${op} ${JSON.stringify(args)}`);
  });
});
