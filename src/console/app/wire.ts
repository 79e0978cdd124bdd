/**
 * MessagePack for the browser: msgpackr's own browser build (served by the node at
 * /console/vendor/msgpackr.js from node_modules, loaded by index.html before this module)
 * with the same options as the server's codec, so both ends agree byte for byte.
 */

import { WIRE_MSGPACK_OPTIONS } from '../../protocol.js';

/** The part of msgpackr's browser global the console uses. */
interface MsgpackrGlobal {
  Packr: new (
    options: typeof WIRE_MSGPACK_OPTIONS,
  ) => { pack(value: unknown): Uint8Array; unpack(data: Uint8Array): unknown };
}

/** Encodes client messages and decodes server frames. */
export interface Codec {
  encode(msg: Record<string, unknown>): Uint8Array<ArrayBuffer>;
  decode(frame: ArrayBuffer): unknown;
}

/** The codec; throws when msgpackr's script did not load (the page then says so). */
export function createCodec(): Codec {
  const lib = (globalThis as { msgpackr?: MsgpackrGlobal }).msgpackr;
  if (lib === undefined) throw new Error('the MessagePack library did not load (/console/vendor/msgpackr.js)');
  const packr = new lib.Packr(WIRE_MSGPACK_OPTIONS);
  return {
    // pack() returns a view of a buffer msgpackr reuses: copy it, WebSocket.send may read it later.
    encode: (msg) => new Uint8Array(packr.pack(msg)),
    decode: (frame) => packr.unpack(new Uint8Array(frame)),
  };
}
