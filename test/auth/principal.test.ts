import t from 'tap';
import { compileSessionPattern, devPrincipal, mayJoin, principalFromClaims, type Principal } from '../../daemon/auth/principal.js';

const who = (...sessions: string[]): Principal => ({ user: 'u', sessions, role: 'participant' });

t.test('principalFromClaims', async (t) => {
  t.same(principalFromClaims({ sub: 'u1' }), { ok: true, principal: { user: 'u1', sessions: [], role: 'participant' } });
  t.same(principalFromClaims({ sub: 'u1', sessions: ['quiz:*'], role: 'host', exp: 1700000000, extra: 1 }), {
    ok: true,
    principal: { user: 'u1', sessions: ['quiz:*'], role: 'host', exp: 1700000000, validUntilS: 1700000030 },
  });
  const strict = principalFromClaims({ sub: 'u1', exp: 1700000000 }, 5);
  t.equal(strict.ok && strict.principal.validUntilS, 1700000005, 'valid until exp plus the clock-skew allowance given');
  const bad: [Record<string, unknown>, RegExp][] = [
    [{}, /sub claim must be a non-empty string/],
    [{ sub: '' }, /sub claim must be a non-empty string/],
    [{ sub: 42 }, /sub claim must be a non-empty string/],
    [{ sub: 'x'.repeat(129) }, /sub claim is longer than 128/],
    [{ sub: 'a\nb' }, /sub claim contains control characters/],
    [{ sub: 'a\u0085b' }, /sub claim contains control characters/],
    [{ sub: 'a\u009bb' }, /sub claim contains control characters/],
    [{ sub: 'admin\u202egnp.exe' }, /sub claim contains bidirectional-override characters/],
    [{ sub: 'x\u2066y' }, /sub claim contains bidirectional-override characters/],
    [{ sub: 'u', sessions: 'quiz:*' }, /sessions claim must be an array/],
    [{ sub: 'u', sessions: ['ok', 7] }, /sessions claim must hold non-empty strings/],
    [{ sub: 'u', sessions: [''] }, /sessions claim must hold non-empty strings/],
    [{ sub: 'u', role: '' }, /role claim/],
    [{ sub: 'u', role: ['host'] }, /role claim/],
    [{ sub: 'u', exp: '1' }, /exp claim/],
  ];
  for (const [claims, pattern] of bad) {
    const result = principalFromClaims(claims);
    t.equal(result.ok, false, JSON.stringify(claims));
    if (!result.ok) t.match(result.message, pattern);
  }
  t.equal(principalFromClaims({ sub: 'x'.repeat(128) }).ok, true, '128 characters is fine');
});

t.test('devPrincipal may join anything as a participant', async (t) => {
  const p = devPrincipal('alice');
  t.same(p, { user: 'alice', sessions: ['*'], role: 'participant' });
  t.equal(mayJoin(p, 'quiz:1'), true);
  t.equal(mayJoin(p, 'anything.at@all'), true);
});

t.test('mayJoin: exact patterns', async (t) => {
  const p = who('quiz:1', 'poll:7');
  t.equal(mayJoin(p, 'quiz:1'), true);
  t.equal(mayJoin(p, 'poll:7'), true);
  t.equal(mayJoin(p, 'quiz:10'), false);
  t.equal(mayJoin(p, 'quiz:'), false);
  t.equal(mayJoin(p, 'Quiz:1'), false, 'case-sensitive');
  t.equal(mayJoin(who(), 'quiz:1'), false, 'no patterns, no sessions');
});

t.test('mayJoin: * globs', async (t) => {
  t.equal(mayJoin(who('*'), ''), true);
  t.equal(mayJoin(who('*'), 'x'), true);
  const prefix = who('quiz:*');
  t.equal(mayJoin(prefix, 'quiz:'), true, '* matches the empty string');
  t.equal(mayJoin(prefix, 'quiz:42'), true);
  t.equal(mayJoin(prefix, 'xquiz:42'), false);
  const suffix = who('*:final');
  t.equal(mayJoin(suffix, 'quiz:final'), true);
  t.equal(mayJoin(suffix, 'quiz:finals'), false);

  const abc = compileSessionPattern('a*b*c');
  for (const yes of ['abc', 'aXbYc', 'abbc', 'abcbc', 'aXbcXc', 'a-b-b-c', 'acbc']) t.equal(abc(yes), true, `a*b*c matches ${yes}`);
  for (const no of ['ab', 'ac', 'bc', 'abcx', 'xabc', 'acb', 'a', 'cba', 'aXcYb']) t.equal(abc(no), false, `a*b*c does not match ${no}`);

  const overlap = compileSessionPattern('ab*ba');
  t.equal(overlap('aba'), false, 'prefix and suffix may not share characters');
  t.equal(overlap('abba'), true);
  t.equal(overlap('ab-ba'), true);
  const doubled = compileSessionPattern('a**b');
  t.equal(doubled('ab'), true);
  t.equal(doubled('a-x-b'), true);
  t.equal(doubled('ba'), false);
  const midOnly = compileSessionPattern('*room*');
  t.equal(midOnly('room'), true);
  t.equal(midOnly('chat:room:1'), true);
  t.equal(midOnly('roo'), false);
  const middleNeedsRoom = compileSessionPattern('x*yy*z');
  t.equal(middleNeedsRoom('xyyz'), true);
  t.equal(middleNeedsRoom('xyz'), false);
  t.equal(compileSessionPattern('x*yz*yz')('xyz'), false, 'middle segment may not eat the suffix');
  t.equal(compileSessionPattern('x*yz*yz')('xyzyz'), true);
});

t.test('mayJoin: regex metacharacters are literal', async (t) => {
  const p = who('quiz.1+');
  t.equal(mayJoin(p, 'quiz.1+'), true);
  t.equal(mayJoin(p, 'quiz.11'), false, '+ is not a quantifier');
  t.equal(mayJoin(p, 'quizX1'), false, '. is not any character');
  const q = who('a.b*', '(x|y)?', '[abc]', '^$\\d');
  t.equal(mayJoin(q, 'a.b:1'), true);
  t.equal(mayJoin(q, 'aXb:1'), false);
  t.equal(mayJoin(q, '(x|y)?'), true);
  t.equal(mayJoin(q, 'x'), false);
  t.equal(mayJoin(q, 'a'), false);
  t.equal(mayJoin(q, '[abc]'), true);
  t.equal(mayJoin(q, '^$\\d'), true);
  t.equal(mayJoin(q, '5'), false);
});

t.test('mayJoin: hostile patterns stay fast', async (t) => {
  // (a*)*b-style inputs that make backtracking regex engines explode.
  const hostile = who('*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*b');
  const session = 'a'.repeat(128);
  const started = process.hrtime.bigint();
  for (let i = 0; i < 1000; i++) mayJoin(hostile, session);
  const ms = Number(process.hrtime.bigint() - started) / 1e6;
  t.equal(mayJoin(hostile, session), false);
  t.ok(ms < 500, `1000 matches took ${ms.toFixed(1)} ms`);
  t.equal(mayJoin(hostile, 'a'.repeat(20) + 'b'), true);
});
