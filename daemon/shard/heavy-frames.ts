/**
 * Heavy client frames wait their turn (turn-scheduler.ts). A frame of
 * `HEAVY_FRAME_BYTES` or more may decode to 10,000 values, a few hundred µs of
 * work: it is judged by the rate limits as it arrives (so the queue stays bounded,
 * and a frame over them is answered 106 in its turn without being decoded), copied
 * (uWS reuses the message), and handled when the shard's scheduler gets to it. Once a connection has a frame waiting, its later
 * frames queue behind it, so each connection's frames are still handled in the
 * order they came. A command keeps its arrival time (`receivedAtUs`); the `lastSeq`
 * it is stamped with is read when it is handled.
 */
import { CloseCode } from '../../protocol/codes.js';
import type { ClientLimits } from '../../protocol/validate.js';
import { failConnection, handleFrame, rateVerdict, type RequestContext } from './client-requests.js';
import type { Connection } from './connection.js';
import { nowUs } from './micro-clock.js';
import type { TurnScheduler } from './turn-scheduler.js';

/** Frames this large or larger are queued (ordinary frames are a few hundred bytes). */
export const HEAVY_FRAME_BYTES = 4096;

/** A shard's heavy client frames; see the header comment. */
export class HeavyFrames {
  /** Frames a connection may have waiting: past it, it sends faster than any limit lets it (close 4002). */
  private readonly maxWaiting: number;

  constructor(
    private readonly ctx: RequestContext,
    private readonly limits: ClientLimits,
    private readonly scheduler: TurnScheduler,
  ) {
    this.maxWaiting = 2 * ctx.config.rateLimitBurst;
  }

  /** True when the message must queue: it is heavy, or the connection already has frames waiting. */
  mustQueue(conn: Connection, byteLength: number): boolean {
    return byteLength >= HEAVY_FRAME_BYTES || this.scheduler.has(conn);
  }

  /** Judges the message now and queues a copy of it (`message` is only valid during the uWS callback). */
  push(conn: Connection, message: ArrayBuffer, isBinary: boolean, now: number): void {
    const verdict = rateVerdict(this.ctx, conn, isBinary, now);
    if (verdict === null) return;
    if (this.scheduler.waiting(conn) >= this.maxWaiting) {
      this.scheduler.drop(conn);
      failConnection(conn, CloseCode.RateLimited, `too many frames waiting to be handled (${this.maxWaiting}): slow down`);
      return;
    }
    const bytes = new Uint8Array(message).slice();
    const arrivedUs = nowUs();
    this.scheduler.run(conn, () => {
      if (!conn.closed) handleFrame(this.ctx, this.limits, conn, bytes, verdict, arrivedUs);
    });
  }

  /** Forgets a closed connection's frames (they would be refused anyway). */
  drop(conn: Connection): void {
    this.scheduler.drop(conn);
  }
}
