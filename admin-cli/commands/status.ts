/** `shardcast-admin status`: one instance's status, or with --cluster every registered instance. */
import { AdminClient } from '../admin-client.js';
import { expectReply, type InstancesReply, type StatusReply } from '../admin-replies.js';
import { parseFlags, type Command } from '../command.js';
import { duration, table } from '../table.js';
import { view, VIEW_FLAGS, VIEW_USAGE } from '../view.js';

const usage = `Usage: shardcast-admin status [--cluster] [--json] [--watch [--interval N]]

Shows the instance's version, engine, uptime, readiness, drain state, shards and
connections (GET /v1/admin/status).

  --cluster         every instance registered in Redis (Redis engine), each asked
                    for its status at its admin address, with the totals
${VIEW_USAGE}

Environment: SHARDCAST_ADMIN_URL (default http://127.0.0.1:9090), SHARDCAST_ADMIN_TOKEN.`;

/** One instance of the cluster view: its registry entry and its status, when it answered. */
interface ClusterRow {
  instance: string;
  admin: string;
  version: string;
  heartbeatAt: string | null;
  status: StatusReply | null;
  error: string | null;
}

function renderStatus(s: StatusReply): string {
  const state = s.draining ? 'draining' : s.ready ? 'ready' : 'not ready';
  return [
    `instance     ${s.instance}`,
    `version      ${s.version}`,
    `engine       ${s.engine}`,
    `state        ${state}`,
    `uptime       ${duration(s.uptimeS)} (since ${s.startedAt})`,
    `client port  ${s.port}`,
    `shards       ${s.shards.live} live of ${s.shards.configured}`,
    `connections  ${s.connections}`,
    `sessions     ${s.streamedSessions} streamed`,
  ].join('\n');
}

function renderCluster(rows: ClusterRow[]): string {
  const now = Date.now();
  const body = table(
    ['INSTANCE', 'ADMIN', 'VERSION', 'STATE', 'UPTIME', 'SHARDS', 'CONNS', 'HEARTBEAT'],
    rows.map((r) => [
      r.instance,
      r.admin,
      r.version,
      r.status === null ? `unreachable: ${r.error ?? ''}` : r.status.draining ? 'draining' : r.status.ready ? 'ready' : 'not ready',
      r.status === null ? '-' : duration(r.status.uptimeS),
      r.status === null ? '-' : `${r.status.shards.live}/${r.status.shards.configured}`,
      r.status === null ? '-' : r.status.connections,
      r.heartbeatAt === null ? '-' : `${Math.round((now - Date.parse(r.heartbeatAt)) / 1000)}s ago`,
    ]),
  );
  const conns = rows.reduce((n, r) => n + (r.status?.connections ?? 0), 0);
  return `${body}\n\n${rows.length} instance(s), ${conns} connection(s) in all`;
}

/** The status verb. */
export const statusCommand: Command = {
  name: 'status',
  summary: 'instance status (version, engine, uptime, draining); --cluster: every instance',
  usage,
  async run(args, io) {
    const flags = parseFlags(args, { ...VIEW_FLAGS, cluster: { type: 'boolean' } });
    const client = new AdminClient(io.env, io.signal);
    if (!flags.cluster) {
      return view(io, flags, async () => expectReply<StatusReply>(await client.get('/v1/admin/status'), 'status', ['instance', 'version', 'shards']), renderStatus);
    }
    return view(
      io,
      flags,
      async (): Promise<ClusterRow[]> => {
        const reply = expectReply<InstancesReply>(await client.get('/v1/admin/instances'), 'instances', ['registry'], ['instances']);
        return Promise.all(
          reply.instances.map(async (i): Promise<ClusterRow> => {
            // The instance answering is asked at the address we used; the others at theirs.
            const target = i.self ? client : i.admin !== undefined ? client.at(i.admin) : undefined;
            const row: ClusterRow = { instance: i.instance, admin: i.admin ?? client.base, version: i.version, heartbeatAt: i.heartbeatAt ?? null, status: null, error: null };
            if (target === undefined) return { ...row, error: 'no admin address' };
            try {
              return { ...row, status: expectReply<StatusReply>(await target.get('/v1/admin/status'), 'status', ['instance', 'shards']) };
            } catch (err) {
              return { ...row, error: err instanceof Error ? err.message : String(err) };
            }
          }),
        );
      },
      renderCluster,
    );
  },
};
