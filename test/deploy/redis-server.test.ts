// test/support/redis-server.ts: a private redis-server for tests that stop or
// restart Redis, never the shared one on 6379.
import t from 'tap';
import { redisCommand, startRedisServer } from '../support/redis-server.js';

t.test('starts on a free port, restarts empty on the same port, closes', async (t) => {
  const redis = await startRedisServer();
  t.teardown(() => redis.close());
  t.not(redis.port, 6379, 'never the shared Redis');
  t.equal(redis.url, `redis://127.0.0.1:${redis.port}`);
  t.equal(await redisCommand(redis.port, ['PING']), 'PONG');

  t.equal(await redisCommand(redis.port, ['SET', 'k', 'v é']), 'OK');
  t.equal(await redisCommand(redis.port, ['GET', 'k']), 'v é');

  const port = redis.port;
  await redis.restart();
  t.equal(redis.port, port, 'same port after restart');
  t.equal(await redisCommand(redis.port, ['GET', 'k']), null, 'nothing persisted across the restart');
  t.equal(await redisCommand(redis.port, ['DBSIZE']), 0);

  await redis.stop();
  await t.rejects(redisCommand(redis.port, ['PING'], 300), 'stopped: does not answer');
  await redis.stop(); // a second stop is a no-op
  await redis.restart();
  t.equal(await redisCommand(redis.port, ['PING']), 'PONG', 'restart after stop starts it again');

  await redis.close();
  await t.rejects(redisCommand(redis.port, ['PING'], 300), 'closed: does not answer');
  await redis.close(); // idempotent
});

t.test('several servers side by side get their own ports', async (t) => {
  const servers = await Promise.all([startRedisServer(), startRedisServer(), startRedisServer()]);
  t.teardown(() => Promise.all(servers.map((s) => s.close())));
  t.equal(new Set(servers.map((s) => s.port)).size, 3);
  await redisCommand(servers[0].port, ['SET', 'only-here', '1']);
  t.equal(await redisCommand(servers[1].port, ['GET', 'only-here']), null);
});
