/**
 * Scheduled reveal, per session stream: an event published with `at` is sequenced at
 * once but reaches the shards no earlier than `at`, on every instance, so a question
 * appears at the same moment for every player on every pod (each instance uses its
 * own clock: keep them in NTP sync).
 *
 * A gate sits between a session stream and its shards. Frames pass straight through
 * until one carries an `at` in the future; from then on frames queue in seq order
 * (clients take a session's events in seq order only, so an event sequenced after a
 * held one waits for it too), and a timer releases the queue's head whenever its
 * `at` has come, with everything behind it up to the next held one. Unsequenced
 * notices (presence) never wait.
 *
 * `released` is the last seq handed to the shards. A join answers from it, not from
 * the broker's head: history and snapshot entries past it are cut, so a joining
 * client never sees a held event early, and gets it live when it is released.
 */
import type { StreamMessage } from '../engine/broker.js';
import { Fifo } from '../engine/fifo.js';

/** Most frames one gate holds; past it the oldest held frames are released early (logged) rather than grow without bound. */
export const MAX_HELD_FRAMES = 100_000;

/** Holds a session's frames until their release time; see the header. */
export class ReleaseGate {
  /** Held frames, oldest first. */
  private readonly queue = new Fifo<StreamMessage>();
  private timer: NodeJS.Timeout | null = null;
  /** Last seq handed on. */
  released: number;

  constructor(
    head: number,
    private readonly forward: (msg: StreamMessage) => void,
    private readonly onOverflow: (held: number) => void,
    private readonly now: () => number = Date.now,
  ) {
    this.released = head;
  }

  /** Frames waiting for their release. */
  get held(): number {
    return this.queue.size;
  }

  /** Hands on a frame in stream order: now, or once every `at` before and at it has come. */
  push(msg: StreamMessage): void {
    if (msg.seq === 0) {
      this.forward(msg);
      return;
    }
    if (this.held === 0 && (msg.at === undefined || msg.at <= this.now())) {
      this.released = msg.seq;
      this.forward(msg);
      return;
    }
    this.queue.push(msg);
    if (this.held > MAX_HELD_FRAMES) {
      this.onOverflow(this.held);
      this.pass(this.queue.shift()!);
      this.arm();
    } else if (this.held === 1 || this.timer === null) {
      // The timer waits for the queue's head only: later frames just queue behind it.
      this.arm();
    }
  }

  /**
   * Takes over frames at or below `released` that were stored before this gate
   * existed (the instance started streaming the session after they were
   * sequenced): from the first one still to be held, they go back in the queue,
   * ahead of everything queued since.
   */
  adopt(entries: readonly StreamMessage[]): void {
    const now = this.now();
    const first = entries.findIndex((e) => e.seq > 0 && e.seq <= this.released && e.at !== undefined && e.at > now);
    if (first < 0) return;
    const earlier = entries.slice(first).filter((e) => e.seq > 0 && e.seq <= this.released);
    this.released = earlier[0].seq - 1;
    this.queue.prepend(earlier);
    this.arm();
  }

  /** Drops what is held (the stream resynced past it, or ended) and continues from `head`. */
  reset(head: number): void {
    this.clearTimer();
    this.queue.clear();
    this.released = head;
  }

  /** Stops the timer for good (the stream ended). */
  close(): void {
    this.clearTimer();
    this.queue.clear();
  }

  private pass(msg: StreamMessage): void {
    this.released = msg.seq;
    this.forward(msg);
  }

  private flush(): void {
    const now = this.now();
    while (this.held > 0) {
      const head = this.queue.peek()!;
      if (head.at !== undefined && head.at > now) break;
      this.pass(this.queue.shift()!);
    }
  }

  private arm(): void {
    this.clearTimer();
    this.flush();
    if (this.held === 0) return;
    const at = this.queue.peek()!.at ?? this.now();
    // setTimeout may fire up to a ms early relative to Date.now(): flush re-checks and re-arms.
    this.timer = setTimeout(() => {
      this.timer = null;
      this.arm();
    }, Math.max(0, at - this.now()));
    this.timer.unref();
  }

  private clearTimer(): void {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
  }
}
