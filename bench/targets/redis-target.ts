/**
 * The Redis the `shardcast-redis*` targets run on: a key prefix unique to the run
 * (every key and channel of the daemons starts with it), the redis-server process
 * for /proc readings when it runs on this machine, and the clean-up that deletes
 * the run's keys (SCAN MATCH <prefix>* + UNLINK) once the daemons have stopped.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { Redis } from 'ioredis';
import type { BackingServer } from './target.js';

/** One run's share of a Redis. */
export interface BenchRedis {
  readonly url: string;
  /** `shardcast-bench-<time>-<random>:`, unique to this run. */
  readonly prefix: string;
  /** The redis-server process when it is on this machine and readable in /proc; otherwise absent. */
  readonly backing?: BackingServer;
  /** Deletes every key under the prefix and closes the bench's connection; says so on stderr. Idempotent. */
  cleanUp(): Promise<void>;
}

const LOOPBACK = new Set(['127.0.0.1', 'localhost', '::1', '[::1]']);

/** `INFO <section>` as a map of its `key:value` lines. */
async function info(redis: Redis, section: string): Promise<Map<string, string>> {
  const text = await redis.info(section);
  const fields = new Map<string, string>();
  for (const line of text.split('\r\n')) {
    const colon = line.indexOf(':');
    if (colon > 0 && !line.startsWith('#')) fields.set(line.slice(0, colon), line.slice(colon + 1));
  }
  return fields;
}

/** The pattern matching every key that starts with `prefix` (glob characters escaped). */
export function prefixPattern(prefix: string): string {
  return `${prefix.replace(/[*?[\]\\]/g, (c) => `\\${c}`)}*`;
}

/** Connects to the Redis at `url` (which must answer) and picks a fresh prefix. */
export async function benchRedis(url: string): Promise<BenchRedis> {
  const redis = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 1, connectTimeout: 5000, retryStrategy: () => null });
  redis.on('error', () => undefined); // Reported through the failing command.
  try {
    await redis.connect();
    await redis.ping();
  } catch (err) {
    redis.disconnect();
    throw new Error(
      `bench: no Redis answers at ${url} (${err instanceof Error ? err.message : String(err)}); ` +
        'start one (deploy/services.sh) or point BENCH_REDIS_URL at one',
    );
  }
  const prefix = `shardcast-bench-${Date.now().toString(36)}-${randomBytes(3).toString('hex')}:`;

  let backing: BackingServer | undefined;
  const pid = Number((await info(redis, 'server')).get('process_id'));
  if (LOOPBACK.has(new URL(url).hostname) && Number.isInteger(pid) && pid > 0) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      if (stat.includes('(redis-server)')) {
        backing = {
          name: 'redis',
          pid,
          commandsProcessed: async () => Number((await info(redis, 'stats')).get('total_commands_processed') ?? NaN),
        };
      }
    } catch {
      // Another machine's or another namespace's process: no CPU reading.
    }
  }
  if (!backing) process.stderr.write(`bench: redis at ${url}: its process is not readable here (pid ${pid}); Redis CPU is not counted\n`);

  let cleaned: Promise<void> | undefined;
  const cleanUp = async (): Promise<void> => {
    const pattern = prefixPattern(prefix);
    let deleted = 0;
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
      cursor = next;
      if (keys.length > 0) deleted += await redis.unlink(...keys);
    } while (cursor !== '0');
    let left = 0;
    cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
      cursor = next;
      left += keys.length;
    } while (cursor !== '0');
    process.stderr.write(`bench: redis: deleted ${deleted} keys under ${prefix}${left > 0 ? `, ${left} left` : ''}\n`);
  };
  return {
    url,
    prefix,
    ...(backing ? { backing } : {}),
    cleanUp() {
      cleaned ??= cleanUp()
        .catch((err: unknown) => {
          process.stderr.write(`bench: redis: could not delete the keys under ${prefix}: ${err instanceof Error ? err.message : String(err)}\n`);
        })
        .finally(() => redis.disconnect());
      return cleaned;
    },
  };
}
