// Seed 001's contest end to end, with the example contest service (examples/contest)
// on two daemon instances (Redis, RabbitMQ): six players take the six seats (a
// seventh is refused), start together from one countdown, the first right answer
// ends the round and moves all six to the next question, and a round nobody gets
// right ends at its time limit.
import t from 'tap';
import { startContest } from '../../examples/contest/contest-service.js';
import type { EventFrame } from '../../protocol/frames.js';
import { connect as pgConnect } from '../support/postgres.js';
import { holdServiceLock } from '../support/service-lock.js';
import { command, eventOf, participant, serviceLog, startFlow, tokenFor } from './flows-support.js';

// Files using RabbitMQ run one at a time: some stop the broker (test/support/service-lock.ts).
await holdServiceLock('rabbitmq');

t.test('contest: 6 players, synchronized start, the first right answer advances everyone, the timer advances when nobody is right', async (t) => {
  const { instances, settings } = await startFlow(t, 'flows-contest', { namespaces: [{ prefix: 'contest:' }] });
  const [a, b] = instances;
  const contest = await startContest(settings, serviceLog('contest'), { seats: 6, autoStart: false, countdownMs: 500, pauseMs: 300, graceMs: 1000, decideMs: 500 });
  t.teardown(() => contest.stop());
  await contest.ready;

  const S = 'contest:flow';
  const host = await participant(t, a, S, { token: tokenFor('host', 'host') });
  const users = ['p1', 'p2', 'p3', 'p4', 'p5', 'p6'];
  const players = await Promise.all(users.map((u, i) => participant(t, i % 2 ? b : a, S, { user: u })));
  const by = (u: string) => players[users.indexOf(u)];
  for (const [i, p] of players.entries()) await command(p, S, 'join', { name: `Racer ${i + 1}` });
  await Promise.all(players.map((p) => eventOf(p, S, 'seats', (d) => d.players.length === 6)));

  const seventh = await participant(t, b, S, { user: 'p7' });
  const cid = await command(seventh, S, 'join', { name: 'Late' });
  const refused = await eventOf(seventh, S, 'refused', (d) => d.cid === cid);
  t.equal((refused.data as { reason: string }).reason, 'full', 'a seventh player gets no seat');

  await command(host, S, 'start', {
    questions: [
      { text: 'Largest planet?', choices: ['Mars', 'Jupiter', 'Venus'], answer: 1, timeLimitMs: 30_000 },
      { text: 'Smallest prime?', choices: ['1', '2', '3'], answer: 1, timeLimitMs: 1500 },
    ],
  });
  const countdowns = await Promise.all(players.map((p) => eventOf(p, S, 'countdown')));
  const startsAt = (countdowns[0].data as { startsAt: number }).startsAt;
  t.ok(countdowns.every((e) => e.seq === countdowns[0].seq && (e.data as { startsAt: number }).startsAt === startsAt), 'one countdown, the same start time for all six');
  const q1 = await Promise.all(players.map((p) => eventOf(p, S, 'question', (d) => d.n === 1)));
  t.ok(q1.every((e) => e.seq === q1[0].seq), 'question 1 reached all six');
  t.ok(q1[0].ts >= startsAt, 'and was sequenced no earlier than the announced start');

  // A wrong answer does not end the round; the first right one does, for everyone.
  await command(by('p2'), S, 'answer', { q: 1, choice: 0 });
  await command(by('p5'), S, 'answer', { q: 1, choice: 1 });
  const rounds = await Promise.all([host, ...players].map((c) => eventOf(c, S, 'round', (d) => d.n === 1)));
  t.match(rounds[0].data, { n: 1, answer: 1, winner: { user: 'p5', name: 'Racer 5' }, wrong: ['p2'] }, 'p5 answered right first and wins round 1');
  const q2 = await Promise.all(players.map((p) => eventOf(p, S, 'question', (d) => d.n === 2)));
  t.ok(q2.every((e) => e.seq === q2[0].seq), 'the right answer moved all six to question 2 (question 1 had 30 s left)');
  const order = (e: EventFrame[]) => e.map((x) => x.seq);
  t.ok(order(rounds).every((s) => s < q2[0].seq), 'the round result comes before the next question');

  // Nobody gets question 2 right: its timer ends the round without a winner.
  await command(by('p1'), S, 'answer', { q: 2, choice: 0 });
  const r2 = await eventOf(by('p3'), S, 'round', (d) => d.n === 2, 15_000);
  t.match(r2.data, { n: 2, winner: null, wrong: ['p1'] }, 'round 2 ends at its time limit with no winner');
  const overs = await Promise.all(players.map((p) => eventOf(p, S, 'over')));
  const standings = (overs[0].data as { standings: Array<{ user: string; wins: number; rank: number }> }).standings;
  t.match(standings[0], { user: 'p5', wins: 1, rank: 1 }, 'p5 leads the standings');
  t.equal(standings.length, 6);

  const sql = pgConnect({ connection: { search_path: settings.schema } });
  t.teardown(() => sql.end({ timeout: 5 }));
  const rows = await sql<{ n: number; winner: string | null }[]>`select n, winner from rounds order by n`;
  t.same(rows.map((r) => [r.n, r.winner]), [[1, 'p5'], [2, null]], 'round outcomes stored');
  const stored = await sql<{ user: string; wins: number }[]>`select "user", wins from standings where wins > 0`;
  t.same(stored.map((r) => [r.user, r.wins]), [['p5', 1]], 'final standings stored');
});
