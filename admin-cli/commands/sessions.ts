/** `shardcast-admin sessions`: the sessions with members on one instance, largest first. */
import { AdminClient } from '../admin-client.js';
import { expectReply, type SessionsReply } from '../admin-replies.js';
import { parseCount, parseFlags, type Command } from '../command.js';
import { table } from '../table.js';
import { view, VIEW_FLAGS, VIEW_USAGE } from '../view.js';

const usage = `Usage: shardcast-admin sessions [--top N] [--json] [--watch [--interval N]]

Sessions with members on this instance, by subscribers (GET /v1/admin/sessions):
subscribers in all and per shard (shard:count), last seq and epoch, events held for
resume, and users present.

  --top N           the N largest sessions (default 20, at most 1000)
${VIEW_USAGE}

Environment: SHARDCAST_ADMIN_URL (default http://127.0.0.1:9090), SHARDCAST_ADMIN_TOKEN.`;

function render(r: SessionsReply): string {
  const rows = r.sessions.map((s) => [
    s.session,
    s.subscribers,
    Object.entries(s.perShard).map(([shard, n]) => `${shard}:${n}`).join(' '),
    s.seq,
    s.epoch,
    s.historyLength,
    s.presence === null ? '-' : String(s.presence),
  ]);
  const shown = r.sessions.length < r.total ? ` (the ${r.sessions.length} largest shown)` : '';
  return [table(['SESSION', 'SUBSCRIBERS', 'PER_SHARD', 'SEQ', 'EPOCH', 'HISTORY', 'PRESENT'], rows), '', `${r.total} session(s) with members on instance ${r.instance}${shown}`].join('\n');
}

/** The sessions verb. */
export const sessionsCommand: Command = {
  name: 'sessions',
  summary: 'sessions with members here, largest first (subscribers per shard, seq, epoch)',
  usage,
  async run(args, io) {
    const flags = parseFlags(args, { ...VIEW_FLAGS, top: { type: 'string' } });
    const top = flags.top === undefined ? undefined : parseCount(flags.top, '--top', 1);
    const client = new AdminClient(io.env, io.signal);
    return view(io, flags, async () => expectReply<SessionsReply>(await client.get('/v1/admin/sessions', { top }), 'sessions', ['total'], ['sessions']), render);
  },
};
