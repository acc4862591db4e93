import t, { type Test } from 'tap';
import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { runCli } from '../../admin-cli/cli.js';
import { verifyJwt } from '../../daemon/auth/jwt.js';
import { CloseCode } from '../../protocol/codes.js';
import { FakeGateway } from '../client/fake-gateway.js';

interface Run {
  code: number;
  out: string[];
  err: string;
}

async function cli(argv: string[], env: Record<string, string | undefined> = {}, signal = new AbortController().signal): Promise<Run> {
  const out: string[] = [];
  const err: string[] = [];
  const code = await runCli(argv, { stdout: (l) => out.push(l), stderr: (l) => err.push(l), env, signal });
  return { code, out, err: err.join('\n') };
}

t.test('help', async (t) => {
  const help = await cli(['help']);
  t.equal(help.code, 0);
  t.match(help.out.join('\n'), /Usage: shardcast-admin <command>[\s\S]*token[\s\S]*publish[\s\S]*listen/);
  for (const verb of ['token', 'publish', 'listen']) {
    const a = await cli(['help', verb]);
    const b = await cli([verb, '--help']);
    t.equal(a.code, 0);
    t.equal(b.code, 0);
    t.match(a.out.join('\n'), new RegExp(`^Usage: shardcast-admin ${verb}`));
    t.same(a.out, b.out, `help ${verb} = ${verb} --help`);
  }
});

t.test('usage errors exit 2 with the usage on stderr and nothing on stdout', async (t) => {
  const cases: [string[], RegExp][] = [
    [[], /Usage: shardcast-admin <command>/],
    [['frobnicate'], /unknown command: frobnicate/],
    [['help', 'frobnicate'], /unknown command: frobnicate/],
    [['token'], /--user is required/],
    [['token', '--user', 'u', '--bogus'], /Unknown option '--bogus'/],
    [['token', '--user', 'u', '--ttl', '1y'], /--ttl must be/],
    [['token', '--user', 'u', '--ttl', '0s'], /--ttl must be/],
    [['token', '--user', 'u', 'extra'], /positional/i],
    [['publish', '--session', 's', '--type', 't'], /--data is required/],
    [['publish', '--session', 's', '--type', 't', '--data', '{oops'], /--data must be JSON/],
    [['publish', '--session', 's', '--type', 't', '--data', '1', '--to', ','], /--to needs/],
    [['listen', '--session', 's'], /exactly one of --token and --user/],
    [['listen', '--session', 's', '--user', 'u', '--token', 'x'], /exactly one of --token and --user/],
    [['listen', '--session', 's', '--user', 'u', '--since', '3'], /--since and --epoch go together/],
    [['listen', '--session', 's', '--user', 'u', '--count', '0'], /--count must be a whole number ≥ 1/],
    [['listen', '--session', 's', '--user', 'u', '--since=-1', '--epoch', 'e'], /--since must be a whole number/],
  ];
  for (const [argv, message] of cases) {
    const run = await cli(argv, { SHARDCAST_JWT_SECRET: 'x' });
    t.equal(run.code, 2, `${argv.join(' ')} → exit 2`);
    t.match(run.err, message);
    t.match(run.err, /Usage:/);
    t.same(run.out, []);
  }
});

