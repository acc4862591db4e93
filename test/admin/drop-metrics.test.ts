/**
 * /metrics counts every frame a client does not get live, by reason and by the
 * session's configured namespace: conflation for a lagging client, the lag queue a
 * slow consumer's cut or a kick throws away. Each figure is checked against what the
 * clients actually received (plain engine, namespaces `poll:` and `quiz:`, sessions
 * outside them in `(default)`).
 */
import t, { type Test } from 'tap';
import { RawClient } from '../support/raw-client.js';
import { startDaemon, type DaemonProcess } from '../support/daemon-process.js';
import { adminFetch, eventually } from '../support/admin-cli-process.js';
import { parsePrometheusText, sum, type Sample } from '../support/prometheus-text.js';

const TOKEN = 'drop-metrics-token-0123456789';
const NAMESPACES = JSON.stringify([{ prefix: 'poll:' }, { prefix: 'quiz:' }]);
const REASONS = ['conflated', 'slow_consumer', 'go_away', 'kicked', 'shard_duplicate', 'stream_duplicate', 'stream_stale', 'resync_skipped', 'resync_held'];

async function start(t: Test, maxBufferBytes: number): Promise<DaemonProcess> {
  const daemon = await startDaemon({ SHARDCAST_ADMIN_TOKEN: TOKEN, SHARDCAST_SHARDS: '2', SHARDCAST_NAMESPACES: NAMESPACES, SHARDCAST_MAX_BUFFER_BYTES: String(maxBufferBytes) });
  t.teardown(() => daemon.stop());
  return daemon;
}

async function scrape(daemon: DaemonProcess): Promise<Sample[]> {
  const res = await adminFetch(daemon, TOKEN, '/metrics');
  if (res.status !== 200) throw new Error(`/metrics answered ${res.status}`);
  return parsePrometheusText(res.text).samples;
}

async function publish(daemon: DaemonProcess, body: unknown): Promise<void> {
  const res = await daemon.publish(body);
  if (res.status !== 200) throw new Error(`publish failed: ${res.status} ${JSON.stringify(res.body)}`);
}

const dropped = (s: Sample[], reason: string, namespace: string) => sum(s, 'shardcast_frames_dropped_total', { reason, namespace });

t.test('every reason has a series per configured namespace, labelled by the config only', async (t) => {
  const daemon = await start(t, 256 * 1024);
  const c = await RawClient.connect(daemon.ws, { user: 'u' });
  t.teardown(() => c.close());
  // A session id no prefix matches is labelled (default), not by its own text.
  await c.join('lobby:x1');
  const s = await scrape(daemon);
  const series = s.filter((x) => x.name === 'shardcast_frames_dropped_total');
  t.same([...new Set(series.map((x) => x.labels.namespace))].sort(), ['(default)', 'poll:', 'quiz:']);
  t.same([...new Set(series.map((x) => x.labels.reason))].sort(), [...REASONS].sort());
  t.equal(series.length, REASONS.length * 3, 'one series per (reason, namespace)');
  t.ok(series.every((x) => x.value === 0), 'all zero before anything happened');
  const conflated = s.filter((x) => x.name === 'shardcast_conflated_frames_total');
  t.same([...new Set(conflated.map((x) => `${x.labels.shard}/${x.labels.namespace}`))].sort(), ['0/(default)', '0/poll:', '0/quiz:', '1/(default)', '1/poll:', '1/quiz:']);
});

t.test('conflation for a lagging client is counted under its session\'s namespace, exactly', async (t) => {
  const daemon = await start(t, 256 * 1024);
  const S = 'poll:conflate';
  const lagging = await RawClient.connect(daemon.ws, { user: 'lagging' });
  const steady = await RawClient.connect(daemon.ws, { user: 'steady' });
  const quiz = await RawClient.connect(daemon.ws, { user: 'quizzer' });
  t.teardown(() => Promise.all([lagging.close(), steady.close(), quiz.close()]));
  await lagging.join(S);
  await steady.join(S);
  await quiz.join('quiz:calm');
  lagging.pauseReading();

  // 20 MB of tally updates in small bursts: the paused client lags and its stale tallies are replaced.
  const UPDATES = 5000;
  const padding = 'z'.repeat(4096);
  for (let b = 0; b < UPDATES / 10; b++) {
    const events = Array.from({ length: 10 }, (_, i) => ({ session: S, type: 'tally', data: { n: b * 10 + i + 1, padding }, snapshot: 'tally', conflate: true }));
    await publish(daemon, { events });
  }
  await publish(daemon, { session: S, type: 'closed', data: 'poll closed' });
  await publish(daemon, { session: 'quiz:calm', type: 'q', data: 1 });
  await steady.until((fs) => fs.some((f) => f.t === 'ev' && f.seq === UPDATES + 1), 30_000);
  await quiz.until((fs) => fs.some((f) => f.t === 'ev' && f.seq === 1), 10_000);
  t.equal(steady.events(S).length, UPDATES + 1, 'the reading client got every update: nothing of its was conflated');
  lagging.resumeReading();
  await lagging.until((fs) => fs.some((f) => f.t === 'ev' && f.seq === UPDATES + 1), 30_000);
  const got = lagging.events(S).length;
  t.ok(got < UPDATES + 1, `the lagging client got ${got} of ${UPDATES + 1} frames`);

  // A connected client gets each frame or its newer replacement: what it missed is what was conflated.
  const s = await scrape(daemon);
  t.equal(dropped(s, 'conflated', 'poll:'), UPDATES + 1 - got, 'frames_dropped{reason=conflated, namespace=poll:} = frames the lagging client did not get');
  t.equal(sum(s, 'shardcast_conflated_frames_total', { namespace: 'poll:' }), UPDATES + 1 - got, 'the per-shard counter says the same');
  t.equal(sum(s, 'shardcast_conflated_frames_total'), UPDATES + 1 - got, 'no other namespace conflated anything');
  t.equal(dropped(s, 'conflated', 'quiz:') + dropped(s, 'conflated', '(default)'), 0);
  t.equal(sum(s, 'shardcast_frames_dropped_total') - dropped(s, 'conflated', 'poll:'), 0, 'nothing dropped for any other reason');
  t.equal(sum(s, 'shardcast_disconnects_total'), 0, 'nobody was cut');
});

