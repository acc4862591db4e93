/**
 * The frames waiting for a lagging connection, held by the shard instead of uWS so
 * they can be conflated: a conflatable frame (`c` with snapshot key `k`) replaces an
 * older queued frame of the same session and key. The older one is dropped and the
 * newer appended, so the queue stays in seq order; a lagging client gets the latest
 * leaderboard, not a backlog of stale ones. Non-conflatable frames are never dropped.
 */

interface QueuedFrame {
  frame: Uint8Array;
  session: string;
  seq: number;
  /** Conflation slot (`session\0key`), when the frame is conflatable. */
  slot: string | undefined;
}

/** Frames replaced by conflation in every queue of this shard thread (queues die with their connection; the count stays). */
export const conflatedFrames = { total: 0 };

/** A per-connection FIFO with conflation; `bytes` counts what it holds. */
export class OutboundQueue {
  private items: Array<QueuedFrame | null> = [];
  private head = 0;
  private readonly slots = new Map<string, number>();
  /** Bytes of frames currently queued. */
  bytes = 0;
  /** Frames replaced by newer ones since the queue was created. */
  conflated = 0;

  /** Number of frames queued. */
  get length(): number {
    return this.items.length - this.head - this.holes;
  }

  private holes = 0;

  /** Appends a frame; with a conflate key it replaces the queued frame of the same slot. */
  push(frame: Uint8Array, session: string, seq: number, conflateKey?: string): void {
    let slot: string | undefined;
    if (conflateKey !== undefined) {
      slot = `${session}\u0000${conflateKey}`;
      const at = this.slots.get(slot);
      if (at !== undefined) {
        const old = this.items[at] as QueuedFrame;
        this.bytes -= old.frame.length;
        this.items[at] = null;
        this.holes++;
        this.conflated++;
        conflatedFrames.total++;
      }
      this.slots.set(slot, this.items.length);
    }
    this.items.push({ frame, session, seq, slot });
    this.bytes += frame.length;
  }

  /** Removes and returns the oldest frame, or undefined when empty. */
  shift(): { frame: Uint8Array; session: string; seq: number } | undefined {
    while (this.head < this.items.length) {
      const item = this.items[this.head++];
      if (item === null) {
        this.holes--;
        continue;
      }
      if (item.slot !== undefined && this.slots.get(item.slot) === this.head - 1) this.slots.delete(item.slot);
      this.bytes -= item.frame.length;
      this.compact();
      return item;
    }
    return undefined;
  }

  private compact(): void {
    if (this.head === this.items.length) {
      this.items = [];
      this.head = 0;
      this.holes = 0;
      this.slots.clear();
      return;
    }
    if (this.head < 1024 || this.head * 2 < this.items.length) return;
    this.items = this.items.slice(this.head);
    for (const [slot, at] of this.slots) this.slots.set(slot, at - this.head);
    this.head = 0;
  }
}
