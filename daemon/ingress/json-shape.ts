/**
 * The most keys any one object of a JSON text holds, found without parsing it.
 * V8's JSON.parse takes ~90 ms of a shard for a 1 MiB body holding one object of
 * 65,536 keys (plus ~25 ms to check it), and such a body is refused anyway: no map
 * of event data may hold more than 65,535 keys (SPEC §19). This scan reads the
 * bytes once (about a millisecond per MiB) so that body is refused before parsing.
 * It expects JSON; on anything else it returns some count and JSON.parse then
 * reports the actual problem.
 */

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const COLON = 0x3a;
const OPEN_OBJECT = 0x7b;
const CLOSE_OBJECT = 0x7d;
const OPEN_ARRAY = 0x5b;
const CLOSE_ARRAY = 0x5d;
/** Nesting the scan follows; deeper text is left to JSON.parse (which refuses absurd nesting itself). */
const MAX_TRACKED_DEPTH = 4096;

/** The largest key count of one object in `text`, or the first count found above `stopAbove`. */
export function widestObject(text: Uint8Array, stopAbove: number): number {
  // Per open container, outermost first: keys seen so far for an object, -1 for an array.
  const keys = new Int32Array(MAX_TRACKED_DEPTH);
  let depth = 0;
  let widest = 0;
  const end = text.length;
  for (let i = 0; i < end; i++) {
    const c = text[i];
    if (c === QUOTE) {
      // Skip the string: to the next quote not escaped by an odd run of backslashes.
      for (;;) {
        i = text.indexOf(QUOTE, i + 1);
        if (i < 0) return widest;
        let slashes = 0;
        while (text[i - 1 - slashes] === BACKSLASH) slashes++;
        if (slashes % 2 === 0) break;
      }
    } else if (c === COLON) {
      // Outside strings, a colon follows each key of the innermost object.
      if (depth > 0 && keys[depth - 1] >= 0) {
        const n = ++keys[depth - 1];
        if (n > widest) {
          widest = n;
          if (n > stopAbove) return n;
        }
      }
    } else if (c === OPEN_OBJECT || c === OPEN_ARRAY) {
      if (depth === MAX_TRACKED_DEPTH) return widest;
      keys[depth++] = c === OPEN_OBJECT ? 0 : -1;
    } else if ((c === CLOSE_OBJECT || c === CLOSE_ARRAY) && depth > 0) {
      depth--;
    }
  }
  return widest;
}
