/**
 * One serial queue for everything a service does to its sessions' state: commands
 * and timer steps run one after the other, never interleaved, so game logic needs no
 * locks. Timers are grouped by session so a game can cancel its own; `stop()` cancels
 * them all and waits for the step in hand.
 */
import type { Logger } from 'pino';

/** The serial queue and the timers feeding it. */
export class SerialSteps {
  private tail: Promise<void> = Promise.resolve();
  private readonly timers = new Map<string, Set<NodeJS.Timeout>>();
  private stopped = false;

  constructor(private readonly log: Logger) {}

  /** Runs `step` after every step queued before it; resolves or rejects with it. */
  run(step: () => Promise<void>): Promise<void> {
    const next = this.tail.then(step);
    this.tail = next.catch(() => {});
    return next;
  }

  /**
   * Runs `step` on the queue after `ms`, as a timer of `session`. A step that fails
   * (Postgres down) is logged and run again, 1 s doubling to 10 s, until it succeeds
   * or the session's timers are cancelled: steps must be safe to repeat.
   */
  later(session: string, ms: number, step: () => Promise<void>, attempt = 0): void {
    if (this.stopped) return;
    const set = this.timers.get(session) ?? new Set<NodeJS.Timeout>();
    this.timers.set(session, set);
    const timer = setTimeout(() => {
      set.delete(timer);
      this.run(step).catch((err: unknown) => {
        this.log.warn({ err: (err as Error).message, session, attempt }, 'a timed step failed: running it again');
        this.later(session, Math.min(10_000, 1000 * 2 ** attempt), step, attempt + 1);
      });
    }, ms);
    set.add(timer);
  }

  /** Cancels the pending timers of `session`. */
  cancel(session: string): void {
    for (const t of this.timers.get(session) ?? []) clearTimeout(t);
    this.timers.delete(session);
  }

  /** Cancels every timer and waits for the queued steps. */
  async stop(): Promise<void> {
    this.stopped = true;
    for (const session of [...this.timers.keys()]) this.cancel(session);
    await this.tail;
  }
}
