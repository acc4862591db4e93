// Stream continuity end to end, on the plain and the network-like engine (messages
// late, jittered and dropped; history replies reordered against live frames):
// - clients joining while events are published get every seq exactly once;
// - when a session's history is lost mid-stream (new epoch), connected clients get a
//   `resync` with the snapshot and then only the new epoch's live events, and a
//   client resuming from an old position gets `joined` with `rec: false` — nobody
//   sees a silent gap.
import t from 'tap';
import { RawClient } from '../support/raw-client.js';
import { startDaemon, type DaemonProcess } from '../support/daemon-process.js';
import { engines } from '../support/engines.js';
import type { ServerFrame } from '../../protocol/frames.js';

const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);

async function resetEpoch(daemon: DaemonProcess, session: string): Promise<void> {
  const res = await fetch(`${daemon.http}/v1/test/reset-epoch?session=${encodeURIComponent(session)}`, { method: 'POST' });
  if (res.status !== 200) throw new Error(`reset-epoch answered ${res.status}: ${await res.text()}`);
}

for (const engine of engines(21)) {
  t.test(`${engine.name}: clients joining under publish get every seq once, in order`, async (t) => {
    const daemon = await startDaemon({ ...engine.env, SHARDCAST_TEST_HOOKS: 'true' });
    t.teardown(() => daemon.stop());
    const S = 'quiz:join-under-publish';
    const first = await daemon.publish({ session: S, type: 'e', data: 0 });
    const epoch = first.body.epoch as string;
    const TOTAL = 300;
    const publishing = (async () => {
      for (let n = 2; n <= TOTAL; n += 5) {
        await daemon.publish({ events: range(n, Math.min(n + 4, TOTAL)).map((i) => ({ session: S, type: 'e', data: i })) });
        await new Promise((r) => setTimeout(r, 3));
      }
    })();
    const clients: RawClient[] = [];
    for (let i = 0; i < 40; i++) {
      const c = await RawClient.connect(daemon.ws, { user: `p${i}` });
      clients.push(c);
      // Half join from the start of the epoch (everything is replayed), half fresh.
      const joined = await c.join(S, i % 2 === 0 ? { ep: epoch, seq: 0 } : {});
      if (joined.t !== 'joined') throw new Error(`join failed: ${JSON.stringify(joined)}`);
    }
    await publishing;
    t.teardown(() => Promise.all(clients.map((c) => c.close())));
    let midStream = 0;
    for (const [i, c] of clients.entries()) {
      const joined = c.frames.find((f) => f.t === 'joined');
      if (joined?.t !== 'joined') throw new Error('unreachable');
      const from = i % 2 === 0 ? 1 : joined.seq + 1;
      if (joined.seq < TOTAL) midStream++;
      if (from <= TOTAL) await c.until((fs) => fs.some((f) => f.t === 'ev' && f.seq === TOTAL), 15_000, `client ${i} at the head`);
      const seqs = c.events(S).map((e) => e.seq);
      t.same(seqs, range(from, TOTAL), `client ${i} (${i % 2 === 0 ? 'from seq 0' : `fresh at ${joined.seq}`}): every seq once, in order`);
    }
    t.ok(midStream >= 10, `${midStream} clients joined while events were being published`);
  });

  t.test(`${engine.name}: history lost mid-stream: resync with the snapshot, never a silent gap`, async (t) => {
    const daemon = await startDaemon({ ...engine.env, SHARDCAST_TEST_HOOKS: 'true' });
    t.teardown(() => daemon.stop());
    const S = 'quiz:epoch-reset';
    const clients = await Promise.all(range(1, 6).map((i) => RawClient.connect(daemon.ws, { user: `u${i}` })));
    t.teardown(() => Promise.all(clients.map((c) => c.close())));
    for (const c of clients) await c.join(S);
    const away = await RawClient.connect(daemon.ws, { user: 'away' });
    await away.join(S);

    for (let i = 1; i <= 10; i++) await daemon.publish({ session: S, type: 'q', data: i, snapshot: 'question' });
    for (const c of [...clients, away]) await c.until((fs) => fs.some((f) => f.t === 'ev' && f.seq === 10), 10_000, 'seq 10');
    const oldEpoch = clients[0].events(S)[0].ep;
    away.terminate();
    await away.closed;

    await resetEpoch(daemon, S);
    const AFTER = 20;
    let newEpoch = '';
    for (let i = 1; i <= AFTER; i++) {
      const r = await daemon.publish({ session: S, type: 'q2', data: i, snapshot: i === 1 ? 'round' : undefined });
      newEpoch = r.body.epoch as string;
    }
    t.not(newEpoch, oldEpoch, 'the session continues under a new epoch');

    for (const [i, c] of clients.entries()) {
      // At the new head: its last event, or a resync that already stands there.
      const atHead = (f: ServerFrame) => (f.t === 'ev' || f.t === 'resync') && f.ep === newEpoch && f.seq === AFTER;
      await c.until((fs) => fs.some(atHead), 15_000, `client ${i} at the new head`);
      const at = c.frames.findIndex((f) => f.t === 'resync');
      t.ok(at >= 0, `client ${i} was told with a resync frame`);
      const resync = c.frames[at] as Extract<ServerFrame, { t: 'resync' }>;
      t.equal(resync.ep, newEpoch, 'resync names the new epoch');
      t.ok(resync.snap.round !== undefined, 'and carries the new epoch\'s snapshot');
      t.notOk('question' in resync.snap, 'not the lost one');
      const before = c.frames.slice(0, at).filter((f) => f.t === 'ev').map((f) => (f as { seq: number }).seq);
      t.same(before, range(1, 10), 'the old epoch\'s events before it, once each');
      const after = c.frames.slice(at + 1).filter((f) => f.t === 'ev');
      t.ok(after.every((f) => f.t === 'ev' && f.ep === newEpoch), 'only new-epoch events after it');
      t.same(after.map((f) => (f as { seq: number }).seq), range(resync.seq + 1, AFTER), 'every live event after the resync point, in order, once');
    }

    const back = await RawClient.connect(daemon.ws, { user: 'away' });
    t.teardown(() => back.close());
    const rejoined = await back.join(S, { ep: oldEpoch, seq: 10 });
    if (rejoined.t !== 'joined') throw new Error('rejoin failed');
    t.equal(rejoined.rec, false, 'a client resuming from the lost epoch is told: not recovered');
    t.equal(rejoined.ep, newEpoch);
    t.equal(rejoined.seq, AFTER);
    t.ok(rejoined.snap?.round !== undefined, 'with the snapshot');
    t.notOk(daemon.lines.some((l) => l.msg === 'shard crashed'), 'no shard crashed');
  });
}

