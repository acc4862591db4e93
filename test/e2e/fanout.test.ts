// End to end: the daemon as a process with 2 shards, 500 real WebSocket clients on
// one session. Every client gets every event exactly once and in seq order; events
// addressed to one user reach only that user; presence lists the joined users.
import t from 'tap';
import { RawClient } from '../support/raw-client.js';
import { startDaemon } from '../support/daemon-process.js';
import { engines } from '../support/engines.js';
import type { EventFrame } from '../../protocol/frames.js';

const CLIENTS = 500;
const EVENTS = 200;
const SESSION = 'quiz:fanout';

for (const engine of engines(11)) {
  t.test(`${engine.name}: 500 clients on one session over 2 shards receive 200 events exactly once, in order`, async (t) => {
    const daemon = await startDaemon({ ...engine.env, SHARDCAST_SHARDS: '2' });
    t.teardown(() => daemon.stop());

    const clients: RawClient[] = [];
    for (let i = 0; i < CLIENTS; i += 50) {
      const batch = await Promise.all(
        Array.from({ length: Math.min(50, CLIENTS - i) }, (_, j) => RawClient.connect(daemon.ws, { user: `u${i + j}` })),
      );
      clients.push(...batch);
    }
    t.teardown(() => Promise.all(clients.map((c) => c.close())));
    const shards = new Set(clients.map((c) => c.shard()));
    t.same([...shards].sort(), [0, 1], 'the kernel spread the clients over both shards');

    const joined = await Promise.all(clients.map((c) => c.join(SESSION)));
    t.ok(joined.every((j) => j.t === 'joined'), 'every client joined');

    // 200 events in 4 batches of 50, plus one event addressed to u7 only.
    for (let b = 0; b < 4; b++) {
      const events = Array.from({ length: 50 }, (_, i) => ({ session: SESSION, type: 'tick', data: { n: b * 50 + i + 1 } }));
      const res = await daemon.publish({ events });
      t.equal(res.status, 200, `batch ${b} accepted`);
    }
    const direct = await daemon.publish({ session: SESSION, type: 'secret', data: 'only u7', to: ['u7'] });
    t.equal(direct.status, 200);
    const last = await daemon.publish({ session: SESSION, type: 'tick', data: { n: EVENTS + 1 } });
    t.equal(last.body.seq, EVENTS + 2, 'seqs are dense: 200 ticks, 1 addressed event, 1 more tick');

    await Promise.all(clients.map((c) => c.until((fs) => fs.some((f) => f.t === 'ev' && f.seq === EVENTS + 2), 30_000, 'last event')));

    let exact = 0;
    for (const [i, c] of clients.entries()) {
      const evs = c.events(SESSION);
      const ticks = evs.filter((e) => e.type === 'tick').map((e) => (e.data as { n: number }).n);
      const seqs = evs.map((e: EventFrame) => e.seq);
      const expectSeqs = i === 7 ? range(1, EVENTS + 2) : [...range(1, EVENTS), EVENTS + 2];
      if (JSON.stringify(seqs) === JSON.stringify(expectSeqs) && ticks.length === EVENTS + 1) exact++;
      else t.fail(`client u${i} got seqs ${JSON.stringify(seqs.slice(0, 10))}… (${seqs.length})`);
    }
    t.equal(exact, CLIENTS, 'every client got exactly its events, once each, in seq order');
    t.equal(clients[7].events().filter((e) => e.type === 'secret').length, 1, 'the addressed user got the addressed event');
    t.equal(clients.filter((c) => c.events().some((e) => e.type === 'secret')).length, 1, 'nobody else got it');

    const probe = clients[3];
    const id = probe.id();
    probe.send({ t: 'presence', id, s: SESSION });
    const presence = await probe.next((f) => f.t === 'presence' && f.id === id);
    if (presence.t !== 'presence') throw new Error('unreachable');
    t.equal(presence.users.length, CLIENTS, 'presence lists every joined user');
    t.ok(presence.users.every((u) => u.n === 1), 'each with one connection');
    t.ok(presence.users.some((u) => u.u === 'u499'));
  });
}

function range(from: number, to: number): number[] {
  return Array.from({ length: to - from + 1 }, (_, i) => from + i);
}
