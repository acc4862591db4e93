// Per-user command limits end to end: a namespace limits each user's `vote`
// commands (a bucket of 3, refilled at 60 per minute) across all their connections —
// on two shards of one instance, and on two instances sharing Redis. The 4th vote is
// answered 106 with `after`; the connection stays usable; other command types are
// not limited; after waiting, the same cid goes through.
import t, { type Test } from 'tap';
import type { ErrorFrame, ServerFrame } from '../../protocol/frames.js';
import { startDaemon, type DaemonProcess } from '../support/daemon-process.js';
import { redisEnv, startInstances } from '../support/instances.js';
import { RawClient } from '../support/raw-client.js';
import { REDIS_URL, uniquePrefix } from '../support/redis.js';

const NAMESPACES = JSON.stringify([{ prefix: 'poll:', commandLimits: { vote: { perMinute: 60, burst: 3 } } }]);

async function cmd(c: RawClient, s: string, cid: string, type = 'vote'): Promise<ServerFrame> {
  const id = c.id();
  c.send({ t: 'cmd', id, s, cid, type, data: { cid } });
  return c.next((f) => (f.t === 'ack' || f.t === 'error') && 'id' in f && f.id === id);
}

async function scenario(t: Test, first: DaemonProcess, second: DaemonProcess): Promise<void> {
  const S = 'poll:limits';
  // One user on two connections (two shards, or two instances).
  const a = await RawClient.connect(first.ws, { user: 'voter' });
  let b = await RawClient.connect(second.ws, { user: 'voter' });
  for (let i = 0; i < 10 && second === first && b.shard() === a.shard(); i++) {
    await b.close();
    b = await RawClient.connect(second.ws, { user: 'voter' });
  }
  t.teardown(() => Promise.all([a.close(), b.close()]));
  await a.join(S);
  await b.join(S);
  t.equal((await cmd(a, S, 'v1')).t, 'ack');
  t.equal((await cmd(b, S, 'v2')).t, 'ack');
  t.equal((await cmd(a, S, 'v3')).t, 'ack', 'three votes from two connections');
  const refused = await cmd(b, S, 'v4');
  t.match(refused, { t: 'error', code: 106 }, 'the fourth is refused with 106');
  const after = (refused as ErrorFrame).after ?? 0;
  t.ok(after >= 1 && after <= 1000, `with after: ${after} ms`);
  t.match((refused as ErrorFrame).msg, /limited to 3 at once and 60 per minute/);
  t.equal((await cmd(b, S, 'c1', 'chat')).t, 'ack', 'another command type is not limited, and the connection stays usable');
  await new Promise((r) => setTimeout(r, after + 50));
  t.equal((await cmd(b, S, 'v4')).t, 'ack', 'after waiting, the same cid goes through');
  t.match(await cmd(a, S, 'v5'), { t: 'error', code: 106 }, 'and the bucket is empty again');
  const other = await RawClient.connect(first.ws, { user: 'someone-else' });
  t.teardown(() => other.close());
  await other.join(S);
  t.equal((await cmd(other, S, 'x1')).t, 'ack', 'another user has a bucket of their own');
}

t.test('standalone: one user\'s votes are counted across the shards of an instance', async (t) => {
  const d = await startDaemon({ SHARDCAST_NAMESPACES: NAMESPACES });
  t.teardown(() => d.stop());
  await scenario(t, d, d);
});

t.test('redis: one user\'s votes are counted across instances', async (t) => {
  const [a, b] = await startInstances(2, { ...redisEnv(REDIS_URL, uniquePrefix('limits')), SHARDCAST_NAMESPACES: NAMESPACES });
  t.teardown(() => Promise.all([a.stop(), b.stop()]));
  await scenario(t, a, b);
});
