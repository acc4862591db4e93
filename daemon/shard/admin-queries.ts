/**
 * A shard's answers to the admin API's queries (admin/shard-query.ts): its figures,
 * its sessions, its connections, and kicking connections (4505). Runs on the shard
 * thread, reads the registry and the buffer policy; the primary gathers the answers
 * of every shard (admin/shard-queries.ts).
 */
import { monitorEventLoopDelay, type IntervalHistogram } from 'node:perf_hooks';
import { getHeapStatistics } from 'node:v8';
import { CloseCode } from '../../protocol/codes.js';
import type { ConnectionFigures, ConnectionFilter, ShardQueries, ShardQuery, ShardStats } from '../admin/shard-query.js';
import type { Connection } from './connection.js';
import { stopDelivery } from './delivery.js';
import type { Registry } from './registry.js';
import { snapshotCounters } from './shard-counters.js';
import type { BufferPolicy } from './slow-consumers.js';

/**
 * Sampling period of the event-loop delay monitor; its samples include this period,
 * which is taken off. Each sample wakes the shard's loop: at 20 ms the monitors (with
 * prom-client's below) made an idle daemon use about a third more CPU. A stall is
 * still measured whole, only sampled less often.
 */
const LOOP_DELAY_RESOLUTION_MS = 100;

/** What the answers read from the shard. */
export interface AdminQueryContext {
  shardId: number;
  registry: Registry;
  policy: BufferPolicy;
  draining(): boolean;
}

/** Answers admin queries for one shard; owns the event-loop delay monitor (stop() ends it). */
export class AdminQueryHandler {
  private readonly loopDelay: IntervalHistogram = monitorEventLoopDelay({ resolution: LOOP_DELAY_RESOLUTION_MS });

  constructor(private readonly ctx: AdminQueryContext) {
    this.loopDelay.enable();
  }

  /** Stops the event-loop delay monitor (the shard is stopping). */
  stop(): void {
    this.loopDelay.disable();
  }

  /** Answers one query. */
  answer(query: ShardQuery): ShardQueries[ShardQuery['name']]['result'] {
    switch (query.name) {
      case 'stats':
        return this.stats();
      case 'sessions':
        return [...this.ctx.registry.sessions.values()].map((s) => ({
          session: s.id,
          subscribers: s.members.size,
          joining: s.pending.size,
          lagging: s.lagging.size,
          seq: s.lastSeq,
          epoch: s.epoch,
        }));
      case 'connections': {
        const matching = this.matching(query.args.filter);
        return { total: matching.length, connections: matching.slice(0, query.args.limit).map((c) => this.figures(c, Date.now())) };
      }
      case 'kick': {
        const now = Date.now();
        const kicked: ConnectionFigures[] = [];
        for (const conn of this.matching(query.args.filter)) {
          if (conn.closed) continue;
          kicked.push(this.figures(conn, now));
          this.ctx.registry.counters.kicked++;
          // A close frame queued behind a lag queue's backlog could be lost (the
          // client would see 1006 and reconnect): drop the queue first.
          if (conn.queue !== null) stopDelivery(conn, 'kicked');
          conn.end(CloseCode.Kicked, query.args.reason);
        }
        return { kicked };
      }
    }
  }

  private stats(): ShardStats {
    const { registry, policy, shardId } = this.ctx;
    let bufferedBytes = 0;
    let laggingSockets = 0;
    for (const conn of registry.connections.values()) {
      if (conn.closed) continue;
      bufferedBytes += conn.ws.getBufferedAmount() + (conn.queue?.bytes ?? 0);
      if (conn.queue !== null) laggingSockets++;
    }
    const h = this.loopDelay;
    const ms = (ns: number) => (Number.isFinite(ns) ? Math.max(0, Math.round(ns / 1e4) / 100 - LOOP_DELAY_RESOLUTION_MS) : 0);
    const stats: ShardStats = {
      shard: shardId,
      connections: registry.connections.size,
      sessions: registry.sessions.size,
      bufferedBytes,
      laggingSockets,
      eventLoopDelayMeanMs: h.count > 0 ? ms(h.mean) : 0,
      eventLoopDelayP99Ms: h.count > 0 ? ms(h.percentile(99)) : 0,
      eventLoopDelayMaxMs: h.count > 0 ? ms(h.max) : 0,
      heapUsedBytes: 0,
      heapTotalBytes: 0,
      draining: this.ctx.draining(),
      counters: snapshotCounters(registry.counters, {
        slowConsumerCuts: policy.slowClosed,
        lagStarted: policy.lagStarted,
        tokenExpired: policy.expiredClosed,
        idleClosed: policy.idleClosed,
      }),
    };
    const heap = getHeapStatistics();
    stats.heapUsedBytes = heap.used_heap_size;
    stats.heapTotalBytes = heap.total_heap_size;
    // A window per answer: the figures say how the loop did since the last look.
    h.reset();
    return stats;
  }

  /** Connections matching every field of the filter (none: all of them). */
  private matching(filter: ConnectionFilter): Connection[] {
    const { registry } = this.ctx;
    let candidates: Iterable<Connection>;
    if (filter.conn !== undefined) {
      const one = registry.connections.get(filter.conn);
      candidates = one === undefined ? [] : [one];
    } else if (filter.user !== undefined) {
      candidates = registry.byUser(filter.user) ?? [];
    } else if (filter.session !== undefined) {
      candidates = registry.sessions.get(filter.session)?.members ?? [];
    } else {
      candidates = registry.connections.values();
    }
    const out: Connection[] = [];
    for (const conn of candidates) {
      if (filter.user !== undefined && conn.principal.user !== filter.user) continue;
      if (filter.session !== undefined && !conn.memberships.has(filter.session)) continue;
      out.push(conn);
    }
    return out;
  }

  private figures(conn: Connection, now: number): ConnectionFigures {
    const closed = conn.closed;
    return {
      conn: conn.id,
      user: conn.principal.user,
      shard: this.ctx.shardId,
      sessions: [...conn.memberships.keys()],
      bufferedBytes: closed ? 0 : conn.ws.getBufferedAmount() + (conn.queue?.bytes ?? 0),
      lagging: conn.queue !== null,
      idleMs: conn.heardAt > 0 ? Math.max(0, now - conn.heardAt) : null,
    };
  }
}
