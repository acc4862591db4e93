// Drain on SIGTERM: go-aways spread over SHARDCAST_DRAIN_SPREAD_MS, every client
// resuming on another instance without loss; with frames still buffered for slow
// readers, the daemon delivers them, sends a go-away with the resume point and a
// jittered delay, closes with 1001 and exits 0 inside the drain deadline.
import t from 'tap';
import { RawClient } from '../support/raw-client.js';
import { startDaemon } from '../support/daemon-process.js';
import { Follower, range as seqRange, redisEnv } from '../support/instances.js';
import { REDIS_URL, uniquePrefix } from '../support/redis.js';
import type { GoAwayFrame } from '../../protocol/frames.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

t.test('go-aways are spread over SHARDCAST_DRAIN_SPREAD_MS and every client resumes on another instance with nothing lost or doubled', async (t) => {
  const SPREAD_MS = 3000;
  const CLIENTS = 60;
  const env = redisEnv(REDIS_URL, uniquePrefix('drain-spread'));
  const draining = await startDaemon({ ...env, SHARDCAST_DRAIN_SPREAD_MS: String(SPREAD_MS), SHARDCAST_GO_AWAY_MAX_DELAY_MS: '200', SHARDCAST_DRAIN_TIMEOUT_MS: '10000' });
  const other = await startDaemon(env);
  t.teardown(async () => {
    await draining.stop('SIGKILL');
    await other.stop('SIGKILL');
  });
  const sessions = ['quiz:spread-a', 'quiz:spread-b', 'quiz:spread-c'];
  let published = 0;
  const publishOne = async () => {
    published += 1;
    const n = published;
    const r = await other.publish({ events: sessions.map((s) => ({ session: s, type: 'q', data: n, id: `e${n}` })) });
    if (r.status !== 200) throw new Error(`publish: ${r.status} ${JSON.stringify(r.body)}`);
  };
  await publishOne();
  const followers = seqRange(1, CLIENTS).map((i) => new Follower(sessions[i % sessions.length]!, `p${i}`));
  // From seq 0 of the session's epoch: every follower must end with 1..N.
  const epochs = new Map<string, string>();
  for (const s of sessions) {
    const probe = await RawClient.connect(other.ws, { user: 'probe' });
    const joined = await probe.join(s);
    await probe.close();
    if (joined.t !== 'joined') throw new Error(`probe join: ${JSON.stringify(joined)}`);
    epochs.set(s, joined.ep);
  }
  await Promise.all(followers.map((f) => f.connect(draining, { ep: epochs.get(f.session)!, seq: 0 })));

  // Events keep flowing through the drain, at 20 per second per session.
  let flowing = true;
  const publishing = (async () => {
    while (flowing) {
      await publishOne();
      await sleep(50);
    }
  })();
  await sleep(300);

  const sigtermAt = Date.now();
  const exited = draining.stop('SIGTERM');
  const goAwayAt: number[] = [];
  const moved = followers.map(async (f) => {
    const g = await f.client.next((x): x is GoAwayFrame => x.t === 'goaway', 30_000);
    goAwayAt.push(Date.now() - sigtermAt);
    t.ok(g.delay >= 0 && g.delay <= 200, 'reconnect delay within SHARDCAST_GO_AWAY_MAX_DELAY_MS', { diagnostic: false });
    const closed = await f.client.closed;
    t.equal(closed.code, 1001, 'closed with 1001', { diagnostic: false });
    f.collect();
    await sleep(g.delay);
    await f.connect(other);
  });
  await Promise.all(moved);
  const { code } = await exited;
  t.equal(code, 0, 'the draining instance exited 0');
  flowing = false;
  await publishing;

  goAwayAt.sort((x, y) => x - y);
  const first = goAwayAt[0]!;
  const last = goAwayAt[goAwayAt.length - 1]!;
  t.comment(`go-aways received from ${first} to ${last} ms after SIGTERM (window ${SPREAD_MS} ms)`);
  t.ok(last - first >= SPREAD_MS / 2, `go-aways spread over at least half the window (${last - first} ms)`);
  // Evenly spaced: each third of the window saw a fair share (a burst would put them all in one).
  const thirds = [0, 1, 2].map((k) => goAwayAt.filter((ms) => ms - first >= (k * SPREAD_MS) / 3 && ms - first < ((k + 1) * SPREAD_MS) / 3).length);
  t.ok(thirds.every((n) => n >= CLIENTS / 6), `each third of the window got a share of the go-aways (${thirds.join(' / ')})`);

  await Promise.all(followers.map((f) => f.reach(published, 20_000)));
  await sleep(300); // a duplicate would arrive now
  for (const f of followers) f.collect();
  const wrong = followers.filter((f) => f.seqs.join() !== seqRange(1, published).join());
  t.same(wrong.map((f) => `${f.user}: ${f.seqs.length} events, first gap or duplicate near ${f.seqs.find((s, i) => s !== i + 1)}`), [], `every client got seqs 1..${published} exactly once, in order`);
  t.ok(followers.every((f) => f.joins.length === 2 && f.joins[1]!.rec), 'every client resumed on the other instance from its own position (rec: true)');
  await Promise.all(followers.map((f) => f.client.close()));
});

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
