/**
 * Relays journaled commands upstream, as its own service with its own cursor.
 * Owned by the primary thread, which owns the command journal; the sink's
 * connection (amqp-command-sink.ts) lives there too.
 *
 * The loop: read the journal after the cursor, deliver the batch to the sink, save
 * the cursor, repeat. When the journal has nothing new it waits `idleMs`, or less
 * when `notify()` says a command was recorded.
 *
 * What it guarantees:
 * - Journal order: entries are delivered in increasing positions; a batch goes only
 *   after the sink accepted the previous one.
 * - No skips: the cursor passes an entry only once the sink accepted it. A failed
 *   read or delivery is retried from the same cursor with jittered exponential
 *   backoff (`retryMs`), until it succeeds or stop() is called. The journal's
 *   visibility rule (command-journal.ts) makes paging by position skip-free; only
 *   a bounded journal's capacity can lose commands, if the sink stays down so long
 *   that the journal evicts them; a caller waiting for one (delivered()) is told.
 * - At least once: the cursor is saved after each accepted batch. A crash (or a
 *   failed save) between the sink's acceptance and the save redelivers that batch
 *   on the next start, so upstream must dedupe on (session, user, cid), which every
 *   entry carries. A retried batch may also be longer than the failed one (it is
 *   read again).
 *
 * Timers: at most one at a time (the idle wait or a backoff), unref'd so it never
 * keeps the process alive, cleared by stop().
 */
import type { Logger } from '../log.js';
import type { CommandInput, CommandJournal, JournalEntry } from '../engine/command-journal.js';

/** Where relayed commands go. */
export interface CommandSink {
  /**
   * Delivers entries, in the given order. Resolving means delivered: durably
   * accepted by the upstream side (e.g. every message confirmed by the broker), so
   * the relay may move its cursor past them. Rejecting means nothing may be assumed
   * delivered; the relay sends them again. Bound your own calls with a timeout: the
   * relay waits for a pending delivery before it stops.
   */
  deliver(entries: JournalEntry[]): Promise<void>;
}

/** Where the relay keeps its cursor (the last position the sink accepted) across restarts. */
export interface CursorStore {
  /** The saved cursor (0 when none was saved: relay from the journal's start). */
  load(): Promise<number>;
  /** Saves the cursor; the relay calls it with increasing positions. */
  save(pos: number): Promise<void>;
}

/** A cursor kept in this process's memory: survives relay restarts, not process restarts. */
export class MemoryCursorStore implements CursorStore {
  constructor(private pos = 0) {}

  /** The saved cursor. */
  async load(): Promise<number> {
    return this.pos;
  }

  /** Saves the cursor. */
  async save(pos: number): Promise<void> {
    this.pos = pos;
  }
}

/** Settings of the relay. */
export interface CommandRelayOptions {
  /** Most entries per delivery. */
  batch: number;
  /** Wait when the journal has nothing new (notify() cuts it short). */
  idleMs: number;
  /** Backoff after failures: the first retry waits about `min`, doubling up to `max`. */
  retryMs: { min: number; max: number };
  log: Logger;
  /** Where the cursor is kept; a fresh MemoryCursorStore when absent. */
  cursor?: CursorStore;
  /** Random source of the backoff jitter, in [0, 1) (Math.random by default). */
  random?: () => number;
}

/**
 * Delay before retry number `attempt` (1-based): the cap doubles from `min` up to
 * `max` and the delay is jittered into [cap/2, cap], so relays that failed together
 * do not retry in lockstep.
 */
export function backoffDelay(attempt: number, retryMs: { min: number; max: number }, random: () => number = Math.random): number {
  const cap = Math.min(retryMs.max, retryMs.min * 2 ** Math.min(Math.max(attempt - 1, 0), 30));
  return Math.round(cap / 2 + random() * (cap / 2));
}

interface Waiter {
  pos: number;
  resolve(): void;
  reject(err: Error): void;
  timer: NodeJS.Timeout;
}

interface Sleep {
  timer: NodeJS.Timeout;
  wake(): void;
  /** Whether notify() ends it: the idle wait yes, a backoff no (it would hammer a failing sink). */
  wakeOnNotify: boolean;
}

