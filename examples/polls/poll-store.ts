/**
 * The polls' Postgres tables (in the service's own schema), where the rules live:
 *
 * - `responses` has one row per (session, poll, user): a vote or a skip (option
 *   null). Its primary key is "vote once per poll", whatever instance or replica
 *   the command came through; its `cid` tells a redelivery (same cid) from a
 *   second vote (another cid).
 * - `daily_votes` counts each user's votes per UTC day (of the gateway's receive
 *   stamp, so a redelivery tomorrow still counts today); the increment is a guarded
 *   upsert that refuses past the limit, in the same transaction as the vote.
 *
 * Tallies are counted from `responses`, so they are right after a restart.
 */
import { openServiceDatabase, type Sql } from '../toolkit/service-database.js';

const DDL = [
  `create table if not exists polls (
     session text not null,
     poll text not null,
     question text not null,
     options jsonb not null,
     opened_at timestamptz not null default now(),
     closed_at timestamptz,
     primary key (session, poll))`,
  `create table if not exists responses (
     session text not null,
     poll text not null,
     "user" text not null,
     cid text not null,
     option integer,
     day date not null,
     received_at_us bigint not null,
     primary key (session, poll, "user"),
     foreign key (session, poll) references polls (session, poll))`,
  `create table if not exists daily_votes (
     "user" text not null,
     day date not null,
     votes integer not null,
     primary key ("user", day))`,
];

/** A poll as stored. */
export interface Poll {
  poll: string;
  question: string;
  options: string[];
  open: boolean;
}

/** Outcome of recording a response. */
export type Recorded = 'recorded' | 'redelivered' | 'already_responded' | 'daily_limit';

/** The polls' storage. */
export class PollStore {
  private constructor(readonly sql: Sql) {}

  static async open(url: string, schema: string): Promise<PollStore> {
    return new PollStore(await openServiceDatabase(url, schema, DDL));
  }

  /** Creates a poll; false when one with that id exists in the session. */
  async create(session: string, poll: string, question: string, options: string[]): Promise<boolean> {
    const rows = await this.sql`insert into polls (session, poll, question, options) values (${session}, ${poll}, ${question}, ${this.sql.json(options)}) on conflict do nothing returning poll`;
    return rows.length === 1;
  }

  async get(session: string, poll: string): Promise<Poll | undefined> {
    const [row] = await this.sql<{ poll: string; question: string; options: string[]; closed_at: Date | null }[]>`
      select poll, question, options, closed_at from polls where session = ${session} and poll = ${poll}`;
    return row && { poll: row.poll, question: row.question, options: row.options, open: row.closed_at === null };
  }

  async close(session: string, poll: string): Promise<void> {
    await this.sql`update polls set closed_at = now() where session = ${session} and poll = ${poll} and closed_at is null`;
  }

  /**
   * Records a vote (option) or a skip (null) of `user` in one transaction: once per
   * poll, and a vote only while the user's votes of `day` are under `dailyLimit`.
   */
  async respond(r: { session: string; poll: string; user: string; cid: string; option: number | null; receivedAtUs: number }, dailyLimit: number): Promise<Recorded> {
    const day = new Date(Math.floor(r.receivedAtUs / 1000)).toISOString().slice(0, 10);
    return this.sql.begin(async (tx): Promise<Recorded> => {
      const inserted = await tx`
        insert into responses (session, poll, "user", cid, option, day, received_at_us)
        values (${r.session}, ${r.poll}, ${r.user}, ${r.cid}, ${r.option}, ${day}, ${r.receivedAtUs})
        on conflict do nothing returning 1`;
      if (inserted.length === 0) {
        const [first] = await tx<{ cid: string }[]>`select cid from responses where session = ${r.session} and poll = ${r.poll} and "user" = ${r.user}`;
        return first?.cid === r.cid ? 'redelivered' : 'already_responded';
      }
      if (r.option === null) return 'recorded';
      const counted = await tx`
        insert into daily_votes ("user", day, votes) values (${r.user}, ${day}, 1)
        on conflict ("user", day) do update set votes = daily_votes.votes + 1 where daily_votes.votes < ${dailyLimit}
        returning votes`;
      if (counted.length === 0) {
        // Undo the response: the transaction rolls back when this callback throws.
        throw new DailyLimitReached();
      }
      return 'recorded';
    }).catch((err: unknown) => {
      if (err instanceof DailyLimitReached) return 'daily_limit' as const;
      throw err;
    });
  }

  /** Votes per option (by index) and skips of a poll. */
  async tally(session: string, poll: string, options: number): Promise<{ counts: number[]; skips: number }> {
    const rows = await this.sql<{ option: number | null; n: string }[]>`
      select option, count(*)::text as n from responses where session = ${session} and poll = ${poll} group by option`;
    const counts = new Array<number>(options).fill(0);
    let skips = 0;
    for (const row of rows) {
      if (row.option === null) skips = Number(row.n);
      else if (row.option < options) counts[row.option] = Number(row.n);
    }
    return { counts, skips };
  }

  /** The user's responses in a session: poll → option (null: skipped). */
  async responsesOf(session: string, user: string): Promise<Record<string, number | null>> {
    const rows = await this.sql<{ poll: string; option: number | null }[]>`
      select poll, option from responses where session = ${session} and "user" = ${user} order by poll`;
    return Object.fromEntries(rows.map((r) => [r.poll, r.option]));
  }

  async end(): Promise<void> {
    await this.sql.end({ timeout: 5 });
  }
}

class DailyLimitReached extends Error {}
