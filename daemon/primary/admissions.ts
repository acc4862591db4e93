/**
 * Connection caps for the whole instance (primary thread): at most
 * `maxConnections` in total and `maxConnectionsPerUser` per user, whichever shard
 * the kernel put each connection on. Counts are kept per shard so a crashed
 * shard's connections are released at once.
 */

/** Outcome of asking to admit a connection. */
export type Admission = { admitted: true } | { admitted: false; reason: string };

/** Counts connections per shard and user; see the header comment. */
export class Admissions {
  private total = 0;
  private readonly perUser = new Map<string, number>();
  private readonly perShard = new Map<number, Map<string, number>>();

  constructor(private readonly maxConnections: number, private readonly maxPerUser: number) {}

  /** Counts a new connection of `user` on `shard`, unless a cap is reached. */
  admit(shard: number, user: string): Admission {
    if (this.total >= this.maxConnections) {
      return { admitted: false, reason: 'server is at its connection limit: retry later' };
    }
    const mine = this.perUser.get(user) ?? 0;
    if (mine >= this.maxPerUser) {
      return { admitted: false, reason: `user already has ${this.maxPerUser} connections` };
    }
    this.total++;
    this.perUser.set(user, mine + 1);
    let users = this.perShard.get(shard);
    if (!users) this.perShard.set(shard, (users = new Map()));
    users.set(user, (users.get(user) ?? 0) + 1);
    return { admitted: true };
  }

  /** Uncounts a connection admitted earlier. */
  release(shard: number, user: string, count = 1): void {
    const users = this.perShard.get(shard);
    const onShard = users?.get(user) ?? 0;
    const n = Math.min(count, onShard);
    if (!users || n === 0) return;
    if (onShard === n) users.delete(user);
    else users.set(user, onShard - n);
    const left = (this.perUser.get(user) ?? 0) - n;
    if (left > 0) this.perUser.set(user, left);
    else this.perUser.delete(user);
    this.total -= n;
  }

  /** Releases every connection a shard held (it crashed). */
  dropShard(shard: number): void {
    const users = this.perShard.get(shard);
    if (!users) return;
    for (const [user, n] of [...users]) this.release(shard, user, n);
    this.perShard.delete(shard);
  }

  /** Connections counted in total. */
  get connections(): number {
    return this.total;
  }
}
