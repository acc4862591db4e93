/**
 * The event payload every target carries, identical for all: a fixed-length ASCII
 * string `~bx:<event index>.<publish time in µs>:` padded with `x`. It survives
 * msgpack, JSON and JSON-in-JSON (Pusher) unescaped, so the client finds it with one
 * native `indexOf` and parses two integers, without decoding the frame around it.
 */

/** Characters in every payload string. */
export const PAYLOAD_LENGTH = 32;
/** Event type used for benchmark events. */
export const EVENT_TYPE = 'bench';

const MARKER = '~bx:';
const MARKER_BYTES = Buffer.from(MARKER);
const PADDING = 'x'.repeat(PAYLOAD_LENGTH);
const DOT = 0x2e;
const COLON = 0x3a;
const ZERO = 0x30;
const NINE = 0x39;

/** Builds the payload of event `index` published at `t0us` (µs on the process-wide monotonic clock). */
export function makePayload(index: number, t0us: number): string {
  const head = `${MARKER}${index}.${Math.round(t0us)}:`;
  return head.length >= PAYLOAD_LENGTH ? head : head + PADDING.slice(head.length);
}

/** A parsed payload; `index` is -1 when the message holds none. */
export interface ParsedPayload {
  index: number;
  t0us: number;
}

/**
 * Finds and parses the payload inside a frame. Reuses `out` to stay allocation-free;
 * returns false when the frame carries no payload (a control frame).
 */
export function findPayload(frame: Buffer, out: ParsedPayload): boolean {
  let at = frame.indexOf(MARKER_BYTES);
  while (at >= 0) {
    let i = at + MARKER_BYTES.length;
    let index = 0;
    let digits = 0;
    while (i < frame.length && frame[i] >= ZERO && frame[i] <= NINE) {
      index = index * 10 + (frame[i] - ZERO);
      i++;
      digits++;
    }
    if (digits > 0 && frame[i] === DOT) {
      i++;
      let t0 = 0;
      let t0digits = 0;
      while (i < frame.length && frame[i] >= ZERO && frame[i] <= NINE) {
        t0 = t0 * 10 + (frame[i] - ZERO);
        i++;
        t0digits++;
      }
      if (t0digits > 0 && frame[i] === COLON) {
        out.index = index;
        out.t0us = t0;
        return true;
      }
    }
    // The marker bytes occurred by chance (e.g. inside a binary number): look further.
    at = frame.indexOf(MARKER_BYTES, at + 1);
  }
  out.index = -1;
  return false;
}

/** Microseconds on the monotonic clock shared by every thread of this process. */
export function nowUs(): number {
  const [s, ns] = process.hrtime();
  return s * 1e6 + ns / 1e3;
}
