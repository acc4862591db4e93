// Per-user command limits (daemon/engine/command-limiter.ts): the memory limiter
// and the Redis one behave alike; the Redis one counts one bucket across instances.
import t, { type Test } from 'tap';
import { Redis } from 'ioredis';
import { createMemoryCommandLimiter, type CommandLimiter } from '../../daemon/engine/command-limiter.js';
import { createRedisCommandLimiter } from '../../daemon/engine/redis-command-limiter.js';
import { REDIS_URL, uniquePrefix } from '../support/redis.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function redisLimiter(t: Test, prefix: string): CommandLimiter {
  const redis = new Redis(REDIS_URL);
  t.teardown(() => redis.quit());
  return createRedisCommandLimiter(redis, prefix);
}

const impls: Array<[string, (t: Test) => CommandLimiter]> = [
  ['memory', (t) => {
    const l = createMemoryCommandLimiter();
    t.teardown(() => l.close());
    return l;
  }],
  ['redis', (t) => redisLimiter(t, uniquePrefix('limiter'))],
];

for (const [name, make] of impls) {
  t.test(`${name}: a burst, then refusals that say when, then refilled`, async (t) => {
    const l = make(t);
    const limit = { perMinute: 600, burst: 3 }; // a token every 100 ms
    const verdicts = [];
    for (let i = 0; i < 5; i++) verdicts.push(await l.take('quiz:\0vote\0alice', limit));
    t.same(verdicts.slice(0, 3), [{ ok: true }, { ok: true }, { ok: true }], 'the burst is accepted');
    t.ok(verdicts.slice(3).every((v) => !v.ok && v.retryAfterMs >= 1 && v.retryAfterMs <= 100), `then refused with retryAfterMs ${JSON.stringify(verdicts.slice(3))}`);
    t.same(await l.take('quiz:\0vote\0bob', limit), { ok: true }, 'another user has a bucket of their own');
    const wait = verdicts[4].ok ? 0 : verdicts[4].retryAfterMs;
    await sleep(wait + 20);
    t.same(await l.take('quiz:\0vote\0alice', limit), { ok: true }, `after ${wait} ms a token is back`);
    t.equal((await l.take('quiz:\0vote\0alice', limit)).ok, false, 'and only one');
  });

  t.test(`${name}: a refused command takes no token`, async (t) => {
    const l = make(t);
    const limit = { perMinute: 60, burst: 1 };
    t.same(await l.take('k', limit), { ok: true });
    for (let i = 0; i < 20; i++) await l.take('k', limit);
    const v = await l.take('k', limit);
    t.ok(!v.ok && v.retryAfterMs > 900, `hammering does not push the refill back further: ${JSON.stringify(v)}`);
  });
}

t.test('redis: two instances count against one bucket', async (t) => {
  const prefix = uniquePrefix('limiter');
  const a = redisLimiter(t, prefix);
  const b = redisLimiter(t, prefix);
  const limit = { perMinute: 1, burst: 3 };
  const got = [await a.take('u', limit), await b.take('u', limit), await a.take('u', limit), await b.take('u', limit)];
  t.same(got.map((v) => v.ok), [true, true, true, false], 'three in all, whichever instance took them');
});
