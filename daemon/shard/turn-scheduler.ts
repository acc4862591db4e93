/**
 * Heavy work waits its turn. uWS hands a shard everything its sockets delivered in
 * one go; work that can take hundreds of µs to tens of ms each (decoding a client
 * frame of 10,000 values, parsing a 1 MiB publish body) done right there, for a
 * burst from a few clients, kept a shard busy for 50–400 ms in one event-loop turn,
 * and everything else on it (other clients' frames, HTTP requests, the primary's
 * batches of events) waited behind.
 *
 * So such work is queued per owner (a connection, an HTTP request) and run
 * round-robin, one task per owner per round, in the check phase, for at most
 * `TURN_BUDGET_MS` per turn (a single task may overrun it: then it is the only
 * one that turn); the loop gets on with everything else in between. An owner's
 * tasks run in the order they were queued.
 */

/** Most time queued work gets per event-loop turn. */
const TURN_BUDGET_MS = 4;

/** A shard's queue of heavy work; see the header comment. */
export class TurnScheduler {
  private readonly queues = new Map<object, Array<() => void>>();
  private scheduled = false;

  /** True while `owner` has work waiting (its later work must queue behind it). */
  has(owner: object): boolean {
    return this.queues.has(owner);
  }

  /** Tasks `owner` has waiting. */
  waiting(owner: object): number {
    return this.queues.get(owner)?.length ?? 0;
  }

  /** Queues `task` for `owner`; it runs in a later turn, after `owner`'s earlier tasks. */
  run(owner: object, task: () => void): void {
    const queue = this.queues.get(owner);
    if (queue === undefined) this.queues.set(owner, [task]);
    else queue.push(task);
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(this.work);
    }
  }

  /** Forgets `owner`'s waiting work (a closed connection). */
  drop(owner: object): void {
    this.queues.delete(owner);
  }

  private readonly work = (): void => {
    this.scheduled = false;
    const deadline = performance.now() + TURN_BUDGET_MS;
    let ran = 0;
    while (this.queues.size > 0 && (ran === 0 || performance.now() < deadline)) {
      // One task per owner per round, owners in the order they first queued.
      for (const [owner, queue] of this.queues) {
        const task = queue.shift();
        if (queue.length === 0) this.queues.delete(owner);
        if (task === undefined) continue;
        ran++;
        try {
          task();
        } catch {
          // A task answers its own failures; one that throws anyway must not stop the others.
        }
        if (performance.now() >= deadline) break;
      }
    }
    if (this.queues.size > 0 && !this.scheduled) {
      this.scheduled = true;
      setImmediate(this.work);
    }
  };
}
