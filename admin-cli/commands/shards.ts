/** `shardcast-admin shards`: per-shard figures of one instance. */
import { AdminClient } from '../admin-client.js';
import { expectReply, type ShardsReply } from '../admin-replies.js';
import { parseFlags, type Command } from '../command.js';
import { bytes, table } from '../table.js';
import { view, VIEW_FLAGS, VIEW_USAGE } from '../view.js';

const usage = `Usage: shardcast-admin shards [--json] [--watch [--interval N]]

Per-shard figures (GET /v1/admin/shards): connections, sessions, live frames and
bytes delivered since the shard started, bytes buffered for sockets, lagging
sockets, slow-consumer cuts, event-loop delay (p99 since the previous look) and heap.

${VIEW_USAGE}

Environment: SHARDCAST_ADMIN_URL (default http://127.0.0.1:9090), SHARDCAST_ADMIN_TOKEN.`;

function render(r: ShardsReply): string {
  const rows = r.shards.map((s) => [
    s.shard,
    s.connections,
    s.sessions,
    s.counters.framesDelivered,
    bytes(s.counters.bytesDelivered),
    bytes(s.bufferedBytes),
    s.laggingSockets,
    s.counters.slowConsumerCuts,
    s.eventLoopDelayP99Ms.toFixed(1),
    bytes(s.heapUsedBytes),
    s.draining ? 'draining' : 'serving',
  ]);
  const missing = r.unanswered.map((u) => `shard ${u.shard}: no answer (${u.error})`);
  return [`instance ${r.instance}`, table(['SHARD', 'CONNS', 'SESSIONS', 'FRAMES_OUT', 'BYTES_OUT', 'BUFFERED', 'LAGGING', 'SLOW_CUTS', 'LOOP_P99_MS', 'HEAP', 'STATE'], rows), ...missing].join('\n');
}

/** The shards verb. */
export const shardsCommand: Command = {
  name: 'shards',
  summary: 'per-shard figures: connections, sessions, frames out, buffers, lag, heap',
  usage,
  async run(args, io) {
    const flags = parseFlags(args, VIEW_FLAGS);
    const client = new AdminClient(io.env, io.signal);
    return view(io, flags, async () => expectReply<ShardsReply>(await client.get('/v1/admin/shards'), 'shards', ['instance'], ['shards', 'unanswered']), render);
  },
};
