/**
 * Reads the protocol test vectors in this folder: client.json and server.json (valid
 * frames: hex bytes and the decoded value) and invalid.json (malformed client messages
 * and what the server must answer). Any implementation of the protocol can check
 * itself against the JSON files directly; this loader serves our own tests.
 *
 * JSON has no binary type, so msgpack bin values appear as {"$bin": "<hex>"}.
 */
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { ClientLimits } from '../validate.js';

/** One valid frame: its exact bytes and its value. */
export interface FrameVector {
  name: string;
  comment: string;
  /** The frame's msgpack bytes, lowercase hex. */
  hex: string;
  /** The decoded frame in JSON form (bin as {"$bin": hex}); see fromJsonValue. */
  value: unknown;
}

/** One malformed client message and the outcome parseClientFrame must give. */
export interface InvalidVector {
  name: string;
  comment: string;
  hex: string;
  /** Limits that differ from DEFAULT_LIMITS for this vector (keeps oversize vectors small). */
  limits?: Partial<ClientLimits>;
  expect: { kind: 'close'; code: number } | { kind: 'error'; code: number; id?: number };
}

/** Folder holding the JSON files, from the TypeScript sources or from dist/. */
export function vectorsDir(): string {
  const beside = fileURLToPath(new URL('.', import.meta.url));
  // Compiled to dist/protocol/vectors/, the JSON stays in the source tree.
  const source = fileURLToPath(new URL('../../../protocol/vectors/', import.meta.url));
  return /[\\/]dist[\\/]protocol[\\/]vectors[\\/]$/.test(beside) && existsSync(source) ? source : beside;
}

/** Valid frames sent by clients ('client') or by the server ('server'). */
export function loadFrameVectors(direction: 'client' | 'server'): FrameVector[] {
  return readJson(`${direction}.json`) as FrameVector[];
}

/** Malformed client messages. */
export function loadInvalidVectors(): InvalidVector[] {
  return readJson('invalid.json') as InvalidVector[];
}

/** Turns the JSON form of a value into the value msgpack decodes to ({"$bin"} → Uint8Array). */
export function fromJsonValue(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(fromJsonValue);
  if (typeof v === 'object' && v !== null) {
    const o = v as Record<string, unknown>;
    const keys = Object.keys(o);
    if (keys.length === 1 && keys[0] === '$bin' && typeof o.$bin === 'string') {
      return Uint8Array.from(Buffer.from(o.$bin, 'hex'));
    }
    const out: Record<string, unknown> = {};
    for (const k of keys) out[k] = fromJsonValue(o[k]);
    return out;
  }
  return v;
}

/** Turns a decoded value into its JSON form (Uint8Array → {"$bin"}). */
export function toJsonValue(v: unknown): unknown {
  if (v instanceof Uint8Array) return { $bin: Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('hex') };
  if (Array.isArray(v)) return v.map(toJsonValue);
  if (typeof v === 'object' && v !== null) {
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) out[k] = toJsonValue(x);
    return out;
  }
  return v;
}

/** Hex to bytes. */
export function fromHex(hex: string): Uint8Array {
  return Uint8Array.from(Buffer.from(hex, 'hex'));
}

function readJson(file: string): unknown {
  return JSON.parse(readFileSync(`${vectorsDir()}${file}`, 'utf8'));
}
