// Scheduled reveal (SPEC.md §8 "Scheduled events"), end to end on two instances
// sharing the machine's Redis: an event published with `at` is sequenced at once
// (its seq in the reply) but reaches no socket on either instance before `at`;
// events sequenced after it wait behind it; clients joining meanwhile — on an
// instance that streamed the session already, or one that starts streaming it only
// then — do not see it early and get it live at `at`. The spread of arrival times
// across clients is printed (measured, not asserted beyond a loose bound).
import t from 'tap';
import type { EventFrame, JoinedFrame } from '../../protocol/frames.js';
import { RawClient } from '../support/raw-client.js';
import { range, redisEnv, startInstances } from '../support/instances.js';
import { REDIS_URL, uniquePrefix } from '../support/redis.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** When `client` received the event of `session` with `seq` (Date.now() at arrival), or undefined. */
function arrival(client: RawClient, session: string, seq: number): number | undefined {
  const i = client.frames.findIndex((f) => f.t === 'ev' && f.s === session && f.seq === seq);
  return i < 0 ? undefined : client.arrivedAt[i];
}

const seqs = (client: RawClient, session: string) => client.events(session).map((e: EventFrame) => e.seq);

t.test('a scheduled event reaches clients on two instances no earlier than at, together, and later events wait behind it', async (t) => {
  const [a, b] = await startInstances(2, redisEnv(REDIS_URL, uniquePrefix('sched')));
  t.teardown(() => Promise.all([a.stop(), b.stop()]));
  const S = 'quiz:sched';
  const clients = await Promise.all(range(0, 19).map((i) => RawClient.connect((i % 2 === 0 ? a : b).ws, { user: `p${i}` })));
  t.teardown(() => Promise.all(clients.map((c) => c.close())));
  for (const c of clients) t.equal((await c.join(S)).t, 'joined');

  t.equal((await a.publish({ session: S, type: 'intro', data: 1 })).body.seq, 1);
  const at = Date.now() + 2000;
  const question = await a.publish({ session: S, type: 'question', data: { q: 'ready?' }, at, snapshot: 'question' });
  t.equal(question.status, 200);
  t.equal(question.body.seq, 2, 'sequenced at once: the reply has its seq');
  t.equal((await b.publish({ session: S, type: 'board', data: 3 })).body.seq, 3, 'an event after it, through the other instance');
  await Promise.all(clients.map((c) => c.until((fs) => fs.some((f) => f.t === 'ev' && f.seq === 1), 10_000, 'intro')));

  // Meanwhile: a client joining on each instance, one fresh and one resuming.
  await sleep(300);
  const fresh = await RawClient.connect(b.ws, { user: 'late-fresh' });
  const resuming = await RawClient.connect(a.ws, { user: 'late-resume' });
  t.teardown(() => Promise.all([fresh.close(), resuming.close()]));
  const joinedFresh = (await fresh.join(S)) as JoinedFrame;
  const epoch = joinedFresh.ep;
  const joinedResume = (await resuming.join(S, { ep: epoch, seq: 0 })) as JoinedFrame;
  t.equal(joinedFresh.seq, 1, 'a fresh join before at starts at the last released seq');
  t.notOk(joinedFresh.snap && 'question' in joinedFresh.snap, 'and its snapshot does not show the held question');
  t.equal(joinedResume.seq, 1, 'a resume before at: joined at the last released seq');
  await resuming.until((fs) => fs.some((f) => f.t === 'ev'), 5000, 'the replay');
  await sleep(100);
  t.same(seqs(resuming, S), [1], 'and replayed only the released event');
  const everyone = [...clients, fresh, resuming];
  t.ok(Date.now() < at, 'all this happened before at');
  for (const c of everyone) if (arrival(c, S, 2) !== undefined) t.fail('a client got the question before at');

  await Promise.all(everyone.map((c) => c.until((fs) => fs.some((f) => f.t === 'ev' && f.s === S && f.seq === 3), 10_000, 'the board after the question')));
  const times = everyone.map((c) => arrival(c, S, 2)!);
  const early = times.filter((x) => x < at).length;
  t.equal(early, 0, 'no client got the question before at');
  const spread = Math.max(...times) - Math.min(...times);
  t.comment(`question arrival after at, over ${times.length} clients on 2 instances: first +${Math.min(...times) - at} ms, last +${Math.max(...times) - at} ms, spread ${spread} ms`);
  t.ok(spread < 250, `arrivals within a loose bound of each other (${spread} ms; both instances release at at)`);
  for (const c of everyone) {
    const got = seqs(c, S);
    // The fresh joiner started at seq 1 without a replay.
    if (got.join() !== (c === fresh ? '2,3' : '1,2,3')) t.fail(`a client got ${got.join()}`);
    const [t2, t3] = [arrival(c, S, 2)!, arrival(c, S, 3)!];
    if (t3 < t2 || t3 < at) t.fail('the event after the held one went out before it');
  }
  t.pass('every client got 1, 2, 3 once, in order, the later event no earlier than the held one');
});

