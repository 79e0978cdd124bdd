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
