// End to end: the HTTP API of a production-configured daemon (API key and JWT
// secret, dev mode off): health and readiness, publishing (auth, idempotency,
// batches, msgpack bodies, every validation failure), snapshots seen by later
// joiners, the command feed, and readiness turning false on SIGTERM.
import http from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import t from 'tap';
import { encode } from '../../protocol/codec.js';
import { HTTP_ERRORS, HttpErrorCode } from '../../protocol/codes.js';
import type { GoAwayFrame, JoinedFrame, ServerFrame } from '../../protocol/frames.js';
import { signJwt } from '../../daemon/auth/jwt.js';
import { MAX_BODY_BYTES, REFUSED_BODY_READ_BYTES } from '../../daemon/shard/http-api.js';
import { startDaemon, type DaemonProcess } from '../support/daemon-process.js';
import { RawClient } from '../support/raw-client.js';

const API_KEY = 'test-api-key-0123456789';
const JWT_SECRET = 'http-api-test-secret-0123456789abcdef';

let daemon: DaemonProcess;
const clients: RawClient[] = [];

t.before(async () => {
  daemon = await startDaemon({
    SHARDCAST_DEV_MODE: 'false',
    SHARDCAST_API_KEY: API_KEY,
    SHARDCAST_ADMIN_TOKEN: API_KEY,
    SHARDCAST_JWT_SECRET: JWT_SECRET,
    SHARDCAST_DRAIN_TIMEOUT_MS: '3000',
    SHARDCAST_GO_AWAY_MAX_DELAY_MS: '0',
    SHARDCAST_MAX_BUFFER_BYTES: String(64 * 1024 * 1024),
  });
});
t.teardown(async () => {
  await Promise.all(clients.map((c) => c.close()));
  await daemon?.stop();
});

function token(user: string): string {
  return signJwt({ sub: user, sessions: ['*'], exp: Math.floor(Date.now() / 1000) + 600 }, { alg: 'HS256', secret: JWT_SECRET });
}

async function connect(user: string): Promise<RawClient> {
  const c = await RawClient.connect(daemon.ws, { token: token(user) });
  clients.push(c);
  if (c.frames[0]?.t !== 'hello') throw new Error(`${user} was refused: ${JSON.stringify(await c.closed)}`);
  return c;
}

interface Reply {
  status: number;
  type: string;
  body: any;
}

/** One HTTP request to the daemon; the body is parsed as JSON when it is JSON. */
async function call(method: string, path: string, opts: { key?: string; type?: string; body?: string | Uint8Array } = {}): Promise<Reply> {
  const headers: Record<string, string> = {};
  if (opts.key !== undefined) headers.authorization = `Bearer ${opts.key}`;
  if (opts.type !== undefined) headers['content-type'] = opts.type;
  const body = typeof opts.body === 'string' || opts.body === undefined ? opts.body : Buffer.from(opts.body);
  const res = await fetch(`${daemon.http}${path}`, { method, headers, body });
  const text = await res.text();
  const type = res.headers.get('content-type') ?? '';
  let parsed: unknown = text;
  try {
    parsed = JSON.parse(text);
  } catch {
    // not JSON: keep the text, the assertion will show it
  }
  return { status: res.status, type, body: parsed };
}

function publish(body: unknown, key: string | undefined = API_KEY): Promise<Reply> {
  return call('POST', '/v1/publish', { key, type: 'application/json', body: JSON.stringify(body) });
}

t.test('health, readiness and unknown routes', async (t) => {
  const health = await call('GET', '/healthz');
  t.equal(health.status, 200);
  const ready = await call('GET', '/readyz');
  t.equal(ready.status, 200);
  t.same(ready.body, { ready: true });
  for (const path of ['/healthz', '/readyz']) {
    const head = await fetch(`${daemon.http}${path}`, { method: 'HEAD' });
    t.equal(head.status, 200, `HEAD ${path} → 200`);
    t.equal(await head.text(), '', 'without a body');
  }
  for (const [method, path] of [['GET', '/nope'], ['POST', '/v1/nothing'], ['GET', '/v1/publishx']]) {
    const r = await call(method, path);
    t.equal(r.status, 404, `${method} ${path} → 404`);
    t.match(r.type, /application\/json/);
    t.equal(r.body.error?.code, 'not_found');
    t.match(r.body.error?.message, path);
  }
});

