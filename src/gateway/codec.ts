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

/** Writes a non-negative integer below 2^32 as msgpackr does (fixint, uint 8, 16 or 32) at `at`; returns the end. */
function writeUint(frame: Buffer, at: number, n: number): number {
  if (n < 0x80) {
    frame[at] = n;
    return at + 1;
  }
  if (n < 0x100) {
    frame[at] = 0xcc;
    frame[at + 1] = n;
    return at + 2;
  }
  if (n < 0x10000) {
    frame[at] = 0xcd;
    frame.writeUInt16BE(n, at + 1);
    return at + 3;
  }
  frame[at] = 0xce;
  frame.writeUInt32BE(n, at + 1);
  return at + 5;
}

const fitsUint32 = (n: number): boolean => Number.isSafeInteger(n) && n >= 0 && n <= 0xffffffff;

/**
 * Encodes a plain `ack` of `seq` (no extras), byte for byte what `encodeMessage` gives.
 * Falls back to the encoder for a seq that is not a safe non-negative integer.
 */
export function encodeAck(seq: number): Buffer {
  if (!fitsUint32(seq)) return encodeMessage({ t: 'ack', seq });
  const frame = Buffer.allocUnsafe(ACK_PREFIX.length + 5);
  ACK_PREFIX.copy(frame, 0);
  return frame.subarray(0, writeUint(frame, ACK_PREFIX.length, seq));
}

/**
 * A refusal that only `seq` and `retryMs` tell apart, pre-encoded: what a shedding node
 * answers to thousands of frames a second. The fixed fields are encoded once by the
 * encoder; `seq` and `retryMs` are appended as the last two entries of the map.
 */
export class RefusalFrames {
  private readonly prefix: Buffer;

  constructor(fixed: { code: string; msg: string }) {
    const body = packr.pack({ t: 'err', code: fixed.code, msg: fixed.msg });
    // msgpackr writes objects as map16 (0xde, two count bytes); the fixed part has 3 entries.
    if (body[0] !== 0xde) throw new Error('unexpected map header from the encoder');
    this.prefix = Buffer.concat([Buffer.from([0xde, 0x00, 0x05]), body.subarray(3), SEQ_KEY]);
  }

  /** The frame `{t:"err", code, msg, seq, retryMs}`. */
  encode(seq: number, retryMs: number): Buffer {
    const frame = Buffer.allocUnsafe(this.prefix.length + 5 + RETRY_KEY.length + 5);
    this.prefix.copy(frame, 0);
    let at = writeUint(frame, this.prefix.length, seq);
    RETRY_KEY.copy(frame, at);
    at = writeUint(frame, at + RETRY_KEY.length, retryMs);
    return frame.subarray(0, at);
  }

  /** Whether `seq` and `retryMs` can be written by `encode`. */
  static fits(seq: number, retryMs: number): boolean {
    return fitsUint32(seq) && fitsUint32(retryMs);
  }
}

const SEQ_KEY = Buffer.from([0xa3, 0x73, 0x65, 0x71]); // fixstr "seq"
const RETRY_KEY = Buffer.from([0xa7, 0x72, 0x65, 0x74, 0x72, 0x79, 0x4d, 0x73]); // fixstr "retryMs"
