// One participant or upstream must never take a shard down. A request whose answer
// cannot be encoded fails that request alone (issue: a session with 65,536 snapshot
// keys crashed a shard on every join, since msgpack's map 16 cannot hold them and
// the throw escaped the async join).
import t from 'tap';
import { ErrorCode } from '../../protocol/codes.js';
import type { ServerFrame } from '../../protocol/frames.js';
import { RawClient } from '../support/raw-client.js';
import { compactPackr } from '../support/msgpack-bytes.js';
import { startDaemon } from '../support/daemon-process.js';

t.test('a join whose answer cannot be encoded gets error 100; the shard and other clients carry on', async (t) => {
  // The highest snapshot-key bound, plus one key of the victim's own: 65,536 keys in
  // its joined.snap, one more than a msgpack map 16 holds.
  const daemon = await startDaemon({ SHARDCAST_SHARDS: '1', SHARDCAST_MAX_SNAPSHOT_KEYS: '65535' });
  t.teardown(() => daemon.stop());
  const canary = await RawClient.connect(daemon.ws, { user: 'canary' });
  await canary.join('quiz:canary');

  const BIG = 'quiz:many-keys';
  const KEYS = 65_535;
  for (let from = 0; from < KEYS; from += 1000) {
    const events = Array.from({ length: Math.min(1000, KEYS - from) }, (_, i) => ({ session: BIG, type: 'k', data: 0, snapshot: `k${from + i}` }));
    const res = await daemon.publish({ events });
    t.equal(res.status, 200, 'published', { diagnostic: false });
  }
  t.equal((await daemon.publish({ session: BIG, type: 'k', data: 0, snapshot: 'mine', to: ['victim'] })).status, 200);
  await daemon.publish({ session: 'quiz:canary', type: 'before', data: 1 });

  const victim = await RawClient.connect(daemon.ws, { user: 'victim' });
  const reply = await victim.join(BIG);
  t.equal(reply.t, 'error', 'the join is refused');
  t.equal(reply.t === 'error' && reply.code, 100, 'with error 100 (internal, retryable)');
  t.match(reply.t === 'error' ? reply.msg : '', /could not send the join answer/, 'saying why');
  const again = await victim.join(BIG);
  t.equal(again.t, 'error', 'a second attempt is refused the same way (no crash loop)');

  const id = victim.id();
  victim.send({ t: 'ping', id });
  await victim.next((f) => f.t === 'pong' && f.id === id);
  t.pass('the refused client stays connected and answered');
  const joinedOther = await victim.join('quiz:canary');
  t.equal(joinedOther.t, 'joined', 'and can join other sessions');

  await daemon.publish({ session: 'quiz:canary', type: 'after', data: 2 });
  await canary.until((fs) => fs.some((f) => f.t === 'ev' && f.type === 'after'));
  t.same(canary.events('quiz:canary').map((e) => e.seq), [1, 2], 'the canary on the same shard got every event');
  t.notOk(daemon.lines.some((l) => l.msg === 'shard crashed'), 'no shard crashed');
  await Promise.all([canary.close(), victim.close()]);
});

