/**
 * The admin verbs of shardcast-admin in-process against a stand-in admin API:
 * usage errors (exit 2), --watch refreshing until interrupted, the token sent as a
 * bearer, and HTTP failures mapped to their exit codes.
 */
import t, { type Test } from 'tap';
import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { runCli } from '../../admin-cli/cli.js';

interface Run {
  code: number;
  out: string[];
  err: string;
}

async function cli(argv: string[], env: Record<string, string | undefined> = {}, signal = new AbortController().signal, onOut?: (line: string) => void): Promise<Run> {
  const out: string[] = [];
  const err: string[] = [];
  const code = await runCli(argv, { stdout: (l) => (out.push(l), onOut?.(l)), stderr: (l) => err.push(l), env, signal });
  return { code, out, err: err.join('\n') };
}

/** A stand-in admin API answering `status` and recording requests. */
async function fakeAdmin(t: Test): Promise<{ url: string; requests: IncomingMessage[] }> {
  const requests: IncomingMessage[] = [];
  let n = 0;
  const server = createServer((req, res) => {
    requests.push(req);
    if (req.headers.authorization !== 'Bearer good-token') {
      res.writeHead(401, { 'content-type': 'application/json' }).end(JSON.stringify({ error: { code: 'unauthorized', message: 'no' } }));
      return;
    }
    if (req.url === '/v1/admin/status') {
      n++;
      res.writeHead(200, { 'content-type': 'application/json' }).end(
        JSON.stringify({ instance: `i${n}`, version: '0.1.0', engine: 'memory', startedAt: new Date().toISOString(), uptimeS: n, ready: true, draining: false, port: 1, shards: { configured: 2, live: 2 }, connections: n, streamedSessions: 0 }),
      );
      return;
    }
    res.writeHead(404, { 'content-type': 'application/json' }).end(JSON.stringify({ error: { code: 'unknown_session', message: 'nope' } }));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, requests };
}

t.test('usage errors of the admin verbs exit 2', async (t) => {
  const cases: Array<[string[], RegExp]> = [
    [['kick'], /exactly one of --user and --conn/],
    [['kick', '--user', 'a', '--conn', 'b'], /exactly one of --user and --conn/],
    [['kick', '--user', 'a', '--reason', 'x'.repeat(101)], /--reason must be 1 to 100 characters/],
    [['drain', '--shard', 'one'], /--shard must be a whole number/],
    [['sessions', '--top', '0'], /--top must be a whole number ≥ 1/],
    [['session'], /exactly one session id/],
    [['session', 'a', 'b'], /exactly one session id/],
    [['tail'], /exactly one session id/],
    [['conns', '--session', 's', '--user', 'u'], /at most one of --session and --user/],
    [['status', '--watch', '--interval', '0'], /--interval must be a whole number ≥ 1/],
    [['shards', 'extra'], /positional/i],
  ];
  for (const [argv, message] of cases) {
    const run = await cli(argv);
    t.equal(run.code, 2, `${argv.join(' ')} → exit 2`);
    t.match(run.err, message);
    t.same(run.out, []);
  }
  const help = await cli(['help']);
  t.match(help.out.join('\n'), /status[\s\S]*shards[\s\S]*sessions[\s\S]*session[\s\S]*conns[\s\S]*kick[\s\S]*drain[\s\S]*tail/);
});

t.test('--watch refreshes until interrupted, then exits 0; the token goes as a bearer', async (t) => {
  const admin = await fakeAdmin(t);
  const stop = new AbortController();
  let renders = 0;
  const run = await cli(['status', '--watch', '--interval', '1', '--json'], { SHARDCAST_ADMIN_URL: admin.url, SHARDCAST_ADMIN_TOKEN: 'good-token' }, stop.signal, () => {
    if (++renders === 3) stop.abort();
  });
  t.equal(run.code, 0, run.err);
  t.same(run.out.map((l) => (JSON.parse(l) as { connections: number }).connections), [1, 2, 3], 'one fresh answer per refresh');
  t.ok(admin.requests.every((r) => r.headers.authorization === 'Bearer good-token'));

  const wrong = await cli(['status'], { SHARDCAST_ADMIN_URL: admin.url, SHARDCAST_ADMIN_TOKEN: 'bad' });
  t.equal(wrong.code, 4);
  const missing = await cli(['session', 'x'], { SHARDCAST_ADMIN_URL: admin.url, SHARDCAST_ADMIN_TOKEN: 'good-token' });
  t.equal(missing.code, 5);
  t.match(missing.err, /HTTP 404: unknown_session: nope/);
  const badUrl = await cli(['status'], { SHARDCAST_ADMIN_URL: 'ftp://x' });
  t.equal(badUrl.code, 1);
  t.match(badUrl.err, /SHARDCAST_ADMIN_URL must start with http/);
});
