/**
 * msgpack encoding of client frames and decoding of server frames, the SDK's own
 * copy of the daemon's protocol/codec.ts (same msgpackr options; the parity test
 * checks both produce the same bytes). Standard msgpack only: no records, no
 * extension types. Decoding untrusted bytes never throws: it returns a result.
 */
// The pack/unpack entry points leave out msgpackr's stream and iterator helpers (a smaller browser bundle).
import { Packr } from 'msgpackr/pack';
import { Unpackr } from 'msgpackr/unpack';
import type { ClientFrame } from './frames.js';

const packr = new Packr({ useRecords: false, moreTypes: false });
const unpackr = new Unpackr({
  useRecords: false,
  mapsAsObjects: true,
  structuredClone: false,
  // 'auto': 64-bit integers that fit a double decode as numbers, others as BigInt
  // (which frame validation then rejects). Missing from msgpackr's typings.
  int64AsType: 'auto' as 'number',
});

// msgpackr writes a JS number that is an integer outside the 32-bit range as
// float64: application data goes through exactIntegers so such an integer reaches
// the server as a msgpack integer (int 64).
const INT32_MIN = -(2 ** 31);
const UINT32_MAX = 2 ** 32 - 1;

function exactIntegers(value: unknown): unknown {
  if (typeof value === 'number') {
    return (value > UINT32_MAX || value < INT32_MIN) && Number.isSafeInteger(value) ? BigInt(value) : value;
  }
  if (typeof value !== 'object' || value === null || ArrayBuffer.isView(value)) return value;
  if (Array.isArray(value)) {
    let copy: unknown[] | undefined;
    for (let i = 0; i < value.length; i++) {
      const next = exactIntegers(value[i]);
      if (next !== value[i]) (copy ??= value.slice())[i] = next;
    }
    return copy ?? value;
  }
  const map = value as Record<string, unknown>;
  let changed = false;
  const entries = Object.keys(map).map((k): [string, unknown] => {
    const next = exactIntegers(map[k]);
    if (next !== map[k]) changed = true;
    return [k, next];
  });
  // fromEntries defines own properties: a "__proto__" key stays a key.
  return changed ? Object.fromEntries(entries) : value;
}

/** Encodes a client frame into bytes it may keep (a copy, not msgpackr's scratch buffer). */
export function encodeClientFrame(frame: ClientFrame): Uint8Array {
  let value: unknown = frame;
  if (frame.t === 'pub' || frame.t === 'cmd') {
    const data = exactIntegers(frame.data);
    if (data !== frame.data) value = { ...frame, data };
  }
  // pack() returns a view into msgpackr's scratch buffer (a Buffer in Node, whose slice() is no copy).
  return new Uint8Array(packr.pack(value));
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
