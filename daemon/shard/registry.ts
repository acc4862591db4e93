/**
 * A shard's connection registry: connections by id and by user, and the local
 * sessions with their members. It tells the primary when the first member of a
 * session arrives (interest) and the last leaves (uninterest), so the primary
 * routes a session's frames only to shards that hold its subscribers.
 */
import type { ShardToPrimary } from '../threads/messages.js';
import type { Connection, Membership } from './connection.js';
import { ShardCounters } from './shard-counters.js';

/** A session as one shard sees it. */
export class LocalSession {
  /** Connections joined or joining. */
  readonly members = new Set<Connection>();
  /** Memberships waiting for their history reply (they buffer live frames). */
  readonly pending = new Set<Membership>();
  /** Joined members that lag: they get frames through their queue, not the topic. */
  readonly lagging = new Set<Connection>();
  /** Highest seq routed to this shard (addressed frames too), and under which epoch. */
  lastSeq = 0;
  /**
   * Highest seq handed to the session's topic (every joined, non-lagging member got
   * it: addressed frames do not count), and when (µs): a command's fair-timing stamps
   * on the topic path (client-requests.ts). Reset by a resync (a new epoch's seqs).
   */
  topicSeq = 0;
  topicSeqAtUs = 0;
  epoch = '';
  /** Bytes published to the session since its members' buffers were last checked. */
  bytesSinceCheck = 0;

  /**
   * @param ns index of the session's namespace (config/namespaces.ts), resolved once
   *   here so per-frame counting is an array increment
   */
  constructor(readonly id: string, readonly ns = 0) {}
}

/** Connections and sessions of one shard. */
export class Registry {
  readonly connections = new Map<string, Connection>();
  readonly sessions = new Map<string, LocalSession>();
  private readonly users = new Map<string, Set<Connection>>();
  /** Counters for the admin API and /metrics (shard-counters.ts). */
  readonly counters = new ShardCounters();

  /**
   * @param namespaceOf the namespace index of a session id (namespaceFor(config, id).index);
   *   every session in the default namespace when absent
   */
  constructor(
    private readonly notify: (msg: ShardToPrimary) => void,
    private readonly namespaceOf: (session: string) => number = () => 0,
  ) {}

  /** Connections of a user on this shard. */
  byUser(user: string): ReadonlySet<Connection> | undefined {
    return this.users.get(user);
  }

  add(conn: Connection): void {
    this.connections.set(conn.id, conn);
    let set = this.users.get(conn.principal.user);
    if (!set) this.users.set(conn.principal.user, (set = new Set()));
    set.add(conn);
  }

  /** Forgets a connection and all its memberships; idempotent. */
  remove(conn: Connection): void {
    if (!this.connections.delete(conn.id)) return;
    const set = this.users.get(conn.principal.user);
    if (set) {
      set.delete(conn);
      if (set.size === 0) this.users.delete(conn.principal.user);
    }
    for (const m of [...conn.memberships.values()]) this.leave(conn, m);
  }

  /** Adds a pending membership of `conn` in `sessionId`. */
  join(conn: Connection, sessionId: string, counted: boolean): Membership {
    let session = this.sessions.get(sessionId);
    if (!session) {
      this.sessions.set(sessionId, (session = new LocalSession(sessionId, this.namespaceOf(sessionId))));
      this.notify({ op: 'interest', session: sessionId });
    }
    const m: Membership = { session, state: 'pending', buffered: [], lastSeq: 0, lastSeqAtUs: 0, counted, presenceIncarnation: 0 };
    this.counters.joins++;
    conn.memberships.set(sessionId, m);
    session.members.add(conn);
    session.pending.add(m);
    return m;
  }

  /** The primary's current presence incarnation of this shard (presence-report). */
  presenceIncarnation = 0;

  /**
   * The primary lost this shard's presence and now counts it as `incarnation`: tells
   * it again about every membership whose join was counted under an earlier one,
   * joined or resyncing alike. A join whose reply has not come yet is left to that
   * reply (joins.ts countedUnder), which knows the incarnation it was counted under.
   */
  reportPresence(incarnation: number): void {
    this.presenceIncarnation = Math.max(this.presenceIncarnation, incarnation);
    for (const session of this.sessions.values()) {
      for (const conn of session.members) {
        const m = conn.memberships.get(session.id);
        if (m !== undefined) this.recount(conn, m);
      }
    }
  }

  /** Re-counts one membership counted under an earlier incarnation than the current one. */
  recount(conn: Connection, m: Membership): void {
    if (!m.counted || m.presenceIncarnation === 0 || m.presenceIncarnation >= this.presenceIncarnation) return;
    m.presenceIncarnation = this.presenceIncarnation;
    this.notify({ op: 'presence-join', session: m.session.id, user: conn.principal.user });
  }

  /** Removes a membership; tells the primary when the session has no local member left. */
  leave(conn: Connection, m: Membership): void {
    const { session } = m;
    if (conn.memberships.get(session.id) !== m) return;
    conn.memberships.delete(session.id);
    session.members.delete(conn);
    session.pending.delete(m);
    session.lagging.delete(conn);
    if (!conn.closed) conn.unsubscribe(session.id);
    if (m.counted) this.notify({ op: 'presence-leave', session: session.id, user: conn.principal.user });
    if (session.members.size === 0) {
      this.sessions.delete(session.id);
      this.notify({ op: 'uninterest', session: session.id });
    }
  }
}
