/**
 * The connections one instance keeps to Redis (standalone or Cluster): one for
 * commands (scripts, reads) and one for subscriptions, so a resubscription or a
 * flood of messages never stalls publishing. Both reconnect on their own with a
 * short, jittered, capped backoff; while the command connection is down, commands
 * fail at once (no offline queue, nothing resent after a reconnect), so a publish
 * is answered "unavailable" and retried by its upstream with the same event id
 * rather than stored twice or acknowledged unstored. Each outage is logged once
 * when it starts and once when it ends.
 */
import { Cluster, Redis, type ClusterNode, type RedisOptions } from 'ioredis';
import type { Logger } from '../log.js';

/** Where Redis is. */
export interface RedisTarget {
  /** A redis:// URL, or (cluster) a comma-separated list of nodes (`host:port` or redis:// URLs). */
  url: string;
  cluster: boolean;
}

/** The two clients of an instance. */
export interface RedisLink {
  readonly cluster: boolean;
  readonly command: Redis | Cluster;
  /** Subscriber client (sharded subscriptions on a cluster). */
  readonly subscriber: Redis | Cluster;
  /** True while both clients are connected. */
  connected(): boolean;
  /** What is down, when not connected. */
  detail(): string | undefined;
  /** Resolves once both are connected, or rejects after `timeoutMs` naming what failed. */
  ready(timeoutMs: number): Promise<void>;
  /** Drops the subscriber connection(s) and makes them anew (a deaf subscription). */
  resubscribe(): void;
  close(): Promise<void>;
}

/** Reconnect delays: 50 ms doubling to a 2 s cap, ±25 % jitter, so a Redis restart is rejoined quickly without a stampede. */
function retryDelay(times: number): number {
  const base = Math.min(2000, 50 * 2 ** Math.min(times, 6));
  return Math.round(base * (0.75 + Math.random() * 0.5));
}

/** The URL(s) with any password replaced, for messages and logs. */
export function redacted(url: string): string {
  return url.replace(/\/\/([^:@/]*):[^@/]*@/g, '//$1:…@');
}

/** Parses the cluster node list of SHARDCAST_REDIS_URL. */
export function clusterNodes(url: string): ClusterNode[] {
  return url.split(',').map((raw) => {
    const item = raw.trim();
    const parsed = new URL(item.includes('://') ? item : `redis://${item}`);
    return { host: parsed.hostname, port: parsed.port === '' ? 6379 : Number(parsed.port) };
  });
}

/** Options shared by every connection; `name` shows in CLIENT LIST. */
function options(name: string, url?: string): RedisOptions {
  const common: RedisOptions = {
    connectionName: name,
    // Commands of one turn (a batch of publishes, the joins of a turn) go in one write.
    enableAutoPipelining: true,
    // RESP2: replies of scripts and pub/sub pushes as ioredis v5 knew them.
    protocol: 2,
    enableOfflineQueue: false,
    autoResendUnfulfilledCommands: false,
    maxRetriesPerRequest: 0,
    retryStrategy: retryDelay,
    lazyConnect: true,
  };
  if (url === undefined) return common;
  const parsed = new URL(url);
  if (parsed.username !== '') common.username = decodeURIComponent(parsed.username);
  if (parsed.password !== '') common.password = decodeURIComponent(parsed.password);
  return common;
}

/** Creates (not yet connected: see `ready`) the clients of an instance. */
export function connectRedis(target: RedisTarget, instanceId: string, log: Logger): RedisLink {
  const clients: Array<{ role: string; client: Redis | Cluster }> = [];
  const make = (role: string, sharded: boolean): Redis | Cluster => {
    const name = `shardcast-${instanceId}-${role}`;
    let client: Redis | Cluster;
    if (target.cluster) {
      // Credentials, if any, come from the first node's URL.
      const first = target.url.split(',')[0].trim();
      const { retryStrategy: _r, enableOfflineQueue: _o, ...redisOptions } = options(name, first.includes('://') ? first : `redis://${first}`);
      client = new Cluster(clusterNodes(target.url), {
        redisOptions,
        enableOfflineQueue: false,
        clusterRetryStrategy: retryDelay,
        lazyConnect: true,
        shardedSubscribers: sharded,
        slotsRefreshTimeout: 2000,
      });
    } else {
      client = new Redis(target.url, options(name, target.url));
    }
    clients.push({ role, client });
    let downSince = 0;
    let everReady = false;
    client.on('ready', () => {
      if (downSince > 0) log.info({ redis: role, downMs: Date.now() - downSince }, 'redis reachable again');
      downSince = 0;
      everReady = true;
    });
    const down = (err?: unknown) => {
      if (downSince > 0 || !everReady || closing) return;
      downSince = Date.now();
      log.warn({ redis: role, err }, 'redis unreachable: publishing is refused until it is back');
    };
    client.on('close', () => down());
    client.on('end', () => down());
    // An error event without a listener is printed by ioredis on every retry; the
    // outage is logged once above.
    client.on('error', (err: unknown) => {
      if (everReady) down(err);
    });
    return client;
  };
  let closing = false;
  const command = make('command', false);
  const subscriber = make('subscriber', true);
  const isUp = (c: Redis | Cluster) => c.status === 'ready';
  return {
    cluster: target.cluster,
    command,
    subscriber,
    connected: () => isUp(command) && isUp(subscriber),
    detail() {
      const down = clients.filter((c) => !isUp(c.client)).map((c) => `${c.role} ${c.client.status}`);
      return down.length === 0 ? undefined : `redis: ${down.join(', ')}`;
    },
    async ready(timeoutMs) {
      // Waits for 'ready' rather than connect()'s promise, which rejects at the first
      // refused attempt although the retry strategy goes on: a Redis that comes up
      // a few seconds after the daemon (a pod starting with its backend) is fine.
      const lastError = new Map<string, string>();
      const waits = clients.map(
        ({ role, client }) =>
          new Promise<void>((resolve) => {
            if (client.status === 'ready') return resolve();
            client.once('ready', () => resolve());
            client.on('error', (err: Error) => lastError.set(role, err.message));
            client.connect().catch((err: Error) => lastError.set(role, err.message));
          }),
      );
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(() => {
          const why = [...lastError].map(([role, message]) => `${role}: ${message}`).join('; ');
          reject(new Error(`redis at ${redacted(target.url)} did not answer within ${timeoutMs} ms (SHARDCAST_REDIS_URL)${why === '' ? '' : `: ${why}`}`));
        }, timeoutMs);
      });
      try {
        await Promise.race([Promise.all(waits), timeout]);
      } finally {
        clearTimeout(timer);
      }
    },
    resubscribe() {
      // Dropping the socket makes ioredis reconnect and restore every (s)subscription.
      subscriber.disconnect(true);
    },
    async close() {
      closing = true;
      await Promise.all(
        clients.map(async ({ client }) => {
          try {
            await client.quit();
          } catch {
            client.disconnect();
          }
        }),
      );
    },
  };
}
