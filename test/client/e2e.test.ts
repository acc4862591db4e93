/**
 * The client SDK against the real daemon (dist/daemon/main.js, standalone engine,
 * dev mode). Needs `npm run build` first (`npm test` does it).
 */
import t from 'tap';
import { WebSocket } from 'ws';
import { ShardcastClient, type EventFrame, type GoAwayFrame } from '../../protocol/client/index.js';
import { startDaemon } from '../support/daemon-process.js';

async function publish(base: string, session: string, type: string, data: unknown): Promise<{ seq: number; epoch: string }> {
  const res = await fetch(`${base}/v1/publish`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ session, type, data }) });
  if (!res.ok) throw new Error(`publish: HTTP ${res.status} ${await res.text()}`);
  return (await res.json()) as { seq: number; epoch: string };
}

async function take(n: number, it: AsyncIterableIterator<EventFrame>): Promise<EventFrame[]> {
  const out: EventFrame[] = [];
  for await (const ev of it) {
    out.push(ev);
    if (out.length === n) break;
  }
  return out;
}

{
  t.test('join, events, resume, commands and presence against the daemon', async (t) => {
    const daemon = await startDaemon();
    t.teardown(() => daemon.stop());
    const url = `ws://127.0.0.1:${daemon.port}/v1/ws`;
    const alice = new ShardcastClient({ url, user: 'alice', WebSocket });
    t.teardown(() => alice.close());
    const hello = await alice.connect();
    t.equal(hello.user, 'alice');

    const sub = alice.join('sdk:quiz', { presence: true });
    const joined = await sub.ready;
    t.match(joined, { s: 'sdk:quiz', seq: 0, rec: false, pres: [{ u: 'alice', n: 1 }] });
    const first = take(2, sub.events());
    const p1 = await publish(daemon.http, 'sdk:quiz', 'question', { n: 1 });
    await publish(daemon.http, 'sdk:quiz', 'question', { n: 2 });
    t.match(await first, [{ seq: 1, ep: p1.epoch, data: { n: 1 } }, { seq: 2, data: { n: 2 } }]);
    t.same(sub.position, { epoch: p1.epoch, seq: 2 });

    t.same(await sub.command('answer', { a: 'B' }, { cid: 'sdk-c1' }), { cid: 'sdk-c1', dup: false });
    t.same(await sub.command('answer', { a: 'B' }, { cid: 'sdk-c1' }), { cid: 'sdk-c1', dup: true }, 'same cid: applied once');
    t.same(await sub.presence(), [{ u: 'alice', n: 1 }]);

    // A second client resuming from seq 1 gets seq 2 replayed, then live events.
    const bob = new ShardcastClient({ url, user: 'bob', WebSocket });
    t.teardown(() => bob.close());
    const resumed = bob.join('sdk:quiz', { since: { epoch: p1.epoch, seq: 1 } });
    const bobEvents = take(2, resumed.events());
    t.match(await resumed.ready, { rec: true });
    await publish(daemon.http, 'sdk:quiz', 'question', { n: 3 });
    t.same((await bobEvents).map((e) => e.seq), [2, 3]);

    await sub.leave();
    t.equal(sub.state, 'ended');
  });

  t.test('drain: goaway with resume points, 1001, reconnect no sooner than the delay', async (t) => {
    const daemon = await startDaemon();
    t.teardown(() => daemon.stop());
    const client = new ShardcastClient({ url: `ws://127.0.0.1:${daemon.port}/v1/ws`, user: 'carol', WebSocket });
    t.teardown(() => client.close());
    const sub = client.join('sdk:drain');
    await sub.ready;
    const got = take(1, sub.events());
    const { epoch } = await publish(daemon.http, 'sdk:drain', 'e', 1);
    await got;

    const goaway = new Promise<{ frame: GoAwayFrame; at: number }>((resolve) => client.once('goaway', (frame) => resolve({ frame, at: Date.now() })));
    const disconnected = new Promise<{ code: number; reconnectInMs: number; at: number }>((resolve) =>
      client.once('disconnected', (d) => resolve({ ...d, at: Date.now() })),
    );
    daemon.proc.kill('SIGTERM');
    const g = await goaway;
    t.match(g.frame.pos, [{ s: 'sdk:drain', ep: epoch, seq: 1 }]);
    const d = await disconnected;
    t.equal(d.code, 1001);
    const remaining = g.frame.delay - (d.at - g.at);
    t.ok(Math.abs(d.reconnectInMs - Math.max(0, remaining)) <= 50, `reconnect in ${d.reconnectInMs} ms ≈ delay ${g.frame.delay} ms minus ${d.at - g.at} ms already waited`);
    t.equal((await daemon.exited).code, 0, 'daemon drained and exited cleanly');
    await client.close();
    t.equal(client.state, 'closed');
  });
}
