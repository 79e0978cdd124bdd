/**
 * A walk over a MessagePack frame's bytes, before any decoder sees it, that finds
 * extension types and the reserved byte 0xc1. msgpackr decodes some extensions even with
 * its own features off (its record extension, type 0x72, turns into a plain-looking
 * object), so refusing them by the decoded value's shape is not enough: the bytes decide.
 */

/** Bytes of each fixed-size format after its type byte; absent ones are handled below. */
const FIXED: ReadonlyMap<number, number> = new Map([
  [0xc0, 0], // nil
  [0xc2, 0], // false
  [0xc3, 0], // true
  [0xca, 4], // float 32
  [0xcb, 8], // float 64
  [0xcc, 1], // uint 8
  [0xcd, 2], // uint 16
  [0xce, 4], // uint 32
  [0xcf, 8], // uint 64
  [0xd0, 1], // int 8
  [0xd1, 2], // int 16
  [0xd2, 4], // int 32
  [0xd3, 8], // int 64
]);

/** Formats with a length field: its size, and whether the length counts bytes, elements or pairs. */
const SIZED: ReadonlyMap<number, { bytes: 1 | 2 | 4; kind: 'bytes' | 'array' | 'map' }> = new Map([
  [0xc4, { bytes: 1, kind: 'bytes' }], // bin 8
  [0xc5, { bytes: 2, kind: 'bytes' }], // bin 16
  [0xc6, { bytes: 4, kind: 'bytes' }], // bin 32
  [0xd9, { bytes: 1, kind: 'bytes' }], // str 8
  [0xda, { bytes: 2, kind: 'bytes' }], // str 16
  [0xdb, { bytes: 4, kind: 'bytes' }], // str 32
  [0xdc, { bytes: 2, kind: 'array' }], // array 16
  [0xdd, { bytes: 4, kind: 'array' }], // array 32
  [0xde, { bytes: 2, kind: 'map' }], // map 16
  [0xdf, { bytes: 4, kind: 'map' }], // map 32
]);

function readLength(frame: Uint8Array, at: number, size: 1 | 2 | 4): number {
  if (size === 1) return frame[at]!;
  if (size === 2) return (frame[at]! << 8) | frame[at + 1]!;
  return ((frame[at]! << 24) >>> 0) + (frame[at + 1]! << 16) + (frame[at + 2]! << 8) + frame[at + 3]!;
}

/**
 * Why `frame` may not be decoded: it holds an extension type or the reserved byte; null
 * when it holds neither. Only the first value is walked; a truncated frame returns null
 * and is left to the decoder to refuse. Linear in the frame's length, never recursive.
 */
export function findForbiddenType(frame: Uint8Array): string | null {
  let at = 0;
  // Values still to read: 1 for the top-level value, plus every element of open containers.
  let remaining = 1;
  while (remaining > 0 && at < frame.length) {
    remaining -= 1;
    const b = frame[at]!;
    at += 1;
    if (b <= 0x7f || b >= 0xe0) continue; // fixint
    if (b <= 0x8f) {
      remaining += 2 * (b & 0x0f); // fixmap
      continue;
    }
    if (b <= 0x9f) {
      remaining += b & 0x0f; // fixarray
      continue;
    }
    if (b <= 0xbf) {
      at += b & 0x1f; // fixstr
      continue;
    }
    const fixed = FIXED.get(b);
    if (fixed !== undefined) {
      at += fixed;
      continue;
    }
    if (b === 0xc1) return `reserved byte 0xc1 at offset ${at - 1}`;
    if ((b >= 0xc7 && b <= 0xc9) || (b >= 0xd4 && b <= 0xd8)) {
      const sizeBytes = b === 0xc7 ? 1 : b === 0xc8 ? 2 : b === 0xc9 ? 4 : 0;
      const type = frame[at + sizeBytes];
      const name = type === undefined ? '?' : `0x${type.toString(16).padStart(2, '0')}`;
      return `extension type ${name} at offset ${at - 1} (MessagePack extensions are not accepted)`;
    }
    const sized = SIZED.get(b);
    if (sized === undefined || at + sized.bytes > frame.length) return null; // truncated: the decoder says so
    const length = readLength(frame, at, sized.bytes);
    at += sized.bytes;
    if (sized.kind === 'bytes') at += length;
    else remaining += sized.kind === 'map' ? 2 * length : length;
  }
  return null;
}

