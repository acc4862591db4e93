/**
 * Enforcement of the outgoing-buffer bound (docs/architecture.md, "Backpressure
 * and slow clients"). A connection's pending bytes are its uWS buffer plus its lag queue:
 * - past `maxBufferBytes`: cut off — sent nothing more, and closed with 4001
 *   SlowConsumer once uWS holds little for it (finishCut), so the close frame is not
 *   lost behind a full buffer; uWS's own hard limit, the backstop, is far above ours;
 * - past a quarter of it: move the connection to the lagging path (delivery.ts),
 *   where conflatable frames replace older ones instead of piling up;
 * - a lagging connection whose uWS buffer emptied gets its queue pumped (uWS only
 *   emits `drain` for writes it had to buffer).
 * Checks run on a timer for every connection, and during delivery for the members
 * of a session each time `checkEveryBytes` more have been published to it, so a
 * burst within one sweep period cannot run a socket far past the bound.
 * The sweep also closes connections whose token expired (4004) and, through the
 * endpoint's IdleWatch (idle.ts), connections that stayed silent too long (1000).
 */
import { CloseCode } from '../../protocol/codes.js';
import type { Connection } from './connection.js';
import type { IdleWatch } from './idle.js';
import { pumpQueue, startLagging, stopDelivery } from './delivery.js';
import type { Logger } from '../log.js';
import type { LocalSession, Registry } from './registry.js';

/** Longest a cut-off slow consumer is held open for its 4001 close to reach it. */
export const SLOW_CLOSE_GRACE_MS = 30_000;
/** A cut connection gets its close once uWS holds no more than this for it. */
const CLOSE_WHEN_BUFFERED_BELOW = 64 * 1024;

/** Sweep period. */
export const SWEEP_INTERVAL_MS = 50;

/** uWS's own per-socket limit above our bound: where it closes (1006) instead of skipping. */
export function backstopBytes(maxBufferBytes: number): number {
  return maxBufferBytes * 2 + 8 * 1024 * 1024;
}

/** The bound and its thresholds, with counters of what it did. */
export class BufferPolicy {
  readonly lagAt: number;
  readonly lowWater: number;
  readonly checkEveryBytes: number;
  slowClosed = 0;
  /** Times a connection moved from its topics to its own queue. */
  lagStarted = 0;
  expiredClosed = 0;

  constructor(readonly maxBufferBytes: number, private readonly log: Logger) {
    this.lagAt = maxBufferBytes / 4;
    this.lowWater = Math.max(16 * 1024, maxBufferBytes / 8);
    this.checkEveryBytes = maxBufferBytes / 8;
  }

  /** Applies the bound to one connection. */
  check(conn: Connection): void {
    if (conn.closed) return;
    const buffered = conn.ws.getBufferedAmount();
    if (conn.cutAt > 0) {
      this.finishCut(conn, buffered);
      return;
    }
    const pending = buffered + (conn.queue?.bytes ?? 0);
    if (pending > this.maxBufferBytes) {
      this.slowClosed++;
      conn.cutAt = Date.now();
      const droppedFrames = stopDelivery(conn, 'slow_consumer');
      this.log.info({ conn: conn.id, user: conn.principal.user, pendingBytes: pending, droppedFrames }, 'slow consumer disconnected');
      this.finishCut(conn, buffered);
      return;
    }
    if (conn.queue === null) {
      if (buffered > this.lagAt) {
        this.lagStarted++;
        this.log.debug({ conn: conn.id, bufferedBytes: buffered }, 'lagging: frames go through the connection\'s own queue');
        startLagging(conn);
      }
    } else if (buffered < this.lowWater) {
      pumpQueue(conn, this.lowWater);
    }
  }

  /**
   * Sends a cut connection its 4001 once uWS holds little for it. uWS gives a closing
   * socket a few seconds to take its buffered data and close frame, then drops it
   * without one (the client sees 1006), so the close waits until the client reads
   * again, or SLOW_CLOSE_GRACE_MS at most: a client that never reads again holds at
   * most the bound until then.
   */
  private finishCut(conn: Connection, buffered: number): void {
    if (buffered <= CLOSE_WHEN_BUFFERED_BELOW || Date.now() - conn.cutAt >= SLOW_CLOSE_GRACE_MS) {
      conn.end(CloseCode.SlowConsumer, 'slow consumer: outgoing buffer limit reached, reconnect and resume');
    }
  }

  /** Counts bytes published to a session; checks its members every `checkEveryBytes`. */
  published(session: LocalSession, bytes: number): void {
    session.bytesSinceCheck += bytes;
    if (session.bytesSinceCheck < this.checkEveryBytes) return;
    session.bytesSinceCheck = 0;
    for (const conn of session.members) this.check(conn);
  }

  private idle: IdleWatch | null = null;

  /** Lets the sweep also ping and close idle connections (the WebSocket endpoint owns the watch). */
  watchIdle(watch: IdleWatch): void {
    this.idle = watch;
  }

  /** Connections the idle watch closed. */
  get idleClosed(): number {
    return this.idle?.idleClosed ?? 0;
  }

  /** Starts the periodic sweep over every connection; returns its stop function. */
  startSweep(registry: Registry): () => void {
    const timer = setInterval(() => {
      const now = Date.now();
      const nowS = now / 1000;
      for (const conn of registry.connections.values()) {
        if (conn.closed) continue;
        // validUntilS is exp plus the clock-skew allowance: the bound the handshake
        // applied, so a token accepted inside the allowance is not cut at once.
        if (conn.principal.validUntilS !== undefined && nowS >= conn.principal.validUntilS) {
          this.expiredClosed++;
          conn.end(CloseCode.TokenExpired, 'token expired: reconnect with a fresh token');
          continue;
        }
        this.check(conn);
      }
      this.idle?.sweep(registry.connections.values(), now);
    }, SWEEP_INTERVAL_MS);
    return () => clearInterval(timer);
  }
}
