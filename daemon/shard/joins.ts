/**
 * Joining and leaving sessions on a shard, with resume, and resyncing joined
 * members when the session's stream could not be continued.
 *
 * Join: the membership starts pending (it buffers the session's live frames), the
 * primary is asked for the history after the client's position. The primary's
 * session stream forwards every frame up to the reply's head before the reply
 * (primary/session-streams.ts), so when it arrives the shard, in one synchronous
 * step, sends `joined`, the replayed frames, the buffered frames newer than the
 * replay (deduped by seq), and subscribes the socket to the session's topic. A
 * reply read under an epoch the shard has already left behind is asked again.
 *
 * Resync: the stream continues at a new (epoch, head) after frames it could not
 * recover. Every joined member goes back to pending and asks for history after its
 * position: it gets the missed frames if history still has them, otherwise a
 * `resync` frame with the snapshot; then live frames newer than the head.
 */
import { unpackFrames } from '../threads/frame-list.js';
import { nowUs } from './micro-clock.js';
import { encodeServerFrame } from '../../protocol/codec.js';
import { CloseCode, ErrorCode } from '../../protocol/codes.js';
import type { JoinFrame, JoinedFrame } from '../../protocol/frames.js';
import { mayJoin } from '../auth/principal.js';
import { namespaceFor } from '../config/namespaces.js';
import type { Config } from '../config/schema.js';
import type { StreamPosition } from '../engine/broker.js';
import type { HistoryResult } from '../threads/messages.js';
import type { Connection, Membership } from './connection.js';
import { PrimaryCallError, type PrimaryLink } from './primary-link.js';
import type { Registry } from './registry.js';

/** What join and leave need from the shard. */
export interface JoinContext {
  config: Config;
  registry: Registry;
  primary: PrimaryLink;
  /** Sends an error frame for request `id`. */
  replyError(conn: Connection, id: number, code: number, msg: string): void;
}

/** Why history is asked for: a client's join, or a resync of a joined member. */
type HistoryPurpose = { kind: 'join'; frame: JoinFrame } | { kind: 'resync' };

/** Times a reply under a stale epoch is asked again before the join fails. */
const MAX_HISTORY_ATTEMPTS = 3;

/** Handles a `join` frame. */
export async function join(ctx: JoinContext, conn: Connection, frame: JoinFrame): Promise<void> {
  const { config, registry } = ctx;
  if (!mayJoin(conn.principal, frame.s)) {
    ctx.replyError(conn, frame.id, ErrorCode.Forbidden, `your token does not allow joining session "${frame.s}"`);
    return;
  }
  if (conn.memberships.has(frame.s)) {
    ctx.replyError(conn, frame.id, ErrorCode.AlreadyJoined, `already joined session "${frame.s}"`);
    return;
  }
  if (conn.memberships.size >= config.maxSessionsPerConnection) {
    ctx.replyError(conn, frame.id, ErrorCode.TooManySessions, `a connection may join at most ${config.maxSessionsPerConnection} sessions`);
    return;
  }
  const ns = namespaceFor(config, frame.s);
  const m = registry.join(conn, frame.s, ns.presence);
  const since = frame.ep !== undefined && frame.seq !== undefined ? { epoch: frame.ep, seq: frame.seq } : null;
  await requestHistory(ctx, conn, m, since, { kind: 'join', frame });
}

/** The session's stream continues at (epoch, head): every joined member catches up or resyncs. */
export function resyncSession(ctx: JoinContext, sessionId: string, epoch: string, head: number): void {
  const session = ctx.registry.sessions.get(sessionId);
  if (session === undefined) return;
  const previous = session.epoch;
  session.epoch = epoch;
  session.lastSeq = head;
  // Seqs of the topic before the resync mean nothing in the new epoch.
  session.topicSeq = 0;
  session.topicSeqAtUs = 0;
  for (const conn of session.members) {
    const m = conn.memberships.get(sessionId);
    // Pending members compare their reply's epoch with the session's when it comes.
    if (m === undefined || m.state !== 'joined' || !conn.active) continue;
    m.state = 'pending';
    m.buffered = [];
    session.pending.add(m);
    if (session.lagging.delete(conn) === false) conn.unsubscribe(sessionId);
    // requestHistory answers its own failures; a throw past them must not reach the shard's crash handler.
    requestHistory(ctx, conn, m, { epoch: previous, seq: m.lastSeq }, { kind: 'resync' }).catch((err: unknown) => {
      conn.end(CloseCode.InternalError, `resync failed (${messageOf(err)}); reconnect and resume`);
    });
  }
}

