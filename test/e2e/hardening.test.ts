// One participant or upstream must never take a shard down. A request whose answer
// cannot be encoded fails that request alone (issue: a session with 65,536 snapshot
// keys crashed a shard on every join, since msgpack's map 16 cannot hold them and
// the throw escaped the async join).
import t from 'tap';
import { RawClient } from '../support/raw-client.js';
import { startDaemon } from '../support/daemon-process.js';

t.test('a join whose answer cannot be encoded gets error 100; the shard and other clients carry on', async (t) => {
  const daemon = await startDaemon({ SHARDCAST_SHARDS: '1' });
  t.teardown(() => daemon.stop());
  const canary = await RawClient.connect(daemon.ws, { user: 'canary' });
  await canary.join('quiz:canary');

  const BIG = 'quiz:many-keys';
  const KEYS = 65_536;
  for (let from = 0; from < KEYS; from += 1000) {
    const events = Array.from({ length: 1000 }, (_, i) => ({ session: BIG, type: 'k', data: 0, snapshot: `k${from + i}` }));
    const res = await daemon.publish({ events });
    t.equal(res.status, 200, 'published', { diagnostic: false });
  }
  await daemon.publish({ session: 'quiz:canary', type: 'before', data: 1 });

  const victim = await RawClient.connect(daemon.ws, { user: 'victim' });
  const reply = await victim.join(BIG);
  t.equal(reply.t, 'error', 'the join is refused');
  t.equal(reply.t === 'error' && reply.code, 100, 'with error 100 (internal, retryable)');
  t.match(reply.t === 'error' ? reply.msg : '', /could not send the join answer/, 'saying why');
  const again = await victim.join(BIG);
  t.equal(again.t, 'error', 'a second attempt is refused the same way (no crash loop)');

  const id = victim.id();
  victim.send({ t: 'ping', id });
  await victim.next((f) => f.t === 'pong' && f.id === id);
  t.pass('the refused client stays connected and answered');
  const joinedOther = await victim.join('quiz:canary');
  t.equal(joinedOther.t, 'joined', 'and can join other sessions');

  await daemon.publish({ session: 'quiz:canary', type: 'after', data: 2 });
  await canary.until((fs) => fs.some((f) => f.t === 'ev' && f.type === 'after'));
  t.same(canary.events('quiz:canary').map((e) => e.seq), [1, 2], 'the canary on the same shard got every event');
  t.notOk(daemon.lines.some((l) => l.msg === 'shard crashed'), 'no shard crashed');
  await Promise.all([canary.close(), victim.close()]);
});
