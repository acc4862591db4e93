/**
 * A shard's part of a graceful shutdown (docs/architecture.md, "Drain and shutdown"):
 * stop accepting, send every client a go-away with its resume points and a
 * jittered reconnect delay (a lagging client at once, ahead of its backlog), let
 * each socket's buffered frames drain, close it with 1001, and at the deadline close
 * whatever is left and report how many (the primary then exits non-zero). The
 * caller closes the App.
 */
import { encodeServerFrame } from '../../protocol/codec.js';
import { CloseCode } from '../../protocol/codes.js';
import type { GoAwayFrame, ResumePoint } from '../../protocol/frames.js';
import type { Connection } from './connection.js';
import { pumpQueue, stopDelivery } from './delivery.js';
import type { Registry } from './registry.js';

const POLL_MS = 20;

/**
 * Where a connection is in each joined session, for its go-away frame (SPEC.md §14):
 * the highest seq routed to this shard for the session, or handed to this socket
 * if higher. That may be an event the client never gets (addressed to other users,
 * or conflated away); what matters is that the go-away is queued behind every frame
 * routed so far, on the topic or in the lag queue, so a client reading it already
 * holds every event up to that seq it is entitled to, and resuming from it skips
 * nothing. Sessions still joining are left out (no `joined` yet, nothing to resume).
 */
export function resumePoints(conn: Connection, handedOnly = false): ResumePoint[] {
  const out: ResumePoint[] = [];
  for (const [s, m] of conn.memberships) {
    if (m.state !== 'joined') continue;
    out.push({ s, ep: m.session.epoch, seq: handedOnly ? m.lastSeq : Math.max(m.lastSeq, m.session.lastSeq) });
  }
  return out;
}

/** Result of draining a shard's connections. */
export interface DrainOutcome {
  connections: number;
  /** Connections closed at the deadline with frames still buffered. */
  forced: number;
}

/** Sends go-aways and closes every connection once drained or at `deadline`. */
export async function drainConnections(registry: Registry, deadline: number, goAwayMaxDelayMs: number, lowWater: number): Promise<DrainOutcome> {
  const conns = [...registry.connections.values()];
  for (const conn of conns) {
    if (!conn.admitted) {
      // Not greeted yet: nothing to resume, just send it elsewhere.
      conn.end(CloseCode.GoingAway, 'going away');
      continue;
    }
    // A lagging connection would read a go-away at the end of its queue only after
    // the whole backlog, likely past the deadline: it gets it now, right behind what
    // uWS already holds, with the position of the last frame handed to uWS; its
    // queue is dropped and it resumes the rest from history.
    const lagging = conn.queue !== null;
    const goaway: GoAwayFrame = {
      t: 'goaway',
      reason: 'server shutting down',
      delay: Math.floor(Math.random() * (goAwayMaxDelayMs + 1)),
      pos: resumePoints(conn, lagging),
    };
    conn.goAwaySent = true;
    if (lagging) stopDelivery(conn);
    conn.sendNow(encodeServerFrame(goaway));
  }
  let open = conns.filter((c) => !c.closed);
  while (open.length > 0 && Date.now() < deadline) {
    for (const conn of open) {
      if (conn.queue !== null) pumpQueue(conn, lowWater);
      if (conn.queue === null && conn.ws.getBufferedAmount() === 0) conn.end(CloseCode.GoingAway, 'going away');
    }
    open = open.filter((c) => !c.closed);
    if (open.length > 0) await new Promise((r) => setTimeout(r, POLL_MS));
  }
  for (const conn of open) conn.end(CloseCode.GoingAway, 'going away (drain deadline)');
  return { connections: conns.length, forced: open.length };
}