t.test('a second daemon on a taken port refuses to start with a clear message; the first keeps serving', async (t) => {
  const { spawn } = await import('node:child_process');
  const { fileURLToPath } = await import('node:url');
  const first = await startDaemon();
  t.teardown(() => first.stop());
  const main = fileURLToPath(new URL('../../dist/daemon/main.js', import.meta.url));
  const second = spawn(process.execPath, [main], {
    env: { PATH: process.env.PATH, SHARDCAST_PORT: String(first.port), SHARDCAST_HOST: '127.0.0.1', SHARDCAST_SHARDS: '2', SHARDCAST_DEV_MODE: 'true' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  second.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
  const exited = new Promise<number | null>((resolve) => second.on('exit', (c) => resolve(c)));
  let timer: NodeJS.Timeout | undefined;
  const code = await Promise.race([exited, new Promise<'running'>((r) => (timer = setTimeout(() => r('running'), 10_000)))]);
  clearTimeout(timer);
  if (code === 'running') {
    second.kill('SIGKILL');
    await exited;
  }
  t.not(code, 'running', 'the second daemon does not run beside the first');
  t.not(code, 0, 'it exits with an error');
  t.match(out, new RegExp(`port ${first.port} on 127\\.0\\.0\\.1 is already in use by another process`), 'saying the port is taken');
  t.notMatch(out, /"msg":"listening"/, 'it never listened');
  const health = await fetch(`${first.http}/healthz`);
  t.equal(health.status, 200, 'the first daemon still answers');
  const c = await RawClient.connect(first.ws, { user: 'after' });
  t.equal(c.frames[0]?.t, 'hello', 'and accepts connections');
  await c.close();
});

t.test('snapshot keys are bounded per session and per user (maxSnapshotKeys): a new key past it gets 400, updates pass', async (t) => {
  const daemon = await startDaemon({ SHARDCAST_MAX_SNAPSHOT_KEYS: '5' });
  t.teardown(() => daemon.stop());
  const S = 'quiz:keys';
  const ok = await daemon.publish({ events: Array.from({ length: 5 }, (_, i) => ({ session: S, type: 'k', data: i, snapshot: `k${i}` })) });
  t.equal(ok.status, 200, '5 keys');
  const sixth = await daemon.publish({ session: S, type: 'k', data: 5, snapshot: 'k5' });
  t.equal(sixth.status, 400, 'a 6th key: 400');
  t.equal(sixth.body.error?.code, 'invalid_request', 'not retryable');
  t.match(sixth.body.error?.message, /already has 5 snapshot keys \(maxSnapshotKeys\)/);
  const update = await daemon.publish({ session: S, type: 'k', data: 'new', snapshot: 'k0' });
  t.equal(update.status, 200, 'updating a key passes');
  t.equal(update.body.seq, 6, 'the refused event took no seq');
  const c = await RawClient.connect(daemon.ws, { user: 'late' });
  const joined = await c.join(S);
  t.equal(joined.t === 'joined' && Object.keys(joined.snap ?? {}).length, 5, 'joiners get the 5 keys');
  await c.close();
});

t.test('presence answers are cut to maxPresenceList and carry the total', async (t) => {
  const daemon = await startDaemon({ SHARDCAST_MAX_PRESENCE_LIST: '5' });
  t.teardown(() => daemon.stop());
  const S = 'quiz:crowd';
  const members = await Promise.all(Array.from({ length: 8 }, (_, i) => RawClient.connect(daemon.ws, { user: `m${i}` })));
  t.teardown(() => Promise.all(members.map((c) => c.close())));
  for (const c of members) await c.join(S);
  const asker = members[0];
  const id = asker.id();
  asker.send({ t: 'presence', id, s: S });
  const reply = await asker.next((f) => f.t === 'presence' && f.id === id);
  if (reply.t !== 'presence') throw new Error('unreachable');
  t.equal(reply.users.length, 5, 'cut to 5 users');
  t.equal(reply.total, 8, 'with the total');
  const late = await RawClient.connect(daemon.ws, { user: 'late' });
  t.teardown(() => late.close());
  const joined = await late.join(S, { pres: true });
  t.ok(joined.t === 'joined' && (joined.pres?.length ?? 0) <= 5, 'joined.pres is cut to the limit as well');
});

t.test('large commands cannot poison the command feed: pages stop at about 1 MiB and stay fast', async (t) => {
  // One user's share of the journal as large as the journal: its 300 commands, not its newest 1 MiB.
  const daemon = await startDaemon({ SHARDCAST_COMMAND_JOURNAL_BYTES: String(8 * 1024 * 1024), SHARDCAST_COMMAND_JOURNAL_BYTES_PER_USER: String(8 * 1024 * 1024), SHARDCAST_RATE_LIMIT_PER_S: '100000', SHARDCAST_RATE_LIMIT_BURST: '100000', SHARDCAST_USER_RATE_LIMIT_PER_S: '100000' });
  t.teardown(() => daemon.stop());
  const S = 'quiz:feed';
  const c = await RawClient.connect(daemon.ws, { user: 'bomber' });
  t.teardown(() => c.close());
  await c.join(S);
  // 15 KB frames of nested arrays: small on the wire, large once decoded.
  const data = Array.from({ length: 1900 }, () => [1, [2], 'x']);
  const COMMANDS = 300;
  for (let i = 0; i < COMMANDS; i++) {
    const id = c.id();
    c.send({ t: 'cmd', id, s: S, cid: `c${i}`, type: 'answer', data });
    await c.next((f) => (f.t === 'ack' || f.t === 'error') && 'id' in f && f.id === id);
  }
  let after = 0;
  let pages = 0;
  let seen = 0;
  for (;;) {
    const started = Date.now();
    const res = await fetch(`${daemon.http}/v1/commands?after=${after}&limit=1000`);
    const body = (await res.json()) as { commands: Array<{ pos: number; cid: string }>; next: number };
    t.equal(res.status, 200, 'page answered', { diagnostic: false });
    t.ok(Date.now() - started < 2000, 'within 2 s', { diagnostic: false });
    if (body.commands.length === 0) break;
    pages++;
    seen += body.commands.length;
    after = body.next;
  }
  t.ok(pages > 1, `the feed came in ${pages} pages, not one of ${COMMANDS} large commands`);
  t.ok(seen > 0 && seen <= COMMANDS, `${seen} commands read, the newest within the journal's 8 MiB`);
});

t.test('history replay is bounded per join and per user, over all of its connections: past it, the join gets the snapshot', async (t) => {
  // A 64 KB bucket that refills at 1 KB/s: spent for the rest of the test once used.
  const daemon = await startDaemon({ SHARDCAST_MAX_REPLAY_BYTES: String(64 * 1024), SHARDCAST_REPLAY_BYTES_PER_S: '1024' });
  t.teardown(() => daemon.stop());
  const S = 'quiz:replay';
  const first = await daemon.publish({ session: S, type: 'e', data: 'x'.repeat(2000), snapshot: 'last' });
  const ep = first.body.epoch as string;
  for (let i = 2; i <= 100; i++) await daemon.publish({ session: S, type: 'e', data: 'x'.repeat(2000), snapshot: 'last' });
  const c = await RawClient.connect(daemon.ws, { user: 'looper' });
  t.teardown(() => c.close());
  const all = await c.join(S, { ep, seq: 0 });
  t.ok(all.t === 'joined' && all.rec === false, '200 KB of missed events, past the 64 KB per join: not recovered');
  t.ok(all.t === 'joined' && all.snap?.last?.seq === 100, 'with the snapshot instead');
  t.equal(c.events(S).length, 0, 'and no replay');
  const leave = (id: number) => {
    c.send({ t: 'leave', id, s: S });
    return c.next((f) => f.t === 'left' && f.id === id);
  };
  await leave(c.id());
  const some = await c.join(S, { ep, seq: 80 });
  t.ok(some.t === 'joined' && some.rec === true, '20 events (40 KB) are replayed');
  await c.until((fs) => fs.some((f) => f.t === 'ev' && f.seq === 100));
  t.equal(c.events(S).length, 20);
  await leave(c.id());
  const again = await c.join(S, { ep, seq: 80 });
  t.ok(again.t === 'joined' && again.rec === false, 'at once again: the user spent its replay budget, the snapshot comes instead');
  const id = c.id();
  c.send({ t: 'ping', id });
  await c.next((f) => f.t === 'pong' && f.id === id);
  t.equal(c.events(S).length, 20, 'nothing replayed the second time');

  // More connections do not bring more budget: the bucket is the user's, on whichever
  // shard the connection lands (the kernel places them).
  const more: RawClient[] = [];
  t.teardown(() => Promise.all(more.map((m) => m.close())));
  while (more.length < 20 && !more.some((m) => m.shard() !== c.shard())) more.push(await RawClient.connect(daemon.ws, { user: 'looper' }));
  const elsewhere = more.find((m) => m.shard() !== c.shard());
  t.ok(elsewhere !== undefined, `a connection of the same user on the other shard (after ${more.length})`);
  // The first new connection, and the one on the other shard when that is another.
  for (const conn of new Set([more[0], elsewhere ?? more[0]])) {
    const j = await conn.join(S, { ep, seq: 80 });
    t.ok(j.t === 'joined' && j.rec === false, `a new connection of the same user, on shard ${conn.shard()} (the first is on ${c.shard()}): the snapshot too`);
  }
  const other = await RawClient.connect(daemon.ws, { user: 'someone-else' });
  t.teardown(() => other.close());
  const theirs = await other.join(S, { ep, seq: 80 });
  t.ok(theirs.t === 'joined' && theirs.rec === true, 'another user has a budget of its own: replayed');
  await other.until((fs) => fs.some((f) => f.t === 'ev' && f.seq === 100));
  t.equal(other.events(S).length, 20);
});

t.test('test hooks need the API key when one is set', async (t) => {
  const key = 'hardening-api-key-0123456789';
  const daemon = await startDaemon({ SHARDCAST_TEST_HOOKS: 'true', SHARDCAST_API_KEY: key });
  t.teardown(() => daemon.stop());
  for (const path of ['/v1/test/crash?shard=0', '/v1/test/reset-epoch?session=quiz:x']) {
    const res = await fetch(`${daemon.http}${path}`, { method: 'POST' });
    t.equal(res.status, 401, `POST ${path} without the key: 401`);
    await res.arrayBuffer();
  }
  const ok = await fetch(`${daemon.http}/v1/test/reset-epoch?session=quiz:x`, { method: 'POST', headers: { authorization: `Bearer ${key}` } });
  t.equal(ok.status, 200, 'with it: done');
  await ok.arrayBuffer();
  t.notOk(daemon.lines.some((l) => l.msg === 'shard crashed'), 'no shard was crashed by the unauthenticated call');
});

t.test('decoded-size bombs: a cmd or pub over maxFrameValues gets error 109 and the connection stays; a publish over maxPublishValues gets 400 and no seq', async (t) => {
  // maxFrameValues above its default (10,000) and maxPublishValues below (100,000):
  // what is refused and what passes below shows both settings reach their check.
  const daemon = await startDaemon({
    SHARDCAST_SHARDS: '1',
    SHARDCAST_MAX_FRAME_VALUES: '12000',
    SHARDCAST_MAX_PUBLISH_VALUES: '1000',
    SHARDCAST_NAMESPACES: '[{"prefix":"chat:","clientPublish":true}]',
  });
  t.teardown(() => daemon.stop());
  const S = 'chat:bombs';
  const canary = await RawClient.connect(daemon.ws, { user: 'canary' });
  const bomber = await RawClient.connect(daemon.ws, { user: 'bomber' });
  t.teardown(() => Promise.all([canary.close(), bomber.close()]));
  await canary.join(S);
  await bomber.join(S);
  // A hostile client writes each empty map as one byte (msgpackr's encode writes 3).
  const maps = (n: number) => Array.from({ length: n }, () => ({}));
  const request = async (frame: Record<string, unknown>) => {
    const id = bomber.id();
    const bytes = compactPackr.pack({ ...frame, id });
    bomber.sendRaw(bytes);
    return { bytes: bytes.length, reply: await bomber.next((f) => (f.t === 'ack' || f.t === 'error') && 'id' in f && f.id === id) };
  };

  const within = await request({ t: 'cmd', s: S, cid: 'within', type: 'answer', data: maps(11_000) });
  t.equal(within.reply.t, 'ack', '11,000 values, within the configured 12,000: acked');

  const cmdBomb = await request({ t: 'cmd', s: S, cid: 'bomb', type: 'answer', data: maps(16_000) });
  t.ok(cmdBomb.bytes <= 16 * 1024, `the cmd bomb is ${cmdBomb.bytes} bytes, under maxFrameBytes`);
  t.equal(cmdBomb.reply.t, 'error', 'a cmd of 16,000 empty maps is refused');
  t.equal(cmdBomb.reply.t === 'error' && cmdBomb.reply.code, ErrorCode.PayloadTooLarge, 'with error 109');
  t.match(cmdBomb.reply.t === 'error' ? cmdBomb.reply.msg : '', /^cmd: frame holds 16013 values; at most 12000/, 'saying how many values and the limit');

  const ping = bomber.id();
  bomber.send({ t: 'ping', id: ping });
  await bomber.next((f) => f.t === 'pong' && f.id === ping);
  const cmdAfter = await request({ t: 'cmd', s: S, cid: 'after', type: 'answer', data: { choice: 2 } });
  t.equal(cmdAfter.reply.t, 'ack', 'the connection stays usable: ping answered, next cmd acked');

  const pubBomb = await request({ t: 'pub', s: S, type: 'msg', data: maps(16_000) });
  t.equal(pubBomb.reply.t === 'error' && pubBomb.reply.code, ErrorCode.PayloadTooLarge, 'a pub of 16,000 empty maps: error 109');
  const pubAfter = await request({ t: 'pub', s: S, type: 'msg', data: 'hello' });
  t.equal(pubAfter.reply.t === 'ack' && pubAfter.reply.seq, 1, 'the next pub is acked with seq 1: the bomb took none');

  // Upstream: data of 1001 values (an array of 1000 maps), as JSON and as msgpack.
  const overJson = await daemon.publish({ session: S, type: 'board', data: maps(1000) });
  t.equal(overJson.status, 400, 'JSON publish over maxPublishValues: 400');
  t.equal(overJson.body.error?.code, 'invalid_request');
  t.match(overJson.body.error?.message, /^data: value: more than 1000 values \(maxPublishValues;/, 'naming the field and the limit');
  const overPack = await fetch(`${daemon.http}/v1/publish`, {
    method: 'POST',
    headers: { 'content-type': 'application/msgpack' },
    body: new Uint8Array(compactPackr.pack({ session: S, type: 'board', data: maps(1000) })),
  });
  const overPackBody = (await overPack.json()) as { error?: { code?: string; message?: string } };
  t.equal(overPack.status, 400, 'msgpack publish over maxPublishValues: 400');
  t.match(overPackBody.error?.message, /^data: value: more than 1000 values \(maxPublishValues;/);
  const fits = await daemon.publish({ session: S, type: 'board', data: maps(999) });
  t.equal(fits.status, 200, '1000 values: published');
  t.equal(fits.body.seq, 2, 'the refused publishes took no seq');

  await canary.until((fs) => fs.some((f) => f.t === 'ev' && f.seq === 2));
  t.same(canary.events(S).map((e) => [e.seq, e.type]), [[1, 'msg'], [2, 'board']], 'the canary in the session got every event, and nothing of the bombs');
  t.notOk(daemon.lines.some((l) => l.msg === 'shard crashed'), 'no shard crashed');
});

/** Waits until the wall clock is `from`–`from + 200` ms into a second (the per-user limit counts wall-clock seconds). */
async function earlyInASecond(from = 50): Promise<void> {
  for (;;) {
    const into = Date.now() % 1000;
    if (into >= from && into < from + 200) return;
    await new Promise((r) => setTimeout(r, (from + 1000 - into) % 1000));
  }
}

/** Sends `count` pings on each client at once; resolves with each client's replies (pong or error) once all came. */
async function pingAll(clients: RawClient[], count: number): Promise<ServerFrame[][]> {
  const ids = clients.map((c) => Array.from({ length: count }, () => c.id()));
  clients.forEach((c, i) => ids[i].forEach((id) => c.send({ t: 'ping', id })));
  return Promise.all(
    clients.map(async (c, i) => {
      const mine = new Set(ids[i]);
      const reply = (f: ServerFrame) => (f.t === 'pong' || f.t === 'error') && mine.has(f.id ?? -1);
      await c.until((fs) => fs.filter(reply).length === count, 10_000, `${count} replies`);
      return c.frames.filter(reply);
    }),
  );
}

/** Wall-clock seconds of the server's pongs, with how many pongs each. */
function pongSeconds(replies: ServerFrame[]): Map<number, number> {
  const seconds = new Map<number, number>();
  for (const f of replies) {
    if (f.t !== 'pong') continue;
    const second = Math.floor((f.now ?? 0) / 1000);
    seconds.set(second, (seconds.get(second) ?? 0) + 1);
  }
  return seconds;
}

t.test('userRateLimitPerS: one budget per user across its connections and shards', async (t) => {
  const LIMIT = 40;
  // Per connection the defaults (50/s, bursts of 100): every connection below stays under its own limit.
  const daemon = await startDaemon({ SHARDCAST_SHARDS: '2', SHARDCAST_USER_RATE_LIMIT_PER_S: String(LIMIT) });
  t.teardown(() => daemon.stop());

  t.test('over it together, though each connection is under its own: 106 naming the setting; others unaffected; the next second starts over', async (t) => {
    const conns: RawClient[] = [];
    t.teardown(() => Promise.all(conns.map((c) => c.close())));
    // Until the user has a connection on each shard (the kernel places them), then two more.
    while (conns.length < 20 && (new Set(conns.map((c) => c.shard())).size < 2 || conns.length < 4)) conns.push(await RawClient.connect(daemon.ws, { user: 'hammer' }));
    const shards = new Set(conns.map((c) => c.shard()));
    t.equal(shards.size, 2, `the user's ${conns.length} connections are on both shards`);
    const other = await RawClient.connect(daemon.ws, { user: 'bystander' });
    t.teardown(() => other.close());

    const PER_CONN = 20;
    await earlyInASecond();
    const [mine, theirs] = await Promise.all([pingAll(conns, PER_CONN), pingAll([other], PER_CONN)]);
    const all = mine.flat();
    const pongs = all.filter((f) => f.t === 'pong').length;
    const limited = all.filter((f) => f.t === 'error');
    const sent = conns.length * PER_CONN;
    t.ok(limited.length > 0, `${sent} frames: ${pongs} answered, ${limited.length} refused`);
    t.ok(limited.every((f) => f.t === 'error' && f.code === ErrorCode.RateLimited), 'refused with 106 RateLimited');
    t.ok(limited.every((f) => f.t === 'error' && /userRateLimitPerS/.test(f.msg) && f.msg.includes(`${LIMIT} frames/s`)), 'naming the per-user setting and its value');
    const seconds = pongSeconds(all);
    for (const [second, n] of seconds) t.ok(n <= LIMIT, `second ${second}: ${n} answered, at most ${LIMIT}`);
    if (seconds.size === 1) t.equal(pongs, LIMIT, 'within one second: exactly the limit answered, whichever shard');
    else t.comment('the burst crossed a second boundary on the server; checked per second only');
    t.same(
      mine.map((replies) => replies.every((f) => f.t === 'pong' || f.t === 'error')),
      conns.map(() => true),
      'every frame got an answer',
    );
    t.equal(theirs[0].filter((f) => f.t === 'pong').length, PER_CONN, 'another user at the same time: every ping answered');

    const lastSecond = Math.max(...seconds.keys());
    await new Promise((r) => setTimeout(r, (lastSecond + 1) * 1000 + 50 - Date.now()));
    const after = (await pingAll(conns, 1)).flat();
    t.equal(after.filter((f) => f.t === 'pong').length, conns.length, 'in the next second the user is answered again, on every connection');
    t.ok(conns.every((c) => !c.frames.some((f) => f.t === 'error' && f.code !== ErrorCode.RateLimited)), 'no other errors');
  });

  t.test("a user's budget is released with its last connection: reconnecting in the same second starts fresh", async (t) => {
    for (let attempt = 1; ; attempt++) {
      await earlyInASecond();
      const first = [await RawClient.connect(daemon.ws, { user: 'leaver' }), await RawClient.connect(daemon.ws, { user: 'leaver' })];
      const spent = (await pingAll(first, 25)).flat();
      await Promise.all(first.map((c) => c.close()));
      // The shards' release notices reach the primary.
      await new Promise((r) => setTimeout(r, 150));
      const again = [await RawClient.connect(daemon.ws, { user: 'leaver' }), await RawClient.connect(daemon.ws, { user: 'leaver' })];
      const fresh = (await pingAll(again, LIMIT / 2)).flat();
      await Promise.all(again.map((c) => c.close()));
      const seconds = pongSeconds([...spent, ...fresh]);
      if (seconds.size > 1 && attempt < 3) {
        t.comment(`attempt ${attempt} crossed a second boundary; again`);
        await new Promise((r) => setTimeout(r, 150));
        continue;
      }
      t.equal(seconds.size, 1, 'both rounds in the same second on the server');
      t.equal(spent.filter((f) => f.t === 'pong').length, LIMIT, 'the first connections used the whole budget');
      t.equal(spent.filter((f) => f.t === 'error').length, 50 - LIMIT, 'and were refused past it');
      t.equal(fresh.filter((f) => f.t === 'pong').length, LIMIT, 'after they all closed, new connections have the whole budget again');
      return;
    }
  });
});

t.test('rateLimitTokenValues: large frames take more of the rate limit, and one refused for it is never processed', async (t) => {
  // Defaults: 50 tokens/s, bursts of 100, one token per started 1,000 values.
  const daemon = await startDaemon({ SHARDCAST_SHARDS: '1' });
  t.teardown(() => daemon.stop());
  const S = 'quiz:weighted';
  const bomber = await RawClient.connect(daemon.ws, { user: 'weigher' });
  const light = await RawClient.connect(daemon.ws, { user: 'light' });
  t.teardown(() => Promise.all([bomber.close(), light.close()]));
  await bomber.join(S);
  await light.join(S);
  const big = Array.from({ length: 9000 }, () => ({}));
  const send = (c: RawClient, i: number, data: unknown) => {
    const id = c.id();
    c.sendRaw(compactPackr.pack({ t: 'cmd', id, s: S, cid: `c${i}`, type: 'answer', data }));
    return id;
  };
  const COMMANDS = 15;
  const ids = Array.from({ length: COMMANDS }, (_, i) => send(bomber, i, big));
  const replies = await Promise.all(ids.map((id) => bomber.next((f) => (f.t === 'ack' || f.t === 'error') && 'id' in f && f.id === id)));
  const acked = replies.filter((f) => f.t === 'ack').length;
  const refused = replies.filter((f) => f.t === 'error');
  // 9,013 values take 10 tokens: 9 fit in what the join left of the burst, a token
  // or two more may have been refilled while they were sent.
  t.ok(acked >= 9 && acked <= 10, `${acked} of ${COMMANDS} commands of 9,000 values acked`);
  t.equal(acked + refused.length, COMMANDS, 'every one answered');
  t.ok(
    refused.every((f) => f.t === 'error' && f.code === ErrorCode.RateLimited),
    'the others: 106',
  );
  // The first refused while a token was left for a small frame; once none is, the plain limit says so.
  t.match(refused[0]?.t === 'error' ? refused[0].msg : '', /a frame of 9013 values takes 10 tokens .*rateLimitTokenValues/, 'the first says what the frame cost, naming the setting');

  const smallIds = Array.from({ length: COMMANDS }, (_, i) => send(light, i, { choice: i }));
  const small = await Promise.all(smallIds.map((id) => light.next((f) => (f.t === 'ack' || f.t === 'error') && 'id' in f && f.id === id)));
  t.equal(small.filter((f) => f.t === 'ack').length, COMMANDS, 'the same number of small commands: all acked');

  const res = await fetch(`${daemon.http}/v1/commands?limit=1000`);
  const feed = ((await res.json()) as { commands: Array<{ user: string; cid: string }> }).commands;
  const ackedCids = replies.flatMap((f, i) => (f.t === 'ack' ? [`c${i}`] : []));
  t.same(
    feed.filter((c) => c.user === 'weigher').map((c) => c.cid),
    ackedCids,
    'only the acked commands were journaled',
  );

  await new Promise((r) => setTimeout(r, 1000));
  const again = send(bomber, 99, big);
  const reply = await bomber.next((f) => (f.t === 'ack' || f.t === 'error') && 'id' in f && f.id === again);
  t.equal(reply.t, 'ack', 'a second later, refilled: a large command is taken again; the connection stayed');
});