/** Relays the journal to a sink; see the header comment. */
export class CommandRelay {
  private readonly store: CursorStore;
  private readonly random: () => number;
  private pos = 0;
  private loop: Promise<void> | undefined;
  private stopping = false;
  /** Set by notify(): a record may have landed after the last read began. */
  private notified = false;
  private sleep: Sleep | undefined;
  /** Callers waiting for a position to be delivered (see delivered()). */
  private readonly waiters = new Set<Waiter>();

  constructor(
    private readonly journal: CommandJournal,
    private readonly sink: CommandSink,
    private readonly opts: CommandRelayOptions,
  ) {
    const { batch, idleMs, retryMs } = opts;
    if (!Number.isSafeInteger(batch) || batch < 1) throw new RangeError(`command relay batch must be an integer ≥ 1, got ${batch}`);
    if (!Number.isSafeInteger(idleMs) || idleMs < 1) throw new RangeError(`command relay idleMs must be an integer ≥ 1, got ${idleMs}`);
    if (!Number.isSafeInteger(retryMs.min) || retryMs.min < 1 || !Number.isSafeInteger(retryMs.max) || retryMs.max < retryMs.min) {
      throw new RangeError(`command relay retryMs must be integers with 1 ≤ min ≤ max, got ${JSON.stringify(retryMs)}`);
    }
    this.store = opts.cursor ?? new MemoryCursorStore();
    this.random = opts.random ?? Math.random;
  }

  /** True while the relay loop runs. */
  get running(): boolean {
    return this.loop !== undefined;
  }

  /** The last position the sink accepted (the loaded cursor until the first delivery). */
  get cursor(): number {
    return this.pos;
  }

  /** Starts relaying from the saved cursor; no-op while running (or until a stop() has resolved). */
  start(): void {
    if (this.loop) return;
    this.stopping = false;
    this.loop = this.run()
      .catch((err: unknown) => this.opts.log.error({ err }, 'command relay stopped by an unexpected error; restart it'))
      .finally(() => {
        this.loop = undefined;
      });
  }

  /** Tells the relay a command was recorded: it reads now instead of after its idle wait. */
  notify(): void {
    this.notified = true;
    if (this.sleep?.wakeOnNotify) this.sleep.wake();
  }

  /** Stops relaying: ends any wait at once, lets a pending read or delivery settle (saving its cursor), then resolves. */
  async stop(): Promise<void> {
    this.stopping = true;
    this.sleep?.wake();
    await this.loop;
    for (const w of this.waiters) w.reject(new Error('the command relay stopped'));
    this.waiters.clear();
  }

  private async run(): Promise<void> {
    let failures = 0;
    for (;;) {
      if (this.stopping) return;
      try {
        this.pos = await this.store.load();
        break;
      } catch (err) {
        const delay = backoffDelay(++failures, this.opts.retryMs, this.random);
        this.opts.log.error({ err, failures, retryInMs: delay }, 'command relay cannot load its cursor; retrying');
        await this.pause(delay, false);
      }
    }
    failures = 0;
    while (!this.stopping) {
      this.notified = false;
      let entries: JournalEntry[];
      try {
        entries = await this.journal.read(this.pos, this.opts.batch);
      } catch (err) {
        const delay = backoffDelay(++failures, this.opts.retryMs, this.random);
        this.opts.log.error({ err, cursor: this.pos, failures, retryInMs: delay }, 'reading the command journal failed; retrying from the same cursor');
        await this.pause(delay, false);
        continue;
      }
      if (entries.length === 0) {
        failures = 0;
        if (!this.notified) await this.pause(this.opts.idleMs, true);
        continue;
      }
      const broken = this.outOfOrder(entries);
      if (broken !== undefined) {
        // Delivering would either repeat forever or break journal order upstream.
        const delay = backoffDelay(++failures, this.opts.retryMs, this.random);
        this.opts.log.error({ cursor: this.pos, broken, retryInMs: delay }, 'the command journal returned entries out of order or at or below the cursor (journal contract broken); not delivering them');
        await this.pause(delay, false);
        continue;
      }
      try {
        await this.sink.deliver(entries);
      } catch (err) {
        const delay = backoffDelay(++failures, this.opts.retryMs, this.random);
        this.opts.log.warn({ err, cursor: this.pos, entries: entries.length, failures, retryInMs: delay }, 'command delivery failed; retrying from the same cursor');
        await this.pause(delay, false);
        continue;
      }
      failures = 0;
      this.pos = entries[entries.length - 1].pos;
      this.journal.taken(this.pos);
      this.settleWaiters(entries);
      try {
        await this.store.save(this.pos);
      } catch (err) {
        // Relaying goes on from the cursor in memory: a store outage only widens
        // what a restart would redeliver.
        this.opts.log.error({ err, cursor: this.pos }, 'saving the command relay cursor failed; a restart redelivers from the last saved cursor');
      }
    }
  }

