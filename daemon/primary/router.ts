/**
 * The routing table of one instance: for every session with local subscribers, the
 * shards that hold them. Shards report interest (first local subscriber) and
 * uninterest (last one left); the primary opens and closes the session's stream
 * (session-streams.ts) when the first shard arrives and the last one leaves.
 * Owned by the primary thread.
 */

/** session → shards holding its subscribers. */
export class Router {
  private readonly shards = new Map<string, Set<number>>();

  /** Shards to route a session's frames to (undefined when none). */
  shardsFor(session: string): ReadonlySet<number> | undefined {
    return this.shards.get(session);
  }

  /** Number of sessions with local subscribers. */
  get size(): number {
    return this.shards.size;
  }

  /** Routes the session's frames to `shard` too; true when it is the session's first shard. */
  addInterest(session: string, shard: number): boolean {
    let set = this.shards.get(session);
    const first = set === undefined;
    if (!set) this.shards.set(session, (set = new Set()));
    set.add(shard);
    return first;
  }

  /** Stops routing the session's frames to `shard`; true when no shard is left. */
  removeInterest(session: string, shard: number): boolean {
    const set = this.shards.get(session);
    if (!set || !set.delete(shard) || set.size > 0) return false;
    this.shards.delete(session);
    return true;
  }

  /** Forgets a shard everywhere (it crashed); returns the sessions left without shards. */
  dropShard(shard: number): string[] {
    const orphaned: string[] = [];
    for (const session of [...this.shards.keys()]) if (this.removeInterest(session, shard)) orphaned.push(session);
    return orphaned;
  }
}
