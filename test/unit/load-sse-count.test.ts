/** The bench's count of stream events from raw body bytes, cut into reads at every place. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { countFields, nextCarry } from '../../load/sse-count.js';

/** Counts over `body` read in pieces cut at `cuts`, carrying the tail as the readers do. */
function countInReads(body: Buffer, cuts: number[]): number {
  let carry: Buffer = Buffer.alloc(0);
  let events = 0;
  let from = 0;
  for (const to of [...cuts, body.length]) {
    const piece = body.subarray(from, to);
    events += countFields(piece, carry);
    carry = nextCarry(carry, piece);
    from = to;
  }
  return events;
}

// A chunked SSE body as the node sends it: the retry line, two states, a heartbeat, `gone`.
const body = Buffer.from(
  'd\r\nretry: 1000\n\n\r\n19\r\ndata: {"state":"departed"}\n\n\r\n19\r\ndata: {"state":"departed"}\n\n\r\n' +
    '3\r\n:\n\n\r\n17\r\nevent: gone\ndata: {}\n\n\r\n0\r\n\r\n',
);

test('every data field is counted once, in one read or cut anywhere into two or three', () => {
  assert.equal(countInReads(body, []), 3);
  for (let i = 1; i < body.length; i++) {
    assert.equal(countInReads(body, [i]), 3, `cut at ${i}`);
    for (let j = i + 1; j < body.length; j += 7) assert.equal(countInReads(body, [i, j]), 3, `cut at ${i}, ${j}`);
  }
});

test('reads of one byte each still count every field', () => {
  const cuts = Array.from({ length: body.length - 1 }, (_, i) => i + 1);
  assert.equal(countInReads(body, cuts), 3);
});

test('heartbeats and the retry line are not events', () => {
  assert.equal(countFields(Buffer.from('retry: 1000\n\n:\n\n:\n\n'), Buffer.alloc(0)), 0);
});
