/**
 * Several daemon processes on one Redis (or Redis Cluster), for the many-instances
 * end-to-end tests, and a client that follows a session across them: it keeps
 * (epoch, last seq) and, when its socket goes, resumes on another instance.
 */
import type { Test } from 'tap';
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
  const started = await Promise.allSettled(Array.from({ length: n }, () => startDaemon({ SHARDCAST_SHARDS: '2', ...env })));
  const failed = started.find((s): s is PromiseRejectedResult => s.status === 'rejected');
  if (failed === undefined) return started.map((s) => (s as PromiseFulfilledResult<DaemonProcess>).value);
  // The caller gets no handle on the ones that did start: stop them here.
  await Promise.all(started.map((s) => (s.status === 'fulfilled' ? s.value.stop() : undefined)));
  throw failed.reason;
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

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** How a scenario publishes a set of events (in order; one per session here). */
export type Publish = (events: Array<{ session: string; type: string; data: unknown; id: string }>) => Promise<void>;

/**
 * The many-instances fan-out scenario: `clients` followers spread over the
 * instances and over `sessions` join from seq 0 while `total` events per session
 * are published through the first instance; each must end with 1..total once, in
 * order. Joins run 30 at a time, so most happen while events are being published.
 */
export async function fanOut(t: Test, instances: DaemonProcess[], sessions: string[], clients: number, total: number, publisher?: Publish): Promise<void> {
  const [a] = instances;
  const publish: Publish =
    publisher ??
    (async (events) => {
      const r = await a.publish(events.length === 1 ? events[0] : { events });
      if (r.status !== 200) throw new Error(`publish: ${r.status} ${JSON.stringify(r.body)}`);
    });
  const epochs = new Map<string, string>();
  await publish(sessions.map((s) => ({ session: s, type: 'q', data: 1, id: 'e1' })));
  for (const s of sessions) {
    // The first event's epoch, read by a throwaway fresh join once it arrived.
    for (let i = 0; ; i++) {
      const probe = await RawClient.connect(a.ws, { user: 'probe' });
      const joined = await probe.join(s);
      await probe.close();
      if (joined.t === 'joined' && joined.seq >= 1) {
        epochs.set(s, joined.ep);
        break;
      }
      if (i >= 200) throw new Error(`${s}: the first event never arrived: ${JSON.stringify(joined)}`);
      await sleep(25);
    }
  }
  const followers = range(1, clients).map((i) => new Follower(sessions[i % sessions.length], `p${i}`));
  let published = 1;
  const publishing = (async () => {
    for (let n = 2; n <= total; n++) {
      await publish(sessions.map((s) => ({ session: s, type: 'q', data: n, id: `e${n}` })));
      published = n;
      await sleep(8);
    }
  })();
  let joinedMidStream = 0;
  for (let i = 0; i < followers.length; i += 30) {
    await Promise.all(followers.slice(i, i + 30).map((f, j) => f.connect(instances[(i + j) % instances.length], { ep: epochs.get(f.session)!, seq: 0 })));
    if (published < total) joinedMidStream += Math.min(30, followers.length - i);
  }
  await publishing;
  t.ok(joinedMidStream >= clients / 3, `${joinedMidStream} of ${clients} clients joined while events were being published`);
  await Promise.all(followers.map((f) => f.reach(total)));
  await sleep(200); // a duplicate would arrive now
  for (const f of followers) f.collect();
  const wrong = followers.filter((f) => f.seqs.join() !== range(1, total).join());
  t.same(wrong.map((f) => `${f.user} (${f.session}): ${f.seqs.length} events`), [], `every client got seqs 1..${total} exactly once, in order`);
  t.ok(followers.every((f) => f.joins[0].rec), 'every join from seq 0 was recovered from history');
  await Promise.all(followers.map((f) => f.client.close()));
}