t.test('token: verifies with the daemon\'s verifyJwt and carries the claims', async (t) => {
  const secret = 's3cret-for-tests';
  const before = Math.floor(Date.now() / 1000);
  const run = await cli(['token', '--user', 'alice', '--session', 'quiz:*', '--session', 'chat:1', '--role', 'host', '--ttl', '15m'], {
    SHARDCAST_JWT_SECRET: secret,
  });
  t.equal(run.code, 0, run.err);
  t.equal(run.out.length, 1);
  const verified = verifyJwt(run.out[0], { secret, publicKeys: [] });
  t.ok(verified.ok, 'signature verifies');
  if (!verified.ok) return;
  const { sub, sessions, role, iat, exp } = verified.payload;
  t.same({ sub, sessions, role }, { sub: 'alice', sessions: ['quiz:*', 'chat:1'], role: 'host' });
  t.ok(typeof iat === 'number' && iat >= before && iat <= before + 2, 'iat is now');
  t.equal(Number(exp) - Number(iat), 15 * 60);
  t.notOk(verifyJwt(run.out[0], { secret: 'other', publicKeys: [] }).ok, 'another secret does not verify it');

  const defaults = await cli(['token', '--user', 'bob'], { SHARDCAST_JWT_SECRET: secret });
  const payload = verifyJwt(defaults.out[0], { secret, publicKeys: [] });
  t.match(payload, { ok: true, payload: { sub: 'bob', sessions: [], role: 'participant' } });
  if (payload.ok) t.equal((payload.payload.exp as number) - (payload.payload.iat as number), 3600, 'default ttl 1h');
  for (const [ttl, seconds] of [['30s', 30], ['7d', 604800]] as const) {
    const r = await cli(['token', '--user', 'c', '--ttl', ttl], { SHARDCAST_JWT_SECRET: secret });
    const v = verifyJwt(r.out[0], { secret, publicKeys: [] });
    if (v.ok) t.equal((v.payload.exp as number) - (v.payload.iat as number), seconds, `ttl ${ttl}`);
    else t.fail(v.message);
  }
});

t.test('token: a missing secret is an error (exit 1)', async (t) => {
  const run = await cli(['token', '--user', 'alice'], {});
  t.equal(run.code, 1);
  t.match(run.err, /SHARDCAST_JWT_SECRET is not set/);
  t.same(run.out, []);
});

/** A stand-in for the daemon's publish endpoint that records requests. */
async function publishServer(t: Test, reply: (req: IncomingMessage, body: string) => [number, unknown]) {
  const requests: { method?: string; url?: string; headers: IncomingMessage['headers']; body: string }[] = [];
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      requests.push({ method: req.method, url: req.url, headers: req.headers, body });
      const [status, json] = reply(req, body);
      res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(json));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, requests };
}

t.test('publish: posts the event and prints one JSON line', async (t) => {
  const srv = await publishServer(t, () => [200, { seq: 7, epoch: 'e1', duplicate: false }]);
  const run = await cli(
    ['publish', '--session', 'quiz:42', '--type', 'question', '--data', '{"n":1}', '--to', 'u1, u2', '--snapshot', 'current', '--conflate', '--id', 'ev-1'],
    { SHARDCAST_URL: `${srv.url}/`, SHARDCAST_API_KEY: 'k3y' },
  );
  t.equal(run.code, 0, run.err);
  t.same(run.out, ['{"session":"quiz:42","seq":7,"epoch":"e1","duplicate":false}']);
  t.equal(run.err, '');
  t.equal(srv.requests.length, 1);
  const [req] = srv.requests;
  t.equal(req.method, 'POST');
  t.equal(req.url, '/v1/publish');
  t.equal(req.headers.authorization, 'Bearer k3y');
  t.match(req.headers['content-type'], /^application\/json/);
  t.same(JSON.parse(req.body), { session: 'quiz:42', type: 'question', data: { n: 1 }, to: ['u1', 'u2'], snapshot: 'current', conflate: true, id: 'ev-1' });

  const minimal = await cli(['publish', '--session', 's', '--type', 't', '--data', '"hi"'], { SHARDCAST_URL: srv.url });
  t.equal(minimal.code, 0);
  t.same(JSON.parse(srv.requests[1].body), { session: 's', type: 't', data: 'hi' });
  t.equal(srv.requests[1].headers.authorization, undefined, 'no key, no Authorization header');
});

t.test('publish: server errors exit 1 with the server message on stderr', async (t) => {
  const srv = await publishServer(t, () => [401, { error: { code: 'unauthorized', message: 'missing or wrong API key' } }]);
  const run = await cli(['publish', '--session', 's', '--type', 't', '--data', '1'], { SHARDCAST_URL: srv.url });
  t.equal(run.code, 1);
  t.match(run.err, /HTTP 401: unauthorized: missing or wrong API key \(set SHARDCAST_API_KEY\)/);
  t.same(run.out, []);
});

