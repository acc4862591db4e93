import t, { type Test } from 'tap';
import { WebSocket } from 'ws';
import { ShardcastClient, ShardcastError, ErrorCode, type EventFrame, type ConnectionState } from '../../protocol/client/index.js';
import { FakeGateway } from './fake-gateway.js';

const isJoin = (f: { t: string }): f is { t: 'join'; id: number; s: string; ep?: string; seq?: number; pres?: boolean } => f.t === 'join';

async function setup(t: Test, opts = {}) {
  const gw = await FakeGateway.start(opts);
  const states: ConnectionState[] = [];
  const client = new ShardcastClient({
    url: gw.url,
    user: 'alice',
    WebSocket,
    reconnect: { baseMs: 10, maxMs: 50 },
    onStateChange: (s) => states.push(s),
  });
  t.teardown(async () => {
    await client.close();
    await gw.close();
  });
  return { gw, client, states };
}

function collect(n: number, it: AsyncIterableIterator<EventFrame>): Promise<EventFrame[]> {
  return (async () => {
    const out: EventFrame[] = [];
    for await (const ev of it) {
      out.push(ev);
      if (out.length === n) break;
    }
    return out;
  })();
}

t.test('connect resolves with hello over the shardcast.v1 subprotocol', async (t) => {
  const { gw, client, states } = await setup(t);
  const hello = await client.connect();
  t.equal(hello.user, 'alice');
  t.equal(client.state, 'open');
  t.same(states, ['connecting', 'open']);
  const conn = await gw.nextConnection(1);
  t.equal(conn.protocol, 'shardcast.v1');
  t.equal(conn.user, 'alice');
  t.equal(await client.connect(), hello, 'connect() on an open client resolves at once');
});

t.test('the token travels as a bearer.<token> subprotocol, not in the URL; a token function is called per connection', async (t) => {
  const gw = await FakeGateway.start();
  let calls = 0;
  const client = new ShardcastClient({ url: gw.url, token: async () => `eyJ.tok-${++calls}_x`, WebSocket, reconnect: { baseMs: 5, maxMs: 5 } });
  t.teardown(async () => {
    await client.close();
    await gw.close();
  });
  await client.connect();
  const first = await gw.nextConnection(1);
  t.equal(first.token, 'eyJ.tok-1_x');
  t.equal(first.tokenVia, 'protocol');
  t.equal(first.protocol, 'shardcast.v1', 'the server answers with shardcast.v1 only');
  first.ws.terminate();
  const second = await gw.nextConnection(2);
  t.equal(second.token, 'eyJ.tok-2_x');
});

t.test("tokenTransport 'query', and tokens a subprotocol cannot hold, go in the query string", async (t) => {
  const gw = await FakeGateway.start();
  t.teardown(() => gw.close());
  for (const [options, token] of [[{ tokenTransport: 'query' as const }, 'abc.def'], [{}, 'has space/and=']] as const) {
    const client = new ShardcastClient({ url: gw.url, token, WebSocket, ...options });
    await client.connect();
    const conn = gw.connections[gw.connections.length - 1];
    t.equal(conn.token, token);
    t.equal(conn.tokenVia, 'query');
    await client.close();
  }
});

t.test('relative and http(s) URLs resolve against the page and become ws(s) URLs', async (t) => {
  const { resolveUrl } = await import('../../protocol/client/client.js');
  t.equal(resolveUrl('/v1/ws', 'https://app.example/quiz/1').href, 'wss://app.example/v1/ws');
  t.equal(resolveUrl('v1/ws', 'http://localhost:8080/app/').href, 'ws://localhost:8080/app/v1/ws');
  t.equal(resolveUrl('ws://gw:1/v1/ws', 'https://app.example/').href, 'ws://gw:1/v1/ws', 'absolute ws URLs stay');
  t.equal(resolveUrl('http://gw:1/v1/ws', undefined).href, 'ws://gw:1/v1/ws');
  t.throws(() => resolveUrl('/v1/ws', undefined), 'outside a page a relative URL is an error');
});

t.test('join: ready, events to listeners and iterators, position', async (t) => {
  const { gw, client } = await setup(t);
  await client.connect();
  const sub = client.join('quiz:1');
  const seen: number[] = [];
  sub.on('event', (ev) => seen.push(ev.seq));
  const iterated = collect(3, sub.events());
  const joined = await sub.ready;
  t.equal(joined.s, 'quiz:1');
  t.equal(joined.rec, false, 'no position given: not recovered');
  t.same(sub.position, { epoch: 'ep1', seq: 0 });
  gw.publish('quiz:1', 'question', { n: 1 });
  gw.publish('quiz:1', 'question', { n: 2 });
  gw.publish('other', 'question', { n: 9 });
  gw.publish('quiz:1', 'question', { n: 3 });
  const evs = await iterated;
  t.same(evs.map((e) => e.data), [{ n: 1 }, { n: 2 }, { n: 3 }]);
  t.same(seen, [1, 2, 3]);
  t.same(sub.position, { epoch: 'ep1', seq: 3 });
  t.equal(sub.state, 'joined');
  t.throws(() => client.join('quiz:1'), { code: 'invalid_use' }, 'a session is joined once per client');
  t.throws(() => client.join('bad session'), { code: 'invalid_use', message: /invalid session id/ });
  t.throws(() => client.join(''), { code: 'invalid_use' });
});

