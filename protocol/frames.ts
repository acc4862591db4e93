/**
 * Wire protocol v1 frame types. Every frame is one binary WebSocket message holding
 * one msgpack map; its `t` key names the frame type. protocol/SPEC.md is the
 * normative description; these types mirror it field for field.
 */

/** Subprotocol a client offers in Sec-WebSocket-Protocol. */
export const SUBPROTOCOL = 'shardcast.v1';
/** Protocol version number carried in the `hello` frame. */
export const PROTOCOL_VERSION = 1;
/** Path of the WebSocket endpoint. */
export const WS_PATH = '/v1/ws';

/** Any msgpack value a client or upstream may put in `data` (no extension types). */
export type Value =
  | null
  | boolean
  | number
  | string
  | Uint8Array
  | Value[]
  | { [key: string]: Value };

// ---------------------------------------------------------------- client → server

/** Join a session; with `ep` and `seq` the server resumes after that position. */
export interface JoinFrame {
  t: 'join';
  /** Request id (uint), echoed in the reply. */
  id: number;
  /** Session id. */
  s: string;
  /** Epoch of the last event the client saw (resume). */
  ep?: string;
  /** Seq of the last event the client saw (resume). */
  seq?: number;
  /** Ask for the presence list in the `joined` reply. */
  pres?: boolean;
}

/** Leave a joined session. */
export interface LeaveFrame {
  t: 'leave';
  id: number;
  s: string;
}

/** Publish an event into a session whose namespace allows client publishing (chat). */
export interface PubFrame {
  t: 'pub';
  id: number;
  s: string;
  type: string;
  data: Value;
}

/** Send a command upstream (answer, vote…); `cid` makes retries idempotent. */
export interface CmdFrame {
  t: 'cmd';
  id: number;
  s: string;
  /** Client-chosen command id, unique per (session, user); reuse it when retrying. */
  cid: string;
  type: string;
  data: Value;
}

/** Ask for the users present in a joined session. */
export interface PresenceRequestFrame {
  t: 'presence';
  id: number;
  s: string;
}

/** Application-level ping; answered with `pong`. */
export interface PingFrame {
  t: 'ping';
  id: number;
}

/** Any frame a client may send. */
export type ClientFrame =
  | JoinFrame
  | LeaveFrame
  | PubFrame
  | CmdFrame
  | PresenceRequestFrame
  | PingFrame;

// ---------------------------------------------------------------- server → client

/** First frame on every connection. */
export interface HelloFrame {
  t: 'hello';
  /** Protocol version. */
  v: number;
  /** Connection id (for support and admin tools). */
  conn: string;
  /** Authenticated user id. */
  user: string;
  /** Server idle timeout in seconds: send something (a ping) more often than this. */
  ping: number;
}

/** Latest value of one snapshot key. */
export interface SnapshotEntry {
  seq: number;
  type: string;
  data: Value;
  /** Server time (ms since epoch) the event was sequenced. */
  ts: number;
}

/** One user present in a session. */
export interface PresenceEntry {
  /** User id. */
  u: string;
  /** How many connections of the user are in the session. */
  n: number;
}

/** Reply to `join`. With `rec: true` the missed `ev` frames follow in order. */
export interface JoinedFrame {
  t: 'joined';
  id: number;
  s: string;
  /** Current epoch of the session's history. */
  ep: string;
  /** The seq the client is at once the replay (if any) has been delivered. */
  seq: number;
  /** True: missed events follow. False: history could not cover the gap (or no position was given); see `snap`. */
  rec: boolean;
  /** Latest value of each snapshot key visible to this user (when `rec` is false). */
  snap?: Record<string, SnapshotEntry>;
  /** Users present (when asked with `pres` and the namespace keeps presence). */
  pres?: PresenceEntry[];
}

/**
 * The gateway lost continuity of a joined session (its history was reset, or frames
 * it missed are no longer in history): the client is now at (`ep`, `seq`) and `snap`
 * replaces what it had. Live events newer than `seq` follow.
 */
