/**
 * Counts Server-Sent Events by their `data: ` field in the raw bytes of a response body read
 * piece by piece (`load/share-stream-readers.ts`): a field split between two reads is found
 * with the last `CARRY_BYTES` read before it (`nextCarry`).
 */

const FIELD = Buffer.from('data: ');

/** How many bytes of a read to keep for the next one: a field less one byte. */
export const CARRY_BYTES = FIELD.length - 1;

/** Counts `data: ` fields in `body`, with `carry` (the previous read's last bytes) in front. */
export function countFields(body: Buffer, carry: Buffer): number {
  let count = 0;
  if (carry.length > 0) {
    // Only a field that starts in the carry and ends in this read: the rest is counted below.
    const joined = Buffer.concat([carry, body.subarray(0, CARRY_BYTES)]);
    if (joined.indexOf(FIELD) >= 0) count++;
  }
  for (let at = body.indexOf(FIELD); at >= 0; at = body.indexOf(FIELD, at + FIELD.length)) count++;
  return count;
}

/** What to carry into the next read: the last `CARRY_BYTES` of everything read so far. */
export function nextCarry(carry: Buffer, body: Buffer): Buffer {
  if (body.length >= CARRY_BYTES) return Buffer.from(body.subarray(body.length - CARRY_BYTES));
  const both = Buffer.concat([carry, body]);
  return both.subarray(Math.max(0, both.length - CARRY_BYTES));
}
