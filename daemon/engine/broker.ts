/**
 * The broker sequences published events into per-session streams, keeps their
 * bounded history and snapshots, and carries their frames to every instance
 * subscribed to the session. It is the one seam between an instance and the
 * streams it serves (memory now, Redis next), modelled on centrifuge's broker.go.
 *
 * Contract (every implementation):
 * - Idempotent: an event whose `id` was already sequenced for the session is not
 *   sequenced again; `publish` resolves with the first outcome and `duplicate: true`.
 * - Dense order: each new event gets the session's next seq (1, 2, 3, …) under its
 *   current epoch. The epoch changes only when the session's history was lost
 *   (expiry, a backend restarted empty); seqs of different epochs are unrelated.
 * - Atomic per session: dedupe, seq, history append, snapshot update and handing
 *   the frame to subscribers happen together or not at all; calls for one session
 *   take effect in call order. `publish` rejects (never resolves falsely) when the
 *   event could not be stored; it may then have been stored or not, and a retry
 *   with the same `id` is answered with the first outcome.
 * - Encode once: the `ev` frame is assembled once, by the broker that sequences it
 *   (protocol/event-template.ts); history and subscribers get those same bytes.
 * - Delivery to subscribers is at-most-once and late, like Redis Pub/Sub: a
 *   subscriber gets a session's messages in seq order, each at most once, but may
 *   miss some (a dropped message, a reconnect) and gets them with any delay,
 *   during `publish` (the memory broker) or after it resolved. Every message carries (epoch, seq), so the receiver
 *   (primary/session-streams.ts) notices a gap or an epoch change and heals it from
 *   `history`. After a reconnect the broker calls `resubscribed`: anything may have
 *   been missed while it was away.
 * - `subscribe` resolves once messages published after it will be delivered.
 * - `history` answers from a consistent point: `head` is the session's last seq
 *   when it was read, and `entries` hold every event in (since.seq, head] when
 *   `complete`; history reads may be served later than live messages published
 *   after them, and vice versa.
 * - After `stop`, `publish`, `notice` and `history` reject.
 * - Scheduled events: an event may carry `at` (release time, ms since the epoch).
 *   It is sequenced, stored and delivered like any other, carrying `at`; holding it
 *   back until then is the receiver's job (primary/release-gate.ts). `position`
 *   tells where the session's still-held events begin (`heldFrom`, given `now`), so
 *   an instance that starts streaming the session late holds them too.
 * - A session holds at most `maxSnapshotKeys` shared snapshot keys, and each user at
 *   most as many of their own: an event that would add one more is refused with
 *   PublishRefused (nothing stored, no seq taken); updating an existing key is not.
 */
import { eventTemplate, type EventTemplate } from '../../protocol/event-template.js';
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
  /** Release time (ms since the epoch): sequenced now, handed to sockets no earlier than this. */
  at?: number;
}

/** Outcome of sequencing one event. */
export interface PublishResult {
  seq: number;
  epoch: string;
  duplicate: boolean;
}

/** Where a client or a stream is in a session. */
export interface StreamPosition {
  epoch: string;
  seq: number;
}

/** One frame of a session stream, as history holds it and subscribers receive it. */
export interface StreamMessage {
  session: string;
  /** Epoch the seq belongs to. */
  epoch: string;
  /** Session seq; 0 for unsequenced notices (presence), which are never in history. */
  seq: number;
  /** The encoded server frame, shared untouched by every recipient. */
  frame: Uint8Array;
  /** Only these users receive it. */
  to?: readonly string[];
  /** Snapshot key of a conflatable frame. */
  conflateKey?: string;
  /** Release time of a scheduled event (ms since the epoch). */
  at?: number;
}

/** A session's position, and where its events still held for release begin. */
export interface SessionPosition extends ResumePoint {
  /** Lowest seq of an event whose `at` is later than the `now` asked about; absent when none. */
  heldFrom?: number;
}

/** A publish refused for a reason a retry cannot fix (a limit); nothing was stored. */
export class PublishRefused extends Error {}

/**
 * The `ev` frame template of an event sequenced at `ts`, encoded before any seq is
 * taken: an event that cannot be encoded fails alone, refused (a retry cannot fix
 * it), rather than leaving a seq nobody can ever receive.
 */
export function templateOf(req: PublishRequest, ts: number): EventTemplate {
  try {
    return eventTemplate({
      s: req.session,
      type: req.type,
      data: req.data,
      ts,
      ...(req.snapshot !== undefined ? { k: req.snapshot } : {}),
      ...(req.conflate ? { c: true as const } : {}),
    });
  } catch (err) {
    throw new PublishRefused(`event cannot be encoded: ${err instanceof Error ? err.message : String(err)}`);
  }
}

/** What a history read found. */
export interface HistoryRead {
  epoch: string;
  /** The session's last seq when history was read. */
  head: number;
  /** True when `entries` hold every event in (since.seq, head]: `since` was in this epoch and not trimmed away. */
  complete: boolean;
  /** Events after `since`, oldest first, for every recipient (empty unless complete). */
  entries: StreamMessage[];
  /** Latest value of each snapshot key visible to `user` (asked for and not complete). */
  snapshot?: Record<string, SnapshotEntry>;
}

/** What the broker calls back on the instance that subscribed. */
export interface BrokerHandler {
  /** A frame of a subscribed session. */
  message(msg: StreamMessage): void;
  /**
   * A frame this instance has just sequenced, handed over as soon as the broker
   * stored it, before its copy comes back over an asynchronous bus (Redis Pub/Sub).
   * That copy still arrives through `message` and is the same frame; a broker that
   * delivers in-process through `message` never calls this.
   */
  ownEvent?(msg: StreamMessage): void;
  /** The broker reconnected and resubscribed: messages may have been missed meanwhile. */
  resubscribed(): void;
}

/** Backend health, for readiness and the logs. */
export interface BrokerHealth {
  ok: boolean;
  /** What is wrong, when not ok. */
  detail?: string;
}

/** Sequencing, history and cross-instance fan-out of session streams; see the contract above. */
export interface Broker {
  /** Connects; `handler` receives the messages of subscribed sessions. */
  start(handler: BrokerHandler): Promise<void>;
  /** Sequences one event, stores it, and hands its frame to subscribers. */
  publish(req: PublishRequest): Promise<PublishResult>;
  /** Hands an unsequenced frame (a presence notice) to the session's subscribers. */
  notice(session: string, frame: Uint8Array): Promise<void>;
  /**
   * Reads the session's history after `since` (null: a fresh join, nothing to replay);
   * with `user`, a read that is not complete carries that user's snapshot.
   */
  history(session: string, since: StreamPosition | null, user?: string): Promise<HistoryRead>;
  /** Current epoch and head of a session (creating it when unknown), and its events held past `now` (ms). */
  position(session: string, now?: number): Promise<SessionPosition>;
  /** Starts delivering the session's messages to the handler. */
  subscribe(session: string): Promise<void>;
  /** Stops delivering them. */
  unsubscribe(session: string): Promise<void>;
  health(): BrokerHealth;
  /** Releases timers and connections, giving in-flight work until `deadline` (ms since the epoch). */
  stop(deadline: number): Promise<void>;
}
