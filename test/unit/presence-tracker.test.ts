// The primary's presence bookkeeping (daemon/primary/presence-tracker.ts) on the
// memory presence table: notices exactly on first join, last leave, a gone shard and
// a lapsed lease; one owner per shard incarnation; backend failures only logged.
import t from 'tap';
import { createMemoryPresence } from '../../daemon/engine/memory-presence.js';
import type { Presence } from '../../daemon/engine/presence.js';
import { createLogger } from '../../daemon/log.js';
import { PresenceTracker } from '../../daemon/primary/presence-tracker.js';

interface LogLine {
  level: number;
  msg: string;
  [field: string]: unknown;
}

/** A tracker on `presence` recording its notices and log lines. */
function tracker(presence: Presence, opts: { instanceId?: string; leaseMs?: number } = {}) {
  const notices: string[] = [];
  const recounts: Array<[number, number]> = [];
  const lines: LogLine[] = [];
  const log = createLogger({ level: 'debug', destination: { write: (s: string) => void lines.push(JSON.parse(s) as LogLine) } });
  const tr = new PresenceTracker(presence, {
    instanceId: opts.instanceId ?? 'inst-a',
    leaseMs: opts.leaseMs ?? 3000,
    log,
    announce: (kind, session, user) => notices.push(`${kind} ${session} ${user}`),
    recount: (shard, incarnation) => recounts.push([shard, incarnation]),
  });
  return { tr, notices, lines, recounts };
}

/** Memory presence on a clock the test moves. */
function clocked() {
  let time = 1_000_000;
  const presence = createMemoryPresence({ now: () => time });
  return { presence, advance: (ms: number) => void (time += ms) };
}

t.test('pjoin on the first connection only, pleave on the last only', async (t) => {
  const { tr, notices } = tracker(createMemoryPresence());
  tr.shardStarted(0);
  tr.shardStarted(1);
  await tr.join('s:1', 'alice', 0);
  await tr.join('s:1', 'alice', 0);
  await tr.join('s:1', 'alice', 1);
  t.same(notices, ['pjoin s:1 alice'], 'three connections, one arrival');
  await tr.leave('s:1', 'alice', 1);
  await tr.leave('s:1', 'alice', 0);
  t.same(notices, ['pjoin s:1 alice'], 'no departure while a connection remains');
  await tr.leave('s:1', 'alice', 0);
  t.same(notices, ['pjoin s:1 alice', 'pleave s:1 alice'], 'the last leave');
  await tr.leave('s:1', 'alice', 0);
  t.equal(notices.length, 2, 'a duplicate leave announces nothing');
  t.same(await tr.list('s:1', 1000).then((l) => l.users), []);
});

t.test('each (re)start of a shard is a new owner', async (t) => {
  const { tr, notices } = tracker(createMemoryPresence(), { instanceId: 'inst-x' });
  tr.shardStarted(3);
  const first = tr.ownerOf(3);
  t.equal(first, 'inst-x/3/1', 'instance/shard/incarnation');
  await tr.join('s:1', 'alice', 3);
  await tr.shardGone(3);
  t.same(notices, ['pjoin s:1 alice', 'pleave s:1 alice'], 'the crashed shard took her only connection');
  tr.shardStarted(3);
  t.equal(tr.ownerOf(3), 'inst-x/3/2', 'the restarted thread is the next incarnation');
  await tr.join('s:1', 'alice', 3);
  t.same(notices.slice(2), ['pjoin s:1 alice'], 'she arrives again through the new incarnation');
  t.same(await tr.list('s:1', 1000).then((l) => l.users), [{ u: 'alice', n: 1 }]);
});

t.test('a restart without shardGone still drops the previous incarnation', async (t) => {
  const { tr, notices } = tracker(createMemoryPresence());
  tr.shardStarted(0);
  await tr.join('s:1', 'alice', 0);
  await tr.join('s:1', 'bob', 0);
  tr.shardStarted(0);
  await tr.tick(); // lets the drop of the old incarnation finish
  t.same(notices.slice(2).sort(), ['pleave s:1 alice', 'pleave s:1 bob']);
  t.same(await tr.list('s:1', 1000).then((l) => l.users), []);
});

t.test('shardGone announces departures once; changes from a gone shard are ignored', async (t) => {
  const { tr, notices, lines } = tracker(createMemoryPresence());
  tr.shardStarted(0);
  tr.shardStarted(1);
  await tr.join('s:1', 'alice', 0);
  await tr.join('s:1', 'bob', 0);
  await tr.join('s:1', 'bob', 1);
  await tr.join('s:2', 'carol', 0);
  notices.length = 0;
  await tr.shardGone(0);
  t.same(notices.sort(), ['pleave s:1 alice', 'pleave s:2 carol'], 'bob stays through shard 1');
  await tr.shardGone(0);
  t.equal(notices.length, 2, 'a second shardGone is a no-op');
  await tr.join('s:1', 'dave', 0);
  await tr.leave('s:1', 'bob', 0);
  t.equal(notices.length, 2, 'a late join or leave of the dead shard changes nothing');
  t.same(await tr.list('s:1', 1000).then((l) => l.users), [{ u: 'bob', n: 1 }]);
  t.ok(lines.some((l) => l.level === 40 && /no live incarnation/.test(l.msg)), 'and is logged as a warning');
  await tr.join('s:1', 'erin', 7);
  t.same(await tr.list('s:1', 1000).then((l) => l.users), [{ u: 'bob', n: 1 }], 'a shard never started counts nothing');
});

