/**
 * Per-user frame limit shared by every shard of an instance (`userRateLimitPerS`).
 *
 * The primary owns one SharedArrayBuffer of slots and hands a user a slot while the
 * user has at least one admitted connection (admissions.ts refcounts it by the
 * user's connections, and resets it on reuse); every shard gets the buffer once, in
 * its workerData, and counts each of the user's frames in the slot with Atomics. So
 * the limit holds across the user's connections and shards with no message to the
 * primary and no allocation per frame.
 *
 * A slot is two Int32s: the id of its current one-second window and the frames
 * counted in it. Windows are wall-clock seconds (`Date.now()`, the same clock on
 * every thread), counted from WINDOW_EPOCH_S so the id fits an Int32 until 2091.
 *
 * Error at window boundaries (accepted, documented in protocol/SPEC.md §15): the
 * thread that moves a slot to the new window resets its count right after the
 * compare-and-swap; a frame counted on another thread in between is lost with the
 * old count (allowed once too often) or, if the old window was exhausted, refused
 * once too often. At most one frame per other shard per boundary. And being a fixed
 * window, a user may send up to twice the limit across a boundary (the end of one
 * second and the start of the next), never more than the limit within one window.
 */

/** Int32s per slot: [window id, frames counted in it]. */
const SLOT_INTS = 2;
/** Seconds subtracted from wall-clock seconds so window ids fit an Int32 (2023-11-14). */
const WINDOW_EPOCH_S = 1_700_000_000;

/** The window id of a wall-clock time in ms (one-second windows). */
export function windowOf(nowMs: number): number {
  return Math.floor(nowMs / 1000) - WINDOW_EPOCH_S;
}

/** A shared buffer holding `slots` user slots, all free (zeroed). */
export function createUserRateBuffer(slots: number): SharedArrayBuffer {
  // Zeroed pages the kernel maps lazily: slots never used cost no resident memory.
  return new SharedArrayBuffer(slots * SLOT_INTS * Int32Array.BYTES_PER_ELEMENT);
}

/** Slots a buffer holds. */
export function slotsOf(buffer: SharedArrayBuffer): number {
  return buffer.byteLength / (SLOT_INTS * Int32Array.BYTES_PER_ELEMENT);
}

/**
 * Counts one frame of the user in `slot` at `nowMs`; true while the user stays
 * within `limit` frames in the current one-second window. Lock-free and
 * allocation-free: safe on any thread at once.
 */
export function takeUserFrame(table: Int32Array, slot: number, nowMs: number, limit: number): boolean {
  const at = slot * SLOT_INTS;
  const window = windowOf(nowMs);
  const seen = Atomics.load(table, at);
  // Forward only: threads read the clock at slightly different moments, and one a
  // few ms behind must not move the window back (and hand out a second budget).
  // A jump back by more than a window is the clock being set back: follow it, or
  // the user would be held to an exhausted count until the clock catches up.
  if (window > seen || window < seen - 1) {
    // One thread wins the move and starts the new window's count at zero.
    if (Atomics.compareExchange(table, at, seen, window) === seen) Atomics.store(table, at + 1, 0);
  }
  return Atomics.add(table, at + 1, 1) < limit;
}

/**
 * Resets a slot before it is handed to another user (primary, on admission): a new
 * user starts with a fresh budget. No shard touches a free slot (its last
 * connection closed before the release reached the primary).
 */
export function resetSlot(table: Int32Array, slot: number): void {
  const at = slot * SLOT_INTS;
  Atomics.store(table, at, 0);
  Atomics.store(table, at + 1, 0);
}
