/**
 * Idle connections (SPEC.md §13): a client that sends nothing — no frame, no
 * WebSocket ping or pong — for `idleTimeoutS` seconds is closed with 1000 Normal and
 * a reason saying why. uWS's own idle timeout cannot do that: it drops the socket
 * without a close frame, which the client sees as 1006 (and reconnects, although
 * the server meant it to go). So uWS's timeout is off and this watch, run by the
 * shard's sweep, does the job: after half the timeout of silence it pings (standard
 * WebSocket stacks answer on their own, so a live client never idles out); after the
 * whole timeout it closes. After that close, uWS gives the client a few seconds to
 * answer the close frame before it drops the socket, so dead peers do not linger.
 */
import { CloseCode } from '../../protocol/codes.js';
import type { Connection } from './connection.js';

/** How often the watch looks at every connection: the precision of the idle close. */
export const IDLE_CHECK_MS = 250;

/** Tracks when each connection was last heard from; see the header comment. */
export class IdleWatch {
  private nextCheckAt = 0;
  /** Connections closed for idling, for the shard's counters. */
  idleClosed = 0;

  /** `idleTimeoutS` > 0: the silence after which a connection is closed. */
  constructor(readonly idleTimeoutS: number) {}

  /** Records that the client sent something (a message, a ping or a pong) at `now` (ms). */
  heard(conn: Connection, now: number): void {
    conn.heardAt = now;
  }

  /** Pings connections silent for half the timeout and closes those silent for all of it; runs at most every IDLE_CHECK_MS. */
  sweep(connections: Iterable<Connection>, now: number): void {
    if (now < this.nextCheckAt) return;
    this.nextCheckAt = now + IDLE_CHECK_MS;
    const timeoutMs = this.idleTimeoutS * 1000;
    for (const conn of connections) {
      // A connection sent a go-away is closed by the drain, with 1001 (reconnect); one
      // cut off as a slow consumer, by the buffer policy with 4001.
      if (conn.closed || conn.cutAt > 0 || conn.goAwaySent) continue;
      const heardAt = conn.heardAt;
      if (heardAt === 0) {
        conn.heardAt = now;
        continue;
      }
      const silentMs = now - heardAt;
      if (silentMs >= timeoutMs) {
        this.idleClosed++;
        conn.end(CloseCode.Normal, `idle for ${this.idleTimeoutS} s: send a frame (or answer pings) more often to stay connected`);
      } else if (silentMs >= timeoutMs / 2 && conn.pingedAt <= heardAt) {
        // `<=`: a pong heard in the very millisecond of its ping (loopback) still counts;
        // with `<` the connection was never pinged again and closed as idle.
        conn.pingedAt = now;
        conn.ws.cork(() => conn.ws.ping());
      }
    }
  }
}