t.test('lease expiry: a crashed instance\'s users leave once, announced by a live instance', async (t) => {
  const { presence, advance } = clocked(); // one backend shared by two instances
  const a = tracker(presence, { instanceId: 'inst-a', leaseMs: 3000 });
  const b = tracker(presence, { instanceId: 'inst-b', leaseMs: 3000 });
  a.tr.shardStarted(0);
  b.tr.shardStarted(0);
  t.not(a.tr.ownerOf(0), b.tr.ownerOf(0), 'same shard number, different owners');
  await a.tr.join('s:1', 'alice', 0);
  await a.tr.join('s:1', 'bob', 0);
  await b.tr.join('s:1', 'bob', 0);
  await b.tr.join('s:1', 'carol', 0);
  t.same(b.notices, ['pjoin s:1 carol'], 'bob was already present through A');
  // Instance A dies silently: no shardGone, no refresh. B keeps its rounds.
  for (let i = 0; i < 3; i++) {
    advance(1000);
    await b.tr.tick();
  }
  t.same(b.notices.slice(1), ['pleave s:1 alice'], 'three seconds on, A\'s lease lapsed: alice leaves, bob stays through B');
  advance(1000);
  await b.tr.tick();
  t.equal(b.notices.length, 2, 'the departure is announced once');
  t.same(
    (await b.tr.list('s:1', 1000).then((l) => l.users)).map((e) => `${e.u}:${e.n}`).sort(),
    ['bob:1', 'carol:1'],
    'B\'s own users survive: its rounds refreshed its lease',
  );
});

t.test('a join that finds its lease lost (before any refresh noticed) starts a new owner, asks for a recount, and is counted under it', async (t) => {
  const { presence, advance } = clocked();
  const { tr, lines, recounts } = tracker(presence, { leaseMs: 3000 });
  tr.shardStarted(0);
  await tr.tick();
  t.equal(await tr.join('s:1', 'alice', 0), 1);
  advance(3000); // lost (a stall, or a backend restarted empty), and no refresh ran since
  t.equal(await tr.join('s:1', 'bob', 0), 2, 'bob is counted under the new incarnation');
  t.same(recounts, [[0, 2]], 'the shard is asked to report the rest (alice) again');
  t.ok(lines.some((l) => l.level === 50 && /lease lapsed/.test(l.msg)), 'logged as an error');
  await tr.join('s:1', 'alice', 0); // the report
  t.same((await tr.list('s:1', 10)).users.map((e) => `${e.u}:${e.n}`).sort(), ['alice:1', 'bob:1'], 'both present, once each');
});

t.test('a lapse of our own lease is reported and its users announced gone', async (t) => {
  const { presence, advance } = clocked();
  const { tr, notices, lines, recounts } = tracker(presence, { leaseMs: 3000 });
  tr.shardStarted(0);
  const before = tr.ownerOf(0);
  t.equal(await tr.join('s:1', 'alice', 0), 1, 'a join says the incarnation it was counted under');
  advance(3000); // the event loop stalled for a whole lease
  await tr.tick();
  await new Promise((r) => setImmediate(r));
  t.same(notices, ['pjoin s:1 alice', 'pleave s:1 alice']);
  t.ok(lines.some((l) => l.level === 50 && /lease lapsed/.test(l.msg)), 'logged as an error');
  t.same(recounts, [[0, 2]], 'the shard is asked to report its connections again, as incarnation 2');
  t.not(tr.ownerOf(0), before, 'as a new owner: nothing of the lapsed one is revived');
  await tr.join('s:1', 'alice', 0); // what the shard's report does
  t.equal(await tr.join('s:1', 'bob', 0), 2);
  t.same(notices.slice(2), ['pjoin s:1 alice', 'pjoin s:1 bob'], 'the renewed lease counts reported and new connections');
  t.same((await tr.list('s:1', 10)).users.map((e) => `${e.u}:${e.n}`).sort(), ['alice:1', 'bob:1']);
});

