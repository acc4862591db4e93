/**
 * The primary's end of one shard thread: frames routed to the shard during an
 * event-loop turn are packed into one batch and posted once at the end of the turn
 * (setImmediate), so a burst of N frames costs one postMessage, and the shard can
 * hand all N to uWS in one turn (one write per socket, not N).
 */
import type { Worker } from 'node:worker_threads';
import { FrameBatchWriter, type RoutedFrame } from '../threads/frame-batch.js';
import type { PrimaryToShard } from '../threads/messages.js';

/** A live shard thread as the primary sees it. */
export class ShardLink {
  private readonly batch = new FrameBatchWriter();
  private flushScheduled = false;
  /** True once the shard reported it listens. */
  listening = false;

  constructor(readonly id: number, readonly worker: Worker) {}

  /** Queues a frame for this shard; it leaves at the end of the current turn. */
  enqueue(msg: RoutedFrame): void {
    this.batch.add(msg);
    this.scheduleFlush();
  }

  /** Queues a resync marker, in order with the frames around it. */
  enqueueResync(session: string, epoch: string, head: number): void {
    this.batch.addResync(session, epoch, head);
    this.scheduleFlush();
  }

  private scheduleFlush(): void {
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      setImmediate(this.onTurnEnd);
    }
  }

  /**
   * Sends a control message, after the frames batched so far: a history reply
   * must not overtake the frames sequenced before it, or a joiner would get them
   * again from the topic after its replay.
   */
  send(msg: PrimaryToShard): void {
    this.flush();
    this.worker.postMessage(msg);
  }

  private readonly onTurnEnd = (): void => {
    this.flushScheduled = false;
    this.flush();
  };

  private flush(): void {
    if (this.batch.size === 0) return;
    const batch = this.batch.take();
    const msg: PrimaryToShard = { op: 'frames', batch };
    this.worker.postMessage(msg, [batch]);
  }
}
