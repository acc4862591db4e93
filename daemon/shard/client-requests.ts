/**
 * Handles the frames a client sends, after the rate limiter and validation. Every
 * protocol violation ends in `failConnection` (one place decides close codes);
 * request-level problems get an `error` frame and the connection stays.
 */
import { nowUs } from './micro-clock.js';
import { encode, encodeServerFrame } from '../../protocol/codec.js';
import { CloseCode, ErrorCode } from '../../protocol/codes.js';
import { DEFAULT_LIMITS, type CmdFrame, type ErrorFrame, type PubFrame } from '../../protocol/frames.js';
import { parseClientFrame, type ClientLimits } from '../../protocol/validate.js';
import { mayPublish, namespaceFor } from '../config/namespaces.js';
import type { Config } from '../config/schema.js';
import type { Connection, Membership } from './connection.js';
import { join, leave, type JoinContext } from './joins.js';
import { PrimaryCallError } from './primary-link.js';
import { takeMoreTokens, takeToken, takeUserToken } from './rate-limit.js';
import { countRefusal, refusals } from './shard-counters.js';

/** What request handling needs from the shard. */
export interface RequestContext extends JoinContext {
  shardId: number;
  /** The per-user frame counters shared by every shard (threads/user-rates.ts). */
  userRates: Int32Array;
}

/** Limits applied to client frames, from the config. */
export function clientLimits(config: Pick<Config, 'maxFrameBytes' | 'maxFrameValues'>): ClientLimits {
  return {
    maxFrameBytes: config.maxFrameBytes,
    maxFrameValues: config.maxFrameValues,
    maxSessionLength: DEFAULT_LIMITS.maxSessionLength,
    maxTypeLength: DEFAULT_LIMITS.maxTypeLength,
    maxCidLength: DEFAULT_LIMITS.maxCidLength,
    maxDepth: DEFAULT_LIMITS.maxDepth,
  };
}

/** Closes a connection that broke the protocol, with the code and reason given (fitted to a close frame by Connection.end). */
export function failConnection(conn: Connection, code: number, reason: string): void {
  if (!conn.closed) countRefusal(refusals.clientCloses, code);
  conn.end(code, reason);
}

/** Sends an `error` frame. */
export function replyError(conn: Connection, id: number | undefined, code: number, msg: string, after?: number): void {
  countRefusal(refusals.errorReplies, code);
  const frame: ErrorFrame = id === undefined ? { t: 'error', code, msg } : { t: 'error', id, code, msg };
  if (after !== undefined) frame.after = after;
  conn.sendNow(encodeServerFrame(frame));
}

/**
 * What the rate limits decided for a frame when it arrived; refusals are answered
 * when it is handled (a string, not an object: one per frame on the hot path).
 */
export type RateVerdict = 'allow' | 'refuse' | 'refuse-user';

/**
 * The frame parseClientFrame is checking, for admitFrame: module state rather than
 * a closure per message (the parse is synchronous, one frame at a time per thread).
 */
const admitting: { conn: Connection | null; config: Config | null; verdict: RateVerdict } = { conn: null, config: null, verdict: 'allow' };

/** The rate limits' verdict on a well-formed frame of `values` values, before it is decoded (null: go on). */
function admitFrame(values: number): string | null {
  const { conn, config } = admitting;
  if (conn === null || config === null) return null;
  if (admitting.verdict === 'refuse') return `rate limit is ${config.rateLimitPerS} frames/s (burst ${config.rateLimitBurst}): slow down`;
  if (admitting.verdict === 'refuse-user') {
    return `user rate limit (userRateLimitPerS) is ${config.userRateLimitPerS} frames/s across all of this user's connections to this server: slow down`;
  }
  const tokens = Math.ceil(values / config.rateLimitTokenValues);
  if (tokens > 1 && !takeMoreTokens(conn, tokens - 1)) {
    return `a frame of ${values} values takes ${tokens} tokens of the rate limit (one per ${config.rateLimitTokenValues} values, rateLimitTokenValues; ${config.rateLimitPerS}/s, burst ${config.rateLimitBurst}): slow down`;
  }
  return null;
}

