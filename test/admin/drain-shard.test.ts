/**
 * `shardcast-admin drain --shard N` against a real daemon with three shards: the
 * shard's clients get their go-away and a 1001 close, the other shards' clients stay
 * and keep receiving events, new connections land on the other shards only, and the
 * drained shard is not restarted. The last serving shard cannot be drained alone.
 */
import t from 'tap';
import { WebSocket } from 'ws';
import { CloseCode } from '../../protocol/codes.js';
import { RawClient } from '../support/raw-client.js';
import { startDaemon } from '../support/daemon-process.js';
import { admin, adminFetch, adminJson, eventually } from '../support/admin-cli-process.js';
import type { ConnectionsReply, ShardsReply } from '../../admin-cli/admin-replies.js';

const TOKEN = 'drain-test-token-0123456789';

t.test('drain --shard N drains one shard while the others keep serving', async (t) => {
  const daemon = await startDaemon({ SHARDCAST_ADMIN_TOKEN: TOKEN, SHARDCAST_SHARDS: '3', SHARDCAST_GO_AWAY_MAX_DELAY_MS: '0' });
  t.teardown(() => daemon.stop());
  const clients = await Promise.all(Array.from({ length: 15 }, (_, i) => RawClient.connect(daemon.ws, { user: `d${i + 1}` })));
  t.teardown(() => Promise.all(clients.map((c) => c.close())));
  for (const c of clients) t.match(await c.join('adm:drain'), { t: 'joined' });

  const conns = await adminJson<ConnectionsReply>(daemon, TOKEN, ['conns']);
  t.equal(conns.total, 15);
  const shardOf = new Map(conns.connections.map((c) => [c.user, c.shard]));
  const counts = [0, 1, 2].map((s) => conns.connections.filter((c) => c.shard === s).length);
  // The shard holding the most clients (the kernel spreads them; at least one has 5).
  const target = counts.indexOf(Math.max(...counts));
  const onTarget = clients.filter((c, i) => shardOf.get(`d${i + 1}`) === target);
  const elsewhere = clients.filter((c, i) => shardOf.get(`d${i + 1}`) !== target);
  t.ok(onTarget.length > 0, `shard ${target} holds ${onTarget.length} clients`);

  const run = await admin(daemon, TOKEN, ['drain', '--shard', String(target)]);
  t.equal(run.code, 0, run.stderr);
  t.match(run.stdout, new RegExp(`shard ${target} of instance \\w+ is draining`));

  for (const c of onTarget) {
    const closed = await c.closed;
    t.equal(closed.code, CloseCode.GoingAway, 'a client of the drained shard is closed with 1001');
    t.ok(c.frames.some((f) => f.t === 'goaway'), 'after its go-away');
  }
  for (const c of elsewhere) t.equal(c.ws.readyState, WebSocket.OPEN, 'the other shards\' clients stay');

  await eventually('the drained shard gone', async () => {
    const shards = await adminJson<ShardsReply>(daemon, TOKEN, ['shards']);
    return shards.shards.length === 2 ? shards : undefined;
  });
  const shards = await adminJson<ShardsReply>(daemon, TOKEN, ['shards']);
  t.same(shards.shards.map((s) => s.shard), [0, 1, 2].filter((s) => s !== target), 'the other two shards serve on; the drained one is not restarted');

  // Events still reach the remaining clients.
  const r = await daemon.publish({ session: 'adm:drain', type: 'after', data: 1 });
  t.equal(r.status, 200, 'publishing still works (through a remaining shard)');
  await Promise.all(elsewhere.map((c) => c.next((f) => f.t === 'ev' && f.type === 'after', 10_000)));
  t.pass(`all ${elsewhere.length} remaining clients got the event`);

  // New connections land on the remaining shards.
  const fresh = await Promise.all(Array.from({ length: 12 }, (_, i) => RawClient.connect(daemon.ws, { user: `n${i + 1}` })));
  t.teardown(() => Promise.all(fresh.map((c) => c.close())));
  t.ok(fresh.every((c) => c.frames.some((f) => f.t === 'hello')), 'every new connection was greeted');
  const after = await adminJson<ConnectionsReply>(daemon, TOKEN, ['conns']);
  t.equal(after.connections.filter((c) => c.shard === target).length, 0, 'no connection on the drained shard');
  t.equal(after.total, elsewhere.length + fresh.length);

  const again = await admin(daemon, TOKEN, ['drain', '--shard', String(target)]);
  t.equal(again.code, 5, 'draining it again: not running (exit 5)');
  const [second, last] = [0, 1, 2].filter((s) => s !== target);
  t.equal((await admin(daemon, TOKEN, ['drain', '--shard', String(second)])).code, 0);
  const refused = await admin(daemon, TOKEN, ['drain', '--shard', String(last)]);
  t.equal(refused.code, 1, 'the last serving shard cannot be drained alone');
  t.match(refused.stderr, /last_shard/);
  t.ok(daemon.lines.some((l) => l.msg === 'admin drain' && (l.audit as { target?: string } | undefined)?.target === `shard:${target}`), 'the drain is in the audit log');
});

t.test('drain of the instance: /readyz answers 503 until the admin listener closes, then the process exits 0', async (t) => {
  const daemon = await startDaemon({ SHARDCAST_ADMIN_TOKEN: TOKEN, SHARDCAST_SHARDS: '2' });
  t.teardown(() => daemon.stop());
  const client = await RawClient.connect(daemon.ws, { user: 'r1' });
  t.match(await client.join('adm:ready'), { t: 'joined' });
  t.equal((await fetch(`${daemon.admin}/readyz`)).status, 200);
  // Straight to the API (not the CLI, whose start takes longer than the drain): the
  // probes begin right after the drain was accepted.
  const accepted = await adminFetch(daemon, TOKEN, '/v1/admin/drain', { method: 'POST', body: { reason: 'test' } });
  t.equal(accepted.status, 202, accepted.text);
  const seen: number[] = [];
  for (;;) {
    try {
      const res = await fetch(`${daemon.admin}/readyz`);
      await res.text();
      seen.push(res.status);
    } catch {
      break; // Connection refused: the listener closed.
    }
    await new Promise((r) => setTimeout(r, 2));
  }
  t.ok(seen.length > 0 && seen.every((s) => s === 503), `/readyz answered 503 (${seen.length}×) and never 200 during the drain`);
  t.match(await client.closed, { code: CloseCode.GoingAway });
  t.same(await daemon.exited, { code: 0, signal: null }, 'the process exits 0 after the drain');
});
