/** The per-turn outbox: frames are written in order, once, and one broken socket does not hold back the others. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { type HasOutbox, queueFrame, writeNow } from '../../src/gateway/outbox.js';
import type { WebSocket } from '../../src/gateway/uws.js';

/** A stand-in socket that records what it was sent, or throws as uWS does once a socket is closed. */
function socket(broken: boolean): { ws: WebSocket<HasOutbox>; sent: string[] } {
  const data: HasOutbox = {};
  const sent: string[] = [];
  const ws = {
    getUserData: () => data,
    cork: (fn: () => void) => {
      if (broken) throw new Error('Invalid access of closed uWS.WebSocket');
      fn();
    },
    send: (frame: Buffer) => {
      sent.push(frame.toString());
      return 1;
    },
  } as unknown as WebSocket<HasOutbox>;
  return { ws, sent };
}

const nextTurn = () => new Promise((r) => setImmediate(r));

describe('outbox', () => {
  it('writes a socket frames in order, once, on the next turn', async () => {
    const a = socket(false);
    queueFrame(a.ws, Buffer.from('1'));
    queueFrame(a.ws, Buffer.from('2'));
    assert.deepEqual(a.sent, []);
    await nextTurn();
    assert.deepEqual(a.sent, ['1', '2']);
    await nextTurn();
    assert.deepEqual(a.sent, ['1', '2']);
  });

  it('one socket that cannot be written does not keep the others frames unsent, now or later', async () => {
    const broken = socket(true);
    const a = socket(false);
    queueFrame(broken.ws, Buffer.from('lost'));
    queueFrame(a.ws, Buffer.from('snapshot'));
    await nextTurn();
    assert.deepEqual(a.sent, ['snapshot']);
    queueFrame(a.ws, Buffer.from('ack'));
    await nextTurn();
    assert.deepEqual(a.sent, ['snapshot', 'ack']);
  });

  it('writes safety traffic at once, after what the socket already had queued, and nothing twice', async () => {
    const a = socket(false);
    queueFrame(a.ws, Buffer.from('ack 1'));
    queueFrame(a.ws, Buffer.from('ack 2'));
    writeNow(a.ws, Buffer.from('sos_status'));
    assert.deepEqual(a.sent, ['ack 1', 'ack 2', 'sos_status']);
    queueFrame(a.ws, Buffer.from('ack 3'));
    await nextTurn();
    assert.deepEqual(a.sent, ['ack 1', 'ack 2', 'sos_status', 'ack 3']);
  });
});
