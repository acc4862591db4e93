// Seed 000's quiz end to end, with the example quiz service (examples/quiz) on two
// daemon instances (Redis, RabbitMQ, Postgres journal): players join, the host
// starts, a question reaches everyone, answers are scored by speed from the gateway's
// stamps, feedback goes only to the answering player, the leaderboard to all, a
// player reloading mid-question gets the snapshot at once, and game over stores the
// final scoreboard in Postgres.
import t from 'tap';
import { startQuiz } from '../../examples/quiz/quiz-service.js';
import { pointsFor } from '../../examples/quiz/scoring.js';
import { connect as pgConnect } from '../support/postgres.js';
import { RawClient } from '../support/raw-client.js';
import { holdServiceLock } from '../support/service-lock.js';
import { command, eventOf, eventsOf, participant, serviceLog, startFlow, tokenFor } from './flows-support.js';

// Files using RabbitMQ run one at a time: some stop the broker (test/support/service-lock.ts).
await holdServiceLock('rabbitmq');

t.test('quiz: join, question, answers scored from gateway stamps, feedback to the answerer only, leaderboard, reload mid-question, game over stored', async (t) => {
  const { instances, settings } = await startFlow(t, 'flows-quiz', { namespaces: [{ prefix: 'quiz:' }], journal: true });
  const [a, b] = instances;
  const quiz = await startQuiz(settings, serviceLog('quiz'), { leadInMs: 300, revealMs: 600, graceMs: 1500 });
  t.teardown(() => quiz.stop());
  await quiz.ready;

  const S = 'quiz:flow';
  const host = await participant(t, a, S, { token: tokenFor('host', 'host') });
  const names = ['p1', 'p2', 'p3', 'p4'];
  const players = await Promise.all(names.map((u, i) => participant(t, i % 2 ? b : a, S, { user: u })));
  const everyone = [host, ...players];
  const byUser = new Map(names.map((u, i) => [u, players[i]]));

  for (const [i, p] of players.entries()) await command(p, S, 'join', { name: `Player ${i + 1}` });
  await Promise.all(everyone.map((c) => eventOf(c, S, 'players', (d) => d.players.length === 4)));

  // A participant may not start the game: refused to them alone.
  const cid = await command(players[0], S, 'start', null);
  const refused = await eventOf(players[0], S, 'refused', (d) => d.cid === cid);
  t.equal((refused.data as { reason: string }).reason, 'forbidden', 'only the host may start');

  const questions = [
    { text: 'Two plus two?', choices: ['3', '4', '5'], answer: 1, timeLimitMs: 10_000 },
    { text: 'Capital of France?', choices: ['Paris', 'Rome'], answer: 0, timeLimitMs: 2000 },
  ];
  await command(host, S, 'start', { questions });
  const q1 = await Promise.all(everyone.map((c) => eventOf(c, S, 'question', (d) => d.n === 1)));
  const q1seq = q1[0].seq;
  t.ok(q1.every((e) => e.seq === q1seq && e.k === 'question'), 'question 1 reached everyone, as the snapshot key "question"');

  // p1, p3 and p4 answer right, p2 wrong; all four answered, so the question closes.
  await Promise.all([
    command(byUser.get('p1')!, S, 'answer', { q: 1, choice: 1 }),
    command(byUser.get('p2')!, S, 'answer', { q: 1, choice: 2 }),
    new Promise((r) => setTimeout(r, 200)).then(() => command(byUser.get('p3')!, S, 'answer', { q: 1, choice: 1 })),
    new Promise((r) => setTimeout(r, 400)).then(() => command(byUser.get('p4')!, S, 'answer', { q: 1, choice: 1 })),
  ]);
  const boards = await Promise.all(everyone.map((c) => eventOf(c, S, 'leaderboard', (d) => d.after === 1)));
  t.ok(boards.every((e) => e.c === true && e.k === 'leaderboard'), 'the leaderboard reaches everyone, host included, as a conflatable snapshot');
  const feedback = new Map(names.map((u) => [u, eventsOf(byUser.get(u)!, S, 'feedback')]));
  t.same(names.map((u) => feedback.get(u)!.length), [1, 1, 1, 1], 'each player got exactly one feedback: their own');
  t.equal(eventsOf(host, S, 'feedback').length, 0, 'the host got no one’s feedback');
  const fb1 = new Map(names.map((u) => [u, feedback.get(u)![0].data as { n: number; correct: boolean; points: number; choice: number }]));
  t.same(names.map((u) => fb1.get(u)!.correct), [true, false, true, true], 'each feedback is that player’s own verdict');

  // Scores follow the speed rule from the stamps the service received (stored with each answer).
  const sql = pgConnect({ connection: { search_path: settings.schema } });
  t.teardown(() => sql.end({ timeout: 5 }));
  const rows = await sql<{ user: string; correct: boolean; received_at_us: string; last_seq: string; last_seq_at_us: string; question_seq: string; time_us: string | null; points: number }[]>`
    select "user", correct, received_at_us, last_seq, last_seq_at_us, question_seq, time_us, points from answers where q = 1 order by "user"`;
  t.same(rows.map((r) => r.user), names, 'four answers stored');
  for (const r of rows) {
    t.equal(Number(r.question_seq), q1seq, `${r.user}: the question's seq is the one players received`);
    t.ok(Number(r.last_seq) >= q1seq, `${r.user}: the gateway had handed the question to the player`);
    const tUs = Number(r.received_at_us) - Number(r.last_seq_at_us);
    t.equal(Number(r.time_us), tUs, `${r.user}: time to answer = receivedAt - lastSeqAt`);
    const expected = r.correct ? Math.max(0, Math.round(1000 * (1 - tUs / 10_000_000))) : 0;
    t.equal(r.points, expected, `${r.user}: ${r.points} points = 1000·(1 − t/timeLimit) for a right answer, 0 for a wrong one`);
    t.equal(r.points, pointsFor(r.correct, tUs, 10_000));
    t.equal(fb1.get(r.user)!.points, r.points, `${r.user}: the feedback carries the stored points`);
  }
  t.ok(rows.filter((r) => r.correct).every((r) => r.points > 0 && r.points <= 1000), 'right answers score up to 1000');

  // Question 2 opens; p1 reloads the page: the snapshot has everything at once.
  await Promise.all(everyone.map((c) => eventOf(c, S, 'question', (d) => d.n === 2)));
  await byUser.get('p1')!.close();
  const reloaded = await RawClient.connect(a.ws, { user: 'p1' });
  t.teardown(() => reloaded.close());
  const joined = await reloaded.join(S);
  if (joined.t !== 'joined') throw new Error(JSON.stringify(joined));
  const snap = joined.snap ?? {};
  t.equal(joined.rec, false, 'a fresh join gets the snapshot');
  t.match(snap.question?.data, { n: 2, text: 'Capital of France?' }, 'the current question');
  t.match(snap.answers?.data, { answers: [{ n: 1, correct: true, points: fb1.get('p1')!.points }] }, 'the player’s own answers');
  t.match(snap.leaderboard?.data, { after: 1 }, 'the leaderboard');
  t.equal((snap.leaderboard?.data as { entries: unknown[] }).entries.length, 4);
  byUser.set('p1', reloaded);

  // p1 (reloaded), p2 and p3 answer; p4 does not: the timer closes question 2.
  await command(reloaded, S, 'answer', { q: 2, choice: 0 });
  await command(byUser.get('p2')!, S, 'answer', { q: 2, choice: 0 });
  await command(byUser.get('p3')!, S, 'answer', { q: 2, choice: 1 });
  const overs = await Promise.all([host, reloaded, ...players.slice(1)].map((c) => eventOf(c, S, 'gameover', () => true, 20_000)));
  const p4fb = await eventOf(byUser.get('p4')!, S, 'feedback', (d) => d.n === 2);
  t.match(p4fb.data, { answered: false, points: 0 }, 'a player who did not answer hears so when the timer closes the question');
  const scoreboard = (overs[0].data as { scoreboard: Array<{ user: string; score: number; rank: number }> }).scoreboard;
  const stored = await sql<{ user: string; score: number; rank: number }[]>`
    select s."user", s.score, s.rank from scores s join games g on g.id = s.game_id where g.session = ${S} and g.ended_at is not null order by s.rank, s."user"`;
  t.same(
    stored.map((r) => ({ user: r.user, score: r.score, rank: r.rank })),
    scoreboard.map((l) => ({ user: l.user, score: l.score, rank: l.rank })).sort((x, y) => x.rank - y.rank || x.user.localeCompare(y.user)),
    'game over: the final scoreboard is stored in Postgres',
  );
  const totals = await sql<{ user: string; total: string }[]>`select "user", sum(points)::text as total from answers group by "user" order by "user"`;
  for (const { user, total } of totals) t.equal(scoreboard.find((l) => l.user === user)?.score, Number(total), `${user}: the final score is the sum of the scored answers`);
});
