/**
 * The per-shard sweep that enforces the outgoing-buffer bound (DESIGN.md,
 * "Backpressure and slow clients"). Every tick it looks at each connection's
 * pending bytes (uWS buffer + lag queue):
 * - past `maxBufferBytes`: close with 4001 SlowConsumer while uWS still has room
 *   for the close frame (its own hard limit is twice ours);
 * - past a quarter of it: move the connection to the lagging path (delivery.ts),
 *   where conflatable frames replace older ones instead of piling up;
 * - a lagging connection whose uWS buffer emptied gets its queue pumped (uWS only
 *   emits `drain` for writes it had to buffer).
 * It also closes connections whose token expired (4004).
 */
import { CloseCode } from '../../protocol/codes.js';
import type { Connection } from './connection.js';
import { pumpQueue, startLagging } from './delivery.js';
import type { Registry } from './registry.js';

/** Sweep period. Between sweeps uWS's own limit (2× ours) is the backstop. */
export const SWEEP_INTERVAL_MS = 50;

/** Counters of what sweeps did, for logs and metrics. */
export interface SweepStats {
  slowClosed: number;
  expiredClosed: number;
}

/** Starts the sweep; returns a function that stops it. */
export function startSlowConsumerSweep(registry: Registry, maxBufferBytes: number, stats: SweepStats): () => void {
  const lagAt = maxBufferBytes / 4;
  const lowWater = Math.max(16 * 1024, maxBufferBytes / 8);
  const sweep = () => {
    const nowS = Date.now() / 1000;
    for (const conn of registry.connections.values()) {
      if (conn.closed) continue;
      if (conn.principal.exp !== undefined && nowS >= conn.principal.exp) {
        stats.expiredClosed++;
        conn.end(CloseCode.TokenExpired, 'token expired: reconnect with a fresh token');
        continue;
      }
      checkConnection(conn, maxBufferBytes, lagAt, lowWater, stats);
    }
  };
  const timer = setInterval(sweep, SWEEP_INTERVAL_MS);
  return () => clearInterval(timer);
}

function checkConnection(conn: Connection, max: number, lagAt: number, lowWater: number, stats: SweepStats): void {
  const buffered = conn.ws.getBufferedAmount();
  const pending = buffered + (conn.queue?.bytes ?? 0);
  if (pending > max) {
    stats.slowClosed++;
    conn.queue = null;
    conn.end(CloseCode.SlowConsumer, 'slow consumer: outgoing buffer limit reached, reconnect and resume');
    return;
  }
  if (conn.queue === null) {
    if (buffered > lagAt) startLagging(conn);
  } else if (buffered < lowWater) {
    pumpQueue(conn, lowWater);
  }
}
