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
      this.shards.set(session, (set = new Set()));
      this.chain(session, () => this.bus.subscribe(session));
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

  /** Resolves once the session's bus subscription (if any) is in effect. */
  async settled(session: string): Promise<void> {
    await this.pending.get(session);
  }

  private chain(session: string, step: () => Promise<void>): void {
    const prev = this.pending.get(session) ?? Promise.resolve();
    const next = prev
      .then(step)
      .catch((err) => this.onError(session, err))
      .finally(() => {
        if (this.pending.get(session) === next) this.pending.delete(session);
      });
    this.pending.set(session, next);
  }
}
