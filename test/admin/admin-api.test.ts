/**
 * The admin API and shardcast-admin against a real daemon (standalone engine,
 * dev mode for ?user= clients, an admin token set so the API requires it):
 * authentication, the API's absence from the client port, a taken admin port, and
 * live figures of shards, sessions and connections for known numbers of clients.
 */
import t from 'tap';
import { admin, adminFetch, adminJson, daemonWithToken, members, TOKEN } from '../support/admin-cli-process.js';
import type { ConnectionsReply, SessionsReply, ShardsReply } from '../../admin-cli/admin-replies.js';

t.test('the admin API refuses requests without the token or with a wrong one, and is not served on the client port', async (t) => {
  const daemon = await daemonWithToken(t);
  t.not(daemon.adminPort, 0, 'the admin listener has its own port');
  t.not(daemon.adminPort, daemon.port);
  for (const path of ['/v1/admin/status', '/v1/admin/shards', '/metrics']) {
    const none = await adminFetch(daemon, undefined, path);
    t.equal(none.status, 401, `${path} without a token: 401`);
    t.match(JSON.parse(none.text), { error: { code: 'unauthorized' } });
    const wrong = await adminFetch(daemon, 'admin-test-token-0123456788', path);
    t.equal(wrong.status, 401, `${path} with a wrong token of the same length: 401`);
    const short = await adminFetch(daemon, 'x', path);
    t.equal(short.status, 401, `${path} with a short wrong token: 401`);
  }
  const kick = await adminFetch(daemon, 'wrong', '/v1/admin/kick', { method: 'POST', body: { user: 'x' } });
  t.equal(kick.status, 401, 'a mutating call without the right token: 401');
  t.equal((await adminFetch(daemon, TOKEN, '/v1/admin/status')).status, 200, 'with the token: 200');
  t.equal((await adminFetch(daemon, undefined, '/healthz')).status, 200, '/healthz needs no token (probes)');
  t.equal((await adminFetch(daemon, undefined, '/readyz')).status, 200, '/readyz needs no token (probes)');

  for (const path of ['/v1/admin/status', '/v1/admin/sessions', '/metrics']) {
    const res = await fetch(`${daemon.http}${path}`, { headers: { authorization: `Bearer ${TOKEN}` } });
    t.equal(res.status, 404, `${path} on the client port: 404`);
    await res.text();
  }

  const cli = await admin(daemon, 'wrong-token-wrong-token', ['status']);
  t.equal(cli.code, 4, 'the CLI exits 4 on a refused token');
  t.match(cli.stderr, /refused the token \(HTTP 401\)/);
  const unset = await admin(daemon, undefined, ['shards']);
  t.equal(unset.code, 4);
  t.match(unset.stderr, /SHARDCAST_ADMIN_TOKEN is not set/);
  const down = await admin('http://127.0.0.1:9', TOKEN, ['status']);
  t.equal(down.code, 3, 'the CLI exits 3 when the admin API is unreachable');
  t.match(down.stderr, /cannot reach the admin API at http:\/\/127\.0\.0\.1:9/);
});

