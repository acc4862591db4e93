// End to end: hostile and broken client input against one daemon (2 shards). Every
// kind of malformed frame gets its documented outcome (protocol/SPEC.md §16,
// protocol/validate.ts): a close code for protocol violations, an error frame with
// the request id for request problems. Afterwards a client that joined at the start
// still gets events and no shard crashed.
import t from 'tap';
import { decode, encode } from '../../protocol/codec.js';
import { CloseCode, ErrorCode, MAX_CLOSE_REASON_BYTES } from '../../protocol/codes.js';
import type { ErrorFrame, ServerFrame } from '../../protocol/frames.js';
import { startDaemon, type DaemonProcess } from '../support/daemon-process.js';
import { nestedArrays, rawMap, RawValue } from '../support/msgpack-bytes.js';
import WebSocket from 'ws';
import { RawClient } from '../support/raw-client.js';
import { rawSession, rawUpgrade } from '../support/raw-upgrade.js';

let daemon: DaemonProcess;
let healthy: RawClient;
let userSeq = 0;
const clients: RawClient[] = [];

t.before(async () => {
  daemon = await startDaemon({
    SHARDCAST_SHARDS: '2',
    SHARDCAST_MAX_FRAME_BYTES: '1024',
    SHARDCAST_RATE_LIMIT_PER_S: '5',
    SHARDCAST_RATE_LIMIT_BURST: '5',
    SHARDCAST_NAMESPACES: '[{"prefix":"chat:","clientPublish":true},{"prefix":"quiet:","presence":false}]',
    SHARDCAST_MAX_SESSIONS_PER_CONNECTION: '3',
  });
  healthy = await connect();
  const joined = await healthy.join('quiz:healthy');
  if (joined.t !== 'joined') throw new Error(`healthy client could not join: ${JSON.stringify(joined)}`);
});
t.teardown(async () => {
  await Promise.all(clients.map((c) => c.close()));
  await daemon?.stop();
});

async function connect(): Promise<RawClient> {
  const c = await RawClient.connect(daemon.ws, { user: `p${++userSeq}` });
  clients.push(c);
  return c;
}

function isError(f: ServerFrame): f is ErrorFrame {
  return f.t === 'error';
}

/** Sends raw bytes (or text) on a fresh connection and returns its close code. */
async function closeCodeFor(data: Uint8Array | string): Promise<number> {
  const c = await connect();
  c.sendRaw(data);
  const closed = await withTimeout(c.closed, 5000, 'close');
  return closed.code;
}

/** Sends a frame on a fresh connection and returns the first error frame. */
async function errorFor(frame: Record<string, unknown> | Uint8Array, client?: RawClient): Promise<ErrorFrame> {
  const c = client ?? (await connect());
  const before = c.frames.length;
  if (frame instanceof Uint8Array) c.sendRaw(frame);
  else c.send(frame);
  await c.until((fs) => fs.slice(before).some(isError), 5000, 'an error frame');
  return c.frames.slice(before).find(isError)!;
}

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  return Promise.race([p, new Promise<T>((_, reject) => setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), ms).unref())]);
}