/**
 * The rate limits' verdict on a message as it arrives, or null when the connection
 * was closed for it (a text frame, or a client that keeps sending past its limits).
 */
export function rateVerdict(ctx: RequestContext, conn: Connection, isBinary: boolean, now: number): RateVerdict | null {
  if (!isBinary) {
    failConnection(conn, CloseCode.ProtocolError, 'text frames are not part of the protocol: send binary msgpack');
    return null;
  }
  const { config } = ctx;
  const decision = takeToken(conn, now, config.rateLimitPerS, config.rateLimitBurst);
  if (decision === 'close') {
    failConnection(conn, CloseCode.RateLimited, 'too many frames: rate limit exceeded repeatedly');
    return null;
  }
  if (decision === 'refuse') return 'refuse';
  // The user's limit counts only frames the connection's own limit let through: a
  // connection over its own limit does not eat its user's other connections' budget.
  const userDecision = takeUserToken(conn, ctx.userRates, now, config.userRateLimitPerS, config.rateLimitBurst);
  if (userDecision === 'close') {
    failConnection(conn, CloseCode.RateLimited, `too many frames from this user: userRateLimitPerS (${config.userRateLimitPerS}/s) exceeded repeatedly`);
    return null;
  }
  return userDecision === 'refuse' ? 'refuse-user' : 'allow';
}

/**
 * Handles one message from a client as it arrives. `bytes` is only valid during
 * this call (uWS neuters it on return): everything kept past an await is decoded
 * or copied first.
 */
export function handleMessage(ctx: RequestContext, limits: ClientLimits, conn: Connection, bytes: Uint8Array, isBinary: boolean, now: number): void {
  const verdict = rateVerdict(ctx, conn, isBinary, now);
  if (verdict !== null) handleFrame(ctx, limits, conn, bytes, verdict);
}

/**
 * Handles one binary message the rate limits have judged (now, or when it arrived
 * and was queued: heavy-frames.ts); `arrivedUs`, for a queued frame, is when it
 * arrived on the shard's microsecond clock (a command's `receivedAtUs`; read only
 * for commands, so a frame handled as it arrives does not read the clock).
 */
export function handleFrame(ctx: RequestContext, limits: ClientLimits, conn: Connection, bytes: Uint8Array, verdict: RateVerdict, arrivedUs?: number): void {
  admitting.conn = conn;
  admitting.config = ctx.config;
  admitting.verdict = verdict;
  const parsed = parseClientFrame(bytes, limits, admitFrame);
  admitting.conn = null;
  if (parsed.kind === 'close') {
    failConnection(conn, parsed.code, parsed.reason);
    return;
  }
  if (parsed.kind === 'error') {
    replyError(conn, parsed.id, parsed.code, parsed.msg);
    return;
  }
  const frame = parsed.frame;
  switch (frame.t) {
    case 'join':
      guard(conn, frame.id, 'join', join(ctx, conn, frame));
      return;
    case 'leave':
      if (leave(ctx, conn, frame.s)) conn.sendNow(encodeServerFrame({ t: 'left', id: frame.id, s: frame.s }));
      else replyError(conn, frame.id, ErrorCode.NotJoined, `not joined to session "${frame.s}"`);
      return;
    case 'pub':
      guard(conn, frame.id, 'publish', publish(ctx, conn, frame));
      return;
    case 'cmd':
      // Only the fields and the data's bytes (copied out of the message uWS reuses) go
      // on: the decoded data must not live until the journal answers, or every large
      // command in flight survives into the old generation (major GCs under a flood).
      guard(conn, frame.id, 'command', command(ctx, conn, { id: frame.id, s: frame.s, cid: frame.cid, type: frame.type }, arrivedUs ?? nowUs(), parsed.data?.slice() ?? encode(frame.data)));
      return;
    case 'presence':
      guard(conn, frame.id, 'presence', presence(ctx, conn, frame.id, frame.s));
      return;
    case 'ping':
      conn.sendNow(encodeServerFrame({ t: 'pong', id: frame.id, now: Date.now() }));
      return;
  }
}

/**
 * Awaits a request handler that answers for itself; if it throws anyway (a bug, a
 * value that cannot be encoded), the request gets error 100 and the rejection never
 * reaches the shard's crash handler: one request must not restart a shard.
 */
