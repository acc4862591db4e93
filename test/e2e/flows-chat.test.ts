// Seed 003's chat end to end, with the example chat service (examples/chat) on two
// daemon instances (Redis, RabbitMQ): messages sent as commands from both instances
// reach everyone in one order, the order they are kept in Postgres; presence shows
// joins and leaves across the instances; a late joiner sees the recent messages.
import t from 'tap';
import { startChat } from '../../examples/chat/chat-service.js';
import type { ServerFrame } from '../../protocol/frames.js';
import { connect as pgConnect } from '../support/postgres.js';
import { RawClient } from '../support/raw-client.js';
import { holdServiceLock } from '../support/service-lock.js';
import { command, eventOf, eventsOf, participant, serviceLog, startFlow } from './flows-support.js';

// Files using RabbitMQ run one at a time: some stop the broker (test/support/service-lock.ts).
await holdServiceLock('rabbitmq');

interface Msg {
  n: number;
  from: string;
  text: string;
  at: number;
}

t.test('chat: messages reach everyone in order and are kept in Postgres; presence across two instances', async (t) => {
  const { instances, settings } = await startFlow(t, 'flows-chat', { namespaces: [{ prefix: 'chat:', joinLeave: true }] });
  const [a, b] = instances;
  const chat = await startChat(settings, serviceLog('chat'), { maxLength: 2000, recentSize: 50, recentEveryMs: 200 });
  t.teardown(() => chat.stop());
  await chat.ready;
  const S = 'chat:lobby';

  // Presence: a user joining on instance b is seen from instance a, and so is their leaving.
  const anna = await RawClient.connect(a.ws, { user: 'anna' });
  t.teardown(() => anna.close());
  const annaJoined = await anna.join(S, { pres: true });
  t.equal(annaJoined.t, 'joined');
  const ben = await RawClient.connect(b.ws, { user: 'ben' });
  t.teardown(() => ben.close());
  const benJoined = await ben.join(S, { pres: true });
  if (benJoined.t !== 'joined') throw new Error(JSON.stringify(benJoined));
  t.same(benJoined.pres?.map((p) => p.u).sort(), ['anna', 'ben'], 'ben, on instance b, sees anna (instance a) present');
  await anna.next((f: ServerFrame) => f.t === 'pjoin' && f.u === 'ben', 15_000);
  t.pass('anna, on instance a, is told that ben joined on instance b');
  await ben.close();
  await anna.next((f: ServerFrame) => f.t === 'pleave' && f.u === 'ben', 15_000);
  t.pass('and that he left');

  // Messages from four users on both instances at once.
  const users = ['u1', 'u2', 'u3', 'u4'];
  const members = await Promise.all(users.map((u, i) => participant(t, i % 2 ? b : a, S, { user: u })));
  const everyone = [anna, ...members];
  const PER_USER = 8;
  await Promise.all(members.map(async (c, i) => {
    for (let k = 1; k <= PER_USER; k++) await command(c, S, 'say', { text: `${users[i]} #${k}` });
  }));
  const total = users.length * PER_USER;
  await Promise.all(everyone.map((c) => c.until((fs) => eventsOf(c, S, 'msg').length >= total, 20_000, `${total} messages`)));
  await new Promise((r) => setTimeout(r, 300)); // a duplicate would arrive now
  const streams = everyone.map((c) => eventsOf(c, S, 'msg').map((e) => e.data as unknown as Msg));
  const reference = streams[0].map((m) => m.n);
  t.equal(reference.length, total, `${total} messages, each once`);
  t.ok(streams.every((s) => s.map((m) => m.n).join() === reference.join()), 'every member got the same messages in the same order');
  t.ok(reference.every((n, i) => i === 0 || n > reference[i - 1]), 'in the order they were stored');
  for (const u of users) {
    const own = streams[0].filter((m) => m.from === u).map((m) => m.text);
    t.same(own, Array.from({ length: PER_USER }, (_, k) => `${u} #${k + 1}`), `${u}'s messages in the order ${u} sent them, authored by the gateway's stamp`);
  }

  const sql = pgConnect({ connection: { search_path: settings.schema } });
  t.teardown(() => sql.end({ timeout: 5 }));
  const rows = await sql<{ user: string; text: string }[]>`select "user", text from messages where session = ${S} order by n`;
  t.same(rows.map((r) => `${r.user}:${r.text}`), streams[0].map((m) => `${m.from}:${m.text}`), 'Postgres keeps every message, in the order everyone saw');

  // Invalid input is refused to its sender; nothing is published.
  const bad = await command(members[0], S, 'say', { text: 'bell\u0007' });
  t.equal(((await eventOf(members[0], S, 'refused', (d) => d.cid === bad)).data as { reason: string }).reason, 'invalid', 'a message with control characters is refused');

  // A late joiner gets the recent messages in the snapshot at once.
  await eventOf(anna, S, 'recent', (d) => d.messages.length === total);
  const late = await RawClient.connect(b.ws, { user: 'late' });
  t.teardown(() => late.close());
  const joined = await late.join(S);
  if (joined.t !== 'joined') throw new Error(JSON.stringify(joined));
  const recent = (joined.snap?.recent?.data as unknown as { messages: Msg[] } | undefined)?.messages ?? [];
  t.same(recent.map((m) => m.n), reference, 'a late joiner sees the recent messages at once');
});