t.test('publish: API key, result, idempotency, batches, msgpack', async (t) => {
  const event = { session: 'quiz:pub', type: 'q', data: { n: 1 } };
  const none = await call('POST', '/v1/publish', { type: 'application/json', body: JSON.stringify(event) });
  t.equal(none.status, 401, 'no key → 401');
  t.equal(none.body.error?.code, 'unauthorized');
  t.equal((await publish(event, 'wrong-key-wrong-key-wrong')).status, 401, 'wrong key → 401');
  t.equal((await call('POST', '/v1/publish', { key: 'Basic x', type: 'application/json', body: JSON.stringify(event) })).status, 401);
  t.equal((await call('GET', '/v1/commands')).status, 401, 'the command feed needs the key too');

  const first = await publish(event);
  t.equal(first.status, 200);
  t.equal(first.body.seq, 1);
  t.type(first.body.epoch, 'string');
  t.ok(first.body.epoch.length > 0);
  t.equal(first.body.duplicate, false);

  const once = await publish({ ...event, id: 'evt-1' });
  const again = await publish({ ...event, id: 'evt-1', data: { n: 'changed' } });
  t.equal(once.body.seq, 2);
  t.same(again.body, { seq: 2, epoch: first.body.epoch, duplicate: true }, 'same id → same seq, duplicate');
  const next = await publish(event);
  t.equal(next.body.seq, 3, 'the duplicate did not use a seq');

  const batch = await publish({
    events: [
      { session: 'quiz:pub', type: 'a', data: 1 },
      { session: 'quiz:other', type: 'b', data: 2 },
      { session: 'quiz:pub', type: 'c', data: 3, id: 'evt-1' },
    ],
  });
  t.equal(batch.status, 200);
  t.same(
    batch.body.results.map((r: any) => [r.seq, r.duplicate]),
    [[4, false], [1, false], [2, true]],
    'batch results in order, per session, with duplicates',
  );

  const packed = await call('POST', '/v1/publish', {
    key: API_KEY,
    type: 'application/msgpack',
    body: encode({ session: 'quiz:pub', type: 'bin', data: { raw: Uint8Array.of(1, 2, 3), n: 5 } }),
  });
  t.equal(packed.status, 200, JSON.stringify(packed.body));
  t.equal(packed.body.seq, 5, 'msgpack body sequenced');
  const packedJsonCharset = await call('POST', '/v1/publish', { key: API_KEY, type: 'application/json; charset=utf-8', body: JSON.stringify(event) });
  t.equal(packedJsonCharset.status, 200, 'content-type parameters are ignored');

  // A client resuming from seq 4 gets the msgpack-published event replayed, bin data intact.
  const c = await connect('replayer');
  const joined = (await c.join('quiz:pub', { ep: first.body.epoch, seq: 4 })) as JoinedFrame;
  t.equal(joined.rec, true);
  await c.until((fs) => fs.some((f) => f.t === 'ev' && f.seq === 6), 5000, 'replay');
  const bin = c.events('quiz:pub').find((e) => e.type === 'bin');
  t.same(bin?.data, { raw: Buffer.from([1, 2, 3]), n: 5 }, 'bin data survives the msgpack body');
});

t.test('publish: invalid bodies are refused with a message naming the field', async (t) => {
  const ok = { session: 'quiz:v', type: 't', data: null };
  const deep: unknown = JSON.parse('['.repeat(17) + ']'.repeat(17));
  const cases: Array<[string, unknown, RegExp]> = [
    ['bad session characters', { ...ok, session: 'quiz v' }, /session/],
    ['session too long', { ...ok, session: 'q'.repeat(129) }, /session/],
    ['missing session', { type: 't', data: 1 }, /session/],
    ['missing type', { session: 'quiz:v', data: 1 }, /type/],
    ['type not a string', { ...ok, type: 5 }, /type/],
    ['missing data', { session: 'quiz:v', type: 't' }, /data/],
    ['data too deep', { ...ok, data: deep }, /data/],
    ['to not an array', { ...ok, to: 'bob' }, /\bto\b/],
    ['to empty', { ...ok, to: [] }, /\bto\b/],
    ['to with a non-string', { ...ok, to: ['bob', 7] }, /to\[1\]/],
    ['conflate without snapshot', { ...ok, conflate: true }, /conflate.*snapshot/],
    ['conflate not a boolean', { ...ok, snapshot: 'k', conflate: 'yes' }, /conflate/],
    ['snapshot empty', { ...ok, snapshot: '' }, /snapshot/],
    ['id not a string', { ...ok, id: 5 }, /\bid\b/],
    ['unknown field', { ...ok, colour: 'red' }, /colour/],
    ['body is an array', [ok], /body/],
    ['body is a string', 'hello', /body/],
    ['batch with another field', { events: [ok], extra: 1 }, /events/],
    ['empty batch', { events: [] }, /events/],
    ['more than 1000 events', { events: Array.from({ length: 1001 }, () => ok) }, /1000/],
    ['bad event inside a batch', { events: [ok, { ...ok, type: '' }] }, /events\[1\]\.type/],
  ];
  for (const [name, body, field] of cases) {
    const r = await publish(body);
    t.equal(r.status, 400, `${name} → 400`);
    t.equal(r.body.error?.code, 'invalid_request', `${name}: code`);
    t.match(r.body.error?.message, field, `${name}: message names the field (${r.body.error?.message})`);
  }

  const badJson = await call('POST', '/v1/publish', { key: API_KEY, type: 'application/json', body: '{"session": "quiz:v",' });
  t.equal(badJson.status, 400, 'bad JSON → 400');
  t.match(badJson.body.error?.message, /JSON/);
  const badPack = await call('POST', '/v1/publish', { key: API_KEY, type: 'application/msgpack', body: Uint8Array.of(0xc1) });
  t.equal(badPack.status, 400, 'bad msgpack → 400');
  const extPack = await call('POST', '/v1/publish', {
    key: API_KEY,
    type: 'application/msgpack',
    body: Uint8Array.of(0x83, 0xa7, ...Buffer.from('session'), 0xa6, ...Buffer.from('quiz:v'), 0xa4, ...Buffer.from('type'), 0xa1, 0x74, 0xa4, ...Buffer.from('data'), 0xd6, 0xff, 0, 0, 0, 1),
  });
  t.equal(extPack.status, 400, 'a msgpack timestamp in data → 400');
  t.match(extPack.body.error?.message, /extension type at byte 28/, 'naming the problem and where');
  const form = await call('POST', '/v1/publish', { key: API_KEY, type: 'application/x-www-form-urlencoded', body: 'session=quiz:v' });
  t.equal(form.status, 415, 'unsupported content-type → 415');
  t.match(form.body.error?.message, /content-type/);

  const huge = JSON.stringify({ session: 'quiz:v', type: 't', data: 'x'.repeat(1024 * 1024 + 10) });
  const tooBig = await call('POST', '/v1/publish', { key: API_KEY, type: 'application/json', body: huge });
  t.equal(tooBig.status, 413, 'body over 1 MiB → 413');
  const after = await publish({ session: 'quiz:v', type: 't', data: 'after' });
  t.equal(after.status, 200, 'the API keeps working after the refusals');
  t.equal(after.body.seq, 1, 'none of the refused bodies was sequenced');
});

