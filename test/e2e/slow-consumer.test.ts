// Slow consumers: a client that stops reading is cut off with 4001 once its
// outgoing buffer passes the bound, while everyone else keeps receiving every
// frame and the daemon's memory stays bounded. Conflatable frames for a lagging
// client are replaced by newer ones instead of piling up.
import t from 'tap';
import { RawClient } from '../support/raw-client.js';
import { startDaemon } from '../support/daemon-process.js';
import { engines } from '../support/engines.js';

const BOUND = 256 * 1024;
// The cut-off test's bound: above what a reading client can fall behind in one
// burst. On the network-like engine, jitter releases several publishes in one turn
// (up to ~1 MB here), and a reader that far behind is rightly cut at 256 KB.
const CUT_BOUND = 2 * 1024 * 1024;
const PER_PUBLISH = 100;

for (const engine of engines(13)) {
  t.test(`${engine.name}: a client that stops reading is cut off with 4001; the others get every frame`, async (t) => {
    const daemon = await startDaemon({ ...engine.env, SHARDCAST_MAX_BUFFER_BYTES: String(CUT_BOUND) });
    t.teardown(() => daemon.stop());
    const S = 'quiz:slow';
    const fast = [await RawClient.connect(daemon.ws, { user: 'fast0' })];
    const slow = await RawClient.connect(daemon.ws, { user: 'phone' });
    await Promise.all([...fast, slow].map((c) => c.join(S)));
    slow.pauseReading();

    // Warm the daemon's heaps up first: V8 grows them by tens of MB under this load
    // whatever the clients do, which would blur the measurement below.
    const payload = 'y'.repeat(4096);
    let seq = 0;
    const publish = async (events: number) => {
      for (let b = 0; b < events / PER_PUBLISH; b++) {
        const batch = Array.from({ length: PER_PUBLISH }, (_, i) => ({ session: S, type: 'tick', data: { n: seq + i, payload } }));
        const res = await daemon.publish({ events: batch });
        if (res.status !== 200) throw new Error(`publish failed: ${JSON.stringify(res.body)}`);
        seq += PER_PUBLISH;
      }
      await Promise.all(fast.map((c) => c.until((fs) => fs.some((f) => f.t === 'ev' && f.seq === seq), 30_000)));
    };
    await publish(10_000);
    const rssWarm = daemon.rssBytes();

    // Read again only 5 s after the cut: uWS drops a closing socket that reads nothing
    // for 4 s (the client would see 1006), so the close must have waited for it. Not
    // later than that either, whatever the publishing below still does: a client cut
    // off that reads nothing for 30 s is dropped without its 4001 (SLOW_CLOSE_GRACE_MS).
    const cutSeen = daemon.waitForLine((l) => l.msg === 'slow consumer disconnected' && l.user === 'phone', 120_000);
    const reading = cutSeen.then(async (cut) => {
      const wait = (cut.time as number) + 5000 - Date.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      slow.resumeReading();
    });
    // 320 MB for the stalled client: far past the bound and loopback's socket
    // buffers. A server that kept buffering for it would grow by about that much.
    await publish(80_000);
    const growth = daemon.rssBytes() - rssWarm;
    const EVENTS = seq;
    for (const [i, c] of fast.entries()) {
      const seqs = c.events(S).map((e) => e.seq);
      t.equal(seqs.length, EVENTS, `fast client ${i} got every frame`);
      t.ok(seqs.every((s, k) => s === k + 1), `fast client ${i} got them in order, once`);
    }
    const cut = await cutSeen;
    t.ok((cut.pendingBytes as number) <= CUT_BOUND * 1.5, `cut off with ${cut.pendingBytes} bytes pending, near the ${CUT_BOUND}-byte bound`);
    t.ok(growth < 160 * 1024 * 1024, `daemon memory did not follow the 320 MB sent to the stalled client (+${(growth / 1048576).toFixed(1)} MB)`);
    await reading;
    const closed = await slow.closed;
    t.equal(closed.code, 4001, 'the stalled client was closed as a slow consumer, whenever it read again');
    const seqs = slow.events(S).map((e) => e.seq);
    t.ok(seqs.length < EVENTS, `it got only part of the stream (${seqs.length})`);
    t.ok(seqs.every((s, k) => s === k + 1), 'what it got has no gap and no duplicate: it can resume from its last seq');
    t.notOk(daemon.lines.some((l) => l.msg === 'shard crashed'), 'no shard crashed');
  });

  t.test(`${engine.name}: a lagging client gets the latest conflatable frame, not a backlog`, async (t) => {
    const daemon = await startDaemon({ ...engine.env, SHARDCAST_MAX_BUFFER_BYTES: String(BOUND) });
    t.teardown(() => daemon.stop());
    const S = 'poll:conflate';
    const lagging = await RawClient.connect(daemon.ws, { user: 'lagging' });
    const steady = await RawClient.connect(daemon.ws, { user: 'steady' });
    await lagging.join(S);
    await steady.join(S);
    lagging.pauseReading();

    // 20 MB of tally updates in small bursts (as a live poll sends them): enough to
    // fill loopback's socket buffers and push the paused client onto its lag queue.
    const UPDATES = 5000;
    const padding = 'z'.repeat(4096);
    for (let b = 0; b < UPDATES / 10; b++) {
      const events = Array.from({ length: 10 }, (_, i) => ({
        session: S, type: 'tally', data: { n: b * 10 + i + 1, padding }, snapshot: 'tally', conflate: true,
      }));
      t.equal((await daemon.publish({ events })).status, 200);
    }
    await daemon.publish({ session: S, type: 'closed', data: 'poll closed' });
    await steady.until((fs) => fs.some((f) => f.t === 'ev' && f.seq === UPDATES + 1), 30_000);
    t.equal(steady.events(S).length, UPDATES + 1, 'a reading client gets every update');

    await new Promise((r) => setTimeout(r, 200));
    lagging.resumeReading();
    await lagging.until((fs) => fs.some((f) => f.t === 'ev' && f.seq === UPDATES + 1), 30_000);
    const evs = lagging.events(S);
    const seqs = evs.map((e) => e.seq);
    t.ok(seqs.every((s, k) => k === 0 || s > seqs[k - 1]), 'seqs still increase');
    t.ok(evs.length < UPDATES + 1, `stale tallies were conflated (${evs.length} of ${UPDATES + 1} frames)`);
    t.equal((evs.at(-2)?.data as { n: number }).n, UPDATES, 'the latest tally arrived');
    t.equal(evs.at(-1)?.type, 'closed', 'the non-conflatable frame after it arrived too');
    t.equal(lagging.ws.readyState, lagging.ws.OPEN, 'the lagging client was not cut off');
    await lagging.close();
    await steady.close();
  });
}
