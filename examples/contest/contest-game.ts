/**
 * One contest session (seed 001): up to `seats` players take a seat, start together,
 * and race through the questions; the first right answer wins the round and moves
 * everyone to the next question; a round nobody wins ends at its time limit.
 *
 * Events (snapshot keys in brackets):
 *
 * | Type | Key | When | Data |
 * | --- | --- | --- | --- |
 * | `seats` | `seats` | a player took a seat | `{ seats, players: [{ user, name }] }` |
 * | `countdown` | `contest` | the contest starts (every seat taken, with `autoStart`; or the host's `start`, with its questions) | `{ contestId, startsAt, questions }`: `startsAt` in server epoch ms, the same for every player |
 * | `question` | `question` | a round opens, at `startsAt` for the first | `{ contestId, n, of, text, choices, timeLimitMs }` |
 * | `round` | `question` | a round ends | `{ contestId, n, answer, winner: { user, name } \| null, timeMs, wrong: [user] }` |
 * | `standings` | `standings` (conflatable) | after each round | `{ contestId, after, entries: [{ user, name, wins, rank }] }` |
 * | `over` | `contest` | after the last round, once stored | `{ contestId, standings }` |
 * | `refused` | — | a command refused, to its sender | `{ cid, command, reason, detail }` |
 *
 * Who was first is decided from the gateway's stamps, not from arrival order: a
 * command recorded by another gateway instance reaches the service up to about a
 * second later through the relay. Once a right answer arrives the round stays open
 * `decideMs` for answers still in transit, then the right answer with the shortest
 * time to answer (`receivedAt − lastSeqAt`, as in the quiz's scoring.ts; ties: the
 * earliest `receivedAt`) wins. As in the quiz, nothing is published into the session
 * while a round is open, so `lastSeqAt` is when the question reached each player.
 *
 * Each player has one answer per round: a wrong one locks them out of it. When every
 * player answered wrong the round ends at once.
 */
import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import type { SinkEvent } from '../toolkit/event-sink.js';
import { Refusal, intField, record, refusalEvent, textField } from '../toolkit/refusal.js';
import { eventIdFor, type UpstreamCommand } from '../toolkit/upstream-command.js';
import { questionsOf, type Question } from '../quiz/questions.js';
import { timeToAnswerUs } from '../quiz/scoring.js';
import type { ContestStore, Standing } from './contest-store.js';

/** Pacing and size of a contest. */
export interface ContestRules {
  /** Players per contest (seed 001: 6). */
  seats: number;
  /** Start with the default questions once every seat is taken (else the host's `start` does). */
  autoStart: boolean;
  /** From the start to the first question. */
  countdownMs: number;
  /** From a round's end to the next question. */
  pauseMs: number;
  /** Added to a question's time limit before the round ends without a winner. */
  graceMs: number;
  /** How long a round stays open after the first right answer arrived. */
  decideMs: number;
}

/** What a contest needs from its service. */
export interface ContestContext {
  publish(...events: SinkEvent[]): Promise<void>;
  store: ContestStore;
  rules: ContestRules;
  later(ms: number, step: () => Promise<void>): void;
  cancelTimers(): void;
  log: Logger;
}

interface Seat {
  user: string;
  name: string;
  wins: number;
}

type State = 'seating' | 'countdown' | 'open' | 'deciding' | 'between';

/** One session's contest. */
export class ContestGame {
  private state: State = 'seating';
  private readonly seats = new Map<string, Seat>();
  private contestId = '';
  private questions: Question[] = [];
  private current = 0;
  private answers = new Map<string, { command: UpstreamCommand; choice: number }>();
  private held: SinkEvent[] = [];

  constructor(
    readonly session: string,
    private readonly ctx: ContestContext,
  ) {}

  /** Applies one command; refusals go to the sender (held while a round is open). */
  async handle(command: UpstreamCommand): Promise<void> {
    try {
      switch (command.type) {
        case 'join':
          return await this.join(command);
        case 'start':
          if (command.role !== 'host') throw new Refusal('forbidden', 'only a host may start the contest');
          return await this.start(command.data);
        case 'answer':
          return await this.answer(command);
        default:
          throw new Refusal('unknown_command', `the contest takes join, start and answer, not "${command.type}"`);
      }
    } catch (err) {
      if (!(err instanceof Refusal)) throw err;
      const event = refusalEvent(command, err);
      if (this.state === 'open' || this.state === 'deciding') this.held.push(event);
      else await this.ctx.publish(event);
    }
  }

  private async join(command: UpstreamCommand): Promise<void> {
    const name = textField(record(command.data, 'join'), 'name', 40, 'join');
    if (this.seats.has(command.user)) return;
    if (this.seats.size >= this.ctx.rules.seats) throw new Refusal('full', `all ${this.ctx.rules.seats} seats are taken`);
    if (this.state !== 'seating') throw new Refusal('started', 'the contest has started');
    this.seats.set(command.user, { user: command.user, name, wins: 0 });
    await this.ctx.publish({
      session: this.session,
      type: 'seats',
      data: { seats: this.ctx.rules.seats, players: [...this.seats.values()].map((s) => ({ user: s.user, name: s.name })) },
      snapshot: 'seats',
      conflate: true,
      id: eventIdFor('seats', command),
    });
    if (this.ctx.rules.autoStart && this.seats.size === this.ctx.rules.seats) {
      this.ctx.later(0, async () => {
        if (this.state === 'seating') await this.start(null);
      });
    }
  }

