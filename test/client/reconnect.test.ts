import t, { type Test } from 'tap';
import { WebSocket } from 'ws';
import { CloseCode, ShardcastClient, type ClientOptions, type EventFrame } from '../../protocol/client/index.js';
import type { ClientFrame, JoinFrame } from '../../protocol/frames.js';
import { FakeGateway } from './fake-gateway.js';

const isJoin = (f: ClientFrame): f is JoinFrame => f.t === 'join';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function setup(t: Test, clientOpts: Partial<ClientOptions> = {}) {
  const gw = await FakeGateway.start();
  const client = new ShardcastClient({ url: gw.url, user: 'alice', WebSocket, reconnect: { baseMs: 10, maxMs: 40 }, ...clientOpts });
  t.teardown(async () => {
    await client.close();
    await gw.close();
  });
  return { gw, client };
}

function record(sub: { on(e: 'event', l: (ev: EventFrame) => void): unknown }): number[] {
  const seqs: number[] = [];
  sub.on('event', (ev) => seqs.push(ev.seq));
  return seqs;
}

async function until(cond: () => boolean, ms = 3000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await sleep(5);
  }
}

t.test('after an abnormal close (1006) the client reconnects and resumes from its position', async (t) => {
  const { gw, client } = await setup(t);
  const subA = client.join('a');
  const subB = client.join('b');
  const seqsA = record(subA);
  const seqsB = record(subB);
  await Promise.all([subA.ready, subB.ready]);
  gw.publish('a', 'e', 1);
  gw.publish('a', 'e', 2);
  gw.publish('b', 'e', 1);
  await until(() => seqsA.length === 2 && seqsB.length === 1);

  const disconnected = new Promise((resolve) => client.once('disconnected', resolve));
  const first = await gw.nextConnection(1);
  first.ws.terminate();
  t.match(await disconnected, { code: 1006 });
  // Published while the client is away: only the history has them.
  gw.publish('a', 'e', 3, { live: false });
  gw.publish('b', 'e', 2, { live: false });

  const second = await gw.nextConnection(2);
  const joinA = await gw.waitFrame(second, (f): f is JoinFrame => isJoin(f) && f.s === 'a');
  const joinB = await gw.waitFrame(second, (f): f is JoinFrame => isJoin(f) && f.s === 'b');
  t.match(joinA, { ep: 'ep1', seq: 2 });
  t.match(joinB, { ep: 'ep1', seq: 1 });
  await until(() => seqsA.length === 3 && seqsB.length === 2);
  gw.publish('a', 'e', 4);
  await until(() => seqsA.length === 4);
  t.same(seqsA, [1, 2, 3, 4], 'no gap, no duplicate');
  t.same(seqsB, [1, 2]);
  t.equal(client.state, 'open');
});

t.test('reconnect delays stay between the floor and half the outage, and reset after a hello', async (t) => {
  const { gw, client } = await setup(t, { reconnect: { minMs: 50, baseMs: 60, maxMs: 1000 } });
  await client.connect();
  let refuse = 5;
  gw.handlers.accept = () => (refuse-- > 0 ? CloseCode.InternalError : undefined);
  const delays: { ms: number; at: number }[] = [];
  client.on('disconnected', (d) => delays.push({ ms: d.reconnectInMs, at: Date.now() }));
  (await gw.nextConnection(1)).ws.close(CloseCode.SlowConsumer, 'slow');
  await gw.nextConnection(7);
  await until(() => client.state === 'open');
  t.equal(delays.length, 6, 'slow-consumer close, then five refused attempts');
  for (const d of delays) {
    const cap = Math.max(60, (d.at - delays[0].at) / 2) + 5; // + 5 ms: the test reads the clock after the client did
    t.ok(d.ms >= 50 && d.ms < cap, `delay ${d.ms} within [50, ${cap})`);
  }
  (await gw.nextConnection(7)).ws.terminate();
  await until(() => delays.length === 7);
  t.ok(delays[6].ms >= 50 && delays[6].ms < 60, `after a hello the cap is back to baseMs (delay ${delays[6].ms})`);
  await gw.nextConnection(8);
});

t.test('goaway: no reconnect before the delay, then resume from own positions', async (t) => {
  const { gw, client } = await setup(t);
  const sub = client.join('quiz');
  const seqs = record(sub);
  await sub.ready;
  for (let i = 1; i <= 3; i++) gw.publish('quiz', 'q', i);
  await until(() => seqs.length === 3);
  const first = await gw.nextConnection(1);
  const goaway = new Promise((resolve) => client.once('goaway', resolve));
  // The server's pos is behind what the client saw (seq 2 vs 3): the client keeps its own.
  first.send({ t: 'goaway', reason: 'draining', delay: 300, pos: [{ s: 'quiz', ep: 'ep1', seq: 2 }] });
  t.match(await goaway, { reason: 'draining', delay: 300 });
  const closedAt = Date.now();
  first.ws.close(CloseCode.GoingAway, 'draining');
  gw.publish('quiz', 'q', 4, { live: false });
  const second = await gw.nextConnection(2);
  const waited = Date.now() - closedAt;
  t.ok(waited >= 250, `reconnected after ${waited} ms (go-away delay 300 ms)`);
  const join = await gw.waitFrame(second, isJoin);
  t.match(join, { s: 'quiz', ep: 'ep1', seq: 3 });
  await until(() => seqs.length === 4);
  t.same(seqs, [1, 2, 3, 4]);
});

