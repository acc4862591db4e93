/**
 * Connection caps for the whole instance (primary thread): at most
 * `maxConnections` in total and `maxConnectionsPerUser` per user, whichever shard
 * the kernel put each connection on. Each admitted connection is recorded by its id,
 * so a release is exact and idempotent: a shard releases every connection it asked
 * about when it closes, admitted or not — also one it gave up on while the answer
 * was still on its way (an admission timeout), which would otherwise stay counted.
 * A crashed shard's connections are released at once.
 *
 * It also owns the per-user rate slots (threads/user-rates.ts): a user holds one
 * slot while it has admitted connections, refcounted by them, so every path that
 * releases a connection (close, late admission, shard crash) frees the slot with
 * the user's last connection. A slot is reset when it is handed out again. The
 * table has one slot per possible connection, so a slot is always free for an
 * admitted user. The buffer lives as long as the primary; shards hold views of it.
 */
import { createUserRateBuffer, resetSlot } from '../threads/user-rates.js';

/** Outcome of asking to admit a connection; `slot` is the user's rate slot. */
export type Admission = { admitted: true; slot: number } | { admitted: false; reason: string };

/** Counts admitted connections by id, per user and per shard; see the header comment. */
export class Admissions {
  private readonly byConn = new Map<string, { shard: number; user: string }>();
  private readonly perUser = new Map<string, { connections: number; slot: number }>();
  /** Shared with every shard (workerData): the per-user frame counters. */
  readonly userRates: SharedArrayBuffer;
  private readonly table: Int32Array;
  /** Slots released, handed out again first; `neverUsed` is the first slot not handed out yet. */
  private readonly freeSlots: number[] = [];
  private neverUsed = 0;

  constructor(private readonly maxConnections: number, private readonly maxPerUser: number) {
    this.userRates = createUserRateBuffer(maxConnections);
    this.table = new Int32Array(this.userRates);
  }

  /** Counts connection `conn` of `user` on `shard`, unless a cap is reached (or it already counts). */
  admit(shard: number, user: string, conn: string): Admission {
    const counted = this.byConn.get(conn);
    // A counted connection's user always holds a slot (released together): the `!` holds.
    if (counted !== undefined) return { admitted: true, slot: this.perUser.get(counted.user)!.slot };
    if (this.byConn.size >= this.maxConnections) {
      return { admitted: false, reason: 'server is at its connection limit: retry later' };
    }
    const mine = this.perUser.get(user);
    if (mine !== undefined && mine.connections >= this.maxPerUser) {
      return { admitted: false, reason: `user already has ${this.maxPerUser} connections` };
    }
    this.byConn.set(conn, { shard, user });
    if (mine !== undefined) {
      mine.connections++;
      return { admitted: true, slot: mine.slot };
    }
    // Users with connections <= connections < maxConnections = slots: one is free.
    const slot = this.freeSlots.pop() ?? this.neverUsed++;
    resetSlot(this.table, slot);
    this.perUser.set(user, { connections: 1, slot });
    return { admitted: true, slot };
  }

  /** Uncounts a connection; nothing happens for one that was never admitted or is already released. */
  release(conn: string): void {
    const entry = this.byConn.get(conn);
    if (entry === undefined) return;
    this.byConn.delete(conn);
    const mine = this.perUser.get(entry.user);
    if (mine === undefined) return;
    if (--mine.connections > 0) return;
    this.perUser.delete(entry.user);
    this.freeSlots.push(mine.slot);
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
    return this.perUser.get(user)?.connections ?? 0;
  }

  /** The user's rate slot while it has connections (tests, inspection). */
  slotOf(user: string): number | undefined {
    return this.perUser.get(user)?.slot;
  }

  /** Slots held by users now. */
  get slotsInUse(): number {
    return this.perUser.size;
  }
}
