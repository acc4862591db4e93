/**
 * Joining and leaving sessions on a shard, with resume.
 *
 * Join: the membership starts pending (it buffers the session's live frames), the
 * primary is asked for the history after the client's position, then — in one
 * synchronous step, so no live frame can slip between — the shard sends `joined`,
 * the replayed frames, the buffered live frames newer than the replay (deduped by
 * seq), and subscribes the socket to the session's topic. No gap, no duplicate.
 */
import { encode } from '../../protocol/codec.js';
import { ErrorCode } from '../../protocol/codes.js';
import type { JoinFrame, JoinedFrame } from '../../protocol/frames.js';
import { mayJoin } from '../auth/principal.js';
import { namespaceFor } from '../config/namespaces.js';
import type { Config } from '../config/schema.js';
import type { ShardRequests } from '../threads/messages.js';
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

/** Handles a `join` frame. */
export async function join(ctx: JoinContext, conn: Connection, frame: JoinFrame): Promise<void> {
  const { config, registry } = ctx;
  const user = conn.principal.user;
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
  let history;
  try {
    history = await ctx.primary.call('history', {
      session: frame.s,
      since,
      user,
      trackPresence: ns.presence,
      listPresence: ns.presence && frame.pres === true,
    });
  } catch (err) {
    if (conn.memberships.get(frame.s) !== m) return;
    registry.leave(conn, m);
    const code = err instanceof PrimaryCallError ? err.code : ErrorCode.Internal;
    ctx.replyError(conn, frame.id, code, `join failed: ${err instanceof Error ? err.message : String(err)}`);
    return;
  }
  // The client may have left or gone while the primary answered.
  if (conn.closed || conn.memberships.get(frame.s) !== m) return;
  completeJoin(conn, m, frame, history);
}

function completeJoin(
  conn: Connection,
  m: Membership,
  frame: JoinFrame,
  history: ShardRequests['history']['result'],
): void {
  const session = m.session;
  session.epoch = history.epoch;
  const joined: JoinedFrame = { t: 'joined', id: frame.id, s: frame.s, ep: history.epoch, seq: history.head, rec: history.recovered };
  if (!history.recovered) joined.snap = history.snapshot ?? {};
  if (history.presence !== undefined) joined.pres = history.presence;
  conn.deliver(encode(joined), frame.s, 0);
  for (const bytes of history.frames) conn.deliver(bytes, frame.s, 0);
  let last = history.head;
  const user = conn.principal.user;
  for (const msg of m.buffered ?? []) {
    if (msg.seq !== 0 && msg.seq <= last) continue;
    if (msg.to !== undefined && !msg.to.includes(user)) continue;
    conn.deliver(msg.frame, frame.s, msg.seq, msg.conflateKey);
    if (msg.seq > last) last = msg.seq;
  }
  m.buffered = null;
  if (last > m.lastSeq) {
    m.lastSeq = last;
    m.lastSeqAt = Date.now();
  }
  m.state = 'joined';
  session.pending.delete(m);
  if (conn.queue !== null) session.lagging.add(conn);
  else conn.subscribe(frame.s);
}

/** Handles a `leave` frame (or a membership ending with its connection). */
export function leave(ctx: JoinContext, conn: Connection, sessionId: string): boolean {
  const m = conn.memberships.get(sessionId);
  if (m === undefined) return false;
  ctx.registry.leave(conn, m);
  return true;
}