t.test('snapshots: later joiners get the latest value, user-addressed keys only for that user', async (t) => {
  const s = 'quiz:snap';
  t.equal((await publish({ session: s, type: 'question', data: { q: 1 }, snapshot: 'question' })).status, 200);
  t.equal((await publish({ session: s, type: 'question', data: { q: 2 }, snapshot: 'question' })).status, 200);
  t.equal((await publish({ session: s, type: 'mine', data: 'for bob', to: ['bob'], snapshot: 'mine' })).status, 200);
  const last = await publish({ session: s, type: 'tick', data: 0 });
  t.equal(last.body.seq, 4);

  const alice = await connect('alice');
  const bob = await connect('bob');
  const ja = (await alice.join(s)) as JoinedFrame;
  const jb = (await bob.join(s)) as JoinedFrame;
  t.equal(ja.t, 'joined');
  t.equal(ja.rec, false, 'a fresh join is not a recovery');
  t.equal(ja.seq, 4, 'joined at the head');
  t.same(ja.snap?.question?.data, { q: 2 }, 'the latest question');
  t.equal(ja.snap?.question?.seq, 2);
  t.equal(ja.snap?.question?.type, 'question');
  t.type(ja.snap?.question?.ts, 'number');
  t.notOk(ja.snap && 'mine' in ja.snap, "bob's key is not in alice's snapshot");
  t.same(jb.snap?.mine?.data, 'for bob', "bob's snapshot has his key");
  t.same(jb.snap?.question?.data, { q: 2 });
  t.notOk(alice.frames.some((f) => f.t === 'ev'), 'a fresh joiner gets no replay');
});

t.test('an event addressed to the same user twice is delivered once', async (t) => {
  const s = 'quiz:dupto';
  const carol = await connect('carol');
  const dave = await connect('dave');
  t.equal((await carol.join(s)).t, 'joined');
  t.equal((await dave.join(s)).t, 'joined');
  t.equal((await publish({ session: s, type: 'secret', data: 1, to: ['carol', 'carol'] })).status, 200);
  const end = await publish({ session: s, type: 'end', data: 2 });
  await carol.until((fs) => fs.some((f) => f.t === 'ev' && f.seq === end.body.seq), 5000, 'end event');
  await dave.until((fs) => fs.some((f) => f.t === 'ev' && f.seq === end.body.seq), 5000, 'end event');
  t.same(carol.events(s).map((e) => e.seq), [1, 2], 'carol got the addressed event exactly once');
  t.same(dave.events(s).map((e) => e.seq), [2], 'dave did not get it');
});

t.test('commands: journaled with stamps, paged with after, a repeated cid stored once', async (t) => {
  const s = 'quiz:cmd';
  const erin = await connect('erin');
  t.equal((await erin.join(s)).t, 'joined');
  const ev = await publish({ session: s, type: 'question', data: 'q1' });
  await erin.until((fs) => fs.some((f) => f.t === 'ev' && f.s === s), 5000, 'question');
  const before = await call('GET', '/v1/commands?after=0&limit=1000', { key: API_KEY });
  t.equal(before.status, 200);
  const startPos: number = before.body.next;

  const sendCmd = async (cid: string, data: unknown) => {
    const id = erin.id();
    erin.send({ t: 'cmd', id, s, cid, type: 'answer', data });
    return erin.next((f: ServerFrame) => (f.t === 'ack' || f.t === 'error') && 'id' in f && f.id === id, 5000);
  };
  const sentAt = Date.now();
  const a1 = await sendCmd('c1', { choice: 'A' });
  t.same(a1, { t: 'ack', id: a1.t === 'ack' ? a1.id : -1, cid: 'c1' }, 'first cmd acked');
  const a2 = await sendCmd('c1', { choice: 'B' });
  t.equal(a2.t, 'ack');
  t.equal(a2.t === 'ack' && a2.dup, true, 'repeated cid acked as duplicate');
  for (let i = 2; i <= 4; i++) t.equal((await sendCmd(`c${i}`, i)).t, 'ack');

  const all = await call('GET', `/v1/commands?after=${startPos}&limit=1000`, { key: API_KEY });
  t.equal(all.status, 200);
  const mine = all.body.commands.filter((c: any) => c.session === s);
  t.same(mine.map((c: any) => c.cid), ['c1', 'c2', 'c3', 'c4'], 'each cid stored once, in order');
  const c1 = mine[0];
  t.equal(c1.user, 'erin');
  t.equal(c1.session, s);
  t.equal(c1.type, 'answer');
  t.same(c1.data, { choice: 'A' }, 'the first command is kept, not the retry');
  t.ok(c1.receivedAt >= sentAt - 1000 && c1.receivedAt <= Date.now() + 1000, 'receivedAt is the server time');
  t.equal(c1.lastSeq, ev.body.seq, 'lastSeq is the seq erin had been handed');
  t.ok(c1.lastSeqAt > 0 && c1.lastSeqAt <= c1.receivedAt, 'lastSeqAt is when it was handed');
  t.equal(Math.floor(c1.receivedAtUs / 1000), c1.receivedAt, 'receivedAtUs is receivedAt in µs');
  t.equal(Math.floor(c1.lastSeqAtUs / 1000), c1.lastSeqAt, 'lastSeqAtUs is lastSeqAt in µs');
  t.ok(c1.receivedAtUs > c1.lastSeqAtUs, 'the time to answer is positive in µs');
  t.not(c1.receivedAtUs % 1000, 0, 'receivedAtUs has sub-millisecond precision (a whole ms: 1 in 1000 chance)');
  t.type(c1.pos, 'number');
  t.equal(all.body.next, mine[3].pos);

  const page1 = await call('GET', `/v1/commands?after=${startPos}&limit=2`, { key: API_KEY });
  t.same(page1.body.commands.map((c: any) => c.cid), ['c1', 'c2']);
  const page2 = await call('GET', `/v1/commands?after=${page1.body.next}&limit=2`, { key: API_KEY });
  t.same(page2.body.commands.map((c: any) => c.cid), ['c3', 'c4'], 'after pages on');
  const page3 = await call('GET', `/v1/commands?after=${page2.body.next}&limit=2`, { key: API_KEY });
  t.same(page3.body.commands, []);
  t.equal(page3.body.next, page2.body.next, 'an empty page keeps the position');
  for (const q of ['after=-1', 'limit=0', 'limit=1001', 'after=abc']) {
    t.equal((await call('GET', `/v1/commands?${q}`, { key: API_KEY })).status, 400, `${q} → 400`);
  }
});