function guard(conn: Connection, id: number, what: string, work: Promise<void>): void {
  work.catch((err: unknown) => {
    replyError(conn, id, ErrorCode.Internal, `${what} failed on the server (${err instanceof Error ? err.message : String(err)}): retry`);
  });
}

/** The connection's joined membership in `session`, or undefined after answering 104. */
function joinedOrReply(conn: Connection, id: number, session: string): Membership | undefined {
  const m = conn.memberships.get(session);
  if (m?.state === 'joined') return m;
  replyError(conn, id, ErrorCode.NotJoined, `join session "${session}" first`);
  return undefined;
}

function replyFailure(conn: Connection, id: number, what: string, err: unknown): void {
  const code = err instanceof PrimaryCallError ? err.code : ErrorCode.Internal;
  replyError(conn, id, code, `${what} failed: ${err instanceof Error ? err.message : String(err)}`, err instanceof PrimaryCallError ? err.after : undefined);
}

async function publish(ctx: RequestContext, conn: Connection, frame: PubFrame): Promise<void> {
  const { id, s } = frame;
  if (joinedOrReply(conn, id, s) === undefined) return;
  const ns = namespaceFor(ctx.config, s);
  if (!mayPublish(ns, conn.principal.role)) {
    replyError(conn, id, ErrorCode.PublishNotAllowed, `clients with role "${conn.principal.role}" may not publish into "${s}"`);
    return;
  }
  // `frame` (and its decoded data) is not used past this point: not kept while the primary answers.
  const call = ctx.primary.call('publish', { events: [{ session: s, type: frame.type, data: frame.data }] });
  try {
    const [result] = await call;
    conn.sendNow(encodeServerFrame({ t: 'ack', id, seq: result.seq }));
  } catch (err) {
    replyFailure(conn, id, 'publish', err);
  }
}

async function command(ctx: RequestContext, conn: Connection, frame: Omit<CmdFrame, 't' | 'data'>, receivedAtUs: number, encodedData: Uint8Array): Promise<void> {
  const m = joinedOrReply(conn, frame.id, frame.s);
  if (m === undefined) return;
  // Fair timing: what this socket had been handed when the command arrived, and
  // when. On the topic path that is the session's last frame for everyone (not one
  // addressed to others); lagging and addressed frames are tracked on the membership.
  const fromTopic = conn.queue === null && m.session.topicSeq > m.lastSeq;
  const lastSeq = fromTopic ? m.session.topicSeq : m.lastSeq;
  const lastSeqAtUs = fromTopic ? m.session.topicSeqAtUs : m.lastSeqAtUs;
  try {
    const { duplicate } = await ctx.primary.call('command', {
      command: {
        session: frame.s,
        user: conn.principal.user,
        role: conn.principal.role,
        cid: frame.cid,
        type: frame.type,
        encodedData,
        receivedAt: Math.floor(receivedAtUs / 1000),
        receivedAtUs,
        lastSeq,
        lastSeqAt: Math.floor(lastSeqAtUs / 1000),
        lastSeqAtUs,
        conn: conn.id,
        shard: ctx.shardId,
      },
    });
    conn.sendNow(encodeServerFrame(duplicate ? { t: 'ack', id: frame.id, cid: frame.cid, dup: true } : { t: 'ack', id: frame.id, cid: frame.cid }));
  } catch (err) {
    replyFailure(conn, frame.id, 'command', err);
  }
}

async function presence(ctx: RequestContext, conn: Connection, id: number, session: string): Promise<void> {
  if (joinedOrReply(conn, id, session) === undefined) return;
  if (!namespaceFor(ctx.config, session).presence) {
    replyError(conn, id, ErrorCode.Forbidden, `presence is off for session "${session}"`);
    return;
  }
  try {
    const { users, total } = await ctx.primary.call('presence', { session });
    conn.sendNow(encodeServerFrame(total > users.length ? { t: 'presence', id, s: session, users, total } : { t: 'presence', id, s: session, users }));
  } catch (err) {
    replyFailure(conn, id, 'presence', err);
  }
}