t.test('a session scheduled before any instance streams it: joins on both instances hold the event until at', async (t) => {
  const [a, b] = await startInstances(2, redisEnv(REDIS_URL, uniquePrefix('sched-cold')));
  t.teardown(() => Promise.all([a.stop(), b.stop()]));
  const S = 'contest:cold';
  const at = Date.now() + 2000;
  t.equal((await a.publish({ events: [{ session: S, type: 'rules', data: 0 }, { session: S, type: 'start', data: 1, at }] })).status, 200);
  await sleep(200);
  const onA = await RawClient.connect(a.ws, { user: 'x' });
  const onB = await RawClient.connect(b.ws, { user: 'y' });
  const resumer = await RawClient.connect(a.ws, { user: 'w' });
  t.teardown(() => Promise.all([onA.close(), onB.close(), resumer.close()]));
  const ja = (await onA.join(S)) as JoinedFrame;
  const jb = (await onB.join(S)) as JoinedFrame;
  t.equal(ja.seq, 1, 'instance A started streaming after the event was sequenced, and holds it');
  t.equal(jb.seq, 1, 'so does instance B');
  const jr = (await resumer.join(S, { ep: ja.ep, seq: 0 })) as JoinedFrame;
  t.equal(jr.seq, 1);
  await resumer.until((fs) => fs.some((f) => f.t === 'ev'), 5000, 'the replay');
  await sleep(100);
  t.same(seqs(resumer, S), [1], 'a resume from 0 replays the released event only');
  t.ok(Date.now() < at, 'before at');
  await Promise.all([onA, onB, resumer].map((c) => c.until((fs) => fs.some((f) => f.t === 'ev' && f.seq === 2), 10_000, 'start')));
  for (const c of [onA, onB, resumer]) t.ok(arrival(c, S, 2)! >= at, `released at at (+${arrival(c, S, 2)! - at} ms)`);
  t.same(seqs(resumer, S), [1, 2], 'then live, once');
});

t.test('a bad at is refused with 400 naming the field; an at in the past is sent at once', async (t) => {
  const [a] = await startInstances(1, redisEnv(REDIS_URL, uniquePrefix('sched-bad')));
  t.teardown(() => a.stop());
  const far = await a.publish({ session: 'q:bad', type: 'x', data: 1, at: Date.now() + 2 * 3_600_000 });
  t.equal(far.status, 400);
  t.match(JSON.stringify(far.body), /at is \d+ ms ahead of the server clock; at most 3600000 ms/);
  const text = await a.publish({ session: 'q:bad', type: 'x', data: 1, at: 'soon' });
  t.equal(text.status, 400);
  t.match(JSON.stringify(text.body), /at must be a release time in ms/);
  const c = await RawClient.connect(a.ws, { user: 'z' });
  t.teardown(() => c.close());
  await c.join('q:bad');
  const sentAt = Date.now();
  t.equal((await a.publish({ session: 'q:bad', type: 'x', data: 1, at: sentAt - 60_000 })).status, 200);
  await c.until((fs) => fs.some((f) => f.t === 'ev'), 5000, 'the event');
  t.ok(arrival(c, 'q:bad', 1)! - sentAt < 2000, 'a past at is no schedule');
});