t.test('the standalone journal: what upstream has taken goes after commandJournalTakenRetentionMs, the rest stays, a retry of either is still a duplicate', async (t) => {
  const d = await startDaemon({ SHARDCAST_SHARDS: '1', SHARDCAST_COMMAND_JOURNAL_TAKEN_RETENTION_MS: '1500' });
  t.teardown(() => d.stop());
  const s = 'quiz:journal-retention';
  const feed = async (after: number) => {
    const res = await fetch(`${d.http}/v1/commands?after=${after}&limit=1000`);
    t.equal(res.status, 200);
    return (await res.json()) as { commands: { cid: string; pos: number }[]; next: number };
  };
  const cids = async (after: number) => (await feed(after)).commands.map((c) => c.cid);
  const amy = await RawClient.connect(d.ws, { user: 'amy' });
  t.equal((await amy.join(s)).t, 'joined');
  const sendCmd = async (cid: string) => {
    const id = amy.id();
    amy.send({ t: 'cmd', id, s, cid, type: 'answer', data: { cid } });
    return amy.next((f: ServerFrame) => (f.t === 'ack' || f.t === 'error') && 'id' in f && f.id === id, 5000);
  };
  for (const cid of ['r1', 'r2']) t.equal((await sendCmd(cid)).t, 'ack');
  const first = await feed(0);
  t.same(first.commands.map((c) => c.cid), ['r1', 'r2'], 'upstream reads r1 and r2');
  t.equal((await sendCmd('u1')).t, 'ack');
  t.same(await cids(first.next), ['u1'], 'upstream asks for what comes after r2: r1 and r2 are taken, u1 is handed out');
  t.same(await cids(0), ['r1', 'r2', 'u1'], 'right after, a reader that lost its page reads the taken ones again');
  await sleep(3500);
  t.same(await cids(0), ['u1'], 'after 1.5 s (swept within a second) the taken ones went; u1, handed out but not taken, stays');
  for (const cid of ['r1', 'u1']) {
    const again = await sendCmd(cid);
    t.same(again.t === 'ack' && again.dup, true, `a retry of ${cid} is acked dup: true, not journaled again`);
  }
  t.same(await cids(0), ['u1'], 'nothing new was journaled');
  await amy.close();
});

t.test('fair timing: an event addressed to another user does not move a participant\'s stamps', async (t) => {
  const s = 'quiz:fair-to';
  const [ann, ben] = [await connect('ann'), await connect('ben')];
  for (const c of [ann, ben]) t.equal((await c.join(s)).t, 'joined');
  const q = await publish({ session: s, type: 'question', data: 1 });
  const fb = await publish({ session: s, type: 'feedback', data: 'right', to: ['ann'] });
  await ann.until((fs) => fs.some((f) => f.t === 'ev' && f.seq === fb.body.seq), 5000, 'feedback');
  await ben.until((fs) => fs.some((f) => f.t === 'ev' && f.seq === q.body.seq), 5000, 'question');
  const before = (await call('GET', '/v1/commands?after=0&limit=1000', { key: API_KEY })).body.next as number;
  for (const [c, cid] of [[ann, 'fa'], [ben, 'fb']] as const) {
    const id = c.id();
    c.send({ t: 'cmd', id, s, cid, type: 'answer', data: null });
    t.equal((await c.next((f: ServerFrame) => (f.t === 'ack' || f.t === 'error') && 'id' in f && f.id === id, 5000)).t, 'ack');
  }
  const cmds = (await call('GET', `/v1/commands?after=${before}&limit=1000`, { key: API_KEY })).body.commands.filter((c: any) => c.session === s);
  const by = (u: string) => cmds.find((c: any) => c.user === u);
  t.equal(by('ann').lastSeq, fb.body.seq, 'ann was handed the feedback addressed to her');
  t.equal(by('ben').lastSeq, q.body.seq, 'ben only the question: the feedback to ann is not what ben saw');
  t.ok(by('ben').lastSeqAtUs <= by('ann').lastSeqAtUs, 'and ben\'s stamp is when the question reached him');
});

t.test('the command feed keeps bin data distinguishable from a map', async (t) => {
  // Commands arrive as msgpack and may carry bin; JSON.stringify turns a Uint8Array
  // into {"0":1,"1":2,…}, which upstream cannot tell from a map the client sent.
  const s = 'quiz:cmdbin';
  const fay = await connect('fay');
  t.equal((await fay.join(s)).t, 'joined');
  const id = fay.id();
  fay.send({ t: 'cmd', id, s, cid: 'bin1', type: 'upload', data: { file: Uint8Array.of(1, 2, 3) } });
  const ack = await fay.next((f) => (f.t === 'ack' || f.t === 'error') && 'id' in f && f.id === id, 5000);
  t.equal(ack.t, 'ack');
  const feed = await call('GET', '/v1/commands?after=0&limit=1000', { key: API_KEY });
  const cmd = feed.body.commands.find((c: any) => c.session === s);
  t.ok(cmd, 'the command is in the feed');
  t.notSame(cmd?.data?.file, { 0: 1, 1: 2, 2: 3 }, `bin is not rendered as an index-keyed map (got ${JSON.stringify(cmd?.data)})`);
});

