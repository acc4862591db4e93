/**
 * Retention of the Postgres command journal: without it the journal grows by every
 * answer, vote and chat message forever. Every minute, each instance deletes
 * commands recorded more than the retention ago — with the RabbitMQ relay, only
 * those the relay has delivered (at or below its cursor), so an outage longer than
 * the retention never loses a command before it went upstream.
 *
 * Deletes go in batches of BATCH rows by position (the primary key), a few batches
 * per round, so a large backlog is worked off without one long transaction holding
 * locks the writers need. Several instances pruning at once only repeat deletes of
 * rows already gone. A retry of a command after its row was deleted is journaled
 * (and relayed) again: retention must be far longer than any client retries (days,
 * not minutes).
 */
import type { Logger } from '../log.js';
import { DEFAULT_SCHEMA, quoteSchema, type Sql } from './migrations.js';

/** Rows one delete removes at most. */
export const BATCH = 10_000;
/** Batches per round at most (a backlog is worked off over several rounds). */
const MAX_BATCHES_PER_ROUND = 10;
const ROUND_MS = 60_000;

/** Settings of the retention loop. */
export interface JournalRetentionOptions {
  sql: Sql;
  schema?: string;
  /** Commands older than this (by recorded_at) are deleted. */
  retentionMs: number;
  /** The relay whose cursor bounds what may go (relay_cursors.name); none: by age only. */
  relay?: string;
  log?: Logger;
  /** Round period (tests shorten it). */
  roundMs?: number;
}

/** Deletes at most BATCH expired commands (see the header); resolves with how many went. */
export async function pruneJournal(opts: Pick<JournalRetentionOptions, 'sql' | 'schema' | 'retentionMs' | 'relay'>): Promise<number> {
  const { sql } = opts;
  const s = quoteSchema(opts.schema ?? DEFAULT_SCHEMA);
  const journal = sql.unsafe(`${s}.command_journal`);
  const cursors = sql.unsafe(`${s}.relay_cursors`);
  const seconds = Math.floor(opts.retentionMs / 1000);
  const rows =
    opts.relay === undefined
      ? await sql`
          delete from ${journal} where pos in (
            select pos from ${journal}
            where recorded_at < now() - make_interval(secs => ${seconds})
            order by pos limit ${BATCH})`
      : await sql`
          delete from ${journal} where pos in (
            select pos from ${journal}
            where recorded_at < now() - make_interval(secs => ${seconds})
              and pos <= coalesce((select pos from ${cursors} where name = ${opts.relay}), 0)
            order by pos limit ${BATCH})`;
  return rows.count;
}

/** The retention loop of one instance: start() once the journal is migrated, stop() before the client ends. */
export class JournalRetention {
  private timer: NodeJS.Timeout | undefined;
  private round: Promise<void> | undefined;
  /** Commands deleted since start. */
  deleted = 0;

  constructor(private readonly opts: JournalRetentionOptions) {}

  start(): void {
    if (this.timer !== undefined) return;
    this.timer = setInterval(() => void this.runRound(), this.opts.roundMs ?? ROUND_MS);
    this.timer.unref();
  }

  /** One round now (rounds never overlap); never rejects. */
  runRound(): Promise<void> {
    this.round ??= this.prune().finally(() => {
      this.round = undefined;
    });
    return this.round;
  }

  /** Stops the timer and waits for a round under way, so the Postgres client can end. */
  async stop(): Promise<void> {
    clearInterval(this.timer);
    this.timer = undefined;
    await this.round;
  }

  private async prune(): Promise<void> {
    let total = 0;
    try {
      for (let i = 0; i < MAX_BATCHES_PER_ROUND; i++) {
        const n = await pruneJournal(this.opts);
        total += n;
        if (n < BATCH || this.timer === undefined) break;
      }
    } catch (err) {
      this.opts.log?.warn({ err }, 'pruning the command journal failed; retried next round');
    }
    this.deleted += total;
    if (total > 0) this.opts.log?.info({ deleted: total, retentionMs: this.opts.retentionMs }, 'pruned the command journal');
  }
}
