/** `shardcast-admin kick`: closes a user's connections, or one connection, with 4505 Kicked. */
import { AdminClient } from '../admin-client.js';
import { expectReply, type KickReply } from '../admin-replies.js';
import { UsageError } from '../cli-errors.js';
import { parseFlags, type Command } from '../command.js';

const usage = `Usage: shardcast-admin kick (--user U | --conn ID) [--reason TEXT] [--json]

Closes every connection of user U on this instance, or the connection ID, with close
code 4505 Kicked (POST /v1/admin/kick). The SDK does not reconnect after 4505. The
call is logged and, with Postgres configured, stored in admin_audit.

  --user U          every connection of this user
  --conn ID         one connection (ids: shardcast-admin conns)
  --reason TEXT     sent as the close reason (at most 100 characters; default "kicked by an admin")
  --json            print the API's answer as JSON

Exit code 5 when no open connection matched.
Environment: SHARDCAST_ADMIN_URL (default http://127.0.0.1:9090), SHARDCAST_ADMIN_TOKEN.`;

/** The kick verb. */
export const kickCommand: Command = {
  name: 'kick',
  summary: 'close a user\'s connections or one connection with 4505 Kicked',
  usage,
  async run(args, io) {
    const flags = parseFlags(args, { user: { type: 'string' }, conn: { type: 'string' }, reason: { type: 'string' }, json: { type: 'boolean' } });
    if ((flags.user === undefined) === (flags.conn === undefined)) throw new UsageError('give exactly one of --user and --conn');
    if (flags.reason !== undefined && (flags.reason === '' || flags.reason.length > 100)) throw new UsageError('--reason must be 1 to 100 characters');
    const client = new AdminClient(io.env, io.signal);
    const body = { ...(flags.user !== undefined ? { user: flags.user } : { conn: flags.conn }), ...(flags.reason !== undefined ? { reason: flags.reason } : {}) };
    const reply = expectReply<KickReply>(await client.post('/v1/admin/kick', body), 'kick', ['closeCode'], ['kicked']);
    if (flags.json) io.stdout(JSON.stringify(reply));
    else io.stdout(`kicked ${reply.kicked.length} connection(s) with ${reply.closeCode}: ${reply.kicked.map((c) => `${c.conn} (${c.user}, shard ${c.shard})`).join(', ')}`);
    return 0;
  },
};
