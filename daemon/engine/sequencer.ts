/**
 * The sequencer turns a published event into a session frame, exactly once.
 *
 * Contract (every implementation, memory or Redis):
 * - Idempotent: an event whose `id` was already sequenced for the session is not
 *   sequenced again; the first outcome (its seq) is returned with `duplicate: true`.
 * - Dense order: each new event gets the session's next seq (1, 2, 3, …) under the
 *   session's current epoch; the epoch changes only when the history was lost.
 * - Atomic per session: dedupe, seq, history append, snapshot update and publishing
 *   the frame on the bus happen together or not at all, in seq order.
 * - Encode once: the `ev` frame is encoded here, once; history and the bus carry
 *   those same bytes to every subscriber.
 * Calls for one session may be concurrent; the implementation serialises them.
 */
import type { ResumePoint, SnapshotEntry, Value } from '../../protocol/frames.js';

/** An event as upstream publishes it (HTTP API or broker), already validated. */
export interface PublishRequest {
  session: string;
  type: string;
  data: Value;
  /** Upstream event id for idempotent redelivery. */
  id?: string;
  /** Only these users receive the event. */
  to?: string[];
  /** Snapshot key the event sets. */
  snapshot?: string;
  /** A newer frame with the same snapshot key may replace this one for lagging clients. */
  conflate?: boolean;
}

/** Outcome of sequencing one event. */
export interface PublishResult {
  seq: number;
  epoch: string;
  duplicate: boolean;
}

/** Where a client says it is in a session's stream. */
export interface StreamPosition {
  epoch: string;
  seq: number;
}

/** What a joining client needs: the replay after its position, or the snapshot. */
export interface HistoryResult {
  epoch: string;
  /** Head seq when the history was read; the client is here once the replay is sent. */
  head: number;
  /** True when `frames` hold every event after the position visible to the user. */
  recovered: boolean;
  /** Encoded `ev` frames after the position, oldest first (empty unless recovered). */
  frames: Uint8Array[];
  /** Latest value of each snapshot key visible to the user (when not recovered). */
  snapshot?: Record<string, SnapshotEntry>;
}

/** Sequences events and answers history reads; see the contract above. */
export interface Sequencer {
  /** Sequences one event and publishes its frame on the bus. */
  publish(req: PublishRequest): Promise<PublishResult>;
  /** Reads what a client joining at `since` (or fresh, when null) needs. */
  history(session: string, since: StreamPosition | null, user: string): Promise<HistoryResult>;
  /** Current epoch and head of a session (creating it when unknown). */
  position(session: string): Promise<ResumePoint>;
  /** Releases timers and connections. */
  close(): Promise<void>;
}