t.test('join before connect starts connecting', async (t) => {
  const { client } = await setup(t);
  const sub = client.join('lazy');
  const joined = await sub.ready;
  t.equal(joined.s, 'lazy');
  t.equal(client.state, 'open');
});

t.test('join with since resumes: replayed events are delivered, overlapping replay is deduped', async (t) => {
  const { gw, client } = await setup(t, { overlapReplay: true });
  for (let i = 1; i <= 5; i++) gw.publish('room', 'msg', i, { live: false });
  await client.connect();
  const sub = client.join('room', { since: { epoch: 'ep1', seq: 2 } });
  const got = collect(3, sub.events());
  const joined = await sub.ready;
  t.equal(joined.rec, true);
  t.same((await got).map((e) => e.seq), [3, 4, 5], 'server replayed 1..5, client delivered only 3..5');
  const conn = await gw.nextConnection(1);
  const join = conn.frames.find(isJoin);
  t.match(join, { s: 'room', ep: 'ep1', seq: 2 });
});

t.test('not recovered: snapshot is emitted and the position moves to the joined seq', async (t) => {
  const { gw, client } = await setup(t);
  gw.publish('poll', 'tally', { yes: 1 }, { snapshot: 'tally', live: false });
  gw.publish('poll', 'tally', { yes: 2 }, { snapshot: 'tally', live: false });
  gw.resetEpoch('poll', 'ep2');
  gw.publish('poll', 'tally', { yes: 3 }, { snapshot: 'tally', live: false });
  const sub = client.join('poll', { since: { epoch: 'ep1', seq: 2 } });
  const snapshot = new Promise((resolve) => sub.once('snapshot', resolve));
  await sub.ready;
  t.match(await snapshot, { snap: { tally: { seq: 1, data: { yes: 3 } } }, joined: { ep: 'ep2', rec: false } });
  t.same(sub.position, { epoch: 'ep2', seq: 1 });
  const next = collect(1, sub.events());
  gw.publish('poll', 'tally', { yes: 4 });
  t.match(await next, [{ seq: 2, ep: 'ep2' }]);
});

t.test('publish, presence, leave', async (t) => {
  const { gw, client } = await setup(t, {});
  const sub = client.join('chat', { presence: true });
  await sub.ready;
  const echoed = collect(1, sub.events());
  t.same(await sub.publish('msg', { text: 'hi' }), { seq: 1 });
  t.match(await echoed, [{ seq: 1, type: 'msg', data: { text: 'hi' } }]);
  t.same(await sub.presence(), [{ u: 'alice', n: 1 }]);
  const conn = await gw.nextConnection(1);
  t.equal(conn.frames.find(isJoin)?.pres, true);

  const iter = sub.events();
  const ended = new Promise((resolve) => sub.once('end', resolve));
  await sub.leave();
  t.same(await ended, { reason: 'left' });
  t.same(await iter.next(), { value: undefined, done: true }, 'iterator ends on leave');
  t.equal(sub.state, 'ended');
  t.ok(conn.frames.some((f) => f.t === 'leave'));
  await t.rejects(sub.publish('msg', 1), { code: 'left' });
  t.equal(client.getSubscription('chat'), undefined);
  const again = client.join('chat');
  t.equal((await again.ready).s, 'chat', 'a left session can be joined again');
});

t.test('presence notices reach the subscription', async (t) => {
  const { gw, client } = await setup(t);
  const sub = client.join('p', { presence: true });
  await sub.ready;
  const changes: unknown[] = [];
  sub.on('presence', (c) => changes.push(c));
  const conn = await gw.nextConnection(1);
  conn.send({ t: 'pjoin', s: 'p', u: 'bob' });
  conn.send({ t: 'pleave', s: 'p', u: 'bob' });
  conn.send({ t: 'pong', id: 0 });
  await new Promise((r) => setTimeout(r, 50));
  t.same(changes, [{ kind: 'join', user: 'bob' }, { kind: 'leave', user: 'bob' }]);
});

