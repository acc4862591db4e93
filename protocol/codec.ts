/**
 * msgpack encoding and decoding of protocol frames. Standard msgpack only: no
 * records, no extension types, so any msgpack library in any language reads what
 * this writes. Decoding untrusted bytes never throws: it returns a result.
 */
import { Packr, Unpackr } from 'msgpackr';
import type { ClientFrame, ServerFrame } from './frames.js';

const packr = new Packr({ useRecords: false, moreTypes: false });
const unpackr = new Unpackr({
  useRecords: false,
  mapsAsObjects: true,
  structuredClone: false,
  // 'auto': 64-bit integers that fit a double decode as numbers, others as BigInt
  // (which validation then rejects). Missing from msgpackr's typings.
  int64AsType: 'auto' as 'number',
});

/** Encodes any value as standard msgpack into an exact-size, unshared Uint8Array. */
export function encode(value: unknown): Uint8Array {
  // pack() returns a view into msgpackr's scratch buffer: copy so the bytes can be
  // kept, transferred between threads and published without dragging 8 KB along.
  const view = packr.pack(value);
  const out = new Uint8Array(view.length);
  out.set(view);
  return out;
}

/** Encodes a server frame. */
export function encodeServerFrame(frame: ServerFrame): Uint8Array {
  return encode(frame);
}

/** Encodes a client frame. */
export function encodeClientFrame(frame: ClientFrame): Uint8Array {
  return encode(frame);
}

/** Outcome of decoding untrusted bytes. */
export type DecodeResult = { ok: true; value: unknown } | { ok: false; reason: string };

/** Decodes one msgpack value from untrusted bytes; never throws. */
export function decode(bytes: Uint8Array): DecodeResult {
  try {
    return { ok: true, value: unpackr.unpack(bytes) };
  } catch (err) {
    return { ok: false, reason: err instanceof Error ? err.message : String(err) };
  }
}
