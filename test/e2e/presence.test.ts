// Presence per namespace: notices (pjoin/pleave) only where `joinLeave` is on, the
// presence list wherever presence is kept, nothing where it is off; and conflation
// only in namespaces that allow it.
import t from 'tap';
import { RawClient } from '../support/raw-client.js';
import { startDaemon } from '../support/daemon-process.js';
import type { PresenceFrame } from '../../protocol/frames.js';

t.test('join/leave notices and presence lists follow the namespace', async (t) => {
  const daemon = await startDaemon({
    SHARDCAST_NAMESPACES: JSON.stringify([
      { prefix: 'chat:', joinLeave: true },
      { prefix: 'poll:', presence: false },
    ]),
  });
  t.teardown(() => daemon.stop());
  const alice = await RawClient.connect(daemon.ws, { user: 'alice' });
  const bob = await RawClient.connect(daemon.ws, { user: 'bob' });
  t.teardown(() => Promise.all([alice.close(), bob.close()]));

  // chat: notices on.
  await alice.join('chat:1');
  const bobJoined = await bob.join('chat:1', { pres: true });
  if (bobJoined.t !== 'joined') throw new Error('join failed');
  t.same(bobJoined.pres?.map((p) => p.u).sort(), ['alice', 'bob'], 'joined carries the presence list when asked');
  await alice.next((f) => f.t === 'pjoin' && f.u === 'bob');
  const leaveId = bob.id();
  bob.send({ t: 'leave', id: leaveId, s: 'chat:1' });
  await alice.next((f) => f.t === 'pleave' && f.u === 'bob');
  t.pass('alice saw bob arrive and leave');

  // quiz: (default namespace) presence kept, no notices.
  await alice.join('quiz:1');
  await bob.join('quiz:1');
  const id = alice.id();
  alice.send({ t: 'presence', id, s: 'quiz:1' });
  const list = (await alice.next((f) => f.t === 'presence' && f.id === id)) as PresenceFrame;
  t.same(list.users.map((u) => u.u).sort(), ['alice', 'bob'], 'presence list in the default namespace');
  await daemon.publish({ session: 'quiz:1', type: 'marker', data: null });
  await alice.next((f) => f.t === 'ev' && f.s === 'quiz:1');
  t.notOk(alice.frames.some((f) => (f.t === 'pjoin' || f.t === 'pleave') && f.s === 'quiz:1'), 'no notices by default');

  // poll: presence off.
  await alice.join('poll:1');
  const pid = alice.id();
  alice.send({ t: 'presence', id: pid, s: 'poll:1' });
  const refused = await alice.next((f) => f.t === 'error' && f.id === pid);
  t.match(refused, { code: 103 }, 'presence request refused where presence is off');
});

t.test('conflatable frames lose their flag in a namespace without conflation', async (t) => {
  const daemon = await startDaemon({ SHARDCAST_NAMESPACES: JSON.stringify([{ prefix: 'strict:', conflate: false }]) });
  t.teardown(() => daemon.stop());
  const c = await RawClient.connect(daemon.ws, { user: 'u' });
  await c.join('strict:1');
  await c.join('poll:1');
  await daemon.publish({ session: 'strict:1', type: 'tally', data: 1, snapshot: 'tally', conflate: true });
  await daemon.publish({ session: 'poll:1', type: 'tally', data: 1, snapshot: 'tally', conflate: true });
  await c.until((fs) => fs.filter((f) => f.t === 'ev').length === 2);
  const [strict, poll] = [c.events('strict:1')[0], c.events('poll:1')[0]];
  t.equal(strict.c, undefined, 'not conflatable where the namespace forbids it');
  t.equal(strict.k, 'tally', 'still a snapshot key');
  t.equal(poll.c, true, 'conflatable by default');
  await c.close();
});