t.test('events published while clients join reach each joiner exactly once after its joined position', async (t) => {
  // The primary posts history replies at once but routes live frames in a batch at
  // the end of its turn: a reply can overtake frames already counted in its head.
  const s = 'quiz:joinrace';
  const anchor = await connect('anchor0');
  const anchor2 = await connect('anchor1');
  await anchor.join(s);
  await anchor2.join(s); // interest on (very likely) both shards before the race
  let publishing = true;
  let sent = 0;
  const publisher = (async () => {
    while (publishing) {
      const events = Array.from({ length: 20 }, () => ({ session: s, type: 'tick', data: ++sent }));
      await publish({ events });
    }
  })();
  const joiners: RawClient[] = [];
  const joinedAt: number[] = [];
  for (let i = 0; i < 60; i++) {
    const c = await connect(`racer${i}`);
    const j = (await c.join(s)) as JoinedFrame;
    joiners.push(c);
    joinedAt.push(j.seq);
  }
  publishing = false;
  await publisher;
  const last = await publish({ session: s, type: 'end', data: null });
  await Promise.all(joiners.map((c) => c.until((fs) => fs.some((f) => f.t === 'ev' && f.seq === last.body.seq), 10_000, 'end')));
  let exact = 0;
  const problems: string[] = [];
  for (const [i, c] of joiners.entries()) {
    const seqs = c.events(s).map((e) => e.seq);
    const want = Array.from({ length: last.body.seq - joinedAt[i] }, (_, k) => joinedAt[i] + 1 + k);
    if (JSON.stringify(seqs) === JSON.stringify(want)) exact++;
    else if (problems.length < 3) {
      const dup = seqs.filter((q, k) => seqs.indexOf(q) !== k);
      const early = seqs.filter((q) => q <= joinedAt[i]);
      problems.push(`racer${i} joined at ${joinedAt[i]}: ${seqs.length} events for ${want.length}; duplicates ${JSON.stringify(dup.slice(0, 5))}, at or before the join ${JSON.stringify(early.slice(0, 5))}`);
    }
  }
  t.equal(exact, joiners.length, `every joiner got exactly the events after its position (${problems.join(' | ')})`);
});

t.test('HTTP errors: every code is the registered one, with the status the registry gives it', async (t) => {
  const cases: Array<[string, () => Promise<Reply>, HttpErrorCode]> = [
    ['JSON that does not parse', () => call('POST', '/v1/publish', { key: API_KEY, type: 'application/json', body: '{' }), HttpErrorCode.InvalidBody],
    ['truncated msgpack', () => call('POST', '/v1/publish', { key: API_KEY, type: 'application/msgpack', body: Uint8Array.of(0x82, 0xa1) }), HttpErrorCode.InvalidBody],
    ['a bad field', () => publish({ session: 'quiz v', type: 't', data: 1 }), HttpErrorCode.InvalidRequest],
    ['a bad query parameter', () => call('GET', '/v1/commands?limit=0', { key: API_KEY }), HttpErrorCode.InvalidRequest],
    ['no API key (publish)', () => call('POST', '/v1/publish', { type: 'application/json', body: '{}' }), HttpErrorCode.Unauthorized],
    ['no API key (commands)', () => call('GET', '/v1/commands'), HttpErrorCode.Unauthorized],
    ['no route', () => call('DELETE', '/v1/nothing'), HttpErrorCode.NotFound],
    ['a known route, another method', () => call('DELETE', '/v1/publish'), HttpErrorCode.MethodNotAllowed],
    ['a body over 1 MiB', () => call('POST', '/v1/publish', { key: API_KEY, type: 'application/json', body: 'x'.repeat(1024 * 1024 + 1) }), HttpErrorCode.TooLarge],
    ['a form body', () => call('POST', '/v1/publish', { key: API_KEY, type: 'text/plain', body: 'hi' }), HttpErrorCode.UnsupportedMediaType],
  ];
  for (const [name, request, code] of cases) {
    const r = await request();
    t.equal(r.body.error?.code, code, `${name}: code ${code}`);
    t.equal(r.status, HTTP_ERRORS[code].status, `${name}: status ${HTTP_ERRORS[code].status}`);
    t.match(r.type, /application\/json/, `${name}: JSON body`);
    t.ok(typeof r.body.error?.message === 'string' && r.body.error.message.length > 0, `${name}: a message`);
  }
  // unavailable (503) and timeout (504) need a backend that fails: pinned by the registry test.
  const seen = new Set(cases.map(([, , code]) => code));
  t.same([...Object.values(HttpErrorCode)].filter((c) => !seen.has(c)).sort(), ['timeout', 'unavailable']);
});

t.test('the command feed answers the documented shape', async (t) => {
  const s = 'quiz:shape';
  const c = await connect('gus');
  t.equal((await c.join(s)).t, 'joined');
  const before = await call('GET', '/v1/commands?after=0&limit=1000', { key: API_KEY });
  const after: number = before.body.next;
  const id = c.id();
  c.send({ t: 'cmd', id, s, cid: 'shape-1', type: 'answer', data: { choice: 2 } });
  t.equal((await c.next((f) => (f.t === 'ack' || f.t === 'error') && 'id' in f && f.id === id, 5000)).t, 'ack');
  const page = await call('GET', `/v1/commands?after=${after}`, { key: API_KEY });
  t.equal(page.status, 200);
  t.same(Object.keys(page.body).sort(), ['commands', 'next'], 'the reply is {commands, next} (README, "Commands back upstream")');
  const cmd = page.body.commands.find((x: { session?: string }) => x.session === s);
  t.same(
    Object.keys(cmd ?? {}).sort(),
    ['cid', 'conn', 'data', 'lastSeq', 'lastSeqAt', 'lastSeqAtUs', 'pos', 'receivedAt', 'receivedAtUs', 'role', 'session', 'shard', 'type', 'user'],
    'each command carries exactly the documented fields',
  );
  t.same([cmd?.user, cmd?.role, cmd?.cid, cmd?.type, cmd?.data], ['gus', 'participant', 'shape-1', 'answer', { choice: 2 }]);
  for (const field of ['pos', 'receivedAt', 'receivedAtUs', 'lastSeq', 'lastSeqAt', 'lastSeqAtUs', 'shard']) t.type(cmd?.[field], 'number', `${field} is a number`);
  t.type(cmd?.conn, 'string');
  t.equal(page.body.next, page.body.commands[page.body.commands.length - 1].pos, 'next is the last position');
  const empty = await call('GET', `/v1/commands?after=${page.body.next}`, { key: API_KEY });
  t.same(empty.body, { commands: [], next: page.body.next }, 'an empty page keeps the position');
});

