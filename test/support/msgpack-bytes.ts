/**
 * Hand-built msgpack for hostile-input tests: the codec refuses to produce extension
 * types, lying length headers or absurd nesting, so tests splice raw bytes into
 * otherwise well-formed frames here.
 */
import { Packr } from 'msgpackr';
import { encode } from '../../protocol/codec.js';

/**
 * A hostile client's encoder: maps sized to their contents (an empty map is one
 * byte, where the codec writes three), no records. Small on the wire, large decoded.
 */
export const compactPackr = new Packr({ useRecords: false, variableMapSize: true });

/** Raw bytes that stand for one msgpack value inside a map built by `rawMap`. */
export class RawValue {
  constructor(readonly bytes: Uint8Array) {}
}

/** Concatenates byte arrays. */
export function concatBytes(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** A msgpack map (fixmap or map16) of `entries`; RawValue values are spliced in untouched. */
export function rawMap(entries: Record<string, unknown>): Uint8Array {
  const keys = Object.keys(entries);
  const header = keys.length < 16 ? Uint8Array.of(0x80 | keys.length) : Uint8Array.of(0xde, keys.length >> 8, keys.length & 0xff);
  const parts: Uint8Array[] = [header];
  for (const key of keys) {
    parts.push(encode(key));
    const v = entries[key];
    parts.push(v instanceof RawValue ? v.bytes : encode(v));
  }
  return concatBytes(parts);
}

/** `depth` arrays nested in each other around a nil (each level a fixarray of one element). */
export function nestedArrays(depth: number): RawValue {
  const bytes = new Uint8Array(depth + 1).fill(0x91);
  bytes[depth] = 0xc0;
  return new RawValue(bytes);
}