t.test('the timers refresh and sweep on their own; stop() ends them', async (t) => {
  let refreshes = 0;
  const backend = createMemoryPresence();
  const counted: Presence = { ...backend, refresh: (owner, ttl) => (refreshes++, backend.refresh(owner, ttl)) };
  const a = tracker(counted, { instanceId: 'inst-a', leaseMs: 600 });
  const b = tracker(counted, { instanceId: 'inst-b', leaseMs: 600 });
  t.teardown(() => a.tr.stop());
  a.tr.shardStarted(0);
  b.tr.shardStarted(0);
  await a.tr.join('s:1', 'alice', 0);
  await b.tr.join('s:1', 'bob', 0);
  a.tr.start();
  a.tr.start(); // idempotent: still one timer
  const deadline = Date.now() + 5000;
  while (!a.notices.includes('pleave s:1 bob') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  t.ok(a.notices.includes('pleave s:1 bob'), 'A\'s sweep announced B\'s user once B\'s lease lapsed');
  t.same(await a.tr.list('s:1', 1000).then((l) => l.users), [{ u: 'alice', n: 1 }], 'A\'s refreshes kept alice');
  a.tr.stop();
  a.tr.stop();
  const after = refreshes;
  await new Promise((r) => setTimeout(r, 500));
  t.equal(refreshes, after, 'no round after stop()');
});

t.test('backend failures are logged, never thrown nor left unhandled', async (t) => {
  const unhandled: unknown[] = [];
  const onUnhandled = (reason: unknown) => void unhandled.push(reason);
  process.on('unhandledRejection', onUnhandled);
  t.teardown(() => void process.off('unhandledRejection', onUnhandled));
  const down = () => Promise.reject(new Error('backend down'));
  const broken: Presence = { join: down, leave: down, refresh: down, dropOwner: down, expire: down, list: down, close: async () => {} };
  const { tr, notices, lines } = tracker(broken);
  tr.shardStarted(0);
  tr.shardStarted(0); // drops the first incarnation in the background: fails too
  await tr.join('s:1', 'alice', 0);
  await tr.leave('s:1', 'alice', 0);
  await tr.tick();
  await tr.shardGone(0);
  await t.rejects(tr.list('s:1', 1000).then((l) => l.users), /backend down/, 'list rejects: its caller answers the request with an error');
  await new Promise((r) => setImmediate(r));
  t.same(notices, [], 'nothing announced');
  t.same(unhandled, [], 'no unhandled rejection');
  const errors = lines.filter((l) => l.level === 50).map((l) => l.msg);
  for (const what of [/join failed/, /leave failed/, /refresh failed/, /expiry sweep failed/, /cleanup of a gone shard failed/]) {
    t.ok(errors.some((m) => what.test(m)), `logged: ${what.source}`);
  }
});

t.test('a throwing announcer costs no other notice', async (t) => {
  const presence = createMemoryPresence();
  const seen: string[] = [];
  const lines: LogLine[] = [];
  const tr = new PresenceTracker(presence, {
    instanceId: 'inst-a',
    leaseMs: 3000,
    log: createLogger({ level: 'error', destination: { write: (s: string) => void lines.push(JSON.parse(s) as LogLine) } }),
    announce: (kind, _session, user) => {
      seen.push(`${kind} ${user}`);
      if (user === 'alice') throw new Error('bus full');
    },
    recount: () => {},
  });
  tr.shardStarted(0);
  await tr.join('s:1', 'alice', 0);
  await tr.join('s:1', 'bob', 0);
  await tr.shardGone(0);
  t.same(seen.slice(0, 2), ['pjoin alice', 'pjoin bob']);
  t.same(seen.slice(2).sort(), ['pleave alice', 'pleave bob'], 'both departures announced');
  t.ok(lines.some((l) => /could not be announced/.test(l.msg)));
});

t.test('the constructor refuses a bad lease or instance id', async (t) => {
  const presence = createMemoryPresence();
  const log = createLogger({ level: 'silent' });
  const announce = () => {};
  const recount = () => {};
  t.throws(() => new PresenceTracker(presence, { instanceId: 'a/b', leaseMs: 3000, log, announce, recount }), /must be non-empty and contain no "\/"/);
  t.throws(() => new PresenceTracker(presence, { instanceId: 'a', leaseMs: 0, log, announce, recount }), RangeError);
});

t.test('lists: cut to the limit with the total; one read per session per turn; a change in between is seen', async (t) => {
  const presence = createMemoryPresence();
  let reads = 0;
  const counting = { ...presence, list: (s: string) => ((reads += 1), presence.list(s)) };
  const tr = new PresenceTracker(counting, { instanceId: 'i1', leaseMs: 30_000, log: createLogger({ level: 'silent', destination: { write: () => {} } }), announce: () => {}, recount: () => {} });
  tr.shardStarted(0);
  for (let i = 0; i < 30; i++) await tr.join('s:big', `u${i}`, 0);
  const lists = await Promise.all(Array.from({ length: 100 }, () => tr.list('s:big', 10)));
  t.equal(reads, 1, '100 requests in one turn: one read');
  t.ok(lists.every((l) => l.users.length === 10 && l.total === 30), 'each cut to 10 users, with the total of 30');
  await tr.join('s:big', 'late', 0);
  t.equal((await tr.list('s:big', 100)).total, 31, 'a join drops the shared read: the next list sees it');
  await new Promise((r) => setImmediate(r));
  await tr.list('s:big', 100);
  t.equal(reads, 3, 'a later turn reads again');
  tr.stop();
});
