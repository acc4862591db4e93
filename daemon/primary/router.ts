/**
 * The routing table of one instance: for every session with local subscribers, the
 * shards that hold them. Shards report interest (first local subscriber) and
 * uninterest (last one left); the router subscribes the instance to the session on
 * the bus on the first interest and unsubscribes after the last. Owned by the
 * primary thread.
 */
import type { Bus } from '../engine/bus.js';

/** session → shards holding its subscribers. */
export class Router {
  private readonly shards = new Map<string, Set<number>>();
  /** Per session, the bus (un)subscription in flight, so they apply in order. */
  private readonly pending = new Map<string, Promise<void>>();

  constructor(private readonly bus: Bus, private readonly onError: (session: string, err: unknown) => void) {}

  /** Shards to route a session's frames to (undefined when none). */
  shardsFor(session: string): ReadonlySet<number> | undefined {
    return this.shards.get(session);
  }

  /** True when some local shard holds subscribers of the session. */
  isActive(session: string): boolean {
    return this.shards.has(session);
  }

  /** Number of sessions with local subscribers. */
  get size(): number {
    return this.shards.size;
  }

  /** Routes the session's frames to `shard` too. */
  addInterest(session: string, shard: number): void {
    let set = this.shards.get(session);
    if (!set) {
      const created = (set = new Set());
      this.shards.set(session, created);
      // A failed subscribe is undone (centrifuge's addSubscription does the same):
      // a routed but unsubscribed session would leave its clients silently deaf,
      // and no later interest would retry. Joins waiting on it fail instead.
      this.chain(session, () => this.bus.subscribe(session), () => {
        if (this.shards.get(session) === created) this.shards.delete(session);
      });
    }
    set.add(shard);
  }

  /** Stops routing the session's frames to `shard`. */
  removeInterest(session: string, shard: number): void {
    const set = this.shards.get(session);
    if (!set || !set.delete(shard) || set.size > 0) return;
    this.shards.delete(session);
    this.chain(session, () => this.bus.unsubscribe(session));
  }

  /** Forgets a shard everywhere (it crashed); its clients will rejoin. */
  dropShard(shard: number): void {
    for (const session of [...this.shards.keys()]) this.removeInterest(session, shard);
  }

  /** Resolves once the session's bus subscription (if any) is in effect; rejects if it failed. */
  async settled(session: string): Promise<void> {
    await this.pending.get(session);
  }

  /** Runs `step` after the session's previous step (failed or not); `undo` on failure. */
  private chain(session: string, step: () => Promise<void>, undo?: () => void): void {
    const prev = this.pending.get(session) ?? Promise.resolve();
    const next = prev.then(step, step).catch((err: unknown) => {
      this.onError(session, err);
      undo?.();
      throw err;
    });
    this.pending.set(session, next);
    next.then(
      () => this.forget(session, next),
      () => this.forget(session, next),
    );
  }

  private forget(session: string, step: Promise<void>): void {
    if (this.pending.get(session) === step) this.pending.delete(session);
  }
}
