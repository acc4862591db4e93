/**
 * The contest's Postgres tables (in the service's own schema): each contest, each
 * round's outcome with the winning answer's time, and the final standings. Writes
 * are idempotent (primary keys, `on conflict do nothing`).
 */
import { openServiceDatabase, type Sql } from '../toolkit/service-database.js';

const DDL = [
  `create table if not exists contests (
     id text primary key,
     session text not null,
     started_at timestamptz not null default now(),
     ended_at timestamptz)`,
  `create table if not exists rounds (
     contest_id text not null references contests(id),
     n integer not null,
     winner text,
     time_us bigint,
     primary key (contest_id, n))`,
  `create table if not exists standings (
     contest_id text not null references contests(id),
     "user" text not null,
     name text not null,
     wins integer not null,
     rank integer not null,
     primary key (contest_id, "user"))`,
];

/** A line of the standings. */
export interface Standing {
  user: string;
  name: string;
  wins: number;
  rank: number;
}

/** The contest's storage. */
export class ContestStore {
  private constructor(readonly sql: Sql) {}

  /** Opens the pool and creates the tables when missing. */
  static async open(url: string, schema: string): Promise<ContestStore> {
    return new ContestStore(await openServiceDatabase(url, schema, DDL));
  }

  async started(id: string, session: string): Promise<void> {
    await this.sql`insert into contests (id, session) values (${id}, ${session}) on conflict do nothing`;
  }

  async roundEnded(id: string, n: number, winner: string | null, timeUs: number | null): Promise<void> {
    await this.sql`insert into rounds (contest_id, n, winner, time_us) values (${id}, ${n}, ${winner}, ${timeUs}) on conflict do nothing`;
  }

  /** Stores the final standings and marks the contest ended, in one transaction. */
  async ended(id: string, standings: Standing[]): Promise<void> {
    await this.sql.begin(async (tx) => {
      if (standings.length > 0) {
        const rows = standings.map((s) => ({ contest_id: id, user: s.user, name: s.name, wins: s.wins, rank: s.rank }));
        await tx`insert into standings ${tx(rows as never)} on conflict do nothing`;
      }
      await tx`update contests set ended_at = now() where id = ${id} and ended_at is null`;
    });
  }

  async close(): Promise<void> {
    await this.sql.end({ timeout: 5 });
  }
}