/** msgpack int 64 (0xd3) of `n`, as hex: how the server must write a large integer of `data`. */
function int64Hex(n: number): string {
  const b = Buffer.alloc(9);
  b[0] = 0xd3;
  b.writeBigInt64BE(BigInt(n), 1);
  return b.toString('hex');
}

const LARGE = { id: 2 ** 40 + 1, neg: -(2 ** 40) - 1, max: Number.MAX_SAFE_INTEGER };

t.test('integers published as JSON reach joiners as msgpack integers (snapshot data)', async (t) => {
  const s = 'quiz:ints-snap';
  t.equal((await publish({ session: s, type: 'ids', data: LARGE, snapshot: 'ids' })).status, 200);
  const c = await connect('ivan');
  const raw: Buffer[] = [];
  c.ws.on('message', (d: Buffer) => raw.push(d));
  const joined = (await c.join(s)) as JoinedFrame;
  t.same(joined.snap?.ids?.data, LARGE, 'the values are exact');
  const bytes = Buffer.concat(raw).toString('hex');
  for (const n of Object.values(LARGE)) t.ok(bytes.includes(int64Hex(n)), `${n} as int 64, not float64`);
});

t.test(
  'integers published as JSON reach clients as msgpack integers (ev data)',
  async (t) => {
    const s = 'quiz:ints-ev';
    const c = await connect('ivy');
    t.equal((await c.join(s)).t, 'joined');
    const raw: Buffer[] = [];
    c.ws.on('message', (d: Buffer) => raw.push(d));
    t.equal((await publish({ session: s, type: 'ids', data: LARGE })).status, 200);
    const ev = await c.next((f) => f.t === 'ev' && f.s === s, 5000);
    t.same(ev.t === 'ev' && ev.data, LARGE, 'the values are exact');
    const bytes = Buffer.concat(raw).toString('hex');
    for (const n of Object.values(LARGE)) t.ok(bytes.includes(int64Hex(n)), `${n} as int 64, not float64`);
  },
);

/** Sends raw bytes on a fresh TCP connection; resolves with everything the server sent until it closed (or `waitMs`). */
/** Writes `bytes` (each part as its own write, `gapMs` apart) on one connection; returns what came back within `waitMs`. */
async function rawHttp(bytes: string | string[], waitMs = 3000, gapMs = 0): Promise<{ text: string; closed: boolean }> {
  const { connect } = await import('node:net');
  return new Promise((resolve) => {
    const socket = connect(daemon.port, '127.0.0.1');
    let text = '';
    let done = false;
    const finish = (closed: boolean) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.destroy();
      resolve({ text, closed });
    };
    const timer = setTimeout(() => finish(false), waitMs);
    socket.setEncoding('utf8');
    socket.on('data', (d: string) => (text += d));
    socket.on('end', () => finish(true));
    socket.on('close', () => finish(true));
    socket.on('error', () => finish(true));
    const parts = typeof bytes === 'string' ? [bytes] : bytes;
    parts.forEach((part, i) => setTimeout(() => !done && socket.write(part), i * gapMs));
  });
}

t.test('pipelined publishes: each is answered or not applied, never applied unanswered', async (t) => {
  const request = (session: string) => {
    const body = JSON.stringify({ session, type: 't', data: 1 });
    return `POST /v1/publish HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${API_KEY}\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body}`;
  };
  const answered = (text: string) => text.match(/"seq":\d+/g) ?? [];
  for (const [name, session, parts, gapMs] of [
    ['three in one write', 'quiz:pipe-one-write', [request('quiz:pipe-one-write').repeat(3)], 0],
    ['three writes 5 ms apart', 'quiz:pipe-apart', [1, 2, 3].map(() => request('quiz:pipe-apart')), 5],
  ] as const) {
    const r = await rawHttp([...parts], 1500, gapMs);
    const seqs = answered(r.text);
    const next = await publish({ session, type: 't', data: 2 });
    t.equal(next.body.seq, seqs.length + 1, `${name}: ${seqs.length} answered (${seqs.join(', ')}), and only those were applied`);
  }
  const single = await rawHttp(request('quiz:pipe-single'), 1500);
  t.equal(answered(single.text).length, 1, 'a lone request is still answered');
});

