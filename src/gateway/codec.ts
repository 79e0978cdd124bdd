/**
 * MessagePack framing. One map per binary frame, plain maps with string keys both ways
 * (msgpackr's record extension is off, so clients written from PROTOCOL.md with any
 * MessagePack library can decode what we send). Frames using any extension type, the
 * record extension included, are refused before they are decoded.
 */
import { Packr } from 'msgpackr';
import { type ServerMessage, WIRE_MSGPACK_OPTIONS } from '../protocol.js';
import { findForbiddenType } from './msgpack-scan.js';

const packr = new Packr(WIRE_MSGPACK_OPTIONS);

/** Result of decoding a client frame: a plain object, or why it is not one. */
export type Decoded = { ok: true; value: Record<string, unknown> } | { ok: false; reason: string };

/** Decodes one frame; never throws. Anything but exactly one map is refused. */
export function decodeFrame(frame: Uint8Array): Decoded {
  // msgpackr would decode its record extension into a plain object even with records off.
  const forbidden = findForbiddenType(frame);
  if (forbidden !== null) return { ok: false, reason: `frame is not accepted: ${forbidden}` };
  let value: unknown;
  try {
    value = packr.unpack(frame);
  } catch (err) {
    return { ok: false, reason: `frame is not valid MessagePack (${(err as Error).message})` };
  }
  // Only a plain map qualifies: arrays, binaries, extension objects and msgpackr's
  // reserved-byte objects all have another prototype.
  if (value === null || typeof value !== 'object' || Object.getPrototypeOf(value) !== Object.prototype) {
    return { ok: false, reason: 'frame must be a MessagePack map' };
  }
  return { ok: true, value: value as Record<string, unknown> };
}

/** Encodes one server message into a frame. */
export function encodeMessage(msg: ServerMessage): Buffer {
  return packr.pack(msg);
}

let lastMessage: unknown;
let lastFrame: Buffer | undefined;

/**
 * Encodes `msg`, reusing the previous frame when the very same object is sent again:
 * an alert fanned out to every console is encoded once, not once per console.
 */
export function encodeShared(msg: ServerMessage): Buffer {
  if (msg !== lastMessage || lastFrame === undefined) {
    lastFrame = encodeMessage(msg);
    lastMessage = msg;
  }
  return lastFrame;
}

// `{t:"ack",seq:<seq>}` as msgpackr writes it with WIRE_MSGPACK_OPTIONS: map16 of 2 (msgpackr
// writes every object with a 16-bit count), then fixstr "t", fixstr "ack", fixstr "seq". The most frequent frame by far is written by hand
// from these bytes: no object, no encoder call, one small buffer per ack.
const ACK_PREFIX = Buffer.from([0xde, 0x00, 0x02, 0xa1, 0x74, 0xa3, 0x61, 0x63, 0x6b, 0xa3, 0x73, 0x65, 0x71]);

/**
 * Encodes a plain `ack` of `seq` (no extras), byte for byte what `encodeMessage` gives.
 * Falls back to the encoder for a seq that is not a safe non-negative integer.
 */
export function encodeAck(seq: number): Buffer {
  if (!Number.isSafeInteger(seq) || seq < 0 || seq > 0xffffffff) return encodeMessage({ t: 'ack', seq });
  const head = ACK_PREFIX.length;
  let frame: Buffer;
  if (seq < 0x80) {
    frame = Buffer.allocUnsafe(head + 1);
    frame[head] = seq;
  } else if (seq < 0x100) {
    frame = Buffer.allocUnsafe(head + 2);
    frame[head] = 0xcc;
    frame[head + 1] = seq;
  } else if (seq < 0x10000) {
    frame = Buffer.allocUnsafe(head + 3);
    frame[head] = 0xcd;
    frame.writeUInt16BE(seq, head + 1);
  } else {
    frame = Buffer.allocUnsafe(head + 5);
    frame[head] = 0xce;
    frame.writeUInt32BE(seq, head + 1);
  }
  ACK_PREFIX.copy(frame, 0);
  return frame;
}