t.test('a refused join rejects ready and ends the subscription with the error', async (t) => {
  const { gw, client } = await setup(t);
  gw.handlers.join = (conn, frame) => {
    conn.send({ t: 'error', id: frame.id, code: ErrorCode.Forbidden, msg: 'session not in token' });
    return true;
  };
  const sub = client.join('secret');
  const iter = sub.events();
  const err = await sub.ready.then(
    () => null,
    (e: unknown) => e,
  );
  t.ok(err instanceof ShardcastError);
  t.match(err, { code: ErrorCode.Forbidden, retryable: false, message: /Forbidden \(103\): session not in token/ });
  await t.rejects(iter.next(), { code: ErrorCode.Forbidden }, 'iterator throws the failure');
  t.equal(sub.state, 'ended');
  t.equal(client.state, 'open', 'the connection stays up');
});

t.test('a retryable join refusal is retried', async (t) => {
  const { gw, client } = await setup(t);
  let refusals = 0;
  gw.handlers.join = (conn, frame) => {
    if (refusals++ > 0) return false;
    conn.send({ t: 'error', id: frame.id, code: ErrorCode.Unavailable, msg: 'redis down' });
    return true;
  };
  const sub = client.join('busy');
  const errors: unknown[] = [];
  sub.on('error', (e) => errors.push(e));
  await sub.ready;
  t.equal(refusals, 2);
  t.match(errors, [{ code: ErrorCode.Unavailable, retryable: true }]);
});

t.test('invalid and unknown server frames are ignored', async (t) => {
  const { gw, client } = await setup(t);
  const sub = client.join('x');
  await sub.ready;
  const conn = await gw.nextConnection(1);
  const next = collect(1, sub.events());
  conn.ws.send(Buffer.from([0xc1])); // never-used msgpack byte
  conn.ws.send('text');
  conn.send({ t: 'ev', s: 'x' } as never);
  conn.send({ t: 'future-frame' } as never);
  gw.publish('x', 'ok', true);
  t.match(await next, [{ type: 'ok', seq: 1 }]);
});

t.test('a throwing listener is reported (console.error by default, the logger when given) and the other listeners still get the event', async (t) => {
  const gw = await FakeGateway.start();
  t.teardown(() => gw.close());
  const consoleErrors: unknown[][] = [];
  const original = console.error;
  console.error = (...args: unknown[]) => void consoleErrors.push(args);
  t.teardown(() => {
    console.error = original;
  });
  const logged: { fields: object; msg: string }[] = [];
  const quiet = new ShardcastClient({ url: gw.url, user: 'a', WebSocket });
  const logging = new ShardcastClient({ url: gw.url, user: 'b', WebSocket, logger: { error: (fields, msg) => logged.push({ fields, msg }) } });
  t.teardown(() => Promise.all([quiet.close(), logging.close()]));
  for (const client of [quiet, logging]) {
    const session = client === quiet ? 'boom-a' : 'boom-b';
    const sub = client.join(session);
    const seen: number[] = [];
    sub.on('event', () => {
      throw new Error('app bug');
    });
    sub.on('event', (ev) => seen.push(ev.seq));
    const errors: ShardcastError[] = [];
    client.on('error', (err) => errors.push(err));
    await sub.ready;
    gw.publish(session, 'e', 1);
    gw.publish(session, 'e', 2);
    const end = Date.now() + 5000;
    while (seen.length < 2 && Date.now() < end) await new Promise((r) => setTimeout(r, 10));
    t.same(seen, [1, 2], 'the next listener got every event');
    t.equal(errors.length, 2, "reported through 'error' too");
    t.match(errors[0], { message: /a listener threw: app bug/ });
  }
  t.equal(consoleErrors.length, 2, 'without a logger: console.error, once per throw');
  t.match(consoleErrors[0], ['shardcast: a listener threw', { message: 'app bug' }]);
  t.equal(logged.length, 2, 'with a logger: logger.error, not the console');
  t.match(logged[0], { msg: 'shardcast: a listener threw', fields: { err: { message: 'app bug' } } });
});

t.test('serverTimeOffset: null before a pong, then from the lowest-round-trip sample', async (t) => {
  const gw = await FakeGateway.start();
  t.teardown(() => gw.close());
  const skew = 90_000; // the fake's clock runs 90 s ahead
  gw.handlers.ping = (conn, frame) => {
    conn.send({ t: 'pong', id: frame.id, now: Date.now() + skew });
    return true;
  };
  const client = new ShardcastClient({ url: gw.url, user: 'a', WebSocket, pingIntervalMs: 1000 });
  t.teardown(() => client.close());
  t.equal(client.serverTimeOffset(), null);
  await client.connect();
  const end = Date.now() + 5000;
  while (client.serverTimeOffset() === null && Date.now() < end) await new Promise((r) => setTimeout(r, 5));
  const offset = client.serverTimeOffset();
  t.ok(offset !== null && Math.abs(offset - skew) < 1000, `first ping right after hello gives the offset (${offset})`);
});
