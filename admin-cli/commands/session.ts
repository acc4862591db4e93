/** `shardcast-admin session ID`: one session in detail. */
import { AdminClient } from '../admin-client.js';
import { expectReply, type SessionReply } from '../admin-replies.js';
import { UsageError } from '../cli-errors.js';
import { parseFlagsAndArgs, type Command } from '../command.js';
import { bytes, table } from '../table.js';
import { view, VIEW_FLAGS, VIEW_USAGE } from '../view.js';

const usage = `Usage: shardcast-admin session ID [--json] [--watch [--interval N]]

One session (GET /v1/admin/sessions/ID): its position (epoch, head seq), events
held for resume, subscribers on this instance per shard, users present, and its
connections here. Exit code 5 when the session is unknown (no members here and no events).

${VIEW_USAGE}

Environment: SHARDCAST_ADMIN_URL (default http://127.0.0.1:9090), SHARDCAST_ADMIN_TOKEN.`;

function render(s: SessionReply): string {
  const perShard = Object.entries(s.perShard).map(([shard, n]) => `${shard}:${n}`).join(' ') || '-';
  const lines = [
    `session      ${s.session}`,
    `epoch        ${s.epoch}`,
    `head seq     ${s.head}`,
    `history      ${s.historyLength} event(s) held (at most ${s.historySize})`,
    `subscribers  ${s.subscribers} here (per shard ${perShard}; joining ${s.joining}, lagging ${s.lagging})`,
    `present      ${s.presence === null ? '-' : `${s.presence.total}${s.presence.users.length > 0 ? `: ${s.presence.users.join(', ')}` : ''}`}`,
  ];
  if (s.connections.length > 0) {
    lines.push('', table(['CONN', 'USER', 'SHARD', 'BUFFERED', 'LAGGING'], s.connections.map((c) => [c.conn, c.user, c.shard, bytes(c.bufferedBytes), c.lagging ? 'yes' : 'no'])));
  }
  return lines.join('\n');
}

/** The session verb. */
export const sessionCommand: Command = {
  name: 'session',
  summary: 'one session in detail: position, history, subscribers, presence, connections',
  usage,
  async run(args, io) {
    const { values: flags, positionals } = parseFlagsAndArgs(args, VIEW_FLAGS);
    if (positionals.length !== 1) throw new UsageError('give exactly one session id');
    const id = positionals[0];
    const client = new AdminClient(io.env, io.signal);
    return view(io, flags, async () => expectReply<SessionReply>(await client.get(`/v1/admin/sessions/${encodeURIComponent(id)}`), 'session', ['session', 'head'], ['connections']), render);
  },
};
