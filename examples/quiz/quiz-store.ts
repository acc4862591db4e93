/**
 * The quiz's Postgres tables (in the service's own schema): each game, every scored
 * answer with the gateway stamps it was scored from (so a score can be audited), and
 * the final scoreboard, written when the game ends. Writes are idempotent (primary
 * keys, `on conflict do nothing`), so a step retried after a failure stores once.
 */
import { openServiceDatabase, type Sql } from '../toolkit/service-database.js';
import type { Question } from './questions.js';

const DDL = [
  `create table if not exists games (
     id text primary key,
     session text not null,
     questions jsonb not null,
     started_at timestamptz not null default now(),
     ended_at timestamptz)`,
  `create table if not exists answers (
     game_id text not null references games(id),
     q integer not null,
     "user" text not null,
     cid text not null,
     choice integer not null,
     correct boolean not null,
     received_at_us bigint not null,
     last_seq bigint not null,
     last_seq_at_us bigint not null,
     question_seq bigint not null,
     time_us bigint,
     points integer not null,
     primary key (game_id, q, "user"))`,
  `create table if not exists scores (
     game_id text not null references games(id),
     "user" text not null,
     name text not null,
     score integer not null,
     rank integer not null,
     primary key (game_id, "user"))`,
];

/** A scored answer as stored. */
export interface ScoredAnswer {
  q: number;
  user: string;
  cid: string;
  choice: number;
  correct: boolean;
  receivedAtUs: number;
  lastSeq: number;
  lastSeqAtUs: number;
  questionSeq: number;
  timeUs: number | null;
  points: number;
}

/** A line of the final scoreboard. */
export interface ScoreLine {
  user: string;
  name: string;
  score: number;
  rank: number;
}

/** The quiz's storage. */
export class QuizStore {
  private constructor(readonly sql: Sql) {}

  /** Opens the pool and creates the tables when missing. */
  static async open(url: string, schema: string): Promise<QuizStore> {
    return new QuizStore(await openServiceDatabase(url, schema, DDL));
  }

  async gameStarted(id: string, session: string, questions: Question[]): Promise<void> {
    await this.sql`insert into games (id, session, questions) values (${id}, ${session}, ${this.sql.json(questions as never)}) on conflict do nothing`;
  }

  async answersScored(gameId: string, answers: ScoredAnswer[]): Promise<void> {
    if (answers.length === 0) return;
    const rows = answers.map((a) => ({
      game_id: gameId,
      q: a.q,
      user: a.user,
      cid: a.cid,
      choice: a.choice,
      correct: a.correct,
      received_at_us: a.receivedAtUs,
      last_seq: a.lastSeq,
      last_seq_at_us: a.lastSeqAtUs,
      question_seq: a.questionSeq,
      time_us: a.timeUs,
      points: a.points,
    }));
    await this.sql`insert into answers ${this.sql(rows as never)} on conflict do nothing`;
  }

  /** Stores the final scoreboard and marks the game ended, in one transaction. */
  async gameOver(gameId: string, board: ScoreLine[]): Promise<void> {
    await this.sql.begin(async (tx) => {
      if (board.length > 0) {
        const rows = board.map((l) => ({ game_id: gameId, user: l.user, name: l.name, score: l.score, rank: l.rank }));
        await tx`insert into scores ${tx(rows as never)} on conflict do nothing`;
      }
      await tx`update games set ended_at = now() where id = ${gameId} and ended_at is null`;
    });
  }

  async close(): Promise<void> {
    await this.sql.end({ timeout: 5 });
  }
}