t.test('status, shards, sessions and conns show the live figures of known clients', async (t) => {
  const daemon = await daemonWithToken(t);
  await members(t, daemon, 'adm:big', 'b', 5);
  await members(t, daemon, 'adm:small', 's', 2);
  // One client in both sessions: 8 memberships over 8 connections.
  const both = await members(t, daemon, 'adm:big', 'both', 1);
  await both[0].join('adm:small');

  const status = await adminJson<{ connections: number; shards: { live: number; configured: number }; version: string; engine: string; draining: boolean }>(daemon, TOKEN, ['status']);
  t.match(status, { connections: 8, shards: { live: 3, configured: 3 }, version: '0.1.0', engine: 'memory', draining: false });

  const sessions = await adminJson<SessionsReply>(daemon, TOKEN, ['sessions']);
  t.equal(sessions.total, 2);
  t.same(sessions.sessions.map((s) => [s.session, s.subscribers]), [['adm:big', 6], ['adm:small', 3]], 'largest first, with their subscribers');
  const top = await adminJson<SessionsReply>(daemon, TOKEN, ['sessions', '--top', '1']);
  t.same(top.sessions.map((s) => s.session), ['adm:big'], '--top 1');
  t.equal(top.total, 2);

  const conns = await adminJson<ConnectionsReply>(daemon, TOKEN, ['conns']);
  t.equal(conns.total, 8);
  const bigConns = await adminJson<ConnectionsReply>(daemon, TOKEN, ['conns', '--session', 'adm:big']);
  t.equal(bigConns.total, 6, 'conns --session');
  t.same(bigConns.connections.map((c) => c.user).sort(), ['b1', 'b2', 'b3', 'b4', 'b5', 'both1']);
  const userConns = await adminJson<ConnectionsReply>(daemon, TOKEN, ['conns', '--user', 'both1']);
  t.equal(userConns.total, 1, 'conns --user');
  t.same(userConns.connections[0].sessions.sort(), ['adm:big', 'adm:small']);

  // Per shard: the kernel chose where each connection went; the shard figures must
  // agree with where the connections say they are, and with the per-shard session counts.
  const shards = await adminJson<ShardsReply>(daemon, TOKEN, ['shards']);
  t.equal(shards.shards.length, 3);
  const perShard = new Map<number, number>();
  for (const c of conns.connections) perShard.set(c.shard, (perShard.get(c.shard) ?? 0) + 1);
  for (const s of shards.shards) t.equal(s.connections, perShard.get(s.shard) ?? 0, `shard ${s.shard}: connections`);
  const big = sessions.sessions.find((s) => s.session === 'adm:big')!;
  for (const [shard, n] of Object.entries(big.perShard)) {
    t.equal(n, bigConns.connections.filter((c) => String(c.shard) === shard).length, `adm:big on shard ${shard}`);
  }

  // The human tables carry the same figures.
  const table = await admin(daemon, TOKEN, ['sessions']);
  t.equal(table.code, 0, table.stderr);
  t.match(table.stdout, /^SESSION\s+SUBSCRIBERS\s+PER_SHARD/m);
  t.match(table.stdout, /^adm:big\s+6\s/m);
  t.match(table.stdout, /^adm:small\s+3\s/m);
  const shardTable = await admin(daemon, TOKEN, ['shards']);
  t.match(shardTable.stdout, /^SHARD\s+CONNS\s+SESSIONS/m);

  const detail = await adminJson<{ subscribers: number; head: number; connections: unknown[] }>(daemon, TOKEN, ['session', 'adm:small']);
  t.match(detail, { subscribers: 3, head: 0 });
  t.equal(detail.connections.length, 3);
  const unknown = await admin(daemon, TOKEN, ['session', 'adm:nobody']);
  t.equal(unknown.code, 5, 'an unknown session exits 5');
  t.match(unknown.stderr, /unknown_session/);
});

t.test('an admin port already in use stops the daemon at start with a message naming the setting', async (t) => {
  const first = await daemonWithToken(t);
  const { spawn } = await import('node:child_process');
  const { fileURLToPath } = await import('node:url');
  const child = spawn(process.execPath, [fileURLToPath(new URL('../../dist/daemon/main.js', import.meta.url))], {
    env: { PATH: process.env.PATH ?? '', SHARDCAST_DEV_MODE: 'true', SHARDCAST_PORT: '0', SHARDCAST_SHARDS: '1', SHARDCAST_ADMIN_PORT: String(first.adminPort) },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
  t.equal(code, 1, 'exit 1');
  t.match(out, new RegExp(`admin port ${first.adminPort} on 127\\.0\\.0\\.1 is already in use: set SHARDCAST_ADMIN_PORT`));
  t.equal((await adminFetch(first, TOKEN, '/v1/admin/status')).status, 200, 'the first daemon keeps serving');
});
