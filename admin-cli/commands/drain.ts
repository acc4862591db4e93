/** `shardcast-admin drain`: drains the instance (as SIGTERM does) or one of its shards. */
import { AdminClient } from '../admin-client.js';
import { expectReply, type DrainReply } from '../admin-replies.js';
import { parseCount, parseFlags, type Command } from '../command.js';

const usage = `Usage: shardcast-admin drain [--shard N] [--reason TEXT] [--json]

Without --shard: drains the whole instance, exactly as SIGTERM does — readiness
goes to 503, clients get their go-away with resume points, and the process exits
once they are gone (POST /v1/admin/drain).
With --shard N: only shard N stops taking connections (the kernel sends new ones to
the other shards), sends its clients their go-away and ends; it is not restarted
until the instance restarts. The last serving shard cannot be drained this way.
Both are logged and, with Postgres configured, stored in admin_audit.

  --shard N         drain only this shard (ids: shardcast-admin shards)
  --reason TEXT     recorded in the audit trail
  --json            print the API's answer as JSON

Exit code 5 when shard N is not running.
Environment: SHARDCAST_ADMIN_URL (default http://127.0.0.1:9090), SHARDCAST_ADMIN_TOKEN.`;

/** The drain verb. */
export const drainCommand: Command = {
  name: 'drain',
  summary: 'drain the instance (like SIGTERM), or one shard with --shard N',
  usage,
  async run(args, io) {
    const flags = parseFlags(args, { shard: { type: 'string' }, reason: { type: 'string' }, json: { type: 'boolean' } });
    const shard = flags.shard === undefined ? undefined : parseCount(flags.shard, '--shard');
    const client = new AdminClient(io.env, io.signal);
    const body = { ...(shard !== undefined ? { shard } : {}), ...(flags.reason !== undefined ? { reason: flags.reason } : {}) };
    const reply = expectReply<DrainReply>(await client.post('/v1/admin/drain', body), 'drain', ['draining']);
    if (flags.json) io.stdout(JSON.stringify(reply));
    else io.stdout(reply.draining === 'shard' ? `shard ${reply.shard} of instance ${reply.instance} is draining` : `instance ${reply.instance} is draining; it exits once its clients are gone`);
    return 0;
  },
};
