import t, { type Test } from 'tap';
import { WebSocket } from 'ws';
import { ErrorCode, ShardcastClient, ShardcastError, type ClientOptions } from '../../protocol/client/index.js';
import type { ClientFrame, CmdFrame } from '../../protocol/frames.js';
import { FakeGateway } from './fake-gateway.js';

const isCmd = (f: ClientFrame): f is CmdFrame => f.t === 'cmd';

async function setup(t: Test, clientOpts: Partial<ClientOptions> = {}) {
  const gw = await FakeGateway.start();
  const client = new ShardcastClient({ url: gw.url, user: 'alice', WebSocket, reconnect: { baseMs: 10, maxMs: 20 }, ...clientOpts });
  t.teardown(async () => {
    await client.close();
    await gw.close();
  });
  return { gw, client };
}

t.test('command is acked with its cid; a given cid is kept; a repeat reports dup', async (t) => {
  const { gw, client } = await setup(t);
  const sub = client.join('quiz');
  const first = await sub.command('answer', { q: 1, a: 'B' });
  t.match(first, { cid: /^[0-9a-f-]{36}$/, dup: false }, 'generated cid is a UUID');
  t.same(await sub.command('answer', { q: 2 }, { cid: 'c-2' }), { cid: 'c-2', dup: false });
  t.same(await sub.command('answer', { q: 2 }, { cid: 'c-2' }), { cid: 'c-2', dup: true });
  const conn = await gw.nextConnection(1);
  t.match(conn.frames.filter(isCmd), [
    { s: 'quiz', cid: first.cid, type: 'answer', data: { q: 1, a: 'B' } },
    { cid: 'c-2' },
    { cid: 'c-2' },
  ]);
});

t.test('commands wait for the join before they are sent', async (t) => {
  const { gw, client } = await setup(t);
  const sub = client.join('slow-join');
  let release: () => void = () => {};
  gw.handlers.join = (conn, frame) => {
    release = () => conn.send({ t: 'joined', id: frame.id, s: frame.s, ep: 'ep1', seq: 0, rec: false });
    return true;
  };
  const acked = sub.command('vote', 'yes', { cid: 'v1' });
  const conn = await gw.nextConnection(1);
  await new Promise((r) => setTimeout(r, 50));
  t.equal(conn.frames.filter(isCmd).length, 0, 'not sent before joined');
  release();
  t.same(await acked, { cid: 'v1', dup: false });
});

t.test('an error frame rejects with code, message and retryable', async (t) => {
  const { gw, client } = await setup(t);
  gw.handlers.cmd = (conn, frame) => {
    const code = frame.type === 'limited' ? ErrorCode.RateLimited : ErrorCode.Forbidden;
    conn.send({ t: 'error', id: frame.id, code, msg: 'no' });
    return true;
  };
  const sub = client.join('q');
  const err = await sub.command('answer', 1).catch((e: unknown) => e);
  t.ok(err instanceof ShardcastError);
  t.match(err, { code: ErrorCode.Forbidden, retryable: false, message: 'Forbidden (103): no', cid: /^[0-9a-f-]{36}$/ });
  await t.rejects(sub.command('limited', 1), { code: ErrorCode.RateLimited, retryable: true });
});

t.test('no reply: the command rejects with a retryable timeout', async (t) => {
  const { gw, client } = await setup(t);
  gw.handlers.cmd = () => true;
  const sub = client.join('q');
  const started = Date.now();
  await t.rejects(sub.command('answer', 1, { timeoutMs: 80, cid: 'retry-me' }), { code: 'timeout', retryable: true, cid: 'retry-me' });
  t.ok(Date.now() - started >= 75);
  await t.rejects(client.join('q2', {}).command('x', 1, { timeoutMs: 1 }), { code: 'timeout' }, 'the timeout also runs while the command waits for its join');
});

