/**
 * The command journal's head position for /metrics, read at scrape time. A scrape
 * never waits long for it: past `timeoutMs` (Postgres slow or down) the scrape goes
 * on without it (the head and backlog gauges are left out; the rest is reported).
 * At most one read is in flight: scrapes during an outage share the pending read
 * instead of piling up queries on a pool that cannot connect. A failure is logged
 * once until a read succeeds again (the journal's own writes log the outage too).
 */
import type { Logger } from 'pino';
import type { CommandJournal } from '../engine/command-journal.js';

/** Reads the journal head with a bound on the wait; see the header comment. */
export class JournalHeadProbe {
  private inFlight: Promise<number | undefined> | undefined;
  private failing = false;

  constructor(
    private readonly journal: Pick<CommandJournal, 'head'>,
    private readonly timeoutMs: number,
    private readonly log?: Pick<Logger, 'warn'>,
  ) {}

  /** The head, or undefined when the journal failed or did not answer within the timeout. */
  async read(): Promise<number | undefined> {
    this.inFlight ??= this.journal.head().then(
      (head) => {
        this.inFlight = undefined;
        this.failing = false;
        return head;
      },
      (err: unknown) => {
        this.inFlight = undefined;
        if (!this.failing) this.log?.warn({ err }, 'reading the command journal head for /metrics failed; the journal gauges are left out of this scrape');
        this.failing = true;
        return undefined;
      },
    );
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<undefined>((resolve) => {
      timer = setTimeout(() => resolve(undefined), this.timeoutMs);
      timer.unref();
    });
    try {
      return await Promise.race([this.inFlight, late]);
    } finally {
      clearTimeout(timer);
    }
  }
}