t.test('undecodable or non-protocol messages close with 4500', async (t) => {
  const cases: Array<[string, Uint8Array | string]> = [
    ['reserved byte 0xc1', Uint8Array.of(0xc1)],
    ['truncated map', Uint8Array.of(0x82, 0xa1, 0x74, 0xa4, 0x70, 0x69)],
    ['empty binary message', new Uint8Array(0)],
    ['trailing bytes', Uint8Array.of(0x80, 0x00)],
    ['text frame', JSON.stringify({ t: 'ping', id: 1 })],
    ['top level is an array', Uint8Array.of(0x92, 0x01, 0x02)],
    ['top level is a string', Uint8Array.of(0xa4, 0x70, 0x69, 0x6e, 0x67)],
    ['top level is an int', Uint8Array.of(0x07)],
    ['map without t', rawMap({ id: 1, s: 'quiz:1' })],
    ['t is not a string', rawMap({ t: 5, id: 1 })],
    ['map with an int key', Uint8Array.of(0x81, 0x01, 0x02)],
    // 900 levels: far past the hard limit (64) yet under this daemon's 1 KiB frame limit.
    ['nesting far beyond the hard limit (900 arrays)', rawMap({ t: 'cmd', id: 1, s: 'quiz:1', cid: 'c1', type: 'a', data: nestedArrays(900) })],
    ['nesting just past the hard limit (64)', rawMap({ t: 'cmd', id: 1, s: 'quiz:1', cid: 'c1', type: 'a', data: nestedArrays(64) })],
    ['array32 claiming 4 billion elements', rawMap({ t: 'cmd', id: 1, s: 'quiz:1', cid: 'c1', type: 'a', data: new RawValue(Uint8Array.of(0xdd, 0xff, 0xff, 0xff, 0xff, 0xc0)) })],
    ['map32 claiming 4 billion entries', rawMap({ t: 'cmd', id: 1, s: 'quiz:1', cid: 'c1', type: 'a', data: new RawValue(Uint8Array.of(0xdf, 0xff, 0xff, 0xff, 0xff)) })],
    ['str32 claiming 4 GiB', rawMap({ t: 'ping', id: 1, x: new RawValue(Uint8Array.of(0xdb, 0xff, 0xff, 0xff, 0xff, 0x61)) })],
    ['msgpack timestamp (ext -1, fixext 4)', rawMap({ t: 'cmd', id: 1, s: 'quiz:1', cid: 'c1', type: 'a', data: new RawValue(Uint8Array.of(0xd6, 0xff, 0, 0, 0, 1)) })],
    ['timestamp 96 (ext 8, type -1)', rawMap({ t: 'cmd', id: 1, s: 'quiz:1', cid: 'c1', type: 'a', data: new RawValue(Uint8Array.of(0xc7, 12, 0xff, ...new Array(12).fill(0))) })],
    ['fixext 1 of an application type', rawMap({ t: 'pub', id: 1, s: 'chat:1', type: 'a', data: new RawValue(Uint8Array.of(0xd4, 0x05, 0x00)) })],
    ['fixext 16 in a nested map', rawMap({ t: 'pub', id: 1, s: 'chat:1', type: 'a', data: new RawValue(Uint8Array.of(0x81, 0xa1, 0x78, 0xd8, 0x01, ...new Array(16).fill(7))) })],
    ['ext 0 (msgpackr undefined)', rawMap({ t: 'ping', id: new RawValue(Uint8Array.of(0xd4, 0x00, 0x00)) })],
    ['uint64 beyond 2^53', rawMap({ t: 'ping', id: new RawValue(Uint8Array.of(0xcf, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff)) })],
    ['invalid UTF-8 in a str', rawMap({ t: 'ping', id: 1, x: new RawValue(Uint8Array.of(0xa2, 0xc3, 0x28)) })],
    ['a map repeating a key', Uint8Array.of(0x82, 0xa1, 0x74, 0xa4, 0x70, 0x69, 0x6e, 0x67, 0xa1, 0x74, 0xa4, 0x70, 0x69, 0x6e, 0x67)],
  ];
  const codes = await Promise.all(cases.map(([, data]) => closeCodeFor(data)));
  cases.forEach(([name], i) => t.equal(codes[i], CloseCode.ProtocolError, name));
});

t.test('map key __proto__ closes with 4500', async (t) => {
  // fixmap{ t: 'ping', id: 1, "__proto__": 1 } spelled by hand (a JS object literal cannot carry the key).
  const proto = new TextEncoder().encode('__proto__');
  const bytes = Uint8Array.of(0x83, 0xa1, 0x74, 0xa4, 0x70, 0x69, 0x6e, 0x67, 0xa2, 0x69, 0x64, 0x01, 0xa0 | proto.length, ...proto, 0x01);
  t.equal(await closeCodeFor(bytes), CloseCode.ProtocolError);
});

t.test('a frame over SHARDCAST_MAX_FRAME_BYTES closes with 4503', async (t) => {
  const big = rawMap({ t: 'pub', id: 1, s: 'chat:1', type: 'a', data: 'x'.repeat(2000) });
  t.ok(big.length > 1024 && big.length < 3000);
  t.equal(await closeCodeFor(big), CloseCode.MessageTooBig);
  // Just under the limit is fine: the connection answers (NotJoined) and stays.
  const c = await connect();
  const fits = rawMap({ t: 'pub', id: 9, s: 'chat:1', type: 'a', data: 'x'.repeat(900) });
  t.ok(fits.length <= 1024);
  const err = await errorFor(fits, c);
  t.equal(err.code, ErrorCode.NotJoined);
  t.equal(err.id, 9);
});