t.test('HTTP framing: 405 with Allow, HEAD without a body, media types case-insensitive, one Content-Length, no reading past a 413', async (t) => {
  for (const [method, path, allow] of [['GET', '/v1/publish', 'POST'], ['DELETE', '/healthz', 'GET, HEAD'], ['POST', '/v1/commands', 'GET']] as const) {
    const r = await call(method, path, { key: API_KEY });
    t.equal(r.status, 405, `${method} ${path} → 405`);
    t.equal(r.body.error?.code, HttpErrorCode.MethodNotAllowed);
    const res = await fetch(`${daemon.http}${path}`, { method, headers: { authorization: `Bearer ${API_KEY}` } });
    t.equal(res.headers.get('allow'), allow, `Allow: ${allow}`);
    await res.arrayBuffer();
  }
  const head = await rawHttp('HEAD /nowhere HTTP/1.1\r\nHost: x\r\n\r\n', 1500);
  t.match(head.text, /^HTTP\/1\.1 404/, 'HEAD on an unknown path → 404');
  t.notMatch(head.text, /not_found/, 'with no body');

  const upper = await call('POST', '/v1/publish', { key: API_KEY, type: 'APPLICATION/JSON; Charset=UTF-8', body: JSON.stringify({ session: 'quiz:media', type: 't', data: 1 }) });
  t.equal(upper.status, 200, 'APPLICATION/JSON is application/json');

  const body = JSON.stringify({ session: 'quiz:smuggle', type: 't', data: 1 });
  const twice = await rawHttp(
    `POST /v1/publish HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${API_KEY}\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\nContent-Length: 5\r\n\r\n${body}`,
  );
  t.match(twice.text, /^HTTP\/1\.1 400/, 'two Content-Length headers → 400');
  t.match(twice.text, /more than one Content-Length/);
  t.ok(twice.closed, 'and the connection is closed');
  const pos = await call('POST', '/v1/publish', { key: API_KEY, type: 'application/json', body });
  t.equal(pos.body.seq, 1, 'the ambiguous request was not applied');

  const huge = await rawHttp(`POST /v1/publish HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${API_KEY}\r\nContent-Type: application/json\r\nContent-Length: ${100 * 1024 * 1024}\r\n\r\n{`);
  t.match(huge.text, /^HTTP\/1\.1 413/, 'a declared 100 MB body → 413 at once, before any of it is read');
  t.ok(huge.closed, 'and the connection is closed instead of reading the rest');

  // A body a little too long is read to its end first: a client still writing when the
  // connection closed would fail on its write and never see the 413.
  const over = 1024 * 1024 + 512 * 1024;
  const slightly = await rawHttp(
    [`POST /v1/publish HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${API_KEY}\r\nContent-Type: application/json\r\nContent-Length: ${over}\r\n\r\n${'x'.repeat(over)}`, 'GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n'],
    2000,
    50,
  );
  t.match(slightly.text, /^HTTP\/1\.1 413/, 'a body 512 KiB over the limit → 413');
  t.match(slightly.text, /HTTP\/1\.1 200[^]*"status":"ok"/, 'after its body was read to the end, the connection answers the next request');
  t.notOk(slightly.closed, 'and stays open');
  const beyond = await rawHttp(`POST /v1/publish HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${API_KEY}\r\nContent-Type: application/json\r\nContent-Length: ${MAX_BODY_BYTES + REFUSED_BODY_READ_BYTES + 1}\r\n\r\n{`);
  t.match(beyond.text, /^HTTP\/1\.1 413/, 'a declared length one byte past what is read of a refused body → 413 at once');
  t.ok(beyond.closed, 'and the connection closed');

  // Without a Content-Length (chunked), the same two cases are told apart as the body arrives.
  const chunked = (bytes: number) => `${bytes.toString(16)}\r\n${'x'.repeat(bytes)}\r\n`;
  const chunkedHead = `POST /v1/publish HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${API_KEY}\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n`;
  const chunkedOver = await rawHttp([chunkedHead, chunked(over), '0\r\n\r\n', 'GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n'], 2000, 50);
  t.match(chunkedOver.text, /^HTTP\/1\.1 413/, 'a chunked body 512 KiB over the limit → 413 at its end');
  t.match(chunkedOver.text, /HTTP\/1\.1 200[^]*"status":"ok"/, 'and the connection answers the next request');
  const chunkedBeyond = await rawHttp([chunkedHead, chunked(MAX_BODY_BYTES + REFUSED_BODY_READ_BYTES + 1024)], 3000, 50);
  t.match(chunkedBeyond.text, /^HTTP\/1\.1 413/, 'a chunked body past what is read of a refused body → 413 once that much was read');
  t.ok(chunkedBeyond.closed, 'and the connection closed');
});

t.test('what this uWS build does not answer: HTTP/1.0, no Host, 49 or more headers get no response and are closed by its idle timeout (SPEC, HTTP API)', async (t) => {
  const headers = (n: number) => Array.from({ length: n }, (_, i) => `X-H${i}: ${i}\r\n`).join('');
  const WAIT_MS = 16_000;
  const started = Date.now();
  const [old, noHost, tooMany, most] = await Promise.all([
    rawHttp('GET /healthz HTTP/1.0\r\nHost: x\r\n\r\n', WAIT_MS),
    rawHttp('GET /healthz HTTP/1.1\r\n\r\n', WAIT_MS),
    // Host is one of them: 48 more make 49.
    rawHttp(`GET /healthz HTTP/1.1\r\nHost: x\r\n${headers(48)}\r\n`, WAIT_MS),
    rawHttp(`GET /healthz HTTP/1.1\r\nHost: x\r\n${headers(47)}\r\n`, 3000),
  ]);
  for (const [name, r] of [['HTTP/1.0', old], ['HTTP/1.1 without Host', noHost], ['49 header fields', tooMany]] as const) {
    t.equal(r.text, '', `${name}: no response`);
    t.ok(r.closed, `${name}: the connection was closed within ${WAIT_MS / 1000} s, not left open (${Date.now() - started} ms for all)`);
  }
  t.match(most.text, /^HTTP\/1\.1 200/, '48 header fields: answered');
  t.equal((await call('GET', '/healthz')).status, 200, 'the API keeps answering');
});