/** Position right after the value starting at `at`; -1 when the frame ends first or holds an extension. */
function skipValue(frame: Uint8Array, start: number): number {
  let at = start;
  let remaining = 1;
  while (remaining > 0) {
    if (at >= frame.length) return -1;
    remaining -= 1;
    const b = frame[at]!;
    at += 1;
    if (b <= 0x7f || b >= 0xe0) continue;
    if (b <= 0x8f) remaining += 2 * (b & 0x0f);
    else if (b <= 0x9f) remaining += b & 0x0f;
    else if (b <= 0xbf) at += b & 0x1f;
    else {
      const fixed = FIXED.get(b);
      if (fixed !== undefined) {
        at += fixed;
        continue;
      }
      const sized = SIZED.get(b);
      if (sized === undefined || at + sized.bytes > frame.length) return -1;
      const length = readLength(frame, at, sized.bytes);
      at += sized.bytes;
      if (sized.kind === 'bytes') at += length;
      else remaining += sized.kind === 'map' ? 2 * length : length;
    }
  }
  return at <= frame.length ? at : -1;
}

/** The string starting at `at` if it is one (fixstr or str 8), with the position after it. */
function readShortString(frame: Uint8Array, at: number): { s: string; next: number } | null {
  const b = frame[at];
  if (b === undefined) return null;
  let start: number;
  let length: number;
  if (b >= 0xa0 && b <= 0xbf) {
    start = at + 1;
    length = b & 0x1f;
  } else if (b === 0xd9 && at + 1 < frame.length) {
    start = at + 2;
    length = frame[at + 1]!;
  } else return null;
  if (start + length > frame.length) return null;
  let s = '';
  for (let i = start; i < start + length; i++) s += String.fromCharCode(frame[i]!);
  return { s, next: start + length };
}

/** The non-negative integer starting at `at` if it is one that fits a `seq`. */
function readSeq(frame: Uint8Array, at: number): number | null {
  const b = frame[at];
  if (b === undefined) return null;
  if (b <= 0x7f) return b;
  const size = b === 0xcc ? 1 : b === 0xcd ? 2 : b === 0xce ? 4 : 0;
  if (size === 0 || at + 1 + size > frame.length) return null;
  return readLength(frame, at + 1, size);
}

/**
 * The `t` and `seq` of a frame that is a map, read without decoding it: what a node
 * that sheds load needs to answer a ping or batch at once, without paying for decoding and
 * validating a thousand points it is going to refuse anyway. Null when the frame is not a
 * map with a string `t` and an integer `seq` that can be read this way; the caller then
 * decodes it as usual.
 */
export function peekTypeAndSeq(frame: Uint8Array): { t: string; seq: number } | null {
  const b = frame[0];
  if (b === undefined) return null;
  let pairs: number;
  let at: number;
  if (b >= 0x80 && b <= 0x8f) {
    pairs = b & 0x0f;
    at = 1;
  } else if (b === 0xde && frame.length >= 3) {
    pairs = readLength(frame, 1, 2);
    at = 3;
  } else return null;
  let t: string | null = null;
  let seq: number | null = null;
  for (let k = 0; k < pairs && (t === null || seq === null); k++) {
    const key = readShortString(frame, at);
    if (key === null) return null;
    if (key.s === 't') {
      const value = readShortString(frame, key.next);
      if (value === null) return null;
      t = value.s;
    } else if (key.s === 'seq') seq = readSeq(frame, key.next);
    at = skipValue(frame, key.next);
    if (at < 0) return null;
  }
  return t !== null && seq !== null ? { t, seq } : null;
}