t.test('request-level problems get an error frame and the connection stays', async (t) => {
  const c = await connect();
  const cases: Array<[string, Record<string, unknown> | Uint8Array, number, number | undefined]> = [
    ['unknown t', { t: 'subscribe', id: 11, s: 'quiz:1' }, ErrorCode.UnknownFrame, 11],
    ['unknown t without id', { t: 'hello' }, ErrorCode.UnknownFrame, undefined],
    ['id as string', { t: 'ping', id: '12' }, ErrorCode.BadRequest, undefined],
    ['id missing', { t: 'ping' }, ErrorCode.BadRequest, undefined],
    ['negative id', { t: 'ping', id: -1 }, ErrorCode.BadRequest, undefined],
    ['huge id (2^32)', { t: 'ping', id: 2 ** 32 }, ErrorCode.BadRequest, undefined],
    ['fractional id', { t: 'ping', id: 1.5 }, ErrorCode.BadRequest, undefined],
    ['s as number', { t: 'join', id: 13, s: 42 }, ErrorCode.BadRequest, 13],
    ['s missing', { t: 'join', id: 14 }, ErrorCode.BadRequest, 14],
    ['seq without ep', { t: 'join', id: 15, s: 'quiz:1', seq: 3 }, ErrorCode.BadRequest, 15],
    ['ep without seq', { t: 'join', id: 16, s: 'quiz:1', ep: 'abc' }, ErrorCode.BadRequest, 16],
    ['negative seq', { t: 'join', id: 17, s: 'quiz:1', ep: 'abc', seq: -1 }, ErrorCode.BadRequest, 17],
    ['seq as string', { t: 'join', id: 18, s: 'quiz:1', ep: 'abc', seq: '3' }, ErrorCode.BadRequest, 18],
    ['pres not a bool', { t: 'join', id: 19, s: 'quiz:1', pres: 1 }, ErrorCode.BadRequest, 19],
    ['unknown key', { t: 'join', id: 20, s: 'quiz:1', extra: true }, ErrorCode.BadRequest, 20],
    ['session with a space', { t: 'join', id: 21, s: 'quiz 1' }, ErrorCode.InvalidSession, 21],
    ['session with a slash', { t: 'join', id: 22, s: 'quiz/1' }, ErrorCode.InvalidSession, 22],
    ['session with unicode', { t: 'join', id: 23, s: 'quiz:é' }, ErrorCode.InvalidSession, 23],
    ['empty session', { t: 'join', id: 24, s: '' }, ErrorCode.InvalidSession, 24],
    ['session of 129 characters', { t: 'join', id: 25, s: 'q'.repeat(129) }, ErrorCode.InvalidSession, 25],
    ['cmd without cid', { t: 'cmd', id: 26, s: 'quiz:1', type: 'answer', data: 1 }, ErrorCode.BadRequest, 26],
    ['cmd without data', { t: 'cmd', id: 27, s: 'quiz:1', cid: 'c', type: 'answer' }, ErrorCode.BadRequest, 27],
    ['cmd type too long', { t: 'cmd', id: 28, s: 'quiz:1', cid: 'c', type: 't'.repeat(65), data: 1 }, ErrorCode.BadRequest, 28],
    ['data 17 levels deep', rawMap({ t: 'cmd', id: 29, s: 'quiz:1', cid: 'c', type: 'answer', data: nestedArrays(17) }), ErrorCode.PayloadTooLarge, 29],
    // The frame map plus 63 arrays is 64 levels: the hard limit (4 × 16) itself, still an error, not a close.
    ['data 63 levels deep (at the hard limit)', rawMap({ t: 'cmd', id: 31, s: 'quiz:1', cid: 'c', type: 'answer', data: nestedArrays(63) }), ErrorCode.PayloadTooLarge, 31],
    ['pub data 17 levels deep', rawMap({ t: 'pub', id: 32, s: 'chat:1', type: 'm', data: nestedArrays(17) }), ErrorCode.PayloadTooLarge, 32],
  ];
  // The rate limit (5/s, burst 5) applies to every connection: 4 cases per connection.
  const groups: Array<typeof cases> = [];
  for (let i = 0; i < cases.length; i += 4) groups.push(cases.slice(i, i + 4));
  await Promise.all(
    groups.map(async (group, g) => {
      const conn = g === 0 ? c : await connect();
      for (const [name, frame, code, id] of group) {
        const err = await errorFor(frame, conn);
        t.equal(err.code, code, `${name}: code`);
        t.equal(err.id, id, `${name}: id`);
        t.type(err.msg, 'string', `${name}: msg`);
      }
    }),
  );
  await sleep(1000);
  // 16 levels is still fine: the request reaches the NotJoined check.
  const ok16 = await errorFor(rawMap({ t: 'cmd', id: 30, s: 'quiz:1', cid: 'c', type: 'answer', data: nestedArrays(16) }), c);
  t.equal(ok16.code, ErrorCode.NotJoined, 'data 16 levels deep is accepted');
  const id = c.id() + 100;
  c.send({ t: 'ping', id });
  await c.next((f) => f.t === 'pong' && f.id === id, 5000);
  t.pass('the connection survived every request-level problem');
});