t.test('publish: an unreachable daemon or a bad SHARDCAST_URL exit 1', async (t) => {
  const srv = await publishServer(t, () => [200, {}]);
  const port = new URL(srv.url).port;
  // Port 1 (tcpmux) is closed on these machines: connecting is refused at once.
  const run = await cli(['publish', '--session', 's', '--type', 't', '--data', '1'], { SHARDCAST_URL: 'http://127.0.0.1:1' });
  t.equal(run.code, 1);
  t.match(run.err, /cannot reach the daemon at http:\/\/127\.0\.0\.1:1\/v1\/publish/);
  const bad = await cli(['publish', '--session', 's', '--type', 't', '--data', '1'], { SHARDCAST_URL: `ftp://127.0.0.1:${port}` });
  t.equal(bad.code, 1);
  t.match(bad.err, /SHARDCAST_URL must start with http/);
  const garbage = await publishServer(t, () => [200, { nope: true }]);
  const odd = await cli(['publish', '--session', 's', '--type', 't', '--data', '1'], { SHARDCAST_URL: garbage.url });
  t.equal(odd.code, 1);
  t.match(odd.err, /unexpected reply/);
});

t.test('listen: prints events as JSON lines and exits after --count', async (t) => {
  const gw = await FakeGateway.start();
  t.teardown(() => gw.close());
  gw.publish('quiz', 'q', 'old', { live: false });
  gw.publish('quiz', 'q', 'missed', { live: false });
  void gw.nextConnection(1).then(async (conn) => {
    await gw.waitFrame(conn, (f): f is typeof f => f.t === 'join');
    gw.publish('quiz', 'answer', { bin: new Uint8Array([1, 2, 3]) }, { snapshot: 'latest' });
  });
  const run = await cli(['listen', '--session', 'quiz', '--user', 'watcher', '--since', '1', '--epoch', 'ep1', '--count', '2'], {
    SHARDCAST_URL: `http://127.0.0.1:${gw.port}`,
  });
  t.equal(run.code, 0, run.err);
  const lines = run.out.map((l) => JSON.parse(l));
  t.match(lines, [
    { session: 'quiz', seq: 2, epoch: 'ep1', type: 'q', data: 'missed', ts: Number },
    { session: 'quiz', seq: 3, epoch: 'ep1', type: 'answer', data: { bin: 'AQID' }, key: 'latest' },
  ]);
  t.notOk('key' in lines[0], 'no key when the event sets none');
  t.match(run.err, /joined quiz at epoch ep1 seq 2 \(resumed/);
  const conn = gw.connections[0];
  t.equal(conn.user, 'watcher');
  t.match(conn.frames.find((f) => f.t === 'join'), { s: 'quiz', ep: 'ep1', seq: 1 });
  t.equal(conn.ws.readyState === conn.ws.CLOSED || conn.ws.readyState === conn.ws.CLOSING, true, 'closed its connection');
});

t.test('listen: a late joiner prints the snapshot it gets, then the live events', async (t) => {
  const gw = await FakeGateway.start();
  t.teardown(() => gw.close());
  gw.publish('quiz', 'question', { q: 1 }, { live: false, snapshot: 'question' });
  gw.publish('quiz', 'tally', [3, 4], { live: false, snapshot: 'tally' });
  void gw.nextConnection(1).then(async (conn) => {
    await gw.waitFrame(conn, (f): f is typeof f => f.t === 'join');
    gw.publish('quiz', 'tally', [3, 5], { snapshot: 'tally' });
  });
  const run = await cli(['listen', '--session', 'quiz', '--user', 'late', '--count', '1'], { SHARDCAST_URL: `http://127.0.0.1:${gw.port}` });
  t.equal(run.code, 0, run.err);
  const lines = run.out.map((l) => JSON.parse(l));
  t.match(lines, [
    { session: 'quiz', epoch: 'ep1', seq: 2, rec: false, snapshot: { question: { seq: 1, type: 'question', data: { q: 1 } }, tally: { seq: 2, data: [3, 4] } } },
    { session: 'quiz', seq: 3, type: 'tally', data: [3, 5], key: 'tally' },
  ]);
  t.equal(lines.length, 2);
  t.match(run.err, /joined quiz at epoch ep1 seq 2 \(rec: false: new listener/);
});

t.test('listen: a resume history no longer covers says rec: false and prints the snapshot instead', async (t) => {
  const gw = await FakeGateway.start();
  t.teardown(() => gw.close());
  gw.publish('quiz', 'question', 'q2', { live: false, snapshot: 'question' });
  void gw.nextConnection(1).then(async (conn) => {
    await gw.waitFrame(conn, (f): f is typeof f => f.t === 'join');
    gw.publish('quiz', 'answer', 'A');
  });
  // An epoch the gateway no longer has: nothing to replay from.
  const run = await cli(['listen', '--session', 'quiz', '--user', 'back', '--since', '7', '--epoch', 'gone', '--count', '1'], {
    SHARDCAST_URL: `http://127.0.0.1:${gw.port}`,
  });
  t.equal(run.code, 0, run.err);
  const lines = run.out.map((l) => JSON.parse(l));
  t.match(lines, [
    { session: 'quiz', epoch: 'ep1', seq: 1, rec: false, snapshot: { question: { seq: 1, data: 'q2' } } },
    { session: 'quiz', seq: 2, type: 'answer', data: 'A' },
  ]);
  t.match(run.err, /rec: false: could not resume after seq 7 of epoch gone/);
});

t.test('listen: interrupt exits 0', async (t) => {
  const gw = await FakeGateway.start();
  t.teardown(() => gw.close());
  const interrupt = new AbortController();
  void gw.nextConnection(1).then(async (conn) => {
    await gw.waitFrame(conn, (f): f is typeof f => f.t === 'join');
    gw.publish('s', 'e', 1);
    setTimeout(() => interrupt.abort(), 50);
  });
  const run = await cli(['listen', '--session', 's', '--token', 'tok'], { SHARDCAST_URL: `http://127.0.0.1:${gw.port}` }, interrupt.signal);
  t.equal(run.code, 0);
  t.equal(run.out.length, 1);
  t.equal(gw.connections[0].token, 'tok');
});

t.test('listen: a terminal close or refused join exits 1 with the reason', async (t) => {
  const gw = await FakeGateway.start();
  t.teardown(() => gw.close());
  gw.handlers.accept = () => CloseCode.AuthFailed;
  const refused = await cli(['listen', '--session', 's', '--token', 'bad'], { SHARDCAST_URL: `http://127.0.0.1:${gw.port}` });
  t.equal(refused.code, 1);
  t.match(refused.err, /AuthFailed \(4501\)/);
  t.same(refused.out, []);

  gw.handlers.accept = undefined;
  gw.handlers.join = (conn, frame) => {
    conn.send({ t: 'error', id: frame.id, code: 103, msg: 'session not allowed by token' });
    return true;
  };
  const forbidden = await cli(['listen', '--session', 's', '--token', 'ok'], { SHARDCAST_URL: `http://127.0.0.1:${gw.port}` });
  t.equal(forbidden.code, 1);
  t.match(forbidden.err, /cannot listen to s: Forbidden \(103\): session not allowed by token/);
});

t.test('listen: an unreachable daemon exits 1', async (t) => {
  const run = await cli(['listen', '--session', 's', '--user', 'u'], { SHARDCAST_URL: 'http://127.0.0.1:1' });
  t.equal(run.code, 1);
  t.match(run.err, /cannot connect to ws:\/\/127\.0\.0\.1:1\/v1\/ws: .*ECONNREFUSED/);
});

t.test('the entry point maps exit codes for the real process', async (t) => {
  const main = fileURLToPath(new URL('../../admin-cli/main.ts', import.meta.url));
  const run = (args: string[]) =>
    new Promise<{ code: number | null; out: string; err: string }>((resolve) => {
      const child = spawn(process.execPath, [...process.execArgv, main, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      let err = '';
      child.stdout.on('data', (d: Buffer) => (out += d.toString()));
      child.stderr.on('data', (d: Buffer) => (err += d.toString()));
      child.on('exit', (code) => resolve({ code, out, err }));
    });
  const bad = await run(['nope']);
  t.equal(bad.code, 2);
  t.equal(bad.out, '');
  t.match(bad.err, /unknown command: nope/);
  const help = await run(['--help']);
  t.equal(help.code, 0);
  t.match(help.out, /^Usage: shardcast-admin/);
});
