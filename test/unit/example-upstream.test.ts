// The example services' pure parts (examples/): a relayed command decoded and
// validated, µs stamps preferred over ms ones; the quiz's speed rule; the checks on
// a host's questions; settings naming the bad variable.
import t from 'tap';
import { encode } from '../../protocol/codec.js';
import { questionsOf } from '../../examples/quiz/questions.js';
import { pointsFor, timeToAnswerUs } from '../../examples/quiz/scoring.js';
import { settingsFromEnv } from '../../examples/toolkit/service-settings.js';
import { eventIdFor, parseCommand } from '../../examples/toolkit/upstream-command.js';

const body = { session: 'quiz:1', user: 'alice', role: 'participant', cid: 'c1', type: 'answer', data: { q: 1 }, receivedAt: 1_000_500, lastSeq: 7, lastSeqAt: 1_000_000, conn: 'x', shard: 0, pos: 3 };

t.test('a relayed command: ms stamps as µs, or the µs stamps when the gateway sends them', async (t) => {
  const c = parseCommand(Buffer.from(JSON.stringify(body)), 'application/json', 'quiz.answer', 'quiz:1/alice/c1');
  t.match(c, { messageId: 'quiz:1/alice/c1', session: 'quiz:1', user: 'alice', role: 'participant', cid: 'c1', type: 'answer', data: { q: 1 }, receivedAtUs: 1_000_500_000, lastSeq: 7, lastSeqAtUs: 1_000_000_000, pos: 3 });
  const fine = parseCommand(Buffer.from(encode({ ...body, receivedAtUs: 1_000_500_123, lastSeqAtUs: 1_000_000_456 })), 'application/msgpack', 'quiz.answer', undefined);
  t.match(fine, { receivedAtUs: 1_000_500_123, lastSeqAtUs: 1_000_000_456, messageId: 'quiz:1/alice/c1' }, 'µs fields win; the message id defaults to session/user/cid');
  t.equal(eventIdFor('refused', c), eventIdFor('refused', fine), 'event ids derived from a command are stable');
  t.ok(eventIdFor('x', { ...c, messageId: `${'s'.repeat(128)}/${'u'.repeat(128)}/${'c'.repeat(64)}` }).length <= 128, 'and short');
});

t.test('a body that is not a command is refused with the field to fix', async (t) => {
  const refuse = (content: Buffer, type = 'application/json') => t.throws(() => parseCommand(content, type, 'quiz.answer', undefined), { code: 'invalid_command' });
  refuse(Buffer.from('{nope'));
  refuse(Buffer.from(JSON.stringify(body)), 'text/plain');
  refuse(Buffer.from(JSON.stringify([1])));
  t.throws(() => parseCommand(Buffer.from(JSON.stringify({ ...body, user: '' })), undefined, 'k', undefined), { message: /"user"/ });
  t.throws(() => parseCommand(Buffer.from(JSON.stringify({ ...body, receivedAt: undefined })), undefined, 'k', undefined), { message: /receivedAt/ });
  t.throws(() => parseCommand(Buffer.from(JSON.stringify({ ...body, lastSeq: -1 })), undefined, 'k', undefined), { message: /"lastSeq"/ });
});

t.test('the speed rule: from the question reaching the socket to the answer reaching the gateway', async (t) => {
  const stamps = { receivedAtUs: 2_500_000, lastSeq: 10, lastSeqAtUs: 0 + 500_000 };
  t.equal(timeToAnswerUs(stamps, 10), 2_000_000, 't = receivedAt − lastSeqAt');
  t.equal(timeToAnswerUs(stamps, 11), null, 'an answer sent before the question reached the player');
  t.equal(pointsFor(true, 2_000_000, 10_000), 800, '1000·(1 − t/timeLimit)');
  t.equal(pointsFor(true, 0, 10_000), 1000);
  t.equal(pointsFor(true, 12_000_000, 10_000), 0, 'too late: 0');
  t.equal(pointsFor(false, 1, 10_000), 0, 'wrong: 0');
  t.equal(pointsFor(true, null, 10_000), 0, 'unseen: 0');
});

t.test("a host's questions are checked whole", async (t) => {
  t.equal(questionsOf(null).length, 3, 'the built-in set by default');
  t.same(questionsOf({ questions: [{ text: ' Q ', choices: ['a', 'b'], answer: 1 }] }), [{ text: 'Q', choices: ['a', 'b'], answer: 1, timeLimitMs: 20_000 }]);
  for (const bad of [{ questions: [] }, { questions: [{ text: 'Q', choices: ['a'], answer: 0 }] }, { questions: [{ text: 'Q', choices: ['a', 'b'], answer: 2 }] }, { questions: [{ text: 'Q', choices: ['a', 'b'], answer: 0, timeLimitMs: 10 }] }, { questions: [{ text: 'a\u0000', choices: ['a', 'b'], answer: 0 }] }, 'x']) {
    t.throws(() => questionsOf(bad), { message: /^start: / }, JSON.stringify(bad));
  }
});

t.test('settings name the bad variable', async (t) => {
  t.match(settingsFromEnv('quiz', {}), { queue: 'examples.quiz', schema: 'example_quiz', eventsExchange: 'shardcast.events', commandsExchange: 'shardcast.commands' });
  t.throws(() => settingsFromEnv('quiz', { EXAMPLE_SCHEMA: 'drop table;' }), { message: /EXAMPLE_SCHEMA/ });
  t.throws(() => settingsFromEnv('quiz', { SHARDCAST_AMQP_URL: 'http://x' }), { code: 'invalid_setting', message: /SHARDCAST_AMQP_URL/ });
  t.throws(() => settingsFromEnv('quiz', { SHARDCAST_AMQP_COMMANDS_EXCHANGE: 'a b' }), { message: /SHARDCAST_AMQP_COMMANDS_EXCHANGE/ });
});