t.test('a command whose connection drops is resent with the same cid after the rejoin', async (t) => {
  const { gw, client } = await setup(t);
  let drops = 0;
  gw.handlers.cmd = (conn) => {
    if (drops++ > 0) return false; // second time: the fake acks it
    conn.ws.terminate(); // first time: the connection dies before the ack
    return true;
  };
  const sub = client.join('quiz');
  await sub.ready;
  const result = await sub.command('answer', { a: 'C' }, { cid: 'answer-7' });
  t.same(result, { cid: 'answer-7', dup: true }, 'the fake journal saw it twice; the client sees one outcome');
  const [before, after] = [gw.connections[0], gw.connections[1]];
  const cmdsBefore = before.frames.filter(isCmd);
  const cmdsAfter = after.frames.filter(isCmd);
  t.equal(cmdsBefore.length, 1);
  t.equal(cmdsAfter.length, 1);
  t.equal(cmdsAfter[0].cid, cmdsBefore[0].cid, 'same cid');
  const joinIndex = after.frames.findIndex((f) => f.t === 'join');
  const cmdIndex = after.frames.findIndex(isCmd);
  t.ok(joinIndex >= 0 && joinIndex < cmdIndex, 'resent after the rejoin');
});

t.test('a retried command still honours its timeout across reconnects', async (t) => {
  const { gw, client } = await setup(t);
  gw.handlers.cmd = (conn) => {
    conn.ws.terminate();
    return true;
  };
  const sub = client.join('quiz');
  await sub.ready;
  await t.rejects(sub.command('answer', 1, { timeoutMs: 300 }), { code: 'timeout' });
  t.ok(gw.connections.length >= 2, `retried over ${gw.connections.length} connections`);
});

t.test('a publish whose connection drops rejects as disconnected (it carries no idempotency key)', async (t) => {
  const { gw, client } = await setup(t);
  gw.handlers.pub = (conn) => {
    conn.ws.terminate();
    return true;
  };
  const sub = client.join('chat');
  await sub.ready;
  await t.rejects(sub.publish('msg', 'hi'), { code: 'disconnected', retryable: true });
});

t.test('close rejects pending requests and connect waiters', async (t) => {
  const { gw, client } = await setup(t);
  gw.handlers.cmd = () => true;
  const sub = client.join('q');
  await sub.ready;
  const pending = t.rejects(sub.command('x', 1), { code: 'closed' });
  const ended = new Promise((resolve) => sub.once('end', resolve));
  await client.close();
  await pending;
  t.same(await ended, { reason: 'closed' });
  t.equal(client.state, 'closed');
  await t.rejects(client.connect(), { code: 'invalid_use' });
  t.throws(() => client.join('again'), { code: 'invalid_use' });
});

t.test('presence is resent after a reconnect', async (t) => {
  const { gw, client } = await setup(t);
  const sub = client.join('room');
  await sub.ready;
  const conn = await gw.nextConnection(1);
  // Presence requests get no answer on this connection.
  const origSend = conn.send;
  (conn as { send: typeof conn.send }).send = (f) => (f.t === 'presence' ? undefined : origSend(f));
  const users = sub.presence();
  await gw.waitFrame(conn, (f): f is ClientFrame => f.t === 'presence');
  conn.ws.terminate();
  t.same(await users, [{ u: 'alice', n: 1 }]);
});

t.test('after a goaway, new requests wait for the next connection', async (t) => {
  const { gw, client } = await setup(t);
  const sub = client.join('quiz');
  await sub.ready;
  const first = await gw.nextConnection(1);
  first.send({ t: 'goaway', reason: 'draining', delay: 50, pos: [] });
  await new Promise((r) => setTimeout(r, 20));
  const acked = sub.command('answer', 'A', { cid: 'late' });
  await new Promise((r) => setTimeout(r, 30));
  t.equal(first.frames.filter(isCmd).length, 0, 'not sent on the draining connection');
  first.ws.close(1001, 'going away');
  t.same(await acked, { cid: 'late', dup: false });
  t.equal(gw.connections[1].frames.filter(isCmd).length, 1, 'sent on the new connection');
});