t.test('session state errors: not joined, already joined, publish not allowed', async (t) => {
  const c = await connect();
  let err = await errorFor({ t: 'cmd', id: 1001, s: 'quiz:a', cid: 'c1', type: 'answer', data: 1 }, c);
  t.same([err.code, err.id], [ErrorCode.NotJoined, 1001], 'cmd before join → 104');
  err = await errorFor({ t: 'presence', id: 1002, s: 'quiz:a' }, c);
  t.same([err.code, err.id], [ErrorCode.NotJoined, 1002], 'presence before join → 104');
  err = await errorFor({ t: 'leave', id: 1003, s: 'quiz:a' }, c);
  t.same([err.code, err.id], [ErrorCode.NotJoined, 1003], 'leave before join → 104');
  await sleep(700);
  const joined = await c.join('quiz:a');
  t.equal(joined.t, 'joined', 'join succeeds');
  err = await errorFor({ t: 'join', id: 50, s: 'quiz:a' }, c);
  t.same([err.code, err.id], [ErrorCode.AlreadyJoined, 50], 'second join → 105');
  err = await errorFor({ t: 'pub', id: 51, s: 'quiz:a', type: 'chat', data: 'hi' }, c);
  t.same([err.code, err.id], [ErrorCode.PublishNotAllowed, 51], 'pub in quiz: → 108');
  t.notOk(c.frames.some((f) => f.t === 'ev'), 'the refused publish produced no event');
});

t.test('session limits: too many sessions → 107, leave frees a slot, presence off → 103', async (t) => {
  const c = await connect();
  for (const s of ['quiz:m1', 'quiz:m2', 'quiet:m3']) t.equal((await c.join(s)).t, 'joined', `joined ${s}`);
  const err = await errorFor({ t: 'join', id: 2001, s: 'quiz:m4' }, c);
  t.same([err.code, err.id], [ErrorCode.TooManySessions, 2001], 'the fourth session → 107');
  await sleep(800);
  c.send({ t: 'leave', id: 2002, s: 'quiz:m1' });
  const left = await c.next((f) => f.t === 'left' && f.id === 2002, 5000);
  t.same(left, { t: 'left', id: 2002, s: 'quiz:m1' });
  t.equal((await c.join('quiz:m4')).t, 'joined', 'leaving freed a slot');
  const pres = await errorFor({ t: 'presence', id: 2003, s: 'quiet:m3' }, c);
  t.same([pres.code, pres.id], [ErrorCode.Forbidden, 2003], 'presence in a namespace without presence → 103');
});

