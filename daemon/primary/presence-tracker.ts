/**
 * Presence bookkeeping of one instance. Owned by the primary thread, which owns the
 * engine's presence seam; shards only report joins and leaves through it.
 *
 * What it guarantees:
 * - Each incarnation of each shard thread is its own presence owner
 *   (`instance/shard/incarnation`, daemon/engine/presence.ts): a restarted shard
 *   never inherits, nor can leave, the connections of the thread before it.
 * - `pjoin` is announced exactly when presence reports an arrival and `pleave`
 *   exactly when it reports a departure, by a last leave, a gone shard or a lapsed
 *   lease, so the notices of a (session, user) alternate as the contract promises.
 * - The leases of this instance's live shards are refreshed every `leaseMs / 3`, and
 *   each round also sweeps lapsed owners (a crashed instance's, or ours after a stall
 *   longer than the lease) and announces their departures: with instances sharing a
 *   backend, a crashed instance's users stop being present within about a lease.
 * - A lost owner (its lease lapsed, or the backend restarted empty) is noticed by
 *   the next refresh or by the next join of that owner, whichever comes first (a
 *   join never quietly recreates an established owner, presence.ts): the shard
 *   becomes a new incarnation and reports its memberships counted under an earlier
 *   one (shard/registry.ts reportPresence); joins answered meanwhile say which
 *   incarnation they were counted under, so none is counted twice or missed.
 * - Backend failures are logged, never thrown out of join/leave/shardGone and never
 *   left as unhandled rejections. A failed join is simply not counted (its leave
 *   then reports nothing); a failed dropOwner is healed by the lease lapsing, and
 *   so is a join that a shared backend applies after its shard's dropOwner (the
 *   dropped owner is never refreshed again, so the sweep removes the entry).
 *
 * Timers: one interval, unref'd (it must not keep the process alive), created by
 * start() and cleared by stop().
 */
import type { PresenceEntry } from '../../protocol/frames.js';
import type { Logger } from '../log.js';
import { LeaseLost, presenceOwner, type Presence, type PresenceDeparture } from '../engine/presence.js';

/** Settings and hooks of the tracker. */
export interface PresenceTrackerOptions {
  /** Random id of this process; no "/" (it is part of owner strings). */
  instanceId: string;
  /** Lease of each shard's owner (config.presenceLeaseMs); refreshed every third of it. */
  leaseMs: number;
  log: Logger;
  /** Publishes a notice to the session (the primary filters by namespace). */
  announce(t: 'pjoin' | 'pleave', session: string, user: string): void;
  /** Asks the shard to report (join) its present connections again under `incarnation`: its lease was lost. */
  recount(shard: number, incarnation: number): void;
}

/** This instance's presence owners, leases and notices; see the header comment. */
export class PresenceTracker {
  private readonly incarnations = new Map<number, number>();
  /** Shards whose current incarnation runs (started and not gone). */
  private readonly live = new Set<number>();
  /** Owners whose lease was established: a refresh finding one lapsed means lost presence. */
  private readonly leased = new Set<string>();
  private timer: NodeJS.Timeout | undefined;
  /** Presence lists read this turn, by session (see list). */
  private readonly lists = new Map<string, Promise<PresenceEntry[]>>();
  private round: Promise<void> | undefined;

  constructor(
    private readonly presence: Presence,
    private readonly opts: PresenceTrackerOptions,
  ) {
    if (!Number.isSafeInteger(opts.leaseMs) || opts.leaseMs < 3) {
      throw new RangeError(`presence leaseMs must be an integer ≥ 3 ms (it is refreshed every third), got ${opts.leaseMs}`);
    }
    presenceOwner(opts.instanceId, 0, 0); // refuses a bad instance id now rather than on the first join
  }

  /** Owner string of the shard's current incarnation. */
  ownerOf(shard: number): string {
    return presenceOwner(this.opts.instanceId, shard, this.incarnations.get(shard) ?? 0);
  }

  /** A shard thread (re)started: it gets a new incarnation. */
  shardStarted(shard: number): void {
    // A restart without shardGone still means the previous thread is dead; shardGone
    // reads its owner before its first await, so before the incarnation moves on.
    if (this.live.has(shard)) void this.shardGone(shard);
    this.incarnations.set(shard, (this.incarnations.get(shard) ?? 0) + 1);
    this.live.add(shard);
    // Establishes the lease with our ttl rather than the backend's default for joins.
    void this.refreshOwner(this.ownerOf(shard));
  }

  /**
   * Counts a connection of `user` on `shard`; announces pjoin when it is the user's
   * first. Resolves with the shard's incarnation it was counted under (undefined:
   * not counted), so a join answered after its shard's presence was lost is counted
   * again (see recount).
   */
  async join(session: string, user: string, shard: number): Promise<number | undefined> {
    for (let attempt = 1; ; attempt++) {
      const owner = this.liveOwner(shard, session, 'join');
      if (owner === undefined) return undefined;
      const incarnation = this.incarnations.get(shard) ?? 0;
      try {
        // An established owner must find its lease live: a join must not quietly
        // recreate an owner whose connections the backend lost.
        const arrived = await this.presence.join(session, user, owner, this.leased.has(owner));
        this.lists.delete(session);
        this.markLeased(owner);
        if (arrived) this.say('pjoin', session, user);
        return incarnation;
      } catch (err) {
        if (err instanceof LeaseLost && attempt === 1) {
          // Start over as a new owner (the shard reports what it holds), then count this one under it.
          if (this.ownerOf(shard) === owner) this.lost(shard, owner);
          continue;
        }
        this.opts.log.error({ err, session, shard, owner }, 'presence join failed; the connection is not counted as present');
        return undefined;
      }
    }
  }