t.test('__proto__ never reaches clients: refused in JSON and msgpack publish bodies', async (t) => {
  const json = await call('POST', '/v1/publish', { key: API_KEY, type: 'application/json', body: '{"session":"quiz:proto","type":"t","data":{"__proto__":{"admin":true}}}' });
  t.equal(json.status, 400, 'JSON: 400');
  t.equal(json.body.error?.code, HttpErrorCode.InvalidRequest);
  t.match(json.body.error?.message, /__proto__/);
  // msgpack of {session, type, data: {"__proto__": 1}} written by hand: fixmap 3.
  const hex = '83' + 'a7' + Buffer.from('session').toString('hex') + 'aa' + Buffer.from('quiz:proto').toString('hex')
    + 'a4' + Buffer.from('type').toString('hex') + 'a1' + Buffer.from('t').toString('hex')
    + 'a4' + Buffer.from('data').toString('hex') + '81' + 'a9' + Buffer.from('__proto__').toString('hex') + '01';
  const packed = await call('POST', '/v1/publish', { key: API_KEY, type: 'application/msgpack', body: Buffer.from(hex, 'hex') });
  t.equal(packed.status, 400, 'msgpack: 400 (msgpackr would have renamed the key)');
  t.equal(packed.body.error?.code, HttpErrorCode.InvalidBody);
  t.match(packed.body.error?.message, /__proto__/);
  const snap = await publish({ session: 'quiz:proto', type: 't', data: 1, snapshot: '__proto__' });
  t.equal(snap.status, 400, 'a snapshot key "__proto__": 400');
  const pos = await publish({ session: 'quiz:proto', type: 't', data: 1 });
  t.equal(pos.body.seq, 1, 'nothing refused took a seq');
});

t.test('goaway pos.seq is the head routed to the instance, even past the last event this client got', async (t) => {
  // SPEC §7/§14: the go-away is queued behind every frame routed so far, so the
  // head is a safe resume point although its event was addressed to someone else.
  const d = await startDaemon({ SHARDCAST_SHARDS: '1', SHARDCAST_GO_AWAY_MAX_DELAY_MS: '0' });
  t.teardown(() => d.stop());
  const s = 'quiz:goaway-pos';
  const amy = await RawClient.connect(d.ws, { user: 'amy' });
  const bob = await RawClient.connect(d.ws, { user: 'bob' });
  t.equal((await amy.join(s)).t, 'joined');
  t.equal((await bob.join(s)).t, 'joined');
  t.equal((await d.publish({ session: s, type: 'all', data: 1 })).status, 200);
  t.equal((await d.publish({ session: s, type: 'bob-only', data: 2, to: ['bob'] })).status, 200);
  await bob.until((fs) => fs.some((f) => f.t === 'ev' && f.seq === 2), 5000, 'bob gets seq 2');
  await amy.until((fs) => fs.some((f) => f.t === 'ev' && f.seq === 1), 5000, 'amy gets seq 1');
  d.proc.kill('SIGTERM');
  const goaway = await amy.next((f): f is GoAwayFrame => f.t === 'goaway', 5000);
  const ep = amy.events(s)[0]!.ep;
  t.same(amy.events(s).map((e) => e.seq), [1], 'amy received only seq 1');
  t.same(goaway.pos, [{ s, ep, seq: 2 }], "amy's resume point is the head, seq 2");
  t.equal((await amy.closed).code, 1001, 'then 1001');
  await bob.closed;
});

t.test('SIGTERM: readiness turns false while clients drain', async (t) => {
  // Clients that do not read keep both shards draining until the deadline (3 s).
  const stuck: RawClient[] = [];
  for (let i = 0; i < 12 && new Set(stuck.map((c) => c.shard())).size < 2; i++) {
    const c = await connect(`stuck${i}`);
    if (stuck.some((o) => o.shard() === c.shard())) continue;
    t.equal((await c.join('quiz:drain')).t, 'joined');
    c.pauseReading();
    stuck.push(c);
  }
  t.equal(new Set(stuck.map((c) => c.shard())).size, 2, 'a stuck client on each shard');
  const chunk = 'x'.repeat(900 * 1024);
  for (let i = 0; i < 12; i++) t.equal((await publish({ session: 'quiz:drain', type: 'big', data: chunk })).status, 200);

  const agent = new http.Agent({ keepAlive: true, maxSockets: 2 });
  t.teardown(() => agent.destroy());
  const probe = () =>
    new Promise<number | string>((resolve) => {
      const req = http.get(`${daemon.http}/readyz`, { agent }, (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      });
      req.on('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? 'error'));
    });
  t.equal(await probe(), 200, 'ready before SIGTERM');
  await Promise.all([probe(), probe()]);

  const sentAt = Date.now();
  daemon.proc.kill('SIGTERM');
  const seen: Array<number | string> = [];
  let exited = false;
  void daemon.exited.then(() => {
    exited = true;
  });
  while (!exited && Date.now() - sentAt < 8000) {
    seen.push(await probe());
    await new Promise((r) => setTimeout(r, 5));
  }
  const { code } = await daemon.exited;
  const firstNot200 = seen.findIndex((s) => s !== 200);
  t.ok(firstNot200 >= 0, 'readiness stopped answering 200');
  t.ok(seen.slice(firstNot200).every((s) => s !== 200), `never ready again once not ready (${summarise(seen)})`);
  t.ok(seen.includes(503), `a probe saw 503 while the instance drained (${summarise(seen)})`);
  t.ok(Date.now() - sentAt < 6000, 'exited within the drain deadline plus margin');
  t.equal(code, 1, 'the stuck clients were closed at the deadline: the drain overran, exit 1');
  for (const c of stuck) c.resumeReading();
  const goaways = await Promise.all(stuck.map((c) => c.closed));
  t.ok(goaways.every((g) => g.code === 1001 || g.code === 1006), 'stuck clients were closed');
});

function summarise(seen: Array<number | string>): string {
  const out: string[] = [];
  for (const s of seen) {
    const last = out[out.length - 1];
    const m = last && /^(.+)×(\d+)$/.exec(last);
    if (m && m[1] === String(s)) out[out.length - 1] = `${s}×${Number(m[2]) + 1}`;
    else out.push(`${s}×1`);
  }
  return out.join(', ');
}
