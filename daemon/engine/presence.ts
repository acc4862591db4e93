/**
 * Presence: which users are in a session, counted per connection owner (a shard of
 * an instance), so a user with tabs on two shards stays present until both leave.
 *
 * Contract: `join` reports true only for the user's first connection in the session
 * across all owners, `leave` true only for the last; `dropOwner` forgets everything
 * an owner held (a crashed shard) and reports who is now absent. Callers turn those
 * transitions into `pjoin`/`pleave` notices.
 */
import type { PresenceEntry } from '../../protocol/frames.js';

/** A user who left because their last connection's owner went away. */
export interface PresenceDeparture {
  session: string;
  user: string;
}

/** Tracks who is present in which session; see the contract above. */
export interface Presence {
  /** Counts one connection of `user` held by `owner`; true when the user was absent. */
  join(session: string, user: string, owner: string): Promise<boolean>;
  /** Uncounts one connection; true when it was the user's last in the session. */
  leave(session: string, user: string, owner: string): Promise<boolean>;
  /** Forgets every connection `owner` held; returns the users now absent. */
  dropOwner(owner: string): Promise<PresenceDeparture[]>;
  /** Users present in the session with their connection counts. */
  list(session: string): Promise<PresenceEntry[]>;
  close(): Promise<void>;
}
