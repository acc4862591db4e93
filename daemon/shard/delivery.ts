/**
 * Fan-out of routed frames on a shard, and the lagging-client path.
 *
 * The fast path hands each frame once to the session's uWS topic: uWS writes it to
 * every subscribed socket, coalescing everything published in one turn into one
 * write per socket. Frames addressed to some users go to those users' sockets only.
 * Members still joining buffer the frame (replayed after their history); members
 * that lag get it through their own queue, where conflatable frames replace older
 * ones. A connection whose queue plus uWS buffer passes the bound is cut off with
 * 4001 by the buffer policy (slow-consumers.ts), never skipped silently.
 */
import { readFrameBatch, type RoutedFrame } from '../threads/frame-batch.js';
import type { App } from '../uws.js';
import type { Connection } from './connection.js';
import { nowUs as microClock } from './micro-clock.js';
import { OutboundQueue } from './outbound-queue.js';
import type { Registry } from './registry.js';
import type { BufferPolicy } from './slow-consumers.js';
import { shardDrops } from './shard-counters.js';

/** Delivers every entry of a batch from the primary, in order; resync markers go to `resync`. */
export function deliverBatch(
  app: App,
  registry: Registry,
  policy: BufferPolicy,
  batch: ArrayBuffer,
  nowUs: number,
  resync: (session: string, epoch: string, head: number) => void,
): void {
  readFrameBatch(batch, { frame: (msg) => deliverFrame(app, registry, policy, msg, nowUs), resync });
}

function deliverFrame(app: App, registry: Registry, policy: BufferPolicy, msg: RoutedFrame, nowUs: number): void {
  const session = registry.sessions.get(msg.session);
  if (session === undefined) return;
  if (msg.seq !== 0) {
    // The primary's stream never sends a seq twice; a shard that got one anyway
    // (a bug) drops it rather than deliver a duplicate to the whole topic.
    if (msg.seq <= session.lastSeq) {
      shardDrops.add('shard_duplicate', session.ns);
      return;
    }
    session.lastSeq = msg.seq;
    if (msg.to === undefined) {
      session.topicSeq = msg.seq;
      session.topicSeqAtUs = nowUs;
    }
  }
  for (const m of session.pending) m.buffered?.push(msg);
  if (msg.seq !== 0) registry.counters.deliveryLatency.observeFrame(msg.frame, nowUs / 1000);
  if (msg.to !== undefined) {
    for (const user of msg.to) {
      const conns = registry.byUser(user);
      if (conns === undefined) continue;
      for (const conn of conns) {
        if (conn.memberships.get(msg.session)?.state === 'joined') {
          conn.deliver(msg.frame, msg.session, msg.seq, msg.conflateKey);
          registry.counters.framesDelivered++;
          registry.counters.bytesDelivered += msg.frame.length;
        }
      }
    }
    return;
  }
  app.publish(msg.session, msg.frame, true);
  // Every joined member gets it (from the topic or its lag queue); joining ones later, in their replay.
  const recipients = session.members.size - session.pending.size;
  registry.counters.framesDelivered += recipients;
  registry.counters.bytesDelivered += recipients * msg.frame.length;
  for (const conn of session.lagging) conn.deliver(msg.frame, msg.session, msg.seq, msg.conflateKey);
  policy.published(session, msg.frame.length);
}

/**
 * Moves a connection to the lagging path: off its topics, onto its own queue. This
 * may run in the very turn frames were published to those topics and not yet
 * written to the socket; they still reach it because the socket keeps its anchor
 * topic (Connection.subscribe), and uWS writes them before anything sent later, so
 * they stay ahead of everything queued: no gap, order holds.
 */
export function startLagging(conn: Connection): void {
  if (conn.queue !== null || !conn.active) return;
  conn.queue = new OutboundQueue();
  for (const [id, m] of conn.memberships) {
    if (m.state !== 'joined') continue;
    // The topic delivered everything it carried up to now to this socket.
    if (m.session.topicSeq > m.lastSeq) {
      m.lastSeq = m.session.topicSeq;
      m.lastSeqAtUs = m.session.topicSeqAtUs;
    }
    conn.unsubscribe(id);
    m.session.lagging.add(conn);
  }
}

/**
 * Stops every frame for a connection being cut off (slow consumer), kicked, or sent
 * its go-away while lagging (drain): off its topics and lag paths, its queue dropped
 * (counted by `reason` and namespace). Frames already handed to uWS still go out
 * (the anchor topic keeps those published this turn), so what the client reads
 * before its close is a gap-free prefix of the stream it can resume after. Returns
 * how many queued frames were dropped.
 */
export function stopDelivery(conn: Connection, reason: 'slow_consumer' | 'go_away' | 'kicked'): number {
  const dropped = conn.queue?.discard(reason) ?? 0;
  conn.queue = null;
  for (const [id, m] of conn.memberships) {
    if (m.state !== 'joined') continue;
    if (!m.session.lagging.delete(conn)) conn.unsubscribe(id);
  }
  return dropped;
}

/**
 * Writes queued frames to uWS while its buffer stays under `lowWater`; when the
 * queue empties, puts the connection back on its topics. Called on uWS `drain`.
 */
export function pumpQueue(conn: Connection, lowWater: number): void {
  const queue = conn.queue;
  if (queue === null || !conn.active) return;
  const ws = conn.ws;
  const now = microClock();
  ws.cork(() => {
    while (ws.getBufferedAmount() < lowWater) {
      const item = queue.shift();
      if (item === undefined) break;
      ws.send(item.frame, true);
      const m = conn.memberships.get(item.session);
      if (m !== undefined && item.seq > m.lastSeq) {
        m.lastSeq = item.seq;
        m.lastSeqAtUs = now;
      }
    }
  });
  if (queue.length > 0) return;
  conn.queue = null;
  for (const [id, m] of conn.memberships) {
    if (m.state !== 'joined') continue;
    m.session.lagging.delete(conn);
    conn.subscribe(id);
  }
}