export interface ResyncFrame {
  t: 'resync';
  s: string;
  ep: string;
  seq: number;
  /** Latest value of each snapshot key visible to this user. */
  snap: Record<string, SnapshotEntry>;
}

/** Reply to `leave`. */
export interface LeftFrame {
  t: 'left';
  id: number;
  s: string;
}

/** A session event. */
export interface EventFrame {
  t: 'ev';
  s: string;
  /** Dense per-session sequence number (events addressed to other users leave gaps). */
  seq: number;
  ep: string;
  type: string;
  data: Value;
  /** Server time (ms since epoch) the event was sequenced. */
  ts: number;
  /** Snapshot key this event sets, if any. */
  k?: string;
  /** True when a newer frame with the same `k` may replace this one for a lagging client. */
  c?: boolean;
}

/** Positive reply to `pub`, `cmd` or `ping`-less requests. */
export interface AckFrame {
  t: 'ack';
  id: number;
  /** For `pub`: the seq the event got. */
  seq?: number;
  /** For `cmd`: the command id acknowledged as durable. */
  cid?: string;
  /** True when this request repeated an earlier one (same cid / event id); nothing was applied twice. */
  dup?: boolean;
}

/** A request failed, or the server reports a problem; the connection stays open. */
export interface ErrorFrame {
  t: 'error';
  /** Request id, absent when the error is not tied to a request. */
  id?: number;
  code: number;
  msg: string;
  /** Milliseconds to wait before retrying (106 from a per-user command limit). */
  after?: number;
}

/** Reply to a `presence` request. */
export interface PresenceFrame {
  t: 'presence';
  id: number;
  s: string;
  users: PresenceEntry[];
  /** Users present, when `users` was cut to the server's limit (absent when it holds them all). */
  total?: number;
}

/** A user's first connection joined the session. */
export interface PresenceJoinFrame {
  t: 'pjoin';
  s: string;
  u: string;
}

/** A user's last connection left the session. */
export interface PresenceLeaveFrame {
  t: 'pleave';
  s: string;
  u: string;
}

/** Reply to `ping`. */
export interface PongFrame {
  t: 'pong';
  id: number;
  /** Server clock when the ping was answered (epoch ms), for the client's clock offset. */
  now?: number;
}

/** Resume point of one joined session, sent in `goaway`. */
export interface ResumePoint {
  s: string;
  ep: string;
  seq: number;
}

/** The server is draining: reconnect after `delay` ms and resume from `pos`. */
export interface GoAwayFrame {
  t: 'goaway';
  reason: string;
  /** Milliseconds to wait before reconnecting (jittered by the server). */
  delay: number;
  pos: ResumePoint[];
}

/** Any frame the server may send. */
export type ServerFrame =
  | HelloFrame
  | JoinedFrame
  | ResyncFrame
  | LeftFrame
  | EventFrame
  | AckFrame
  | ErrorFrame
  | PresenceFrame
  | PresenceJoinFrame
  | PresenceLeaveFrame
  | PongFrame
  | GoAwayFrame;

/** Limits a server enforces by default (each configurable; the server states them in SPEC.md). */
export const DEFAULT_LIMITS = {
  /** Largest client frame in bytes. */
  maxFrameBytes: 16 * 1024,
  /** Longest session id. */
  maxSessionLength: 128,
  /** Longest event/command type. */
  maxTypeLength: 64,
  /** Longest command id. */
  maxCidLength: 64,
  /** Deepest nesting of `data`. */
  maxDepth: 16,
  /** Most msgpack values in one client frame, its own map and fields included (SPEC §19). */
  maxFrameValues: 10_000,
  /** Most values in the `data` of one published event (HTTP API, RabbitMQ). */
  maxPublishValues: 100_000,
  /** Sessions one connection may have joined. */
  maxSessionsPerConnection: 64,
} as const;

/** Characters allowed in session ids. */
export const SESSION_ID_PATTERN = /^[A-Za-z0-9_.:@-]+$/;
