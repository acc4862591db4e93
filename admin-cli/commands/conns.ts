/** `shardcast-admin conns`: connections of one instance, by session or user. */
import { AdminClient } from '../admin-client.js';
import { expectReply, type ConnectionsReply } from '../admin-replies.js';
import { UsageError } from '../cli-errors.js';
import { parseCount, parseFlags, type Command } from '../command.js';
import { bytes, table } from '../table.js';
import { view, VIEW_FLAGS, VIEW_USAGE } from '../view.js';

const usage = `Usage: shardcast-admin conns [--session S | --user U] [--limit N] [--json] [--watch [--interval N]]

Connections on this instance (GET /v1/admin/connections): id, user, shard, sessions,
bytes buffered, lagging, and how long since the client last sent anything.

  --session S       connections that joined session S
  --user U          connections of user U
  --limit N         list at most N (default 100); the total is always counted
${VIEW_USAGE}

Environment: SHARDCAST_ADMIN_URL (default http://127.0.0.1:9090), SHARDCAST_ADMIN_TOKEN.`;

function render(r: ConnectionsReply): string {
  const rows = r.connections.map((c) => [c.conn, c.user, c.shard, c.sessions.join(',') || '-', bytes(c.bufferedBytes), c.lagging ? 'yes' : 'no', c.idleMs === null ? '-' : `${Math.round(c.idleMs / 1000)}s`]);
  const shown = r.connections.length < r.total ? ` (${r.connections.length} shown)` : '';
  return [table(['CONN', 'USER', 'SHARD', 'SESSIONS', 'BUFFERED', 'LAGGING', 'IDLE'], rows), '', `${r.total} connection(s)${shown}`].join('\n');
}

/** The conns verb. */
export const connsCommand: Command = {
  name: 'conns',
  summary: 'connections here, by session or user',
  usage,
  async run(args, io) {
    const flags = parseFlags(args, { ...VIEW_FLAGS, session: { type: 'string' }, user: { type: 'string' }, limit: { type: 'string' } });
    if (flags.session !== undefined && flags.user !== undefined) throw new UsageError('give at most one of --session and --user');
    const limit = flags.limit === undefined ? undefined : parseCount(flags.limit, '--limit', 1);
    const client = new AdminClient(io.env, io.signal);
    const query = { session: flags.session, user: flags.user, limit };
    return view(io, flags, async () => expectReply<ConnectionsReply>(await client.get('/v1/admin/connections', query), 'connections', ['total'], ['connections']), render);
  },
};