  /** Synchronized start: everyone gets the same `startsAt`, the first question comes then. */
  private async start(data: unknown): Promise<void> {
    if (this.state !== 'seating') throw new Refusal('started', 'the contest has started');
    if (this.seats.size === 0) throw new Refusal('empty', 'no player has a seat yet');
    this.questions = questionsOf(data);
    this.contestId = randomBytes(6).toString('hex');
    await this.ctx.store.started(this.contestId, this.session);
    this.state = 'countdown';
    const startsAt = Date.now() + this.ctx.rules.countdownMs;
    await this.ctx.publish({
      session: this.session,
      type: 'countdown',
      data: { contestId: this.contestId, startsAt, questions: this.questions.length },
      snapshot: 'contest',
      id: `${this.contestId}/countdown`,
    });
    this.ctx.later(Math.max(0, startsAt - Date.now()), () => this.open(1));
  }

  private async open(n: number): Promise<void> {
    const q = this.questions[n - 1];
    this.current = n;
    this.answers = new Map();
    this.state = 'open';
    await this.ctx.publish({
      session: this.session,
      type: 'question',
      data: { contestId: this.contestId, n, of: this.questions.length, text: q.text, choices: q.choices, timeLimitMs: q.timeLimitMs },
      snapshot: 'question',
      id: `${this.contestId}/q/${n}`,
    });
    this.ctx.later(q.timeLimitMs + this.ctx.rules.graceMs, () => this.end(n));
  }

  private async answer(command: UpstreamCommand): Promise<void> {
    const d = record(command.data, 'answer');
    const n = intField(d, 'q', 1, 1000, 'answer');
    if (!this.seats.has(command.user)) throw new Refusal('no_seat', 'you have no seat in this contest');
    if ((this.state !== 'open' && this.state !== 'deciding') || n !== this.current) throw new Refusal('closed', `round ${n} is not open`);
    const q = this.questions[n - 1];
    const choice = intField(d, 'choice', 0, q.choices.length - 1, 'answer');
    if (this.answers.has(command.user)) throw new Refusal('already_answered', `you already answered round ${n}`);
    this.answers.set(command.user, { command, choice });
    if (choice === q.answer && this.state === 'open') {
      this.state = 'deciding';
      this.ctx.cancelTimers();
      this.ctx.later(this.ctx.rules.decideMs, () => this.end(n));
    } else if (this.state === 'open' && this.answers.size === this.seats.size) {
      // A timed step, so that a failure on Postgres is retried (see the quiz's answer()).
      this.ctx.later(0, () => this.end(n));
    }
  }

  /**
   * Ends round n: the fastest right answer by the stamps wins; stores the outcome
   * (and the standings after the last round) before changing anything, so a step
   * failing on the database is simply run again; then publishes and moves on.
   */
  private async end(n: number): Promise<void> {
    if ((this.state !== 'open' && this.state !== 'deciding') || this.current !== n) return;
    this.ctx.cancelTimers();
    const q = this.questions[n - 1];
    let questionSeq = 0;
    for (const a of this.answers.values()) questionSeq = Math.max(questionSeq, a.command.lastSeq);
    let best: { user: string; tUs: number; receivedAtUs: number } | null = null;
    const wrong: string[] = [];
    for (const { command: c, choice } of this.answers.values()) {
      const tUs = timeToAnswerUs(c, questionSeq);
      if (choice !== q.answer || tUs === null) {
        wrong.push(c.user);
        continue;
      }
      if (best === null || tUs < best.tUs || (tUs === best.tUs && c.receivedAtUs < best.receivedAtUs)) best = { user: c.user, tUs, receivedAtUs: c.receivedAtUs };
    }
    const winner = best === null ? null : this.seats.get(best.user)!;
    const wins = new Map([...this.seats.values()].map((s) => [s.user, s.wins + (s === winner ? 1 : 0)]));
    const standings = this.standings(wins);
    const last = n === this.questions.length;
    await this.ctx.store.roundEnded(this.contestId, n, winner?.user ?? null, best?.tUs ?? null);
    if (last) await this.ctx.store.ended(this.contestId, standings);

    if (winner !== null) winner.wins++;
    this.state = last ? 'seating' : 'between';
    const events: SinkEvent[] = [
      ...this.held.splice(0),
      {
        session: this.session,
        type: 'round',
        data: { contestId: this.contestId, n, answer: q.answer, winner: winner && { user: winner.user, name: winner.name }, timeMs: best && Math.round(best.tUs / 1000), wrong },
        snapshot: 'question',
        id: `${this.contestId}/round/${n}`,
      },
      {
        session: this.session,
        type: 'standings',
        data: { contestId: this.contestId, after: n, entries: standings },
        snapshot: 'standings',
        conflate: true,
        id: `${this.contestId}/standings/${n}`,
      },
    ];
    if (last) events.push({ session: this.session, type: 'over', data: { contestId: this.contestId, standings }, snapshot: 'contest', id: `${this.contestId}/over` });
    await this.ctx.publish(...events);
    if (!last) {
      this.ctx.later(this.ctx.rules.pauseMs, () => this.open(n + 1));
      return;
    }
    this.ctx.log.info({ session: this.session, contestId: this.contestId }, 'contest over; standings stored');
    // Seats free up for the next contest in this session.
    this.seats.clear();
  }

  /** Standings by wins (then name) from `wins` (user → wins); equal wins share a rank. */
  private standings(wins: Map<string, number>): Standing[] {
    const w = (user: string) => wins.get(user) ?? 0;
    const sorted = [...this.seats.values()].sort((a, b) => w(b.user) - w(a.user) || a.name.localeCompare(b.name));
    return sorted.map((s) => ({ user: s.user, name: s.name, wins: w(s.user), rank: sorted.findIndex((x) => w(x.user) === w(s.user)) + 1 }));
  }

}
