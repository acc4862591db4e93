/**
 * Connection caps for the whole instance (primary thread): at most
 * `maxConnections` in total and `maxConnectionsPerUser` per user, whichever shard
 * the kernel put each connection on. Each admitted connection is recorded by its id,
 * so a release is exact and idempotent: a shard releases every connection it asked
 * about when it closes, admitted or not — also one it gave up on while the answer
 * was still on its way (an admission timeout), which would otherwise stay counted.
 * A crashed shard's connections are released at once.
 */

/** Outcome of asking to admit a connection. */
export type Admission = { admitted: true } | { admitted: false; reason: string };

/** Counts admitted connections by id, per user and per shard; see the header comment. */
export class Admissions {
  private readonly byConn = new Map<string, { shard: number; user: string }>();
  private readonly perUser = new Map<string, number>();

  constructor(private readonly maxConnections: number, private readonly maxPerUser: number) {}

  /** Counts connection `conn` of `user` on `shard`, unless a cap is reached (or it already counts). */
  admit(shard: number, user: string, conn: string): Admission {
    if (this.byConn.has(conn)) return { admitted: true };
    if (this.byConn.size >= this.maxConnections) {
      return { admitted: false, reason: 'server is at its connection limit: retry later' };
    }
    const mine = this.perUser.get(user) ?? 0;
    if (mine >= this.maxPerUser) {
      return { admitted: false, reason: `user already has ${this.maxPerUser} connections` };
    }
    this.byConn.set(conn, { shard, user });
    this.perUser.set(user, mine + 1);
    return { admitted: true };
  }

  /** Uncounts a connection; nothing happens for one that was never admitted or is already released. */
  release(conn: string): void {
    const entry = this.byConn.get(conn);
    if (entry === undefined) return;
    this.byConn.delete(conn);
    const left = (this.perUser.get(entry.user) ?? 0) - 1;
    if (left > 0) this.perUser.set(entry.user, left);
    else this.perUser.delete(entry.user);
  }

  /** Releases every connection a shard held (it crashed). */
  dropShard(shard: number): void {
    for (const [conn, entry] of [...this.byConn]) if (entry.shard === shard) this.release(conn);
  }

  /** Connections counted in total. */
  get connections(): number {
    return this.byConn.size;
  }

  /** Connections counted for one user. */
  of(user: string): number {
    return this.perUser.get(user) ?? 0;
  }
}
