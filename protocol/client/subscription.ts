/**
 * One joined session as the application sees it. The client owns the connection and
 * calls the `handle*` methods as frames arrive; the subscription keeps the session's
 * position, drops events it already delivered, and feeds listeners and iterators.
 *
 * Delivery guarantee: within one epoch an event is delivered at most once and in
 * increasing seq order, whatever the server replays after a reconnect.
 */
import type {
  EventFrame,
  JoinedFrame,
  ResyncFrame,
  PresenceEntry,
  ResumePoint,
  SnapshotEntry,
  Value,
} from './wire/frames.js';
import { Emitter } from './emitter.js';
import { ClientErrorCode, ShardcastError } from './errors.js';
import { EventQueue } from './event-queue.js';

/** Where a subscription is in its session's stream: the last event seen. */
export interface StreamPosition {
  epoch: string;
  seq: number;
}

/** Options of `ShardcastClient.join`. */
export interface JoinOptions {
  /** Resume after this position (events after it are replayed if the server still has them). */
  since?: StreamPosition;
  /** Ask for the presence list in every `joined` reply (and keep presence notices coming). */
  presence?: boolean;
}

/** Options of a request sent through a subscription. */
export interface RequestOptions {
  /** Reject with a `timeout` error after this many ms (default: the client's `commandTimeoutMs`). */
  timeoutMs?: number;
}

/** Options of `Subscription.command`. */
export interface CommandOptions extends RequestOptions {
  /** Command id; reuse it to retry a command safely. Default: a random UUID. */
  cid?: string;
}

/** The session's snapshot, delivered when a join (or the gateway mid-stream) could not replay what was missed. */
export interface SnapshotInfo {
  /** Latest value of each snapshot key visible to this user. */
  snap: Record<string, SnapshotEntry>;
  /** The `joined` frame that carried it (the last one, for a resync). */
  joined: JoinedFrame;
  /** The `resync` frame that carried it, when the gateway lost continuity mid-stream. */
  resync?: ResyncFrame;
}

/** A user whose first connection joined, or whose last connection left, the session. */
export interface PresenceChange {
  kind: 'join' | 'leave';
  user: string;
}

/** Why a subscription ended. */
export interface SubscriptionEnd {
  /** `left`: leave() was called; `closed`: the client closed; `failed`: the join was refused or the connection ended terminally. */
  reason: 'left' | 'closed' | 'failed';
  error?: ShardcastError;
}

/** Events a Subscription emits. */
export interface SubscriptionEvents {
  /** A session event not delivered before (replays and live events alike). */
  event: EventFrame;
  /** Every `joined` reply: the first join and each rejoin after a reconnect. */
  joined: JoinedFrame;
  /** The join could not resume (or had no position): here is the session's latest state. */
  snapshot: SnapshotInfo;
  /** Presence notices (`pjoin`/`pleave`). */
  presence: PresenceChange;
  /** A join attempt was refused; retryable refusals are retried by the client. */
  error: ShardcastError;
  /** The subscription is over; no further events. */
  end: SubscriptionEnd;
}

/** State of a subscription. */
export type SubscriptionState = 'joining' | 'joined' | 'ended';

/** What a subscription needs from its client (implemented by ShardcastClient). */
export interface SubscriptionHost {
  publish(sub: Subscription, type: string, data: Value, opts: RequestOptions): Promise<{ seq: number }>;
  command(sub: Subscription, type: string, data: Value, opts: CommandOptions): Promise<{ cid: string; dup: boolean }>;
  presence(sub: Subscription, opts: RequestOptions): Promise<PresenceEntry[]>;
  leave(sub: Subscription): Promise<void>;
  reportListenerError(err: unknown): void;
}

/** A session joined through a ShardcastClient. Create with `client.join()`. */
export class Subscription extends Emitter<SubscriptionEvents> {
  /** Session id. */
  readonly session: string;
  /** Resolves with the first `joined` reply; rejects if the subscription ends before it. */
  readonly ready: Promise<JoinedFrame>;
  /** Whether joins ask for presence. */
  readonly wantsPresence: boolean;

  readonly #host: SubscriptionHost;
  #position: StreamPosition | null;
  #state: SubscriptionState = 'joining';
  #resolveReady!: (frame: JoinedFrame) => void;
  #rejectReady!: (err: ShardcastError) => void;
  #readySettled = false;
  /** The last `joined` reply (a resync refers to it). */
  #lastJoined: JoinedFrame | null = null;
  readonly #queues = new Set<EventQueue<EventFrame>>();

  /** @internal Created by ShardcastClient.join. */
  constructor(host: SubscriptionHost, session: string, opts: JoinOptions) {
    super();
    this.#host = host;
    this.session = session;
    this.wantsPresence = opts.presence === true;
    this.#position = opts.since ? { epoch: opts.since.epoch, seq: opts.since.seq } : null;
    this.onListenerError = (err) => host.reportListenerError(err);
    this.ready = new Promise<JoinedFrame>((resolve, reject) => {
      this.#resolveReady = resolve;
      this.#rejectReady = reject;
    });
    // Nobody has to await `ready`: a subscription that fails reports through 'error'/'end' too.
    this.ready.catch(() => {});
  }

