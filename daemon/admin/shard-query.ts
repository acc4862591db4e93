/**
 * What the admin API asks a shard thread and what the shard answers: the queries
 * travel as `admin` messages (threads/messages.ts), the answers as `admin-reply`.
 * Answered on the shard by shard/admin-queries.ts; asked by admin/shard-queries.ts
 * on the primary. Everything here is plain data (structured-clone safe).
 */

import type { LatencySnapshot } from '../shard/delivery-latency.js';
import type { DropCounts, ShardDropReason } from './frame-drops.js';

/** The shard's counters since it started (plain numbers, incremented on the hot path). */
export interface ShardCounterSnapshot {
  /** Live frames handed to sockets (one per recipient), and their bytes. */
  framesDelivered: number;
  bytesDelivered: number;
  /** Session joins started on this shard. */
  joins: number;
  /** Joins answered with a replay (recovered) or with the snapshot (not recovered). */
  resumeRecovered: number;
  resumeNotRecovered: number;
  /** Connections cut off as slow consumers (4001). */
  slowConsumerCuts: number;
  /** Times a connection moved to its own lag queue. */
  lagStarted: number;
  /** Frames a lag queue replaced with a newer one of the same key (conflation); by namespace in `drops.conflated`. */
  conflated: number;
  /** Frames dropped, conflated or discarded on the shard, by reason, each by namespace index (admin/frame-drops.ts). */
  drops: DropCounts<ShardDropReason>;
  /** Connections closed because their token expired (4004) or they were idle (1000). */
  tokenExpired: number;
  idleClosed: number;
  /** Connections closed by an admin (4505). */
  kicked: number;
  /** Frames dropped because their seq had already been routed here (a bug guard; should stay 0). */
  duplicatesDropped: number;
  /** Event sequenced → handed to uWS, per frame (shard/delivery-latency.ts). */
  deliveryLatency: LatencySnapshot;
  /** `error` frames sent to clients, by error code (e.g. 106 rate limited). */
  errorReplies: Record<string, number>;
  /** Connections closed for what the client did, by close code (4500 protocol, 4503 too big, 4002 rate limited, 4003 connection limit). */
  clientCloses: Record<string, number>;
  /** Connections refused at the upgrade, by close code (4501 auth failed, 4502 origin, 4504 version, 1001 draining). */
  upgradesRefused: Record<string, number>;
}

/** Figures of one shard at the moment it answered. */
export interface ShardStats {
  shard: number;
  connections: number;
  sessions: number;
  /** Bytes uWS holds for sockets plus bytes in lag queues. */
  bufferedBytes: number;
  /** Connections currently on the lagging path (their own queue). */
  laggingSockets: number;
  /** Event-loop delay of the shard thread since its previous stats answer, in ms. */
  eventLoopDelayMeanMs: number;
  eventLoopDelayP99Ms: number;
  eventLoopDelayMaxMs: number;
  /** V8 heap of the shard thread's isolate. */
  heapUsedBytes: number;
  heapTotalBytes: number;
  /** Whether the shard stopped accepting (a drain of the instance or of this shard). */
  draining: boolean;
  counters: ShardCounterSnapshot;
}

/** One session as one shard holds it. */
export interface ShardSessionFigures {
  session: string;
  /** Connections joined or joining here. */
  subscribers: number;
  /** Members still waiting for their history reply. */
  joining: number;
  /** Joined members on the lagging path. */
  lagging: number;
  /** Highest seq routed to this shard, and its epoch. */
  seq: number;
  epoch: string;
}

/** One connection as the admin API lists it. */
export interface ConnectionFigures {
  conn: string;
  user: string;
  shard: number;
  /** Sessions joined (or being joined). */
  sessions: string[];
  /** uWS buffer plus lag queue, in bytes. */
  bufferedBytes: number;
  lagging: boolean;
  /** Milliseconds since the client last sent anything (null when the idle watch is off). */
  idleMs: number | null;
}

/** Which connections a `connections` or `kick` query is about. */
export interface ConnectionFilter {
  session?: string;
  user?: string;
  conn?: string;
}

/** The queries, with the type of their answer. */
export interface ShardQueries {
  stats: { args: Record<string, never>; result: ShardStats };
  sessions: { args: Record<string, never>; result: ShardSessionFigures[] };
  connections: { args: { filter: ConnectionFilter; limit: number }; result: { total: number; connections: ConnectionFigures[] } };
  /** Closes the matching connections with 4505 Kicked and `reason`. */
  kick: { args: { filter: ConnectionFilter; reason: string }; result: { kicked: ConnectionFigures[] } };
}

export type ShardQueryName = keyof ShardQueries;

/** A query as it travels to a shard. */
export type ShardQuery = {
  [K in ShardQueryName]: { name: K; args: ShardQueries[K]['args'] };
}[ShardQueryName];
