/**
 * A shard's counters for the admin API and /metrics: plain number fields the hot
 * path increments (no allocation, no labels), copied out when the primary asks
 * (shard/admin-queries.ts). One instance per shard thread, owned by its Registry so
 * every part of the shard that already holds the registry can count.
 */
import type { ShardCounterSnapshot } from '../admin/shard-query.js';

/** See the header comment; field meanings are documented on ShardCounterSnapshot. */
export class ShardCounters {
  framesDelivered = 0;
  bytesDelivered = 0;
  joins = 0;
  resumeRecovered = 0;
  resumeNotRecovered = 0;
  kicked = 0;
}

/** The counters the shard keeps elsewhere (buffer policy, idle watch, registry), merged with its own. */
export function snapshotCounters(
  own: ShardCounters,
  other: { conflated: number; slowConsumerCuts: number; lagStarted: number; tokenExpired: number; idleClosed: number; duplicatesDropped: number },
): ShardCounterSnapshot {
  return {
    framesDelivered: own.framesDelivered,
    bytesDelivered: own.bytesDelivered,
    joins: own.joins,
    resumeRecovered: own.resumeRecovered,
    resumeNotRecovered: own.resumeNotRecovered,
    kicked: own.kicked,
    ...other,
  };
}