  /** The (epoch, seq) of the last event delivered, or of the last non-recovered join; null before either. */
  get position(): StreamPosition | null {
    return this.#position ? { ...this.#position } : null;
  }

  /** `joining` until the server confirms the join on the current connection, `ended` after leave/close/failure. */
  get state(): SubscriptionState {
    return this.#state;
  }

  /** Events from now on, in order, as an async iterator; ends on leave/close, throws if the subscription fails. */
  events(): AsyncIterableIterator<EventFrame> {
    const queue: EventQueue<EventFrame> = new EventQueue(() => this.#queues.delete(queue));
    if (this.#state === 'ended') queue.end();
    else this.#queues.add(queue);
    return queue;
  }

  /** Publishes an event into the session (namespaces that allow client publishing); resolves with its seq. Not retried after a disconnect (outcome unknown: `disconnected` error). */
  publish(type: string, data: Value, opts: RequestOptions = {}): Promise<{ seq: number }> {
    return this.#host.publish(this, type, data, opts);
  }

  /** Sends a command upstream; resolves once the server made it durable. Resent with the same cid after a reconnect until `timeoutMs`. */
  command(type: string, data: Value, opts: CommandOptions = {}): Promise<{ cid: string; dup: boolean }> {
    return this.#host.command(this, type, data, opts);
  }

  /** Asks for the users present in the session. */
  presence(opts: RequestOptions = {}): Promise<PresenceEntry[]> {
    return this.#host.presence(this, opts);
  }

  /** Leaves the session; resolves when the server confirmed (or at once when disconnected). */
  leave(): Promise<void> {
    return this.#host.leave(this);
  }

  /** @internal The connection dropped: the next `joined` must come before requests flow again. */
  handleDisconnect(): void {
    if (this.#state === 'joined') this.#state = 'joining';
  }

  /** @internal A go-away told where the server thinks this subscription is. */
  handleResumePoint(point: ResumePoint): void {
    // Our own position is what we really received: adopting a newer server position
    // would skip events that were queued for us but never arrived. The server's point
    // only fills in when we have none.
    if (this.#position === null) this.#position = { epoch: point.ep, seq: point.seq };
  }

  /** @internal The server confirmed a join. */
  handleJoined(frame: JoinedFrame): void {
    if (this.#state === 'ended') return;
    this.#state = 'joined';
    this.#lastJoined = frame;
    if (!frame.rec) {
      const pos = this.#position;
      // Never move backwards within an epoch: that would deliver events twice.
      if (pos === null || pos.epoch !== frame.ep || frame.seq > pos.seq) {
        this.#position = { epoch: frame.ep, seq: frame.seq };
      }
      this.emit('snapshot', { snap: frame.snap ?? {}, joined: frame });
    }
    if (!this.#readySettled) {
      this.#readySettled = true;
      this.#resolveReady(frame);
    }
    this.emit('joined', frame);
  }

  /** @internal The gateway lost continuity: the position moves to the frame's, the snapshot replaces state. */
  handleResync(frame: ResyncFrame): void {
    if (this.#state === 'ended' || this.#lastJoined === null) return;
    this.#position = { epoch: frame.ep, seq: frame.seq };
    this.emit('snapshot', { snap: frame.snap, joined: this.#lastJoined, resync: frame });
  }

  /** @internal A session event arrived; delivered unless already seen. */
  handleEvent(frame: EventFrame): void {
    if (this.#state === 'ended') return;
    const pos = this.#position;
    if (pos !== null && pos.epoch === frame.ep && frame.seq <= pos.seq) return;
    this.#position = { epoch: frame.ep, seq: frame.seq };
    this.emit('event', frame);
    for (const queue of this.#queues) queue.push(frame);
  }

  /** @internal A presence notice arrived. */
  handlePresence(change: PresenceChange): void {
    if (this.#state === 'ended') return;
    this.emit('presence', change);
  }

  /** @internal A join attempt was refused. */
  handleJoinError(err: ShardcastError): void {
    this.emit('error', err);
  }

  /** @internal The subscription is over. */
  end(reason: SubscriptionEnd['reason'], error?: ShardcastError): void {
    if (this.#state === 'ended') return;
    this.#state = 'ended';
    if (!this.#readySettled) {
      this.#readySettled = true;
      this.#rejectReady(
        error ?? new ShardcastError(reason === 'left' ? ClientErrorCode.Left : ClientErrorCode.Closed, `subscription to ${this.session} ended (${reason}) before it was joined`, false),
      );
    }
    for (const queue of this.#queues) queue.end(reason === 'failed' ? error : undefined);
    this.#queues.clear();
    this.emit('end', error ? { reason, error } : { reason });
  }
}
