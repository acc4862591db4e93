/**
 * A shard's counters for the admin API and /metrics: plain number fields the hot
 * path increments (no allocation, no labels), copied out when the primary asks
 * (shard/admin-queries.ts). One instance per shard thread, owned by its Registry so
 * every part of the shard that already holds the registry can count; the refusals
 * below are counted where no registry is at hand, once per thread (module state is
 * per worker thread).
 */
import type { ShardCounterSnapshot } from '../admin/shard-query.js';
import { FrameDrops, SHARD_DROP_REASONS } from '../admin/frame-drops.js';
import { LatencyHistogram } from './delivery-latency.js';

/** See the header comment; field meanings are documented on ShardCounterSnapshot. */
export class ShardCounters {
  framesDelivered = 0;
  bytesDelivered = 0;
  joins = 0;
  resumeRecovered = 0;
  resumeNotRecovered = 0;
  kicked = 0;
  readonly deliveryLatency = new LatencyHistogram();
}

/** Refusals by code on this shard thread: error frames sent, connections closed by the server for what the client did, upgrades refused. */
export const refusals = {
  errorReplies: new Map<number, number>(),
  clientCloses: new Map<number, number>(),
  upgradesRefused: new Map<number, number>(),
};

/**
 * Frames this shard thread dropped, conflated or discarded, by reason and namespace
 * index (admin/frame-drops.ts). Module state like `refusals`: lag queues count
 * conflation without a registry at hand, and a queue's count outlives the queue.
 */
export const shardDrops = new FrameDrops(SHARD_DROP_REASONS);

/** Adds one to `code` in a refusal map (a new code allocates its entry once). */
export function countRefusal(map: Map<number, number>, code: number): void {
  map.set(code, (map.get(code) ?? 0) + 1);
}

const asRecord = (map: Map<number, number>): Record<string, number> => Object.fromEntries([...map].map(([k, v]) => [String(k), v]));

/** The counters the shard keeps elsewhere (buffer policy, idle watch, registry), merged with its own. */
export function snapshotCounters(
  own: ShardCounters,
  other: { slowConsumerCuts: number; lagStarted: number; tokenExpired: number; idleClosed: number },
): ShardCounterSnapshot {
  return {
    framesDelivered: own.framesDelivered,
    bytesDelivered: own.bytesDelivered,
    joins: own.joins,
    resumeRecovered: own.resumeRecovered,
    resumeNotRecovered: own.resumeNotRecovered,
    kicked: own.kicked,
    deliveryLatency: own.deliveryLatency.snapshot(),
    errorReplies: asRecord(refusals.errorReplies),
    clientCloses: asRecord(refusals.clientCloses),
    upgradesRefused: asRecord(refusals.upgradesRefused),
    conflated: shardDrops.total('conflated'),
    duplicatesDropped: shardDrops.total('shard_duplicate'),
    drops: shardDrops.snapshot(),
    ...other,
  };
}
