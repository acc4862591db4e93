/**
 * The cluster view (primary thread, Redis engine only): each instance writes its
 * entry — id, admin address, version, start time, last heartbeat — into one Redis
 * hash (`<prefix>admin:instances`, one key so it works on Redis Cluster too) every
 * HEARTBEAT_MS, and removes it when it stops. Readers skip and delete entries whose
 * heartbeat is older than EXPIRY_MS (an instance that died without cleaning up).
 * `shardcast-admin status --cluster` lists them through any instance.
 */
import type { Cluster, Redis } from 'ioredis';
import type { Logger } from 'pino';

/** How often an instance renews its entry, and when an entry counts as gone. */
export const HEARTBEAT_MS = 5000;
export const EXPIRY_MS = 15_000;

/** One registered instance. */
export interface InstanceInfo {
  instance: string;
  /** host:port of its admin listener, as it bound it. */
  admin: string;
  version: string;
  startedAt: string;
  heartbeatAt: string;
  draining: boolean;
}

/** This instance's entry in the registry; see the header comment. */
export class ClusterRegistry {
  private timer: NodeJS.Timeout | undefined;
  private readonly key: string;

  constructor(
    private readonly redis: Redis | Cluster,
    prefix: string,
    private readonly self: () => Omit<InstanceInfo, 'heartbeatAt'>,
    private readonly log: Logger,
  ) {
    this.key = `${prefix}admin:instances`;
  }

  /** Registers now and every HEARTBEAT_MS until stop(). */
  start(): void {
    void this.beat();
    this.timer = setInterval(() => void this.beat(), HEARTBEAT_MS);
    this.timer.unref();
  }

  private async beat(): Promise<void> {
    const entry: InstanceInfo = { ...this.self(), heartbeatAt: new Date().toISOString() };
    try {
      await this.redis.hset(this.key, entry.instance, JSON.stringify(entry));
    } catch (err) {
      this.log.warn({ err }, 'cluster registry heartbeat failed (retrying on the next one)');
    }
  }

  /** Every instance with a fresh heartbeat, oldest first; stale entries are removed. */
  async list(): Promise<InstanceInfo[]> {
    const raw = await this.redis.hgetall(this.key);
    const now = Date.now();
    const live: InstanceInfo[] = [];
    const stale: string[] = [];
    for (const [id, text] of Object.entries(raw)) {
      const entry = parseEntry(text);
      if (entry === undefined || now - Date.parse(entry.heartbeatAt) > EXPIRY_MS) stale.push(id);
      else live.push(entry);
    }
    if (stale.length > 0) await this.redis.hdel(this.key, ...stale).catch(() => 0);
    return live.sort((a, b) => a.startedAt.localeCompare(b.startedAt));
  }

  /** Stops the heartbeat and removes this instance's entry. */
  async stop(): Promise<void> {
    clearInterval(this.timer);
    this.timer = undefined;
    await this.redis.hdel(this.key, this.self().instance).catch((err: unknown) => {
      this.log.warn({ err }, 'cluster registry entry not removed (it expires by itself)');
    });
  }
}

function parseEntry(text: string): InstanceInfo | undefined {
  try {
    const v = JSON.parse(text) as Record<string, unknown>;
    const strings = ['instance', 'admin', 'version', 'startedAt', 'heartbeatAt'] as const;
    if (strings.some((k) => typeof v[k] !== 'string') || Number.isNaN(Date.parse(v.heartbeatAt as string))) return undefined;
    return { instance: v.instance as string, admin: v.admin as string, version: v.version as string, startedAt: v.startedAt as string, heartbeatAt: v.heartbeatAt as string, draining: v.draining === true };
  } catch {
    return undefined;
  }
}
