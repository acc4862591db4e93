/**
 * One client connection on a shard, from open to close. It owns its memberships
 * (sessions joined or being joined), its rate-limit bucket (and its user's rate
 * slot, which the primary owns) and, while it lags, its
 * outbound queue. The uWS socket must not be touched once `closed` is set: uWS
 * throws on a socket after its close event.
 */
import { nowUs } from './micro-clock.js';
import type { RoutedFrame } from '../threads/frame-batch.js';
import type { Principal } from '../auth/principal.js';
import type { WebSocket } from '../uws.js';
import { closeReason } from '../../protocol/codes.js';
import { OutboundQueue } from './outbound-queue.js';
import type { LocalSession } from './registry.js';

/** What uWS carries from the upgrade to the open handler. */
export interface SocketData {
  /** The authenticated principal, or null when the upgrade was refused. */
  principal: Principal | null;
  /** Close code and reason when refused (auth, origin, version, limits). */
  refusal: { code: number; reason: string } | null;
  /** Set in `open`. */
  conn: Connection | null;
}

/** A topic no session can have (session ids are [A-Za-z0-9_.:@-]) and nothing publishes to. */
const ANCHOR_TOPIC = '#anchor';

/** The connection's place in one session. */
export interface Membership {
  readonly session: LocalSession;
  /** Joined: frames flow. Pending: the history reply has not arrived yet. */
  state: 'pending' | 'joined';
  /** Live frames that arrived while pending, replayed after the history (null once joined: idle members cost no array). */
  buffered: RoutedFrame[] | null;
  /** Seq of the last frame handed to uWS for this connection outside the topic (join, addressed frames, queue pumps)... */
  lastSeq: number;
  /** ...and when (µs, micro-clock.ts), for fair answer timing. */
  lastSeqAtUs: number;
  /** Whether the connection counts in the session's presence. */
  counted: boolean;
  /**
   * The shard's presence incarnation its join was counted under (the join's reply
   * says), 0 until then: a presence report re-counts it when the primary has moved
   * to a later incarnation (registry.reportPresence).
   */
  presenceIncarnation: number;
}

/** A client connection; see the header comment. */
export class Connection {
  readonly memberships = new Map<string, Membership>();
  /** Non-null while the connection lags (frames go through it, not the topic). */
  queue: OutboundQueue | null = null;
  closed = false;
  /** True once the primary counted the connection against the instance's caps. */
  admitted = false;
  /** Frames that arrived before admission, answered after `hello` (copies: uWS reuses its buffers). */
  early: Array<{ bytes: Uint8Array; isBinary: boolean }> | null = null;
  /** Rate-limit tokens and when they were last refilled. */
  tokens: number;
  refilledAt: number;
  /** Frames refused by the rate limiter since the last refill to full. */
  strikes = 0;
  /** The user's slot in the shared per-user rate table (threads/user-rates.ts), set on admission; -1 before. */
  userSlot = -1;
  /** Frames refused by the user's limit in a run of consecutive windows, and the window of the last (rate-limit.ts). */
  userStrikes = 0;
  userStruckWindow = 0;
  /**
   * When the connection was cut off as a slow consumer (0: it was not). A cut
   * connection gets nothing more; its 4001 close follows the frames uWS still holds
   * for it, once it has read them (slow-consumers.ts).
   */
  cutAt = 0;
  /** True once the drain sent it a go-away: from then on only the drain closes it (1001). */
  goAwaySent = false;
  /** When the client last sent anything (frame, ping or pong), and when it was last pinged (idle.ts). */
  heardAt = 0;
  pingedAt = -1;
  /** True once the socket holds the anchor topic (see subscribe). */
  private anchored = false;

  constructor(
    readonly id: string,
    readonly ws: WebSocket<SocketData>,
    readonly principal: Principal,
    burst: number,
    now: number,
  ) {
    this.tokens = burst;
    this.refilledAt = now;
  }

  /**
   * Subscribes the socket to a session's topic. The first subscription also joins
   * the anchor topic, which the socket keeps until it closes: this uWS build frees
   * a socket's subscriber when it leaves its last topic, and with it the frames
   * published to it this turn and not yet written — a silent gap for a client that
   * moves from the topic to its lag queue (fixed upstream in uWebSockets 7da88ce,
   * "Do not free subscriber on last unsubscription"). Nothing is published to it.
   */
  subscribe(topic: string): void {
    if (!this.anchored) {
      this.anchored = true;
      this.ws.subscribe(ANCHOR_TOPIC);
    }
    this.ws.subscribe(topic);
  }

  /** Leaves a session's topic; frames already published to it still reach the socket. */
  unsubscribe(topic: string): void {
    this.ws.unsubscribe(topic);
  }

  /** True while frames and replies may still be sent: not closed, not cut off. */
  get active(): boolean {
    return !this.closed && this.cutAt === 0;
  }

  /** Sends a control frame (reply, error) right away, ahead of any lag queue. */
  sendNow(frame: Uint8Array): void {
    if (!this.active) return;
    this.ws.cork(() => this.ws.send(frame, true));
  }

  /** Sends a session frame in order: through the queue while lagging. */
  deliver(frame: Uint8Array, session: string, seq: number, conflateKey?: string): void {
    if (!this.active) return;
    if (this.queue !== null) {
      // The lagging path only: a map lookup for the namespace index the drop counters need.
      this.queue.push(frame, session, seq, conflateKey, this.memberships.get(session)?.session.ns ?? 0);
      return;
    }
    this.ws.cork(() => this.ws.send(frame, true));
    if (seq > 0) {
      const m = this.memberships.get(session);
      if (m !== undefined && seq > m.lastSeq) {
        m.lastSeq = seq;
        m.lastSeqAtUs = nowUs();
      }
    }
  }

  /** Closes with a code the client can act on (the close frame follows buffered data). */
  end(code: number, reason: string): void {
    if (this.closed) return;
    this.closed = true;
    closeSocket(this.ws, code, reason);
  }
}

/**
 * Ends a client socket with a close code and a reason fitted to a close frame
 * (protocol/codes.ts closeReason). Every close the daemon sends goes through here:
 * uWS would cut a longer reason at 123 bytes, possibly inside a character, and a
 * close frame with invalid UTF-8 makes the client fail the connection (1006/1007)
 * instead of reading the code.
 */
export function closeSocket<T>(ws: WebSocket<T>, code: number, reason: string): void {
  ws.end(code, closeReason(reason));
}
