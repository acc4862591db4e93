/**
 * msgpack encoding and decoding of protocol frames. Standard msgpack only: no
 * records, no extension types, so any msgpack library in any language reads what
 * this writes. Decoding untrusted bytes never throws: it returns a result.
 */
import { Packr, Unpackr } from 'msgpackr';
import type { ClientFrame, ServerFrame, SnapshotEntry } from './frames.js';

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

// msgpackr writes a JS number that is an integer outside the 32-bit range as
// float64, and a BigInt as int 64: application values go through exactIntegers so an
// integer an upstream published reaches clients as a msgpack integer.
const INT32_MIN = -(2 ** 31);
const UINT32_MAX = 2 ** 32 - 1;

/**
 * `value` with every safe integer outside the 32-bit range turned into a BigInt, so
 * msgpackr writes it as int 64 instead of float64. Copies only the containers on
 * the way to such an integer; returns `value` itself when there is none.
 */
export function exactIntegers<T>(value: T): T {
  return rewrite(value) as T;
}

function rewrite(value: unknown): unknown {
  if (typeof value === 'number') {
    return (value > UINT32_MAX || value < INT32_MIN) && Number.isSafeInteger(value) ? BigInt(value) : value;
  }
  if (typeof value !== 'object' || value === null || ArrayBuffer.isView(value)) return value;
  if (Array.isArray(value)) {
    let copy: unknown[] | undefined;
    for (let i = 0; i < value.length; i++) {
      const item: unknown = value[i];
      const next = rewrite(item);
      if (next !== item) (copy ??= value.slice())[i] = next;
    }
    return copy ?? value;
  }
  const map = value as Record<string, unknown>;
  const keys = Object.keys(map);
  let entries: Array<[string, unknown]> | undefined;
  for (let i = 0; i < keys.length; i++) {
    const item = map[keys[i]];
    const next = rewrite(item);
    // Containers are copied only on the way to a rewritten integer: the usual event
    // (no such integer) costs one walk and no allocation beyond the key lists.
    if (next !== item && entries === undefined) entries = keys.slice(0, i).map((k): [string, unknown] => [k, map[k]]);
    entries?.push([keys[i], next]);
  }
  // fromEntries defines own properties: a "__proto__" key stays a key.
  return entries === undefined ? value : Object.fromEntries(entries);
}

/**
 * Encodes a server frame: the one typed way to put a frame on the wire, so a
 * misspelled field is a compile error. Integers inside application values (`ev`
 * data, snapshot data of `joined` and `resync`) are written as msgpack integers (int 64 beyond 32 bits);
 * protocol fields such as `ts` keep the float64 SPEC.md §4 describes.
 */
export function encodeServerFrame(frame: ServerFrame): Uint8Array {
  switch (frame.t) {
    case 'ev': {
      const data = exactIntegers(frame.data);
      return encode(data === frame.data ? frame : { ...frame, data });
    }
    case 'joined':
    case 'resync': {
      if (frame.snap === undefined) return encode(frame);
      const snap = exactSnapshot(frame.snap);
      return encode(snap === frame.snap ? frame : { ...frame, snap });
    }
    default:
      return encode(frame);
  }
}

/** A snapshot with exactIntegers applied to each entry's data; the same object when nothing changed. */
function exactSnapshot(snap: Record<string, SnapshotEntry>): Record<string, SnapshotEntry> {
  let changed = false;
  const entries = Object.entries(snap).map(([key, entry]): [string, SnapshotEntry] => {
    const data = exactIntegers(entry.data);
    if (data === entry.data) return [key, entry];
    changed = true;
    return [key, { ...entry, data }];
  });
  return changed ? Object.fromEntries(entries) : snap;
}

/** Encodes a client frame; integers inside `data` are written exactly, as by encodeServerFrame. */
export function encodeClientFrame(frame: ClientFrame): Uint8Array {
  if (frame.t === 'pub' || frame.t === 'cmd') {
    const data = exactIntegers(frame.data);
    if (data !== frame.data) return encode({ ...frame, data });
  }
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
