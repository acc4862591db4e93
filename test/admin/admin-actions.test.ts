/**
 * The admin API's actions and outputs against a real daemon (standalone engine,
 * dev mode for ?user= clients, an admin token): kick with the SDK client not
 * reconnecting, /metrics matching what the test did, and the session tail.
 */
import t from 'tap';
import { WebSocket } from 'ws';
import { ShardcastClient, type CloseInfo } from '../../protocol/client/index.js';
import { CloseCode } from '../../protocol/codes.js';
import { RawClient } from '../support/raw-client.js';
import { admin, adminFetch, adminJson, daemonWithToken, eventually, members, TOKEN } from '../support/admin-cli-process.js';
import { parsePrometheusText, sum } from '../support/prometheus-text.js';
import type { ConnectionsReply } from '../../admin-cli/admin-replies.js';

t.test('kick closes the right socket with 4505 and the SDK client does not reconnect', async (t) => {
  const daemon = await daemonWithToken(t);
  const bystander = await members(t, daemon, 'adm:kick', 'stay', 1);
  const victim = new ShardcastClient({ url: daemon.ws, user: 'victim', WebSocket, reconnect: { baseMs: 50, maxMs: 200 } });
  t.teardown(() => victim.close());
  await victim.connect();
  await victim.join('adm:kick').ready;
  const states: string[] = [];
  victim.on('state', (s) => states.push(s.state));
  const closed = new Promise<CloseInfo>((resolve) => victim.on('closed', resolve));
  victim.on('error', () => {});

  const run = await admin(daemon, TOKEN, ['kick', '--user', 'victim', '--reason', 'spamming the quiz', '--json']);
  t.equal(run.code, 0, run.stderr);
  const reply = JSON.parse(run.stdout) as { kicked: Array<{ user: string }>; closeCode: number };
  t.same(reply.kicked.map((k) => k.user), ['victim']);
  t.equal(reply.closeCode, CloseCode.Kicked);
  const info = await closed;
  t.match(info, { code: CloseCode.Kicked, reason: 'spamming the quiz', byClient: false }, 'the client saw 4505 with the reason');
  await new Promise((r) => setTimeout(r, 1000));
  t.notOk(states.includes('reconnecting'), 'it did not try to reconnect');
  const left = await adminJson<ConnectionsReply>(daemon, TOKEN, ['conns', '--user', 'victim']);
  t.equal(left.total, 0, 'and no connection of the user came back');
  t.equal((await adminJson<ConnectionsReply>(daemon, TOKEN, ['conns', '--user', 'stay1'])).total, 1, 'the other user is untouched');
  t.equal(bystander[0].ws.readyState, WebSocket.OPEN);

  const again = await admin(daemon, TOKEN, ['kick', '--user', 'victim']);
  t.equal(again.code, 5, 'nobody left to kick: exit 5');
  const conn = (await adminJson<ConnectionsReply>(daemon, TOKEN, ['conns', '--user', 'stay1'])).connections[0].conn;
  const byConn = await admin(daemon, TOKEN, ['kick', '--conn', conn]);
  t.equal(byConn.code, 0, byConn.stderr);
  t.match(await bystander[0].closed, { code: CloseCode.Kicked, reason: 'kicked by an admin' }, 'kick --conn closes that one connection');
  t.ok(daemon.lines.some((l) => l.msg === 'admin kick' && (l.audit as { target?: string } | undefined)?.target === 'user:victim'), 'the kick is in the audit log');
});