t.test('the SDK takes a resync: snapshot event, new position, then the new epoch\'s events', async (t) => {
  const { ShardcastClient } = await import('../../protocol/client/index.js');
  const { default: WebSocket } = await import('ws');
  const daemon = await startDaemon({ SHARDCAST_TEST_HOOKS: 'true' });
  t.teardown(() => daemon.stop());
  const S = 'quiz:sdk-resync';
  const client = new ShardcastClient({ url: daemon.ws, user: 'sdk', WebSocket: WebSocket as never });
  t.teardown(() => client.close());
  await client.connect();
  const sub = client.join(S);
  const events: Array<{ ep: string; seq: number }> = [];
  const snapshots: Array<{ resync?: { ep: string; seq: number } }> = [];
  sub.on('event', (e) => events.push({ ep: e.ep, seq: e.seq }));
  sub.on('snapshot', (s) => snapshots.push(s));
  await sub.ready;
  for (let i = 1; i <= 3; i++) await daemon.publish({ session: S, type: 'q', data: i });
  await resetEpoch(daemon, S);
  let epoch = '';
  for (let i = 1; i <= 3; i++) epoch = (await daemon.publish({ session: S, type: 'q', data: i, snapshot: 'k' })).body.epoch;
  const deadline = Date.now() + 10_000;
  while (!events.some((e) => e.ep === epoch && e.seq === 3) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  const resync = snapshots.find((s) => s.resync !== undefined)?.resync;
  t.ok(resync, 'a snapshot event carried the resync');
  t.equal(resync?.ep, epoch);
  t.same(events.filter((e) => e.ep === epoch).map((e) => e.seq), range((resync?.seq ?? 0) + 1, 3), 'new-epoch events after the resync point, none dropped as "already seen"');
  t.same(sub.position, { epoch, seq: 3 }, 'the subscription is at the new head');
});