t.test('goaway pos fills in a subscription that has no position yet', async (t) => {
  const { gw, client } = await setup(t);
  await client.connect();
  gw.handlers.join = () => true; // the fake never answers this join
  const sub = client.join('pending');
  const first = await gw.nextConnection(1);
  await gw.waitFrame(first, isJoin);
  first.send({ t: 'goaway', reason: 'draining', delay: 0, pos: [{ s: 'pending', ep: 'ep7', seq: 9 }] });
  await sleep(20);
  gw.handlers.join = undefined;
  first.ws.close(CloseCode.GoingAway);
  const second = await gw.nextConnection(2);
  t.match(await gw.waitFrame(second, isJoin), { s: 'pending', ep: 'ep7', seq: 9 });
  await sub.ready;
});

t.test('terminal close codes stop reconnecting and surface the code', async (t) => {
  for (const code of [CloseCode.AuthFailed, CloseCode.Kicked, CloseCode.Normal]) {
    await t.test(`code ${code}`, async (t) => {
      const { gw, client } = await setup(t);
      const sub = client.join('s');
      await sub.ready;
      const iter = sub.events();
      const errors: unknown[] = [];
      client.on('error', (e) => errors.push(e));
      const closed = new Promise((resolve) => client.once('closed', resolve));
      (await gw.nextConnection(1)).ws.close(code, 'bye');
      t.same(await closed, { code, reason: 'bye', byClient: false });
      t.match(errors, [{ code, retryable: false }]);
      t.equal(client.state, 'closed');
      await t.rejects(iter.next(), { code });
      await t.rejects(sub.command('x', 1), { code: 'closed' });
      await sleep(100);
      t.equal(gw.connections.length, 1, 'no reconnect');
    });
  }
});

t.test('a refusal right after the upgrade is terminal too (connect rejects)', async (t) => {
  const { gw, client } = await setup(t);
  gw.handlers.accept = () => CloseCode.AuthFailed;
  await t.rejects(client.connect(), { code: CloseCode.AuthFailed, message: /AuthFailed \(4501\)/ });
});

t.test('token expiry: a token function reconnects with a fresh token, a fixed token is terminal', async (t) => {
  await t.test('function', async (t) => {
    let n = 0;
    const { gw, client } = await setup(t, { token: () => `t${++n}` });
    await client.connect();
    (await gw.nextConnection(1)).ws.close(CloseCode.TokenExpired, 'expired');
    const second = await gw.nextConnection(2);
    t.equal(second.token, 't2');
    await until(() => client.state === 'open');
  });
  await t.test('fixed', async (t) => {
    const { gw, client } = await setup(t, { token: 'fixed' });
    await client.connect();
    const closed = new Promise((resolve) => client.once('closed', resolve));
    (await gw.nextConnection(1)).ws.close(CloseCode.TokenExpired, 'expired');
    t.match(await closed, { code: CloseCode.TokenExpired, byClient: false });
    await sleep(50);
    t.equal(gw.connections.length, 1);
  });
});

t.test('reconnect disabled: a retryable close is final', async (t) => {
  const { gw, client } = await setup(t, { reconnect: { enabled: false } });
  await client.connect();
  const closed = new Promise((resolve) => client.once('closed', resolve));
  (await gw.nextConnection(1)).ws.terminate();
  t.match(await closed, { code: 1006, byClient: false });
});

t.test('a silent server is detected by pings and the client reconnects', async (t) => {
  const gw = await FakeGateway.start({ ping: 1 });
  const client = new ShardcastClient({ url: gw.url, user: 'a', WebSocket, reconnect: { baseMs: 10, maxMs: 10 } });
  t.teardown(async () => {
    await client.close();
    await gw.close();
  });
  await client.connect();
  const first = await gw.nextConnection(1);
  await gw.waitFrame(first, (f): f is ClientFrame => f.t === 'ping');
  // Stop answering: the socket stays open but nothing comes back.
  first.ws.pause();
  const disconnected = new Promise((resolve) => client.once('disconnected', resolve));
  t.match(await disconnected, { code: 1006, error: /no reply to ping/ });
  await gw.nextConnection(2);
});

t.test('the backoff is not reset by a hello whose joins keep failing', async (t) => {
  const { gw, client } = await setup(t, { reconnect: { minMs: 50, baseMs: 50, maxMs: 100_000 } });
  const sub = client.join('crashy');
  await sub.ready;
  // From now on every connection says hello and then dies when the join arrives.
  gw.handlers.join = (conn) => {
    conn.ws.terminate();
    return true;
  };
  const delays: number[] = [];
  client.on('disconnected', (d) => delays.push(d.reconnectInMs));
  (await gw.nextConnection(1)).ws.terminate();
  await until(() => delays.length === 6, 10_000);
  // Caps grow with the time failing (half of it, above a 50 ms floor): with resets every delay would be 50 ms.
  t.ok(Math.max(...delays) > 50, `delays grow: ${delays.join(', ')}`);
  gw.handlers.join = undefined;
  await until(() => client.state === 'open' && sub.state === 'joined', 10_000);
});
