// A shard that crashes (test-only trigger) is restarted; the process and the other
// shard's clients are unaffected; the crashed shard's clients reconnect through the
// SDK and resume with no gap and no duplicate.
import t from 'tap';
import WebSocket from 'ws';
import { ShardcastClient, type EventFrame, type WebSocketConstructor } from '../../protocol/client/index.js';
import { startDaemon } from '../support/daemon-process.js';

const S = 'quiz:crash';

t.test('a crashed shard restarts; the other shard never notices; its clients resume', async (t) => {
  const daemon = await startDaemon({ SHARDCAST_SHARDS: '2', SHARDCAST_TEST_HOOKS: 'true' });
  t.teardown(() => daemon.stop());

  // Connect until both shards hold at least 3 clients.
  const clients: Array<{ client: ShardcastClient; shard: number; events: EventFrame[] }> = [];
  for (let i = 0; i < 60 && !(count(clients, 0) >= 3 && count(clients, 1) >= 3); i++) {
    const client = new ShardcastClient({
      url: daemon.ws,
      user: `p${i}`,
      WebSocket: WebSocket as unknown as WebSocketConstructor,
      reconnect: { baseMs: 50, maxMs: 200 },
    });
    const hello = await client.connect();
    const entry = { client, shard: Number(hello.conn.split('.')[1]), events: [] as EventFrame[] };
    const sub = client.join(S);
    sub.on('event', (ev) => entry.events.push(ev));
    await sub.ready;
    clients.push(entry);
  }
  t.teardown(() => Promise.all(clients.map((c) => c.client.close())));
  t.ok(count(clients, 0) >= 3 && count(clients, 1) >= 3, 'clients on both shards');

  for (let i = 1; i <= 5; i++) await daemon.publish({ session: S, type: 'q', data: i });
  await waitFor(() => clients.every((c) => c.events.length === 5), 'first events');

  const survivors = clients.filter((c) => c.shard === 0);
  const victims = clients.filter((c) => c.shard === 1);
  const survivorDisconnects: number[] = [];
  for (const s of survivors) s.client.on('disconnected', () => survivorDisconnects.push(1));
  const victimDisconnects = victims.map(() => 0);
  victims.forEach((v, i) => v.client.on('disconnected', () => victimDisconnects[i]++));

  const crash = await fetch(`${daemon.http}/v1/test/crash?shard=1`, { method: 'POST' });
  t.same(await crash.json(), { crashed: true }, 'crash triggered');
  await daemon.waitForLine((l) => l.msg === 'shard crashed' && l.shard === 1);
  await daemon.waitForLine((l) => l.msg === 'shard restarted' && l.shard === 1);
  await waitFor(() => victimDisconnects.every((n) => n > 0), 'victims noticing the crash');

  // Published while the victims reconnect, and after.
  for (let i = 6; i <= 10; i++) await daemon.publish({ session: S, type: 'q', data: i });
  await waitFor(() => victims.every((v) => v.client.state === 'open'), 'victims reconnected');
  for (let i = 11; i <= 15; i++) await daemon.publish({ session: S, type: 'q', data: i });
  await waitFor(() => clients.every((c) => c.events.length >= 15), 'all events', 15_000);

  for (const c of clients) {
    t.same(c.events.map((e) => e.seq), range(1, 15), `client on shard ${c.shard}: every event once, in order`);
  }
  t.equal(survivorDisconnects.length, 0, 'clients of the other shard were never disconnected');
  t.ok(victims.every((v) => v.client.getSubscription(S)?.position?.seq === 15), 'victims resumed to the head');
  const ready = await fetch(`${daemon.http}/readyz`);
  t.equal(ready.status, 200, 'the instance is ready again');
  t.equal(daemon.proc.exitCode, null, 'the process survived');
  const { code } = await daemon.stop();
  t.equal(code, 0, 'and still drains cleanly');
});

function count(list: Array<{ shard: number }>, shard: number): number {
  return list.filter((c) => c.shard === shard).length;
}

async function waitFor(pred: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!pred()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

function range(from: number, to: number): number[] {
  return Array.from({ length: to - from + 1 }, (_, i) => from + i);
}
