// Slow readers that stay connected: a client that falls behind (it is moved from the
// session's shared topic to its own queue) but is never cut off must still receive
// every plain (non-conflatable) event, once, in order. The hand-over from topic to
// queue happens in the same turn as the publish that pushed the socket over the lag
// threshold; on this uWS build, a socket that unsubscribes its last topic while
// frames are still queued for it loses them, which this test caught as silent gaps
// (seqs 401–408 of 450 8 KB events).
import t from 'tap';
import { RawClient } from '../support/raw-client.js';
import { startDaemon } from '../support/daemon-process.js';
import { engines } from '../support/engines.js';

// Above the whole stream a reader is sent (24 MB: nobody can be cut off, so every
// gap is a loss), while a quarter of it, where a socket moves to its own queue, is
// below what a paused reader leaves in uWS's buffer once loopback's socket buffers
// (several MB) are full.
const BOUND = 16 * 1024 * 1024;

for (const [engine, { size, events, sessions }] of [
  [engines(14)[0], { size: 8 * 1024, events: 1500, sessions: 1 }],
  [engines(14)[0], { size: 2 * 1024, events: 3000, sessions: 2 }],
  [engines(14)[1], { size: 8 * 1024, events: 1500, sessions: 1 }],
  [engines(14)[1], { size: 2 * 1024, events: 6000, sessions: 1 }],
] as const) {
  t.test(`${engine.name}: slow readers get every one of ${events} ${size / 1024} KB events in ${sessions} session(s)`, async (t) => {
    const daemon = await startDaemon({ ...engine.env, SHARDCAST_MAX_BUFFER_BYTES: String(BOUND), SHARDCAST_LOG_LEVEL: 'debug' });
    t.teardown(() => daemon.stop());
    const ids = Array.from({ length: sessions }, (_, i) => `quiz:slow-reader-${i}`);
    const readers = await Promise.all(Array.from({ length: 4 }, (_, i) => RawClient.connect(daemon.ws, { user: `reader${i}` })));
    const steady = await RawClient.connect(daemon.ws, { user: 'steady' });
    for (const c of [...readers, steady]) for (const s of ids) await c.join(s);

    // Two readers stop reading for the whole stream; two stop and start while it
    // flows, crossing the lag threshold back and forth.
    const payload = 'x'.repeat(size);
    const pauses = readers.map((r, i) => {
      let paused = false;
      if (i < 2) {
        r.pauseReading();
        return () => r.resumeReading();
      }
      const timer = setInterval(() => {
        paused = !paused;
        if (paused) r.pauseReading();
        else r.resumeReading();
      }, 40 + i * 15);
      return () => {
        clearInterval(timer);
        r.resumeReading();
      };
    });
    // As much as one publish may carry (1 MB), so a whole batch reaches uWS in one turn.
    const perRequest = Math.floor((800 * 1024) / (size * sessions));
    for (let n = 0; n < events; n += perRequest) {
      const batch = [];
      for (let i = 0; i < perRequest && n + i < events; i++) {
        for (const s of ids) batch.push({ session: s, type: 'tick', data: { n: n + i, payload } });
      }
      const res = await daemon.publish({ events: batch });
      t.equal(res.status, 200, 'published', { diagnostic: false });
      await new Promise((r) => setTimeout(r, 5));
    }
    for (const stop of pauses) stop();

    for (const [i, c] of [...readers, steady].entries()) {
      for (const s of ids) {
        await c.until((fs) => fs.some((f) => f.t === 'ev' && f.s === s && f.seq === events), 30_000, `reader ${i} to reach ${events} in ${s}`)
          .catch(() => undefined);
        const seqs = c.events(s).map((e) => e.seq);
        const missing = [];
        for (let k = 1, j = 0; k <= events; k++) {
          if (seqs[j] === k) j++;
          else missing.push(k);
        }
        t.same(missing, [], `client ${i} in ${s}: no seq missing`);
        t.equal(seqs.length, events, `client ${i} in ${s}: every event once`);
        t.ok(seqs.every((q, k) => q === k + 1), `client ${i} in ${s}: in order`);
      }
      t.equal(c.ws.readyState, c.ws.OPEN, `client ${i} stayed connected`);
    }
    const lagged = daemon.lines.filter((l) => typeof l.msg === 'string' && l.msg.startsWith('lagging:')).length;
    t.ok(lagged > 0, `readers moved to their own queues (${lagged} times): the hand-over was exercised`);
    const cut = daemon.lines.filter((l) => l.msg === 'slow consumer disconnected').length;
    t.equal(cut, 0, 'nobody was cut off');
    await Promise.all([...readers, steady].map((c) => c.close()));
  });
}