  /**
   * Resolves once the sink accepted the entry at `pos` (or a later one): a caller
   * that acks a command only when it is upstream (no durable journal) waits here.
   * Rejects with CommandSkipped when the relay moved past `pos` without it (the
   * memory journal pushed it out unread), after `timeoutMs`, or when the relay stops
   * first. A position already behind the cursor resolves at once: a command pushed
   * out unread loses its outcome with it (memory-command-journal.ts), so nobody is
   * handed such a position afterwards.
   */
  delivered(pos: number, timeoutMs: number): Promise<void> {
    if (this.pos >= pos) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const waiter: Waiter = {
        pos,
        resolve: () => {
          clearTimeout(waiter.timer);
          resolve();
        },
        reject: (err) => {
          clearTimeout(waiter.timer);
          reject(err);
        },
        timer: setTimeout(() => {
          this.waiters.delete(waiter);
          reject(new Error(`command not relayed within ${timeoutMs} ms`));
        }, timeoutMs),
      };
      waiter.timer.unref();
      this.waiters.add(waiter);
    });
  }

  /** Settles the waiters the cursor passed: delivered with `batch`, or skipped. */
  private settleWaiters(batch: readonly JournalEntry[]): void {
    if (this.waiters.size === 0) return;
    const delivered = new Set(batch.map((e) => e.pos));
    for (const w of this.waiters) {
      if (w.pos > this.pos) continue;
      this.waiters.delete(w);
      if (delivered.has(w.pos)) w.resolve();
      else w.reject(new CommandSkipped(w.pos));
    }
  }

  /** The first position breaking increasing order above the cursor, if any. */
  private outOfOrder(entries: JournalEntry[]): number | undefined {
    let prev = this.pos;
    for (const e of entries) {
      if (!(e.pos > prev)) return e.pos;
      prev = e.pos;
    }
    return undefined;
  }

  /** Waits `ms`, or less when stop() (or notify(), if `wakeOnNotify`) comes. */
  private pause(ms: number, wakeOnNotify: boolean): Promise<void> {
    if (this.stopping) return Promise.resolve();
    return new Promise((resolve) => {
      const wake = () => {
        clearTimeout(sleep.timer);
        if (this.sleep === sleep) this.sleep = undefined;
        resolve();
      };
      const sleep: Sleep = { timer: setTimeout(wake, ms), wake, wakeOnNotify };
      sleep.timer.unref();
      this.sleep = sleep;
    });
  }
}

/** The relay moved past a position without delivering it: the journal no longer had it. */
export class CommandSkipped extends Error {
  constructor(readonly pos: number) {
    super(`command at position ${pos} left the journal before it was relayed`);
  }
}

/**
 * Resolves once `cmd`, recorded at `pos`, went through `relay`: what an ack waits
 * for when the journal is not durable. A command the memory journal pushed out
 * before the relay read it (RabbitMQ down and the byte bound reached) is skipped
 * (CommandSkipped); it is then recorded again, its outcome having gone with it, and
 * the new record waited for. Rejects once `timeoutMs` passed (the client retries
 * with the same cid).
 */
export async function relayedUpstream(journal: CommandJournal, relay: CommandRelay, cmd: CommandInput, pos: number, timeoutMs: number): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    try {
      await relay.delivered(pos, Math.max(1, Math.ceil(deadline - performance.now())));
      return;
    } catch (err) {
      if (!(err instanceof CommandSkipped)) throw err;
    }
    pos = (await journal.record(cmd)).pos;
    relay.notify();
  }
}
