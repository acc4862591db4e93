/**
 * A shard's part of a graceful shutdown or of a one-shard drain (docs/architecture.md,
 * "Drain and shutdown"): the caller stops accepting; this sends the clients their
 * go-aways spread evenly over a window (`spreadMs`, in a random order), so the
 * reconnect wave reaching the other instances is a steady trickle rather than a
 * spike; each go-away carries the connection's resume points and a jittered
 * reconnect delay (a lagging client gets it ahead of its backlog). A client keeps
 * being served normally until its turn comes. Each socket that got its go-away is
 * closed with 1001 once its buffered frames drained; at the deadline whatever is
 * left is closed and counted (the primary then exits non-zero). The caller closes
 * the App.
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

/** How one drain runs (the `drain` message from the primary). */
export interface DrainPlan {
  /** Epoch ms by which every connection is closed, drained or not. */
  readonly deadline: number;
  /** Window (ms) over which go-aways are sent; cut to what is left before the deadline. */
  readonly spreadMs: number;
  /** Each go-away's reconnect delay is random in [0, this]. */
  readonly goAwayMaxDelayMs: number;
  /** `goaway.reason`, for clients' logs. */
  readonly reason: string;
}

/**
 * When the go-away of the i-th of `count` connections is due, in ms after the drain
 * started: evenly spaced over `spreadMs`, the first at once.
 */
export function goAwayOffset(i: number, count: number, spreadMs: number): number {
  return count <= 1 ? 0 : Math.floor((i * spreadMs) / count);
}

/** Sends go-aways spread over `plan.spreadMs` and closes every connection once drained or at `plan.deadline`. */
export async function drainConnections(registry: Registry, plan: DrainPlan, lowWater: number): Promise<DrainOutcome> {
  const started = Date.now();
  const spreadMs = Math.max(0, Math.min(plan.spreadMs, plan.deadline - started));
  const conns = shuffle([...registry.connections.values()]);
  let next = 0;
  // Got their go-away (or were never greeted), waiting for their buffer to empty.
  let leaving: Connection[] = [];
  while (Date.now() < plan.deadline) {
    const elapsed = Date.now() - started;
    while (next < conns.length && goAwayOffset(next, conns.length, spreadMs) <= elapsed) {
      const conn = conns[next++]!;
      if (conn.closed) continue;
      sendGoAway(conn, plan);
      leaving.push(conn);
    }
    for (const conn of leaving) {
      if (conn.closed) continue;
      if (conn.queue !== null) pumpQueue(conn, lowWater);
      if (conn.queue === null && conn.ws.getBufferedAmount() === 0) conn.end(CloseCode.GoingAway, 'going away');
    }
    leaving = leaving.filter((c) => !c.closed);
    if (next >= conns.length && leaving.length === 0) break;
    const untilNext = next < conns.length ? goAwayOffset(next, conns.length, spreadMs) - (Date.now() - started) : POLL_MS;
    await new Promise((r) => setTimeout(r, Math.max(1, Math.min(POLL_MS, untilNext, plan.deadline - Date.now()))));
  }
  // Deadline: whoever is left is closed now, with a go-away first if its turn never came.
  let forced = 0;
  for (const conn of [...leaving, ...conns.slice(next)]) {
    if (conn.closed) continue;
    if (!conn.goAwaySent) sendGoAway(conn, plan);
    conn.end(CloseCode.GoingAway, 'going away (drain deadline)');
    forced += 1;
  }
  return { connections: conns.length, forced };
}

/**
 * Sends one connection its go-away. A connection not greeted yet has nothing to
 * resume and is just closed (1001).
 */
function sendGoAway(conn: Connection, plan: DrainPlan): void {
  if (!conn.admitted) {
    conn.end(CloseCode.GoingAway, 'going away');
    return;
  }
  // A lagging connection would read a go-away at the end of its queue only after
  // the whole backlog, likely past the deadline: it gets it now, right behind what
  // uWS already holds, with the position of the last frame handed to uWS; its
  // queue is dropped and it resumes the rest from history.
  const lagging = conn.queue !== null;
  const goaway: GoAwayFrame = {
    t: 'goaway',
    reason: plan.reason,
    delay: Math.floor(Math.random() * (plan.goAwayMaxDelayMs + 1)),
    pos: resumePoints(conn, lagging),
  };
  conn.goAwaySent = true;
  if (lagging) stopDelivery(conn, 'go_away');
  conn.sendNow(encodeServerFrame(goaway));
}

/** Fisher–Yates, in place: go-aways go out in no particular order (not oldest connections first). */
function shuffle<T>(items: T[]): T[] {
  for (let i = items.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [items[i], items[j]] = [items[j]!, items[i]!];
  }
  return items;
}
