/**
 * The cluster view and the audit table against real services: two instances on
 * one Redis register themselves and `shardcast-admin status --cluster` lists both
 * with their connections; an instance that stops leaves the list. With Postgres, a
 * kick is stored in admin_audit.
 */
import t from 'tap';
import { RawClient } from '../support/raw-client.js';
import { startDaemon } from '../support/daemon-process.js';
import { redisEnv, startInstances } from '../support/instances.js';
import { REDIS_URL, uniquePrefix } from '../support/redis.js';
import { DATABASE_URL, connectTest, withSchema } from '../support/postgres.js';
import { admin, adminFetch, eventually } from '../support/admin-cli-process.js';

const TOKEN = 'cluster-test-token-0123456789';

interface ClusterRow {
  instance: string;
  admin: string;
  status: { connections: number; instance: string } | null;
  error: string | null;
}

t.test('status --cluster lists every instance on the Redis and aggregates them', async (t) => {
  const [a, b] = await startInstances(2, { ...redisEnv(REDIS_URL, uniquePrefix('admin-cluster')), SHARDCAST_ADMIN_TOKEN: TOKEN });
  t.teardown(() => Promise.all([a.stop(), b.stop()]));
  const clients = await Promise.all([
    ...[1, 2].map((i) => RawClient.connect(a.ws, { user: `a${i}` })),
    ...[1, 2, 3].map((i) => RawClient.connect(b.ws, { user: `b${i}` })),
  ]);
  t.teardown(() => Promise.all(clients.map((c) => c.close())));

  const rows = await eventually('both instances registered', async () => {
    const run = await admin(a, TOKEN, ['status', '--cluster', '--json']);
    if (run.code !== 0) throw new Error(run.stderr);
    const list = JSON.parse(run.stdout) as ClusterRow[];
    return list.length === 2 ? list : undefined;
  });
  t.same(rows.map((r) => r.error), [null, null], 'both answered at their registered admin address');
  t.same(rows.map((r) => r.admin).sort(), [`127.0.0.1:${a.adminPort}`, `127.0.0.1:${b.adminPort}`].sort());
  const byPort = new Map(rows.map((r) => [r.admin, r.status?.connections]));
  t.equal(byPort.get(`127.0.0.1:${a.adminPort}`), 2);
  t.equal(byPort.get(`127.0.0.1:${b.adminPort}`), 3);

  const human = await admin(b, TOKEN, ['status', '--cluster']);
  t.equal(human.code, 0, human.stderr);
  t.match(human.stdout, /2 instance\(s\), 5 connection\(s\) in all/);

  await b.stop();
  const after = JSON.parse((await adminFetch(a, TOKEN, '/v1/admin/instances')).text) as { registry: boolean; instances: Array<{ self: boolean }> };
  t.equal(after.registry, true);
  t.equal(after.instances.length, 1, 'a stopped instance leaves the registry');
  t.equal(after.instances[0].self, true);
});

t.test('with Postgres, mutating calls are stored in admin_audit', async (t) => {
  const schema = await withSchema(t);
  const daemon = await startDaemon({ SHARDCAST_ADMIN_TOKEN: TOKEN, SHARDCAST_DATABASE_URL: DATABASE_URL, SHARDCAST_DATABASE_SCHEMA: schema });
  t.teardown(() => daemon.stop());
  const client = await RawClient.connect(daemon.ws, { user: 'mallory' });
  t.teardown(() => client.close());
  const run = await admin(daemon, TOKEN, ['kick', '--user', 'mallory', '--reason', 'flooding']);
  t.equal(run.code, 0, run.stderr);
  const refused = await admin(daemon, TOKEN, ['drain', '--shard', '9']);
  t.equal(refused.code, 5);
  const sql = connectTest(t);
  const rows = await sql.unsafe(`select action, target, reason, outcome, instance from "${schema}".admin_audit order by id`);
  t.match(rows, [
    { action: 'kick', target: 'user:mallory', reason: 'flooding', outcome: 'kicked 1' },
    { action: 'drain', target: 'shard:9', outcome: /^refused: shard 9 is not running/ },
  ]);
});
