/**
 * How a stream message travels through Redis: one binary envelope, the same bytes
 * in a session's history list and on its Pub/Sub channel. The Lua publish script
 * builds it around the `ev` frame it assembles (redis-broker.ts), so the frame is
 * made once, by the instance that sequences the event, and every instance passes
 * the very bytes on. Layout (big-endian):
 *
 *   kind     u8        1 event, 2 notice (seq 0, never in history), 3 heartbeat
 *   seq      float64   the session seq (0 for notices and heartbeats)
 *   epochLen u8        then the epoch's UTF-8 bytes (≤ 64)
 *   metaLen  u32       then msgpack [to | nil, conflateKey | nil] or [to | nil,
 *                      conflateKey | nil, at], or nothing (0)
 *   frame    …         the encoded server frame, to the end
 */
import { decode, encode } from '../../protocol/codec.js';
import type { StreamMessage } from './broker.js';

export const EnvelopeKind = { Event: 1, Notice: 2, Heartbeat: 3 } as const;

/** The envelope's metadata bytes for an event's recipients, conflation key and release time (empty when none). */
export function envelopeMeta(to: readonly string[] | undefined, conflateKey: string | undefined, at?: number): Uint8Array {
  if (at !== undefined) return encode([to ?? null, conflateKey ?? null, at]);
  if (to === undefined && conflateKey === undefined) return new Uint8Array(0);
  return encode([to ?? null, conflateKey ?? null]);
}

/** An envelope around an unsequenced frame (notices, heartbeats), built here rather than in Lua. */
export function unsequencedEnvelope(kind: number, frame: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(1 + 8 + 1 + 4 + frame.length);
  out[0] = kind;
  out.writeDoubleBE(0, 1);
  out[9] = 0;
  out.writeUInt32BE(0, 10);
  out.set(frame, 14);
  return out;
}

/** Thrown for bytes that are not an envelope this version writes (another program on the channel, a corrupt key). */
export class EnvelopeError extends Error {}

/** Opens an envelope of `session` into a stream message; the frame is a view into `bytes`, not a copy. */
export function openEnvelope(session: string, bytes: Buffer): StreamMessage {
  if (bytes.length < 14) throw new EnvelopeError(`envelope of ${bytes.length} bytes is shorter than its header`);
  const seq = bytes.readDoubleBE(1);
  const epochEnd = 10 + bytes[9];
  if (epochEnd + 4 > bytes.length) throw new EnvelopeError('envelope epoch runs past its end');
  const epoch = bytes.toString('utf8', 10, epochEnd);
  const metaLength = bytes.readUInt32BE(epochEnd);
  const frameStart = epochEnd + 4 + metaLength;
  if (frameStart > bytes.length) throw new EnvelopeError('envelope metadata runs past its end');
  const msg: StreamMessage = { session, epoch, seq, frame: bytes.subarray(frameStart) };
  if (metaLength > 0) {
    const meta = decode(bytes.subarray(epochEnd + 4, frameStart));
    if (!meta.ok || !Array.isArray(meta.value) || meta.value.length < 2 || meta.value.length > 3) {
      throw new EnvelopeError('envelope metadata is not [to, conflateKey] or [to, conflateKey, at]');
    }
    const [to, conflateKey, at] = meta.value as unknown[];
    if (Array.isArray(to) && to.every((u): u is string => typeof u === 'string')) msg.to = to;
    else if (to !== null) throw new EnvelopeError('envelope recipients are not a list of user ids');
    if (typeof conflateKey === 'string') msg.conflateKey = conflateKey;
    else if (conflateKey !== null) throw new EnvelopeError('envelope conflation key is not a string');
    if (typeof at === 'number' && Number.isSafeInteger(at) && at >= 0) msg.at = at;
    else if (at !== undefined) throw new EnvelopeError('envelope release time is not a non-negative integer');
  }
  return msg;
}