t.test('a slow consumer\'s cut counts the lag queue it dropped under its session\'s namespace; the cut itself per connection', async (t) => {
  const BOUND = 1024 * 1024;
  const daemon = await start(t, BOUND);
  const S = 'quiz:slow';
  const fast = await RawClient.connect(daemon.ws, { user: 'fast' });
  const slow = await RawClient.connect(daemon.ws, { user: 'phone' });
  t.teardown(() => Promise.all([fast.close(), slow.close()]));
  await fast.join(S);
  await slow.join(S);
  slow.pauseReading();
  const payload = 'y'.repeat(4096);
  let seq = 0;
  const cutSeen = daemon.waitForLine((l) => l.msg === 'slow consumer disconnected' && l.user === 'phone', 120_000);
  let cut = false;
  void cutSeen.then(() => (cut = true), () => {});
  // Batches of 100 events (400 KB) until the paused client passes the 1 MB bound.
  while (!cut && seq < 20_000) {
    const events = Array.from({ length: 100 }, (_, i) => ({ session: S, type: 'tick', data: { n: seq + i, payload } }));
    await publish(daemon, { events });
    seq += 100;
    await fast.until((fs) => fs.some((f) => f.t === 'ev' && f.seq === seq), 30_000);
  }
  const line = await cutSeen;
  slow.resumeReading();
  t.equal((await slow.closed).code, 4001, 'closed as a slow consumer');
  const seqs = slow.events(S).map((e) => e.seq);
  t.ok(seqs.every((s, k) => s === k + 1), `it got a gap-free prefix (${seqs.length} frames)`);
  const queued = line.droppedFrames as number;
  t.ok(queued > 0, `its lag queue held ${queued} frames when it was cut`);
  t.ok(seqs.length + queued <= seq, 'what it got and what its queue held are at most what was published');

  const s = await scrape(daemon);
  t.equal(dropped(s, 'slow_consumer', 'quiz:'), queued, 'frames_dropped{reason=slow_consumer, namespace=quiz:} = the frames its queue held');
  t.equal(sum(s, 'shardcast_frames_dropped_total', { reason: 'slow_consumer' }), queued, 'under no other namespace');
  t.equal(sum(s, 'shardcast_disconnects_total', { reason: 'slow_consumer' }), 1, 'one connection cut');
  t.notOk(s.some((x) => x.name === 'shardcast_disconnects_total' && 'namespace' in x.labels), 'cuts are per connection: no namespace label');
  t.equal(sum(s, 'shardcast_lag_started_total'), 1, 'one connection started lagging');
});

t.test('kicking a lagging client counts its queued frames under its session\'s namespace: received + dropped = published', async (t) => {
  const daemon = await start(t, 2 * 1024 * 1024);
  const S = 'lobby:kick';
  const victim = await RawClient.connect(daemon.ws, { user: 'victim' });
  t.teardown(() => victim.close());
  await victim.join(S);
  victim.pauseReading();
  const payload = 'k'.repeat(4096);
  let published = 0;
  const publishTicks = async (n: number) => {
    await publish(daemon, { events: Array.from({ length: n }, (_, i) => ({ session: S, type: 'tick', data: { n: published + i, payload } })) });
    published += n;
  };
  // Until the connection lags: from then on every frame goes to its queue.
  await eventually('the paused client lags', async () => {
    await publishTicks(100);
    const shards = JSON.parse((await adminFetch(daemon, TOKEN, '/v1/admin/shards')).text) as { shards: Array<{ laggingSockets: number }> };
    return shards.shards.some((x) => x.laggingSockets > 0) ? true : undefined;
  }, 60_000);
  await publishTicks(20);
  // The frames reach the shard a moment after the publish answers.
  await new Promise((r) => setTimeout(r, 300));
  const kick = await adminFetch(daemon, TOKEN, '/v1/admin/kick', { method: 'POST', body: { user: 'victim', reason: 'test' } });
  t.equal(kick.status, 200);
  victim.resumeReading();
  t.equal((await victim.closed).code, 4505, 'kicked');
  const got = victim.events(S).length;

  const s = await scrape(daemon);
  const queued = dropped(s, 'kicked', '(default)');
  t.ok(queued >= 20, `its queue held at least the last 20 frames (${queued})`);
  t.equal(got + queued, published, `every published frame was received (${got}) or counted as dropped with the kick (${queued})`);
  t.equal(sum(s, 'shardcast_frames_dropped_total', { reason: 'kicked' }), queued, 'under no other namespace');
});