t.test('/metrics parses as Prometheus text and its counters match what happened', async (t) => {
  const daemon = await daemonWithToken(t);
  const clients = await members(t, daemon, 'adm:metrics', 'm', 3);
  const EVENTS = 4;
  for (let i = 1; i <= EVENTS; i++) {
    const r = await daemon.publish({ session: 'adm:metrics', type: 'q', data: { i } });
    t.equal(r.status, 200);
  }
  await Promise.all(clients.map((c) => c.until((fs) => fs.filter((f) => f.t === 'ev').length >= EVENTS, 10_000, 'every event')));
  // A resume that recovers: from seq 2 of the session's epoch.
  const ep = (clients[0].frames.find((f) => f.t === 'ev') as { ep: string }).ep;
  const resumer = await RawClient.connect(daemon.ws, { user: 'resumer' });
  t.teardown(() => resumer.close());
  t.match(await resumer.join('adm:metrics', { ep, seq: 2 }), { t: 'joined', rec: true });
  await adminFetch(daemon, TOKEN, '/v1/admin/kick', { method: 'POST', body: { user: 'resumer' } });
  // Refusals: a handshake for another protocol version (4504), a request with a bad session id (error 112).
  const wrongVersion = await RawClient.connect(daemon.ws, { user: 'old', protocols: ['shardcast.v9'] });
  t.match(await wrongVersion.closed, { code: CloseCode.UnsupportedVersion });
  const invalid = clients[0];
  invalid.send({ t: 'join', id: 99, s: 'bad session!' });
  t.match(await invalid.next((f) => f.t === 'error' && 'id' in f && f.id === 99), { code: 112 });
  const shardsOfSession = Object.keys(JSON.parse((await adminFetch(daemon, TOKEN, '/v1/admin/sessions')).text).sessions[0].perShard as Record<string, number>).length;

  const res = await adminFetch(daemon, TOKEN, '/metrics');
  t.equal(res.status, 200);
  const { samples, types } = parsePrometheusText(res.text);
  t.equal(types.get('shardcast_frames_delivered_total'), 'counter');
  t.equal(types.get('shardcast_connections'), 'gauge');
  t.equal(types.get('shardcast_publish_latency_seconds'), 'histogram');
  t.equal(sum(samples, 'shardcast_frames_delivered_total'), EVENTS * 3, 'frames delivered: events × live members');
  t.ok(sum(samples, 'shardcast_bytes_delivered_total') > EVENTS * 3 * 10, 'bytes delivered counted');
  t.equal(sum(samples, 'shardcast_joins_total'), 4, 'joins');
  t.equal(sum(samples, 'shardcast_resumes_total', { outcome: 'recovered' }), 1, 'one recovered resume');
  t.equal(sum(samples, 'shardcast_resumes_total', { outcome: 'not_recovered' }), 0);
  t.equal(sum(samples, 'shardcast_disconnects_total', { reason: 'kicked' }), 1, 'one kick');
  t.equal(sum(samples, 'shardcast_published_events_total', { outcome: 'sequenced' }), EVENTS, 'events sequenced');
  t.equal(sum(samples, 'shardcast_publish_latency_seconds_count'), EVENTS, 'one publish-latency observation per publish call');
  t.equal(sum(samples, 'shardcast_shards'), 3);
  t.equal(types.get('shardcast_delivery_latency_seconds'), 'histogram');
  t.equal(sum(samples, 'shardcast_delivery_latency_seconds_count'), EVENTS * shardsOfSession, 'delivery latency: one observation per event and shard holding members');
  t.equal(sum(samples, 'shardcast_delivery_latency_seconds_bucket', { le: '+Inf' }), EVENTS * shardsOfSession);
  t.ok(sum(samples, 'shardcast_delivery_latency_seconds_bucket', { le: '10' }) === EVENTS * shardsOfSession, 'all within 10 s');
  t.equal(sum(samples, 'shardcast_connections_refused_total', { code: '4504' }), 1, 'the refused handshake, by close code');
  t.equal(sum(samples, 'shardcast_client_errors_total', { code: '112' }), 1, 'the refused request, by error code');
  t.equal(sum(samples, 'shardcast_ready'), 1);
  // The kicked socket may take a moment to be gone from the registry.
  await eventually('3 connections in /metrics', async () => {
    const again = parsePrometheusText((await adminFetch(daemon, TOKEN, '/metrics')).text).samples;
    return sum(again, 'shardcast_connections') === 3 ? true : undefined;
  });
  t.equal(samples.filter((s) => s.name === 'shardcast_connections').length, 3, 'one connections series per shard');
  t.ok(samples.some((s) => s.name === 'process_cpu_user_seconds_total'), 'process metrics under their usual names');
});

t.test('tail follows a session live', async (t) => {
  const daemon = await daemonWithToken(t);
  const { spawn } = await import('node:child_process');
  const { CLI_MAIN } = await import('../support/admin-cli-process.js');
  const child = spawn(process.execPath, [CLI_MAIN, 'tail', 'adm:tail', '--count', '2', '--json'], {
    env: { PATH: process.env.PATH ?? '', SHARDCAST_ADMIN_URL: daemon.admin, SHARDCAST_ADMIN_TOKEN: TOKEN },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  t.teardown(() => child.kill());
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  const started = new Promise<void>((resolve) => child.stderr.on('data', (d: Buffer) => {
    stderr += d.toString();
    if (stderr.includes('tailing adm:tail')) resolve();
  }));
  const exited = new Promise<number | null>((resolve) => child.on('close', resolve));
  await started;
  // Nobody has joined the session: the tail holds its stream open by itself.
  await daemon.publish({ session: 'adm:tail', type: 'first', data: { n: 1 } });
  await daemon.publish({ session: 'adm:tail', type: 'second', data: { n: 2 }, to: ['u1'] });
  t.equal(await exited, 0, stderr);
  const lines = stdout.trim().split('\n').map((l) => JSON.parse(l) as { t: string; seq?: number; frame?: { type?: string; data?: unknown } });
  const frames = lines.filter((l) => l.t === 'frame');
  t.match(frames, [{ seq: 1, frame: { t: 'ev', type: 'first', data: { n: 1 } } }, { seq: 2, to: ['u1'], frame: { type: 'second' } }]);
  // The tail's stream was given back once it ended.
  await eventually('no streamed session left', async () => {
    const s = JSON.parse((await adminFetch(daemon, TOKEN, '/v1/admin/status')).text) as { streamedSessions: number };
    return s.streamedSessions === 0 ? true : undefined;
  });
});
