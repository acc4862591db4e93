// Seed 004's polls end to end, with the example polls service (examples/polls) on two
// daemon instances (Redis, RabbitMQ): tallies reach every participant live as
// conflatable snapshots, a second vote by the same user on one poll is refused, a
// skip counts as that user's response, and the daily vote limit is enforced.
import t from 'tap';
import { startPolls } from '../../examples/polls/polls-service.js';
import { connect as pgConnect } from '../support/postgres.js';
import { RawClient } from '../support/raw-client.js';
import { holdServiceLock } from '../support/service-lock.js';
import { command, eventOf, eventsOf, participant, serviceLog, startFlow, tokenFor } from './flows-support.js';

// Files using RabbitMQ run one at a time: some stop the broker (test/support/service-lock.ts).
await holdServiceLock('rabbitmq');

interface Tally {
  poll: string;
  counts: number[];
  skips: number;
  total: number;
}

t.test('polls: live tallies, one vote per poll, skip, daily vote limit', async (t) => {
  const { instances, settings } = await startFlow(t, 'flows-polls', { namespaces: [{ prefix: 'poll:' }] });
  const [a, b] = instances;
  const polls = await startPolls(settings, serviceLog('polls'), { dailyVoteLimit: 2, tallyEveryMs: 100 });
  t.teardown(() => polls.stop());
  await polls.ready;

  const S = 'poll:flow';
  const host = await participant(t, a, S, { token: tokenFor('host', 'host') });
  const watcher = await participant(t, b, S, { user: 'watcher' });
  const voters = await Promise.all(['u1', 'u2', 'u3', 'u4'].map((u, i) => participant(t, i % 2 ? b : a, S, { user: u })));
  const [u1, u2, u3, u4] = voters;
  const tallyOf = (poll: string, pred: (d: Tally) => boolean) => (c: RawClient) => eventOf(c, S, 'tally', (d: Tally) => d.poll === poll && pred(d));

  // Only a host opens polls.
  const denied = await command(u1, S, 'open', { poll: 'x', question: 'Mine?', options: ['a', 'b'] });
  t.equal(((await eventOf(u1, S, 'refused', (d) => d.cid === denied)).data as { reason: string }).reason, 'forbidden', 'a participant cannot open a poll');

  await command(host, S, 'open', { poll: 'lunch', question: 'Lunch?', options: ['pizza', 'salad', 'soup'] });
  await command(host, S, 'open', { poll: 'drink', question: 'Drink?', options: ['tea', 'coffee'] });
  await command(host, S, 'open', { poll: 'music', question: 'Music?', options: ['jazz', 'rock'] });
  await Promise.all([watcher, ...voters].map(tallyOf('music', (d) => d.total === 0)));

  // Votes one after the other: the watcher sees the tally move.
  await command(u1, S, 'vote', { poll: 'lunch', option: 0 });
  await tallyOf('lunch', (d) => d.total === 1)(watcher);
  await command(u2, S, 'vote', { poll: 'lunch', option: 0 });
  await command(u3, S, 'vote', { poll: 'lunch', option: 1 });
  await command(u4, S, 'skip', { poll: 'lunch' });
  const final = await Promise.all([watcher, host, ...voters].map(tallyOf('lunch', (d) => d.total === 4)));
  t.same(final[0].data, { poll: 'lunch', counts: [2, 1, 0], skips: 1, total: 4, open: true }, 'every participant sees the live tally: 2 pizza, 1 salad, 1 skip');
  t.ok(final.every((e) => e.k === 'tally:lunch' && e.c === true), 'tallies are conflatable snapshots, one key per poll');
  const seen = eventsOf(watcher, S, 'tally').map((e) => e.data as unknown as Tally).filter((d) => d.poll === 'lunch').map((d) => d.total);
  t.ok(seen.length >= 3 && seen.every((n, i) => i === 0 || n >= seen[i - 1]), `the watcher saw the tally grow live: ${seen.join(' → ')}`);

  // A second vote on the same poll, and a vote after a skip, are refused.
  const again = await command(u1, S, 'vote', { poll: 'lunch', option: 2 });
  t.equal(((await eventOf(u1, S, 'refused', (d) => d.cid === again)).data as { reason: string }).reason, 'already_responded', 'a second vote by the same user on one poll is refused');
  const afterSkip = await command(u4, S, 'vote', { poll: 'lunch', option: 2 });
  t.equal(((await eventOf(u4, S, 'refused', (d) => d.cid === afterSkip)).data as { reason: string }).reason, 'already_responded', 'a vote after a skip is refused');
  t.same(eventsOf(u2, S, 'refused'), [], 'refusals go to their sender only');

  // The daily limit (2 here): u1's second vote counts, the third is refused.
  await command(u1, S, 'vote', { poll: 'drink', option: 1 });
  const third = await command(u1, S, 'vote', { poll: 'music', option: 0 });
  t.equal(((await eventOf(u1, S, 'refused', (d) => d.cid === third)).data as { reason: string }).reason, 'daily_limit', 'the third vote of the day is refused');
  // A skip is not a vote: still allowed.
  await command(u1, S, 'skip', { poll: 'music' });
  await tallyOf('music', (d) => d.skips === 1)(watcher);
  // And the first vote of u2 on music still counts.
  await command(u2, S, 'vote', { poll: 'music', option: 1 });
  const music = await tallyOf('music', (d) => d.total === 2)(watcher);
  t.same(music.data, { poll: 'music', counts: [0, 1], skips: 1, total: 2, open: true }, 'the refused vote is not in the tally');

  const sql = pgConnect({ connection: { search_path: settings.schema } });
  t.teardown(() => sql.end({ timeout: 5 }));
  const daily = await sql<{ user: string; votes: number }[]>`select "user", votes from daily_votes order by "user"`;
  t.same(daily.map((r) => [r.user, r.votes]), [['u1', 2], ['u2', 2], ['u3', 1]], 'daily votes counted in Postgres');

  // A voter reloading gets the tallies and their own responses at once.
  await u1.close();
  const reloaded = await RawClient.connect(a.ws, { user: 'u1' });
  t.teardown(() => reloaded.close());
  const joined = await reloaded.join(S);
  if (joined.t !== 'joined') throw new Error(JSON.stringify(joined));
  t.match(joined.snap?.['tally:lunch']?.data, { counts: [2, 1, 0], skips: 1 }, 'the snapshot has the tallies');
  t.same(joined.snap?.responses?.data, { responses: { drink: 1, lunch: 0, music: null } }, 'and the user’s own responses');

  await command(host, S, 'close', { poll: 'lunch' });
  await eventOf(watcher, S, 'poll', (d) => d.poll === 'lunch' && d.open === false);
  const late = await command(u3, S, 'skip', { poll: 'lunch' });
  t.equal(((await eventOf(u3, S, 'refused', (d) => d.cid === late)).data as { reason: string }).reason, 'closed', 'a closed poll takes no response');
});
