/**
 * Live tails of sessions for the admin API (primary thread): a tail sees every
 * frame the session's stream forwards (events in seq order, presence notices) and
 * its resyncs, from the moment it starts. A tail holds the session's stream open
 * like a shard would, through a route to a pseudo-shard (TAIL_ROUTE) that no shard
 * link answers to, so tailing a session nobody here has joined works too; the last
 * tail of a session gives the route back.
 */
import type { StreamMessage } from '../engine/broker.js';

/** The routing-table id a tail takes; never a shard's (shards are 0..255). */
export const TAIL_ROUTE = -1;

/** What a tail receives. */
export interface TailListener {
  frame(msg: StreamMessage): void;
  resync(epoch: string, head: number): void;
}

/** How the hub opens and closes a session's stream. */
export interface TailRouting {
  /** Routes the session to TAIL_ROUTE (opening its stream when it had no route). */
  open(session: string): void;
  /** Removes the route (closing the stream when no shard holds the session). */
  close(session: string): void;
}

/** Every tail of this instance; see the header comment. */
export class TailHub {
  private readonly tails = new Map<string, Set<TailListener>>();

  constructor(private readonly routing: TailRouting) {}

  /** Number of sessions being tailed (0: the forward hook costs one comparison). */
  get size(): number {
    return this.tails.size;
  }

  /** Starts a tail; returns the function that ends it. */
  add(session: string, listener: TailListener): () => void {
    let set = this.tails.get(session);
    if (set === undefined) {
      this.tails.set(session, (set = new Set()));
      this.routing.open(session);
    }
    set.add(listener);
    let ended = false;
    return () => {
      if (ended) return;
      ended = true;
      const current = this.tails.get(session);
      if (current === undefined || !current.delete(listener) || current.size > 0) return;
      this.tails.delete(session);
      this.routing.close(session);
    };
  }

  /** Hands a forwarded frame to the session's tails. */
  forward(msg: StreamMessage): void {
    const set = this.tails.get(msg.session);
    if (set !== undefined) for (const l of set) l.frame(msg);
  }

  /** Hands a resync marker to the session's tails. */
  resync(session: string, epoch: string, head: number): void {
    const set = this.tails.get(session);
    if (set !== undefined) for (const l of set) l.resync(epoch, head);
  }
}