async function requestHistory(
  ctx: JoinContext,
  conn: Connection,
  m: Membership,
  since: StreamPosition | null,
  purpose: HistoryPurpose,
): Promise<void> {
  const sessionId = m.session.id;
  const ns = namespaceFor(ctx.config, sessionId);
  for (let attempt = 1; ; attempt++) {
    let history: HistoryResult;
    try {
      history = await ctx.primary.call('history', {
        session: sessionId,
        since,
        user: conn.principal.user,
        // Presence counts a connection once, at its join.
        trackPresence: purpose.kind === 'join' && attempt === 1 && ns.presence,
        listPresence: purpose.kind === 'join' && ns.presence && purpose.frame.pres === true,
      });
    } catch (err) {
      // Gone or left meanwhile: nobody to tell.
      if (conn.memberships.get(sessionId) !== m) return;
      const code = err instanceof PrimaryCallError ? err.code : ErrorCode.Internal;
      failHistory(ctx, conn, m, purpose, code, `${purpose.kind} failed: ${messageOf(err)}`);
      return;
    }
    // The client may have left, gone or been cut off while the primary answered.
    if (!conn.active || conn.memberships.get(sessionId) !== m) return;
    if (history.presenceIncarnation !== undefined) {
      // Counted under an incarnation the primary has since given up (its presence
      // was lost while this reply was on its way): counted again under the current one.
      m.presenceIncarnation = history.presenceIncarnation;
      ctx.registry.recount(conn, m);
    }
    const current = m.session.epoch;
    if (current === '' || history.epoch === current || attempt >= MAX_HISTORY_ATTEMPTS) {
      try {
        completeJoin(conn, m, history, purpose);
        // A resume (a join from a position): was everything missed replayed?
        if (purpose.kind === 'join' && since !== null) {
          if (history.recovered) ctx.registry.counters.resumeRecovered++;
          else ctx.registry.counters.resumeNotRecovered++;
        }
      } catch (err) {
        // An answer that cannot be sent (e.g. a snapshot msgpack cannot encode) fails
        // this request alone; the shard and the other clients carry on.
        failHistory(ctx, conn, m, purpose, ErrorCode.Internal, `could not send the ${purpose.kind} answer: ${messageOf(err)}`);
      }
      return;
    }
    // Read before a resync the shard has already applied: the stream is elsewhere now.
  }
}

/**
 * A join or resync that could not complete: the membership is undone; a join is
 * answered with the error, a resynced member is closed with 4000 so it reconnects and
 * resumes rather than stay silently deaf.
 */
function failHistory(ctx: JoinContext, conn: Connection, m: Membership, purpose: HistoryPurpose, code: number, message: string): void {
  if (conn.memberships.get(m.session.id) === m) ctx.registry.leave(conn, m);
  if (purpose.kind === 'join') ctx.replyError(conn, purpose.frame.id, code, message);
  else conn.end(CloseCode.InternalError, `${message}; reconnect and resume`);
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

function completeJoin(conn: Connection, m: Membership, history: HistoryResult, purpose: HistoryPurpose): void {
  const session = m.session;
  const sessionId = session.id;
  session.epoch = history.epoch;
  if (history.head > session.lastSeq) session.lastSeq = history.head;
  if (purpose.kind === 'join') {
    const joined: JoinedFrame = { t: 'joined', id: purpose.frame.id, s: sessionId, ep: history.epoch, seq: history.head, rec: history.recovered };
    if (!history.recovered) joined.snap = history.snapshot ?? {};
    if (history.presence !== undefined) joined.pres = history.presence;
    conn.deliver(encodeServerFrame(joined), sessionId, 0);
  } else if (!history.recovered) {
    conn.deliver(encodeServerFrame({ t: 'resync', s: sessionId, ep: history.epoch, seq: history.head, snap: history.snapshot ?? {} }), sessionId, 0);
  }
  for (const bytes of unpackFrames(history.replay)) conn.deliver(bytes, sessionId, 0);
  let last = history.head;
  const user = conn.principal.user;
  for (const msg of m.buffered ?? []) {
    if (msg.seq !== 0 && msg.seq <= last) continue;
    if (msg.to !== undefined && !msg.to.includes(user)) continue;
    conn.deliver(msg.frame, sessionId, msg.seq, msg.conflateKey);
    if (msg.seq > last) last = msg.seq;
  }
  m.buffered = null;
  m.lastSeq = last;
  m.lastSeqAtUs = nowUs();
  m.state = 'joined';
  session.pending.delete(m);
  if (conn.queue !== null) session.lagging.add(conn);
  else conn.subscribe(sessionId);
}

/** Handles a `leave` frame (or a membership ending with its connection). */
export function leave(ctx: JoinContext, conn: Connection, sessionId: string): boolean {
  const m = conn.memberships.get(sessionId);
  if (m === undefined) return false;
  ctx.registry.leave(conn, m);
  return true;
}
