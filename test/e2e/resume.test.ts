// Resume: a client that drops and rejoins with its last (epoch, seq) gets exactly
// the events it missed, then live ones — no gap, no duplicate; rejoining from
// beyond the history bound yields "not recovered" plus the snapshot.
import t from 'tap';
import { RawClient } from '../support/raw-client.js';
import { startDaemon } from '../support/daemon-process.js';
import { engines } from '../support/engines.js';

for (const engine of engines(12)) {
  t.test(`${engine.name}: rejoin with (epoch, seq) replays exactly the missed events, then live ones`, async (t) => {
    const daemon = await startDaemon({ ...engine.env, SHARDCAST_HISTORY_SIZE: '50' });
    t.teardown(() => daemon.stop());
    const S = 'quiz:resume';

    const a = await RawClient.connect(daemon.ws, { user: 'alice' });
    const joined = await a.join(S);
    if (joined.t !== 'joined') throw new Error(`join failed: ${JSON.stringify(joined)}`);
    for (let i = 1; i <= 10; i++) await daemon.publish({ session: S, type: 'e', data: i });
    await a.until((fs) => fs.filter((f) => f.t === 'ev').length === 10);
    const last = a.events(S).at(-1)!;
    t.equal(last.seq, 10);
    a.terminate();
    await a.closed;

    // Missed while away: 11..20. Then, while the rejoin is in flight, live 21..30
    // are published concurrently: replay and live frames must meet with no gap.
    for (let i = 11; i <= 20; i++) await daemon.publish({ session: S, type: 'e', data: i });
    const b = await RawClient.connect(daemon.ws, { user: 'alice' });
    const rejoin = b.join(S, { ep: last.ep, seq: last.seq });
    const live = (async () => {
      for (let i = 21; i <= 30; i++) await daemon.publish({ session: S, type: 'e', data: i });
    })();
    const rj = await rejoin;
    await live;
    if (rj.t !== 'joined') throw new Error('rejoin failed');
    t.equal(rj.rec, true, 'recovered');
    t.equal(rj.ep, last.ep, 'same epoch');
    t.notOk('snap' in rj, 'no snapshot when recovered');
    await b.until((fs) => fs.some((f) => f.t === 'ev' && f.seq === 30));
    t.same(b.events(S).map((e) => e.seq), range(11, 30), 'exactly the missed events, then live ones, once each');
    const joinedAt = b.frames.findIndex((f) => f.t === 'joined');
    const firstEv = b.frames.findIndex((f) => f.t === 'ev');
    t.ok(joinedAt < firstEv, 'joined comes before the replay');
    await b.close();
  });

  t.test(`${engine.name}: a replay leaves out events addressed to other users; their recipients get them`, async (t) => {
    const daemon = await startDaemon({ ...engine.env });
    t.teardown(() => daemon.stop());
    const S = 'quiz:addressed-replay';
    const a = await RawClient.connect(daemon.ws, { user: 'alice' });
    const joined = await a.join(S);
    if (joined.t !== 'joined') throw new Error(`join failed: ${JSON.stringify(joined)}`);
    await a.close();
    // Away: one for all, one for bob, one for alice and bob, one for carol, one for all.
    for (const to of [undefined, ['bob'], ['alice', 'bob'], ['carol'], undefined]) {
      t.equal((await daemon.publish({ session: S, type: 'e', data: to?.join('+') ?? 'all', ...(to ? { to } : {}) })).status, 200);
    }
    const from = { ep: joined.ep, seq: joined.seq };
    const replayed = async (user: string, last: number): Promise<number[]> => {
      const c = await RawClient.connect(daemon.ws, { user });
      const rj = await c.join(S, from);
      t.equal(rj.t === 'joined' && rj.rec, true, `${user} recovered`);
      await c.until((fs) => fs.some((f) => f.t === 'ev' && f.seq === joined.seq + last), 5000, `${user}'s replay`);
      // Anything else would have come before the last replayed seq, in order.
      const seqs = c.events(S).map((e) => e.seq - joined.seq);
      await c.close();
      return seqs;
    };
    t.same(await replayed('alice', 5), [1, 3, 5], "alice's replay has no event addressed only to bob or carol");
    t.same(await replayed('bob', 5), [1, 2, 3, 5], 'bob gets his own and the shared one');
    t.same(await replayed('carol', 5), [1, 4, 5], 'carol gets hers');
    t.same(await replayed('dave', 5), [1, 5], 'anyone else: the events for all only');
  });

  t.test(`${engine.name}: rejoining beyond the history bound yields not-recovered and the snapshot`, async (t) => {
    const daemon = await startDaemon({ ...engine.env, SHARDCAST_HISTORY_SIZE: '5' });
    t.teardown(() => daemon.stop());
    const S = 'quiz:bound';

    const a = await RawClient.connect(daemon.ws, { user: 'alice' });
    await a.join(S);
    await daemon.publish({ session: S, type: 'question', data: { q: 1 }, snapshot: 'question' });
    await a.until((fs) => fs.some((f) => f.t === 'ev'));
    const pos = a.events(S).at(-1)!;
    await a.close();

    await daemon.publish({ session: S, type: 'question', data: { q: 2 }, snapshot: 'question' });
    await daemon.publish({ session: S, type: 'board', data: { top: ['bob'] }, snapshot: 'leaderboard' });
    await daemon.publish({ session: S, type: 'result', data: { mine: 'right' }, snapshot: 'my-answer', to: ['alice'] });
    await daemon.publish({ session: S, type: 'result', data: { mine: 'wrong' }, snapshot: 'my-answer', to: ['bob'] });
    for (let i = 0; i < 6; i++) await daemon.publish({ session: S, type: 'noise', data: i });

    const b = await RawClient.connect(daemon.ws, { user: 'alice' });
    const rj = await b.join(S, { ep: pos.ep, seq: pos.seq });
    if (rj.t !== 'joined') throw new Error('rejoin failed');
    t.equal(rj.rec, false, 'not recovered: history holds only the last 5');
    t.equal(rj.seq, 11, 'positioned at the head');
    t.same(Object.keys(rj.snap ?? {}).sort(), ['leaderboard', 'my-answer', 'question']);
    t.same(rj.snap?.question.data, { q: 2 }, 'latest question');
    t.same(rj.snap?.['my-answer'].data, { mine: 'right' }, "the user's own snapshot key, not another user's");
    await daemon.publish({ session: S, type: 'live', data: 1 });
    await b.until((fs) => fs.some((f) => f.t === 'ev'));
    t.same(b.events(S).map((e) => e.seq), [12], 'then live from the head, no replay');

    const c = await RawClient.connect(daemon.ws, { user: 'carol' });
    const wrongEpoch = await c.join(S, { ep: 'not-the-epoch', seq: 9 });
    if (wrongEpoch.t !== 'joined') throw new Error('join failed');
    t.equal(wrongEpoch.rec, false, 'an unknown epoch is never treated as recovered');
    t.notOk(wrongEpoch.snap?.['my-answer'], 'no per-user key for a user who has none');
    await b.close();
    await c.close();
  });
}

function range(from: number, to: number): number[] {
  return Array.from({ length: to - from + 1 }, (_, i) => from + i);
}