t.test('pub in a namespace with clientPublish: ack with seq, other members get the event', async (t) => {
  const a = await connect();
  const b = await connect();
  t.equal((await a.join('chat:room')).t, 'joined');
  t.equal((await b.join('chat:room')).t, 'joined');
  a.send({ t: 'pub', id: 77, s: 'chat:room', type: 'msg', data: { text: 'hello' } });
  const ack = await a.next((f) => f.t === 'ack' && f.id === 77, 5000);
  if (ack.t !== 'ack') throw new Error('unreachable');
  t.equal(ack.seq, 1, 'the first event of the session has seq 1');
  const ev = await b.next((f) => f.t === 'ev' && f.s === 'chat:room', 5000);
  if (ev.t !== 'ev') throw new Error('unreachable');
  t.same([ev.seq, ev.type, ev.data], [1, 'msg', { text: 'hello' }]);
  await a.until((fs) => fs.some((f) => f.t === 'ev' && f.seq === 1), 5000, 'the publisher gets its own event too');
});

t.test('rate limit: a burst of pings gets 106, going on closes with 4002', async (t) => {
  const c = await connect();
  for (let i = 1; i <= 30; i++) c.send({ t: 'ping', id: i });
  const closed = await withTimeout(c.closed, 5000, 'rate-limit close');
  const pongs = c.frames.filter((f) => f.t === 'pong');
  const limited = c.frames.filter((f) => f.t === 'error' && f.code === ErrorCode.RateLimited);
  t.ok(pongs.length >= 5 && pongs.length <= 6, `the burst of 5 was answered (${pongs.length} pongs)`);
  t.ok(limited.length >= 1, `frames past the burst got error 106 (${limited.length})`);
  t.ok(limited.every((f) => f.t === 'error' && typeof f.id === 'number'), 'the 106 errors carry the request id');
  t.equal(closed.code, CloseCode.RateLimited, 'going on past the limit closes with 4002');
});

t.test('requests sent right away are answered after hello', async (t) => {
  // SPEC §hello: "A client may send requests right away; their replies always come
  // after hello." The frames leave as soon as the 101 response is read. A primary
  // kept busy by publish bursts widens the window before hello; 20 attempts.
  let loading = true;
  const load = Array.from({ length: 3 }, async (_, b) => {
    while (loading) {
      await daemon.publish({ events: Array.from({ length: 1000 }, (_, i) => ({ session: `quiz:burst${b}`, type: 'x', data: i })) });
    }
  });
  const sent = [encode({ t: 'ping', id: 1 }), encode({ t: 'presence', id: 2, s: 'quiz:nowhere' }), encode({ t: 'nonsense', id: 3 })];
  const orders: string[][] = [];
  try {
    for (let attempt = 0; attempt < 20; attempt++) {
      const got = await rawSession(`${daemon.ws}?user=eager${attempt}`, sent, { headers: { 'Sec-WebSocket-Protocol': 'shardcast.v1' }, count: 4 });
      orders.push(
        got.map((f) => {
          const r = decode(f.payload);
          return f.opcode === 0x2 && r.ok ? (r.value as ServerFrame).t : `opcode ${f.opcode}`;
        }),
      );
    }
  } finally {
    loading = false;
    await Promise.all(load);
  }
  const early = orders.filter((o) => o[0] !== 'hello');
  t.equal(early.length, 0, `hello came first on every connection (wrong on ${early.length} of 20, e.g. ${early[0]?.join(', ')})`);
  const short = orders.filter((o) => !(o.length === 4 && [...o].sort().join() === 'error,error,hello,pong'));
  t.equal(short.length, 0, `each got hello and the three replies (${JSON.stringify(short.slice(0, 2))})`);
});

t.test('after all that the daemon is healthy', async (t) => {
  const res = await daemon.publish({ session: 'quiz:healthy', type: 'still', data: 'alive' });
  t.equal(res.status, 200);
  const ev = await healthy.next((f) => f.t === 'ev' && f.s === 'quiz:healthy', 5000);
  if (ev.t !== 'ev') throw new Error('unreachable');
  t.equal(ev.type, 'still');
  t.equal(daemon.proc.exitCode, null, 'the daemon process is alive');
  t.notOk(daemon.lines.some((l) => typeof l.msg === 'string' && l.msg.startsWith('shard crashed')), 'no shard crashed');
  t.notOk(daemon.lines.some((l) => l.msg === 'shard thread error'), 'no shard thread error');
});

