/**
 * The `ev` frame as a template: its msgpack bytes before the seq (`head`) and after
 * the epoch (`tail`), so whoever assigns the seq — the memory broker in-process, a
 * Redis script atomically with the history append — assembles the exact bytes of
 * the frame without re-encoding its data. One encoding per event, cluster-wide.
 *
 * The assembled bytes are identical to `encodeServerFrame()` of the same EventFrame (SPEC §4:
 * map 16 header, keys in table order, integers below 2^32 in their smallest int
 * format and larger ones as float64); test/protocol/event-template.test.ts pins it.
 *
 *   head = map16(n) "t" "ev" "s" <session> "seq"
 *   then <seq> "ep" <epoch>
 *   tail = "type" <type> "data" <data> "ts" <ts> ["k" <key>] ["c" true]
 */
import { encodeServerFrame } from './codec.js';
import type { EventFrame } from './frames.js';

/** Pre-encoded parts of an `ev` frame around its seq and epoch. */
export interface EventTemplate {
  /** Bytes up to and including the `seq` key. */
  readonly head: Uint8Array;
  /** Bytes after the epoch value. */
  readonly tail: Uint8Array;
}

const encoder = new TextEncoder();
/** fixstr "ep" */
const EP_KEY = Uint8Array.of(0xa2, 0x65, 0x70);

/** Length of a msgpack str header for `n` UTF-8 bytes. */
function strHeaderLength(n: number): number {
  if (n < 32) return 1;
  if (n < 0x100) return 2;
  if (n < 0x10000) return 3;
  return 5;
}

/** Builds the template of an event; everything but `seq` and `ep` is fixed here. */
export function eventTemplate(fields: Omit<EventFrame, 't' | 'seq' | 'ep'>): EventTemplate {
  // Encode the frame once with a one-byte seq (0) and an empty epoch (0xa0), then cut
  // around those two values: the offsets follow from the session's encoded length.
  const frame: EventFrame = { t: 'ev', s: fields.s, seq: 0, ep: '', type: fields.type, data: fields.data, ts: fields.ts };
  if (fields.k !== undefined) frame.k = fields.k;
  if (fields.c) frame.c = true;
  const bytes = encodeServerFrame(frame);
  const sessionBytes = Buffer.byteLength(fields.s, 'utf8');
  // map16 (3) + "t" (2) + "ev" (3) + "s" (2) + session + "seq" (4)
  const headLength = 3 + 2 + 3 + 2 + strHeaderLength(sessionBytes) + sessionBytes + 4;
  return { head: bytes.subarray(0, headLength), tail: bytes.subarray(headLength + 1 + EP_KEY.length + 1) };
}

/** Bytes of a uint as the server writes it (SPEC §4): smallest int format below 2^32, float64 above. */
function writeSeq(out: Uint8Array, at: number, seq: number): number {
  if (seq < 0x80) {
    out[at] = seq;
    return at + 1;
  }
  if (seq < 0x100) {
    out[at] = 0xcc;
    out[at + 1] = seq;
    return at + 2;
  }
  if (seq < 0x10000) {
    out[at] = 0xcd;
    out[at + 1] = seq >>> 8;
    out[at + 2] = seq & 0xff;
    return at + 3;
  }
  const view = new DataView(out.buffer, out.byteOffset, out.byteLength);
  if (seq < 0x100000000) {
    out[at] = 0xce;
    view.setUint32(at + 1, seq);
    return at + 5;
  }
  out[at] = 0xcb;
  view.setFloat64(at + 1, seq);
  return at + 9;
}

function writeStr(out: Uint8Array, at: number, utf8: Uint8Array): number {
  const n = utf8.length;
  if (n < 32) {
    out[at++] = 0xa0 | n;
  } else if (n < 0x100) {
    out[at++] = 0xd9;
    out[at++] = n;
  } else {
    // Epochs are short (SPEC: at most 64 bytes); str 16 covers anything sane.
    out[at++] = 0xda;
    out[at++] = n >>> 8;
    out[at++] = n & 0xff;
  }
  out.set(utf8, at);
  return at + n;
}

/** The exact bytes of the `ev` frame with this seq and epoch. */
export function assembleEvent(template: EventTemplate, seq: number, epoch: string): Uint8Array {
  const ep = encoder.encode(epoch);
  const out = new Uint8Array(template.head.length + 9 + EP_KEY.length + 3 + ep.length + template.tail.length);
  out.set(template.head, 0);
  let at = writeSeq(out, template.head.length, seq);
  out.set(EP_KEY, at);
  at = writeStr(out, at + EP_KEY.length, ep);
  out.set(template.tail, at);
  at += template.tail.length;
  return out.subarray(0, at);
}