  /** Uncounts a connection of `user` on `shard`; announces pleave when it was the user's last. */
  async leave(session: string, user: string, shard: number): Promise<void> {
    const owner = this.liveOwner(shard, session, 'leave');
    if (owner === undefined) return;
    try {
      const departed = await this.presence.leave(session, user, owner);
      this.lists.delete(session);
      if (departed) this.say('pleave', session, user);
    } catch (err) {
      this.opts.log.error({ err, session, shard, owner }, 'presence leave failed; the connection stays counted until its shard goes or its lease lapses');
    }
  }

  /** A shard crashed or stopped: drop its incarnation, announce departures. */
  async shardGone(shard: number): Promise<void> {
    if (!this.live.delete(shard)) return;
    const owner = this.ownerOf(shard);
    this.leased.delete(owner);
    try {
      this.sayDepartures(await this.presence.dropOwner(owner));
    } catch (err) {
      this.opts.log.error({ err, shard, owner }, 'presence cleanup of a gone shard failed; its users leave when its lease lapses');
    }
  }

  /**
   * Users present in the session, at most `max` of them, and how many there are;
   * rejects when the backend fails (the caller answers the request). Lists asked for
   * in the same turn share one read: a flood of presence requests for a big room
   * costs one list per turn, not one per request. A join or leave of the session
   * drops the shared read, so no answer misses a change that happened before it.
   */
  async list(session: string, max: number): Promise<{ users: PresenceEntry[]; total: number }> {
    let read = this.lists.get(session);
    if (read === undefined) {
      read = this.presence.list(session);
      this.lists.set(session, read);
      // Cleared after this turn whether it succeeded or not; a rejection is the caller's.
      const clear = () => {
        if (this.lists.get(session) === read) this.lists.delete(session);
      };
      setImmediate(clear);
      read.catch(() => {});
    }
    const all = await read;
    return { users: all.length > max ? all.slice(0, max) : all, total: all.length };
  }

  /** Starts the lease refresh (every leaseMs/3) and expiry sweep timers. */
  start(): void {
    if (this.timer) return;
    this.timer = setInterval(() => void this.tick(), Math.floor(this.opts.leaseMs / 3));
    this.timer.unref();
  }

  /** Stops the timers (idempotent). */
  stop(): void {
    if (!this.timer) return;
    clearInterval(this.timer);
    this.timer = undefined;
  }

  /**
   * One round now: refreshes the live shards' leases, then sweeps lapsed owners and
   * announces their departures. The timer runs it; rounds never overlap (a call
   * during a round joins it). Never rejects.
   */
  tick(): Promise<void> {
    this.round ??= this.runRound().finally(() => {
      this.round = undefined;
    });
    return this.round;
  }

  private async runRound(): Promise<void> {
    // Refresh before sweeping, so a slow round cannot sweep our own owners first.
    await Promise.all([...this.live].map((shard) => this.refreshOwner(this.ownerOf(shard), shard)));
    try {
      this.sayDepartures(await this.presence.expire());
    } catch (err) {
      this.opts.log.error({ err }, 'presence expiry sweep failed; retried on the next round');
    }
  }

  private async refreshOwner(owner: string, shard?: number): Promise<void> {
    try {
      const wasLive = await this.presence.refresh(owner, this.opts.leaseMs);
      if (!wasLive && this.leased.has(owner) && shard !== undefined && this.ownerOf(shard) === owner) {
        this.lost(shard, owner);
        return;
      }
      this.markLeased(owner);
    } catch (err) {
      this.opts.log.error({ err, owner }, 'presence lease refresh failed; retried on the next round, the lease lapses if it keeps failing');
    }
  }

  /**
   * The shard's owner lost what it held (the backend restarted empty, or this
   * instance stalled past the lease and was swept): the shard starts over as a new
   * owner and reports what it holds, so its users are present again without
   * reconnecting.
   */
  private lost(shard: number, owner: string): void {
    this.opts.log.error(
      { owner, leaseMs: this.opts.leaseMs },
      'presence lease lapsed before it was refreshed (event loop stalled or backend unreachable or emptied); the shard reports its connections again',
    );
    this.shardStarted(shard);
    this.opts.recount(shard, this.incarnations.get(shard) ?? 0);
  }

  /** Remembers the owner as leased unless it stopped being current meanwhile (no stale entries). */
  private markLeased(owner: string): void {
    for (const shard of this.live) {
      if (this.ownerOf(shard) === owner) {
        this.leased.add(owner);
        return;
      }
    }
  }

  private liveOwner(shard: number, session: string, change: 'join' | 'leave'): string | undefined {
    if (this.live.has(shard)) return this.ownerOf(shard);
    // Its connections died with the thread (shardGone dropped them); or wiring
    // forgot shardStarted, which this warning makes visible.
    this.opts.log.warn({ shard, session, change }, 'presence change from a shard with no live incarnation ignored (it exited, or shardStarted was not called)');
    return undefined;
  }

  private sayDepartures(gone: PresenceDeparture[]): void {
    for (const { session, user } of gone) {
      this.lists.delete(session);
      this.say('pleave', session, user);
    }
  }

  /** Announces one notice; a throwing announcer must not cost the other notices. */
  private say(t: 'pjoin' | 'pleave', session: string, user: string): void {
    try {
      this.opts.announce(t, session, user);
    } catch (err) {
      this.opts.log.error({ err, session, notice: t }, 'presence notice could not be announced');
    }
  }
}
