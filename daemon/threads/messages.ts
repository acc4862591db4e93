/**
 * Messages between the primary and its shard threads (node:worker_threads ports).
 * Frames do not travel as messages of their own: they go in `frames` batches (see
 * frame-batch.ts). Requests carry a `req` id answered by a `reply` with the same id.
 */
import type { CommandInput, EncodedJournalEntry } from '../engine/command-journal.js';
import type { PublishRequest, PublishResult, StreamPosition } from '../engine/broker.js';
import type { PresenceEntry, SnapshotEntry } from '../../protocol/frames.js';
import type { ShardQuery } from '../admin/shard-query.js';

/** What a joining client needs: the replay after its position, or the snapshot. */
export interface HistoryResult {
  epoch: string;
  /** Head seq when the history was read; the client is here once the replay is sent. */
  head: number;
  /** True when `replay` holds every event after the position visible to the user. */
  recovered: boolean;
  /** Encoded `ev` frames for the user after the position, oldest first, packed (frame-list.ts; empty unless recovered); shared, never written. */
  replay: SharedArrayBuffer;
  /** Latest value of each snapshot key visible to the user (when not recovered). */
  snapshot?: Record<string, SnapshotEntry>;
  /** The session's presence list, when asked for. */
  presence?: PresenceEntry[];
  /** Presence incarnation of the shard under which the join was counted (with trackPresence; absent when not counted). */
  presenceIncarnation?: number;
}

/** What a shard thread gets as workerData. */
export interface ShardInit {
  shardId: number;
  /** Port to listen on, shared by every shard (the supervisor picks a free one for port 0). */
  port: number;
  /**
   * The primary's per-user frame counters (threads/user-rates.ts), shared, not
   * copied: the same buffer for every shard and every restart of one.
   */
  userRates: SharedArrayBuffer;
}

/** Requests a shard makes of the primary, with the type of their answer. */
export interface ShardRequests {
  /** Read what a joining client needs (subscribes the shard to the session first). */
  history: {
    args: {
      session: string;
      since: StreamPosition | null;
      user: string;
      trackPresence: boolean;
      listPresence: boolean;
    };
    result: HistoryResult;
  };
  /** Sequence upstream or client-published events. */
  publish: { args: { events: PublishRequest[] }; result: PublishResult[] };
  /** Journal a participant's command. */
  command: { args: { command: CommandInput }; result: { duplicate: boolean } };
  /** List the users present in a session. */
  presence: { args: { session: string }; result: { users: PresenceEntry[]; total: number } };
  /** Read the standalone command journal (GET /v1/commands). */
  commands: { args: { after: number; limit: number }; result: EncodedJournalEntry[] };
  /** Count a new connection against the instance's caps; an admitted one gets its user's rate slot (threads/user-rates.ts). */
  admit: { args: { user: string; conn: string }; result: { admitted: true; slot: number } | { admitted: false; reason: string } };
  /** Test hook: crash the given shard. */
  crash: { args: { shard: number }; result: { crashed: boolean } };
  /** Test hook: the session's history is lost (new epoch). */
  resetEpoch: { args: { session: string }; result: { reset: boolean } };
}

export type RequestName = keyof ShardRequests;

/** A request from a shard. */
export type ShardRequest = {
  [K in RequestName]: { op: 'request'; req: number; name: K; args: ShardRequests[K]['args'] };
}[RequestName];

/** Shard → primary. */
export type ShardToPrimary =
  | { op: 'listening'; port: number }
  | { op: 'listen-failed'; port: number; message: string }
  /** The shard finished its drain; `forced` connections were still behind at the deadline. */
  | { op: 'drained'; connections: number; forced: number }
  /** The first local subscriber of a session arrived (route its frames here). */
  | { op: 'interest'; session: string }
  /** The last local subscriber of a session left. */
  | { op: 'uninterest'; session: string }
  /** A connection the shard asked to admit closed (admitted or not: the primary knows). */
  | { op: 'release'; conn: string }
  | { op: 'presence-join'; session: string; user: string }
  | { op: 'presence-leave'; session: string; user: string }
  /** The answer to an admin query (admin/shard-query.ts); `ok: false` when the shard failed to answer. */
  | { op: 'admin-reply'; req: number; ok: true; result: unknown }
  | { op: 'admin-reply'; req: number; ok: false; message: string }
  | ShardRequest;

/** Primary → shard. */
export type PrimaryToShard =
  | { op: 'frames'; batch: ArrayBuffer }
  | { op: 'ready'; ready: boolean }
  /** Drain the shard's connections (drain.ts DrainPlan), then end the thread. */
  | { op: 'drain'; deadline: number; spreadMs: number; goAwayMaxDelayMs: number; reason: string }
  | { op: 'crash' }
  /** An admin API query (admin/shard-query.ts), answered with `admin-reply` and the same `req`. */
  | { op: 'admin'; req: number; query: ShardQuery }
  /**
   * The primary lost this shard's presence and counts it as a new incarnation: send
   * presence-join for every membership whose join was counted under an earlier one.
   */
  | { op: 'presence-report'; incarnation: number }
  | { op: 'reply'; req: number; ok: true; result: unknown }
  | { op: 'reply'; req: number; ok: false; code: number; message: string; after?: number };
