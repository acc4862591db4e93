/**
 * Several daemon processes on one Redis (or Redis Cluster), for the many-instances
 * end-to-end tests, and a client that follows a session across them: it keeps
 * (epoch, last seq) and, when its socket goes, resumes on another instance.
 */
import { RawClient } from './raw-client.js';
import { startDaemon, type DaemonProcess } from './daemon-process.js';
import type { EventFrame, ServerFrame } from '../../protocol/frames.js';

/** Environment selecting the Redis engine on `url` with a key prefix of its own. */
export function redisEnv(url: string, prefix: string, cluster = false): Record<string, string> {
  return {
    SHARDCAST_REDIS_URL: url,
    SHARDCAST_REDIS_PREFIX: prefix,
    ...(cluster ? { SHARDCAST_REDIS_CLUSTER: 'true' } : {}),
  };
}

/** Starts `n` instances with the same environment (2 shards each). */
export async function startInstances(n: number, env: Record<string, string>): Promise<DaemonProcess[]> {
  return Promise.all(Array.from({ length: n }, () => startDaemon({ SHARDCAST_SHARDS: '2', ...env })));
}

export const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);

/** A participant of one session that survives losing its instance by resuming on another. */
export class Follower {
  client!: RawClient;
  epoch = '';
  last = 0;
  /** Every seq received, in arrival order, across connections. */
  readonly seqs: number[] = [];
  readonly joins: Array<{ rec: boolean; seq: number; ep: string }> = [];
  private seen = 0;

  constructor(readonly session: string, readonly user: string) {}

  /** Connects to `daemon` and joins: from (epoch, last) once it has a position, from `from` or fresh otherwise. */
  async connect(daemon: DaemonProcess, from?: { ep: string; seq: number }): Promise<void> {
    this.client = await RawClient.connect(daemon.ws, { user: this.user });
    this.seen = 0;
    const position = this.epoch !== '' ? { ep: this.epoch, seq: this.last } : from;
    const joined = await this.client.join(this.session, position ?? {});
    if (joined.t !== 'joined') throw new Error(`${this.user}: join refused: ${JSON.stringify(joined)}`);
    this.joins.push({ rec: joined.rec, seq: joined.seq, ep: joined.ep });
    if (this.epoch === '' && position === undefined) {
      this.epoch = joined.ep;
      this.last = joined.seq;
    } else if (this.epoch === '') {
      this.epoch = joined.ep;
    }
    this.collect();
  }

  /** Takes in the events that arrived since the last call. */
  collect(): void {
    const frames = this.client.frames;
    for (; this.seen < frames.length; this.seen++) {
      const f: ServerFrame = frames[this.seen];
      if (f.t === 'ev' && f.s === this.session) {
        const e = f as EventFrame;
        this.seqs.push(e.seq);
        this.epoch = e.ep;
        this.last = e.seq;
      }
    }
  }

  /** Waits until seq `head` arrived (on the current connection). */
  async reach(head: number, timeoutMs = 15_000): Promise<void> {
    if (this.last >= head) return;
    await this.client.until((fs) => fs.some((f) => f.t === 'ev' && f.s === this.session && f.seq >= head), timeoutMs, `${this.user} at seq ${head}`);
    this.collect();
  }
}
