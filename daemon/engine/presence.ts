/**
 * Presence: which users are in a session, counted per connection owner, so a user
 * with tabs on two shards (or two instances) stays present until both leave.
 *
 * Owners. An owner is an opaque string naming one incarnation of one shard thread
 * of one instance: `instance/shard/incarnation` (see `presenceOwner`). The instance
 * id is random per process and the incarnation grows each time the shard thread is
 * (re)started, so no two threads ever share an owner, across instances or across a
 * shard's restarts. Implementations compare owners as strings and never parse them.
 *
 * Leases. Every owner holds a lease: `refresh(owner, ttlMs)` keeps it live for
 * `ttlMs` from the call, and so does `join`: for the ttl of the owner's latest
 * refresh while its lease is live, otherwise (never refreshed, lapsed or dropped)
 * for the implementation's default lease. `leave`, `list`, `dropOwner` and
 * `expire` never extend a lease, nor create one. A lease is live while
 * `now < last renewal + ttl`; from that instant on it has lapsed, and:
 * - the owner's connections no longer count: `list` never shows users held only by
 *   a lapsed owner, even before any sweep ran, and `join`/`leave` judge first/last
 *   connection on live owners only;
 * - its connections are gone for good: a later `refresh` or `join` by that owner
 *   starts a new, empty lease (refresh then reports false) and revives none of them;
 * - `expire()` removes what lapsed owners held and reports the departures.
 *
 * Transitions. The callers turn reported transitions into `pjoin`/`pleave` notices,
 * so for every (session, user) the reported transitions alternate, starting with an
 * arrival: `join` → true (arrival) only when the user had no live connection and no
 * unreported departure; `leave` → true, or a `dropOwner`/`expire` entry (departure),
 * only when the user's last live connection went. Each departure is reported exactly
 * once, by whichever call removed the connection: `leave`, `dropOwner` or `expire`
 * (for an owner whose lease lapsed before `dropOwner` ran, its departures may come
 * from the next `expire()` instead). A user whose departure by lapse was not yet
 * reported and who joins again is not re-announced: `join` returns false and the
 * departure is withdrawn, because to the listeners of the notices she never left.
 *
 * Stray calls. Connections are counted, not named: each `leave` must pair with one
 * `join` of the same owner. A `leave` by an owner holding no connection of the user
 * in the session (a duplicate leave, an unknown, dropped or lapsed owner) changes
 * nothing, returns false and creates no lease; a surplus leave while the owner
 * holds other connections of the user takes one of those.
 *
 * Concurrency. Calls may be concurrent; each is atomic. Across instances sharing
 * one backend the same rules hold; clocks of instances are assumed close compared
 * to the lease (seconds), since a lease's lapse is judged by the caller's clock.
 */
import type { PresenceEntry } from '../../protocol/frames.js';

/** A user now absent from a session because their last live connection went away. */
export interface PresenceDeparture {
  session: string;
  user: string;
}

/** The owner string of one incarnation of one shard of one instance (`instance/shard/incarnation`). */
export function presenceOwner(instance: string, shard: number, incarnation: number): string {
  if (instance.length === 0 || instance.includes('/')) {
    throw new Error(`presence instance id ${JSON.stringify(instance)} must be non-empty and contain no "/"`);
  }
  return `${instance}/${shard}/${incarnation}`;
}

/** A join refused because its owner's established lease is gone: what it held was lost (see Presence.join). */
export class LeaseLost extends Error {
  override name = 'LeaseLost';
}

/** Tracks who is present in which session; see the contract above. */
export interface Presence {
  /**
   * Counts one connection of `user` held by `owner` and renews its lease; true when
   * this is an arrival. With `established` (the caller knows the lease was live),
   * rejects with LeaseLost and counts nothing when it is not live any more: the
   * owner's connections were lost (lapse, a backend restarted empty), and creating
   * the lease again would hide that from the next refresh.
   */
  join(session: string, user: string, owner: string, established?: boolean): Promise<boolean>;
  /** Uncounts one connection; true when it was the user's last live one in the session (a departure). */
  leave(session: string, user: string, owner: string): Promise<boolean>;
  /**
   * Renews `owner`'s lease for `ttlMs` from now; true when the lease was live (nothing
   * it held was lost), false when it lapsed, was dropped or never existed. Rejects a
   * `ttlMs` that is not a positive integer.
   */
  refresh(owner: string, ttlMs: number): Promise<boolean>;
  /** Forgets every connection `owner` held, at once, and ends its lease; returns the departures. */
  dropOwner(owner: string): Promise<PresenceDeparture[]>;
  /** Removes what lapsed owners held; returns the departures not reported before (each once). */
  expire(): Promise<PresenceDeparture[]>;
  /** Users present in the session (through live owners) with their connection counts. */
  list(session: string): Promise<PresenceEntry[]>;
  close(): Promise<void>;
}