t.test('with the default 16 KiB frame limit, 10,000 nested arrays close with 4500', async (t) => {
  const plain = await startDaemon({ SHARDCAST_SHARDS: '1' });
  t.teardown(() => plain.stop());
  const frame = rawMap({ t: 'cmd', id: 1, s: 'quiz:1', cid: 'c1', type: 'a', data: nestedArrays(10_000) });
  t.ok(frame.length < 16 * 1024, `the frame (${frame.length} bytes) is within the size limit`);
  const c = await RawClient.connect(plain.ws, { user: 'deep' });
  c.sendRaw(frame);
  t.equal((await withTimeout(c.closed, 5000, 'close')).code, CloseCode.ProtocolError);
  const ok = await RawClient.connect(plain.ws, { user: 'after' });
  t.equal(ok.frames[0]?.t, 'hello', 'the shard still accepts connections');
  await ok.close();
  t.notOk(plain.lines.some((l) => typeof l.msg === 'string' && l.msg.startsWith('shard crashed')));
});

t.test('close reasons are cut by UTF-8 bytes on a character boundary, not mid-character', async (t) => {
  // The 4504 reason echoes the offered subprotocols. uWS reads header bytes as
  // latin1: each é arrives as one character, two bytes in UTF-8, and the reason
  // passes 123 bytes on an odd byte count, inside a character. (The trailing ASCII
  // letter keeps uWS from trimming the non-ASCII tail of the header value.)
  const offered = `shardcast.v${'\u00e9'.repeat(70)}x`;
  const r = await rawUpgrade(`${daemon.ws}?user=longreason`, { 'Sec-WebSocket-Protocol': offered }, { untilClose: true });
  t.equal(r.closeCode, CloseCode.UnsupportedVersion);
  const bytes = Buffer.byteLength(r.closeReason, 'utf8');
  t.ok(bytes <= MAX_CLOSE_REASON_BYTES, `at most ${MAX_CLOSE_REASON_BYTES} bytes (${bytes})`);
  t.ok(bytes >= MAX_CLOSE_REASON_BYTES - 4, `the room is used (${bytes} bytes)`);
  t.notOk(r.closeReason.includes('\uFFFD'), `valid UTF-8: no character cut in half (${JSON.stringify(r.closeReason.slice(-6))})`);
  t.ok(r.closeReason.startsWith(`unsupported protocol shardcast.v\u00e9`), 'the start of the reason is kept');
  t.ok(r.closeReason.endsWith('…'), 'and the cut is marked');
});

t.test('an idle client gets a close frame with 1000; a client that answers pings stays', async (t) => {
  // uWS's own idle timeout would drop the socket without a close frame (1006).
  const idle = await startDaemon({ SHARDCAST_SHARDS: '1', SHARDCAST_IDLE_TIMEOUT_S: '8' });
  t.teardown(() => idle.stop());
  const open = (user: string, autoPong: boolean) =>
    new Promise<RawClient>((resolve, reject) => {
      const ws = new WebSocket(`${idle.ws}?user=${user}`, ['shardcast.v1'], { autoPong });
      const c = new RawClient(ws);
      ws.once('error', reject);
      ws.once('open', () => c.until((fs) => fs.length > 0, 5000, 'hello').then(() => resolve(c), reject));
    });
  // A stack that does not answer pings: to the server, a client that went quiet.
  const quiet = await open('quiet', false);
  const live = await open('live', true);
  let pings = 0;
  live.ws.on('ping', () => pings++);
  const hello = quiet.frames[0];
  t.equal(hello?.t === 'hello' && hello.ping, 8, 'hello.ping states the idle timeout');
  const openedAt = Date.now();
  const closed = await withTimeout(quiet.closed, 12_000, 'idle close');
  const after = Date.now() - openedAt;
  t.equal(closed.code, CloseCode.Normal, `closed with 1000, not dropped (got ${closed.code})`);
  t.match(closed.reason, /^idle/, 'the reason says why');
  t.ok(after >= 7500 && after <= 9500, `after the idle timeout (${after} ms)`);
  t.equal(live.ws.readyState, WebSocket.OPEN, 'the client answering pings is still connected');
  t.ok(pings >= 1, `it was pinged (${pings})`);
  const id = live.id();
  live.send({ t: 'ping', id });
  await live.next((f) => f.t === 'pong' && f.id === id, 5000);
  await live.close();
});

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
