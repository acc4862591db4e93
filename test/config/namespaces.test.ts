import t from 'tap';
import { ConfigError, loadConfig } from '../../daemon/config/load.js';
import { commandLimitFor, mayPublish, namespaceFor, namespaceLabels } from '../../daemon/config/namespaces.js';

const BASE = { SHARDCAST_DEV_MODE: 'true' };

function problemsOf(namespaces: unknown): readonly string[] {
  try {
    loadConfig({ ...BASE, SHARDCAST_NAMESPACES: typeof namespaces === 'string' ? namespaces : JSON.stringify(namespaces) });
  } catch (err) {
    if (err instanceof ConfigError) return err.problems;
    throw err;
  }
  return [];
}

t.test('namespace errors carry the path of the bad field', async (t) => {
  const problems = problemsOf([
    { prefix: 'quiz:' },
    { prefix: 'chat:', historySize: -1, presence: 'yes', clientPublish: 'host', colour: 'red' },
    { prefix: 'quiz:' },
    { prefix: 'bad prefix!' },
    { historySize: 10 },
    'chat:',
    { prefix: 'poll:', conflate: 1, clientPublish: ['host', ''] },
    { prefix: 'vote:', commandLimits: { vote: { perMinute: 0, burst: 3 }, '*': { perMinute: 10 } } },
    { prefix: 'race:', commandLimits: [1] },
  ]);
  const expected = [
    /^namespaces\[1\]\.colour \(SHARDCAST_NAMESPACES, from the environment\): unknown field; allowed: prefix, historySize, presence, joinLeave, clientPublish, conflate, commandLimits$/,
    /^namespaces\[1\]\.historySize \(SHARDCAST_NAMESPACES, from the environment\): got -1; must be an integer from 0 to 1000000$/,
    /^namespaces\[1\]\.presence .*: got "yes"; must be true or false$/,
    /^namespaces\[1\]\.clientPublish .*: got "host"; must be true, false or an array of role names/,
    /^namespaces\[2\]\.prefix .*: "quiz:" is already used by namespaces\[0\]/,
    /^namespaces\[3\]\.prefix .*: got "bad prefix!"; must be 1–128 session-id characters/,
    /^namespaces\[4\]\.prefix .*: got undefined/,
    /^namespaces\[5\] .*: got "chat:"; must be an object/,
    /^namespaces\[6\]\.conflate .*: got 1/,
    /^namespaces\[6\]\.clientPublish .*: got an array/,
    /^namespaces\[7\]\.commandLimits\.vote .*: got an object; must be \{perMinute: 1–6000000, burst: 1–1000000\}/,
    /^namespaces\[7\]\.commandLimits\.\* .*: got an object/,
    /^namespaces\[8\]\.commandLimits .*: got an array; must be an object of command type/,
  ];
  t.equal(problems.length, expected.length, 'every bad field listed, the valid entry not blamed');
  for (const [i, pattern] of expected.entries()) t.match(problems[i], pattern);
});

t.test('namespaces must be a JSON array', async (t) => {
  t.match(problemsOf('{"prefix":"a"}')[0], /^namespaces \(SHARDCAST_NAMESPACES, from the environment\): got an object; must be an array/);
  t.match(problemsOf('[{"prefix":')[0], /namespaces .*is not valid JSON/);
});

t.test('namespaceFor: longest prefix wins, defaults otherwise', async (t) => {
  const { config } = loadConfig({
    ...BASE,
    SHARDCAST_HISTORY_SIZE: '500',
    SHARDCAST_NAMESPACES: JSON.stringify([
      { prefix: 'quiz:', historySize: 50, presence: false, conflate: true },
      { prefix: 'quiz:live:', historySize: 5000 },
      { prefix: 'chat:', clientPublish: true, historySize: 0, joinLeave: true },
      { prefix: 'quiet:', presence: false, joinLeave: true },
      { prefix: 'stage:', clientPublish: ['host', 'moderator'] },
      { prefix: 'poll:', commandLimits: { vote: { perMinute: 100, burst: 200 }, '*': { perMinute: 600, burst: 20 } } },
    ]),
  });
  t.same(namespaceFor(config, 'quiz:42'), { prefix: 'quiz:', index: 1, historySize: 50, presence: false, clientPublish: false, conflate: true, joinLeave: false, commandLimits: {} });
  t.same(namespaceFor(config, 'quiz:live:1'), { prefix: 'quiz:live:', index: 2, historySize: 5000, presence: true, clientPublish: false, conflate: true, joinLeave: false, commandLimits: {} });
  t.same(namespaceFor(config, 'chat:lobby'), { prefix: 'chat:', index: 3, historySize: 0, presence: true, clientPublish: true, conflate: true, joinLeave: true, commandLimits: {} });
  t.same(namespaceFor(config, 'quiet:1'), { prefix: 'quiet:', index: 4, historySize: 500, presence: false, clientPublish: false, conflate: true, joinLeave: false, commandLimits: {} }, 'no notices without presence');
  const poll = namespaceFor(config, 'poll:9');
  t.same([commandLimitFor(poll, 'vote'), commandLimitFor(poll, 'skip')], [{ perMinute: 100, burst: 200 }, { perMinute: 600, burst: 20 }], 'a command type\'s limit, else "*"');
  t.equal(commandLimitFor(namespaceFor(config, 'quiz:1'), 'vote'), undefined, 'no limits where none are set');
  t.same(namespaceFor(config, 'other:9'), { prefix: '', index: 0, historySize: 500, presence: true, clientPublish: false, conflate: true, joinLeave: false, commandLimits: {} });
  t.same(namespaceFor(config, 'quiz'), { prefix: '', index: 0, historySize: 500, presence: true, clientPublish: false, conflate: true, joinLeave: false, commandLimits: {} }, 'a prefix must match whole');
  t.equal(namespaceFor(config, 'quiz:1'), namespaceFor(config, 'quiz:2'), 'resolved once per config');
  // Metric labels by index: the configured prefixes as written, and a default no prefix can spell.
  t.same(namespaceLabels(config), ['(default)', 'quiz:', 'quiz:live:', 'chat:', 'quiet:', 'stage:', 'poll:']);
  t.equal(namespaceLabels(config)[namespaceFor(config, 'poll:9').index], 'poll:', 'a session is labelled with the namespace that applies to it');
  t.equal(namespaceLabels(config)[namespaceFor(config, 'anything-else').index], '(default)');

  const stage = namespaceFor(config, 'stage:main');
  t.same(stage.clientPublish, ['host', 'moderator']);
  t.equal(mayPublish(stage, 'host'), true);
  t.equal(mayPublish(stage, 'participant'), false);
  t.equal(mayPublish(namespaceFor(config, 'chat:x'), 'participant'), true);
  t.equal(mayPublish(namespaceFor(config, 'other'), 'host'), false);

  const clone = structuredClone(config);
  t.same(namespaceFor(clone, 'quiz:live:1').historySize, 5000, 'works on a structured clone (shard thread)');
});

t.test('namespaces from the config file', async (t) => {
  const { join } = await import('node:path');
  const dir = t.testdir({ 'c.json': JSON.stringify({ devMode: true, namespaces: [{ prefix: 'chat:', clientPublish: true }, { prefix: 'x:', historySize: 1.5 }] }) });
  let err: unknown;
  try {
    loadConfig({ SHARDCAST_CONFIG: join(dir, 'c.json') });
  } catch (e) {
    err = e;
  }
  t.type(err, ConfigError);
  t.match((err as Error).message, /namespaces\[1\]\.historySize \(SHARDCAST_NAMESPACES, from .*c\.json\): got 1\.5/);
});
