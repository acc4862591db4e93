// Drain on SIGTERM: with frames still buffered for slow readers, the daemon
// delivers them, sends a go-away with the resume point and a jittered delay,
// closes with 1001 and exits 0 inside SHARDCAST_DRAIN_TIMEOUT_MS.
import t from 'tap';
import { RawClient } from '../support/raw-client.js';
import { startDaemon } from '../support/daemon-process.js';
import type { GoAwayFrame } from '../../protocol/frames.js';

const EVENTS = 600;
const DRAIN_MS = 8000;

t.test('SIGTERM drains buffered frames, sends go-away, closes 1001, exits 0 in time', async (t) => {
  const daemon = await startDaemon({
    SHARDCAST_DRAIN_TIMEOUT_MS: String(DRAIN_MS),
    SHARDCAST_GO_AWAY_MAX_DELAY_MS: '1000',
    // Room for a big backlog, so the slow readers are drained rather than cut off.
    SHARDCAST_MAX_BUFFER_BYTES: String(32 * 1024 * 1024),
  });
  t.teardown(() => daemon.stop('SIGKILL'));
  const S = 'quiz:drain';

  const fast = await Promise.all(Array.from({ length: 6 }, (_, i) => RawClient.connect(daemon.ws, { user: `fast${i}` })));
  const slow = await Promise.all(Array.from({ length: 4 }, (_, i) => RawClient.connect(daemon.ws, { user: `slow${i}` })));
  const all = [...fast, ...slow];
  await Promise.all(all.map((c) => c.join(S)));
  for (const c of slow) c.pauseReading();

  const payload = 'x'.repeat(8 * 1024);
  for (let b = 0; b < EVENTS / 100; b++) {
    const events = Array.from({ length: 100 }, (_, i) => ({ session: S, type: 'big', data: { n: b * 100 + i + 1, payload } }));
    t.equal((await daemon.publish({ events })).status, 200);
  }
  await Promise.all(fast.map((c) => c.until((fs) => fs.some((f) => f.t === 'ev' && f.seq === EVENTS), 20_000)));
  t.ok(slow.every((c) => c.events().length < EVENTS), 'slow readers have not read everything yet');

  const sentAt = Date.now();
  const stopping = daemon.stop('SIGTERM');
  // Let the drain start with the backlog still buffered, then read again.
  await new Promise((r) => setTimeout(r, 300));
  for (const c of slow) c.resumeReading();

  const { code } = await stopping;
  const took = Date.now() - sentAt;
  t.equal(code, 0, 'exit code 0');
  t.ok(took < DRAIN_MS, `exited inside the drain deadline (${took} ms < ${DRAIN_MS} ms)`);

  for (const [i, c] of all.entries()) {
    const closed = await c.closed;
    t.equal(closed.code, 1001, `client ${i} closed with 1001`);
    t.same(c.events(S).map((e) => e.seq), range(1, EVENTS), `client ${i} got every frame exactly once`);
    const goaways = c.frames.filter((f): f is GoAwayFrame => f.t === 'goaway');
    t.equal(goaways.length, 1, `client ${i} got one go-away`);
    const g = goaways[0];
    t.ok(c.frames.indexOf(g) > c.frames.findLastIndex((f) => f.t === 'ev'), 'go-away comes after the last event');
    t.ok(g.delay >= 0 && g.delay <= 1000, 'reconnect delay within the configured window');
    t.same(g.pos, [{ s: S, ep: c.events(S)[0].ep, seq: EVENTS }], 'resume point = last event delivered');
  }
  const delays = new Set(all.map((c) => c.frames.find((f): f is GoAwayFrame => f.t === 'goaway')!.delay));
  t.ok(delays.size > 1, 'delays are jittered across clients');
  t.ok(daemon.lines.some((l) => l.msg === 'stopped' && l.late === false), 'daemon logged a timely stop');
});

t.test('a client behind on reading gets its go-away right away, with the position of what it was sent', async (t) => {
  const daemon = await startDaemon({
    SHARDCAST_DRAIN_TIMEOUT_MS: '6000',
    SHARDCAST_GO_AWAY_MAX_DELAY_MS: '0',
    // A quarter of it (4 MB) past the kernel's buffers moves a paused reader to its
    // own queue; the whole of it is never reached, so it is not cut off.
    SHARDCAST_MAX_BUFFER_BYTES: String(16 * 1024 * 1024),
    SHARDCAST_LOG_LEVEL: 'debug',
  });
  t.teardown(() => daemon.stop('SIGKILL'));
  const S = 'quiz:drain-lagging';
  const reader = await RawClient.connect(daemon.ws, { user: 'behind' });
  await reader.join(S);
  reader.pauseReading();
  const payload = 'x'.repeat(8 * 1024);
  const TOTAL = 1700;
  for (let b = 0; b < TOTAL / 100; b++) {
    const events = Array.from({ length: 100 }, (_, i) => ({ session: S, type: 'big', data: { n: b * 100 + i + 1, payload } }));
    t.equal((await daemon.publish({ events })).status, 200, 'published', { diagnostic: false });
  }
  await daemon.waitForLine((l) => typeof l.msg === 'string' && l.msg.startsWith('lagging:'));
  const stopping = daemon.stop('SIGTERM');
  await new Promise((r) => setTimeout(r, 300));
  reader.resumeReading();
  const { code } = await stopping;
  t.equal(code, 0, 'the drain finished in time: exit 0');
  const closed = await reader.closed;
  t.equal(closed.code, 1001, 'closed with 1001');
  const at = reader.frames.findIndex((f) => f.t === 'goaway');
  t.ok(at >= 0, 'the lagging client got its go-away');
  const g = reader.frames[at] as GoAwayFrame;
  const before = reader.frames.slice(0, at).filter((f) => f.t === 'ev').map((f) => (f as { seq: number }).seq);
  t.ok(g.pos[0].seq < TOTAL, `ahead of its backlog (at ${g.pos[0].seq} of ${TOTAL})`);
  t.same(before, range(1, g.pos[0].seq), 'everything up to the go-away position came before it, once, in order: resuming there loses nothing');
});

t.test('a drain that has to close clients still behind at its deadline says so and exits non-zero', async (t) => {
  const daemon = await startDaemon({
    SHARDCAST_DRAIN_TIMEOUT_MS: '1000',
    SHARDCAST_MAX_BUFFER_BYTES: String(32 * 1024 * 1024),
  });
  t.teardown(() => daemon.stop('SIGKILL'));
  const S = 'quiz:drain-stalled';
  const stalled = await RawClient.connect(daemon.ws, { user: 'stalled' });
  await stalled.join(S);
  stalled.pauseReading();
  const payload = 'x'.repeat(8 * 1024);
  for (let b = 0; b < 12; b++) {
    const events = Array.from({ length: 100 }, (_, i) => ({ session: S, type: 'big', data: { n: b * 100 + i + 1, payload } }));
    await daemon.publish({ events });
  }
  const { code } = await daemon.stop('SIGTERM');
  t.not(code, 0, 'exit code non-zero: the drain overran');
  const stopped = daemon.lines.find((l) => l.msg === 'stopped');
  t.equal(stopped?.late, true, 'logged as late');
  t.ok((stopped?.forced as number) >= 1, `with the clients it had to force (${String(stopped?.forced)})`);
  stalled.terminate();
});

function range(from: number, to: number): number[] {
  return Array.from({ length: to - from + 1 }, (_, i) => from + i);
}
