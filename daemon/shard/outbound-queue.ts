/**
 * The frames waiting for a lagging connection, held by the shard instead of uWS so
 * they can be conflated: a conflatable frame (`c` with snapshot key `k`) replaces an
 * older queued frame of the same session and key. The older one is dropped and the
 * newer appended, so the queue stays in seq order; a lagging client gets the latest
 * leaderboard, not a backlog of stale ones. Non-conflatable frames are never dropped
 * while the connection stays: only a connection leaving the stream (cut off, kicked,
 * sent its go-away) discards its queue. Both are counted by namespace (shardDrops).
 */
import { shardDrops } from './shard-counters.js';

interface QueuedFrame {
  frame: Uint8Array;
  session: string;
  seq: number;
  /** Conflation slot (`session\0key`), when the frame is conflatable. */
  slot: string | undefined;
  /** Index of the session's namespace, for the drop counters. */
  ns: number;
}

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

  /**
   * Appends a frame; with a conflate key it replaces the queued frame of the same
   * slot, counted as conflated in namespace `ns` (shard-counters.ts shardDrops).
   */
  push(frame: Uint8Array, session: string, seq: number, conflateKey?: string, ns = 0): void {
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
        shardDrops.add('conflated', old.ns);
      }
      this.slots.set(slot, this.items.length);
    }
    this.items.push({ frame, session, seq, slot, ns });
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

  /**
   * Empties the queue, counting every frame still in it as dropped for `reason`
   * under its namespace (the connection is cut off, kicked or sent its go-away; its
   * client resumes them from history). Returns how many there were.
   */
  discard(reason: 'slow_consumer' | 'go_away' | 'kicked'): number {
    let dropped = 0;
    for (let i = this.head; i < this.items.length; i++) {
      const item = this.items[i];
      if (item === null) continue;
      shardDrops.add(reason, item.ns);
      dropped++;
    }
    this.items = [];
    this.head = 0;
    this.holes = 0;
    this.slots.clear();
    this.bytes = 0;
    return dropped;
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
