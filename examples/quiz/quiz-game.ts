/**
 * One quiz session's game: players join, the host starts, questions run on a timer,
 * answers are scored by speed from the gateway's stamps (scoring.ts), and every
 * outcome is published into the session.
 *
 * Events (snapshot keys in brackets; per-user ones are addressed with `to`):
 *
 * | Type | Key | When | Data |
 * | --- | --- | --- | --- |
 * | `players` | `players` | a player joined (outside an open question) | `{ players: [{ user, name }] }` |
 * | `game` | `game` | a game starts | `{ gameId, state: 'running', questions }` |
 * | `question` | `question` | a question opens | `{ gameId, n, of, text, choices, timeLimitMs }` |
 * | `feedback` | `answers` (per user) | the question closes, to each player | `{ gameId, n, answered, choice, correct, points, timeMs, score, answers: [...] }` |
 * | `refused` | — | a command refused, to its sender | `{ cid, command, reason, detail }` |
 * | `reveal` | `question` | the question closes | the question plus `{ closed: true, answer }` |
 * | `leaderboard` | `leaderboard` (conflatable) | after each reveal | `{ gameId, after, entries: [{ user, name, score, rank }] }` |
 * | `gameover` | `game` | the last reveal, once the scoreboard is stored | `{ gameId, state: 'over', scoreboard }` |
 *
 * Fairness: while a question is open nothing at all is published into the session
 * (not even addressed feedback or refusals: they wait for the reveal), so the
 * question is the last frame every player's socket was handed when they answer, and
 * the gateway's `lastSeqAt` is when the question reached them. The question's seq is
 * the highest `lastSeq` among its answers (all equal when every player had it); an
 * answer stamped lower was sent before the question reached its player. This needs
 * the quiz to be the only publisher of its sessions (no client publish in `quiz:`).
 *
 * The question closes when every joined player answered, or at its time limit plus
 * `graceMs` (commands from another gateway instance travel through the relay, about
 * a second); an answer that took longer than the time limit scores 0.
 *
 * Not thread-safe by design: the service runs every step of every game on one
 * serial queue (quiz-service.ts).
 */
import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import type { SinkEvent } from '../toolkit/event-sink.js';
import { Refusal, intField, record, refusalEvent, textField } from '../toolkit/refusal.js';
import { eventIdFor, idPart, type UpstreamCommand } from '../toolkit/upstream-command.js';
import { questionsOf, type Question } from './questions.js';
import type { QuizStore, ScoreLine, ScoredAnswer } from './quiz-store.js';
import { pointsFor, timeToAnswerUs } from './scoring.js';

/** Pacing of a game. */
export interface QuizTiming {
  /** From `start` to the first question. */
  leadInMs: number;
  /** From a reveal to the next question. */
  revealMs: number;
  /** Added to a question's time limit before it closes, for answers in transit. */
  graceMs: number;
}

/** What a game needs from its service. */
export interface GameContext {
  publish(...events: SinkEvent[]): Promise<void>;
  store: QuizStore;
  timing: QuizTiming;
  /** Runs `step` on the service's serial queue after `ms` (the service owns the timer). */
  later(ms: number, step: () => Promise<void>): void;
  /** Cancels this game's pending timer steps. */
  cancelTimers(): void;
  log: Logger;
}

interface Player {
  user: string;
  name: string;
  score: number;
  answers: Array<{ n: number; choice: number | null; correct: boolean; points: number }>;
}

interface PendingAnswer {
  command: UpstreamCommand;
  choice: number;
}

type State = 'lobby' | 'question' | 'reveal';

/** One session's quiz. */
export class QuizGame {
  private state: State = 'lobby';
  private readonly players = new Map<string, Player>();
  private playersChanged = false;
  private gameId = '';
  private questions: Question[] = [];
  private current = 0;
  private answers = new Map<string, PendingAnswer>();
  /** Refusals held back while a question is open (see the header). */
  private held: SinkEvent[] = [];

  constructor(
    readonly session: string,
    private readonly ctx: GameContext,
  ) {}

  /** True while a game runs (the service keeps the game object meanwhile). */
  get running(): boolean {
    return this.state !== 'lobby';
  }

  /** Applies one command; refusals are published to the sender (or held while a question is open). */
  async handle(command: UpstreamCommand): Promise<void> {
    try {
      switch (command.type) {
        case 'join':
          return await this.join(command);
        case 'start':
          return await this.start(command);
        case 'answer':
          return await this.answer(command);
        default:
          throw new Refusal('unknown_command', `the quiz takes join, start and answer, not "${command.type}"`);
      }
    } catch (err) {
      if (!(err instanceof Refusal)) throw err;
      const event = refusalEvent(command, err);
      if (this.state === 'question') this.held.push(event);
      else await this.ctx.publish(event);
    }
  }

  private async join(command: UpstreamCommand): Promise<void> {
    const name = textField(record(command.data, 'join'), 'name', 40, 'join');
    const known = this.players.get(command.user);
    if (known !== undefined && known.name === name) return;
    if (known !== undefined) known.name = name;
    else this.players.set(command.user, { user: command.user, name, score: 0, answers: [] });
    this.playersChanged = true;
    if (this.state !== 'question') await this.ctx.publish(this.playersEvent(eventIdFor('players', command)));
  }

  private async start(command: UpstreamCommand): Promise<void> {
    if (command.role !== 'host') throw new Refusal('forbidden', 'only a host may start the quiz');
    if (this.state !== 'lobby') throw new Refusal('running', 'a game is already running in this session');
    const questions = questionsOf(command.data);
    this.gameId = randomBytes(6).toString('hex');
    this.questions = questions;
    this.current = 0;
    for (const p of this.players.values()) {
      p.score = 0;
      p.answers = [];
    }
    await this.ctx.store.gameStarted(this.gameId, this.session, questions);
    this.state = 'reveal';
    await this.ctx.publish({
      session: this.session,
      type: 'game',
      data: { gameId: this.gameId, state: 'running', questions: questions.length },
      snapshot: 'game',
      id: `${this.gameId}/start`,
    });
    this.ctx.log.info({ session: this.session, gameId: this.gameId, questions: questions.length }, 'game started');
    this.ctx.later(this.ctx.timing.leadInMs, () => this.ask(1));
  }

  private async ask(n: number): Promise<void> {
    const q = this.questions[n - 1];
    this.current = n;
    this.answers = new Map();
    this.state = 'question';
    await this.ctx.publish({
      session: this.session,
      type: 'question',
      data: { gameId: this.gameId, n, of: this.questions.length, text: q.text, choices: q.choices, timeLimitMs: q.timeLimitMs },
      snapshot: 'question',
      id: `${this.gameId}/q/${n}`,
    });
    this.ctx.later(q.timeLimitMs + this.ctx.timing.graceMs, () => this.close(n));
  }

  private async answer(command: UpstreamCommand): Promise<void> {
    const d = record(command.data, 'answer');
    const n = intField(d, 'q', 1, 1000, 'answer');
    if (this.state !== 'question' || n !== this.current) throw new Refusal('closed', `question ${n} is not open`);
    const choice = intField(d, 'choice', 0, this.questions[n - 1].choices.length - 1, 'answer');
    if (this.answers.has(command.user)) throw new Refusal('already_answered', `you already answered question ${n}`);
    // A player who never sent `join` plays under their user id; they do not close the
    // question early (with nobody joined, the first answer would close it).
    const joined = this.players.has(command.user);
    if (!joined) {
      this.players.set(command.user, { user: command.user, name: command.user, score: 0, answers: [] });
      this.playersChanged = true;
    }
    this.answers.set(command.user, { command, choice });
    // Closed as a timed step, not here: a close that fails on Postgres is then retried
    // by itself (a retried command would find its answer taken and close nothing).
    if (joined && this.answers.size >= this.players.size) this.ctx.later(0, () => this.close(n));
  }

  /**
   * Closes question n: scores, stores (with the final scoreboard after the last
   * question), then publishes feedback, reveal, leaderboard (and game over). Every
   * write to Postgres comes before any change to the game, so a step that fails on
   * the database is simply run again (SerialSteps retries it).
   */
  private async close(n: number): Promise<void> {
    if (this.state !== 'question' || this.current !== n) return;
    this.ctx.cancelTimers();
    const q = this.questions[n - 1];
    let questionSeq = 0;
    for (const a of this.answers.values()) questionSeq = Math.max(questionSeq, a.command.lastSeq);
    const scored: ScoredAnswer[] = [...this.answers.values()].map(({ command: c, choice }) => {
      const timeUs = timeToAnswerUs(c, questionSeq);
      const correct = choice === q.answer;
      return { q: n, user: c.user, cid: c.cid, choice, correct, receivedAtUs: c.receivedAtUs, lastSeq: c.lastSeq, lastSeqAtUs: c.lastSeqAtUs, questionSeq, timeUs, points: pointsFor(correct, timeUs, q.timeLimitMs) };
    });
    const byUser = new Map(scored.map((a) => [a.user, a]));
    const totals = new Map([...this.players.values()].map((p) => [p.user, p.score + (byUser.get(p.user)?.points ?? 0)]));
    const board = this.board(totals);
    const last = n === this.questions.length;
    await this.ctx.store.answersScored(this.gameId, scored);
    if (last) await this.ctx.store.gameOver(this.gameId, board);

    this.state = last ? 'lobby' : 'reveal';
    const events: SinkEvent[] = [];
    for (const p of this.players.values()) {
      const a = byUser.get(p.user);
      p.score = totals.get(p.user) ?? p.score;
      p.answers.push({ n, choice: a?.choice ?? null, correct: a?.correct ?? false, points: a?.points ?? 0 });
      events.push({
        session: this.session,
        type: 'feedback',
        data: {
          gameId: this.gameId,
          n,
          answered: a !== undefined,
          choice: a?.choice ?? null,
          correct: a?.correct ?? false,
          points: a?.points ?? 0,
          timeMs: a?.timeUs == null ? null : Math.round(a.timeUs / 1000),
          score: p.score,
          answers: p.answers,
        },
        to: [p.user],
        snapshot: 'answers',
        id: `${this.gameId}/fb/${n}/${idPart(p.user)}`,
      });
    }
    events.push(...this.held.splice(0));
    if (this.playersChanged) events.push(this.playersEvent(`${this.gameId}/players/${n}`));
    events.push({
      session: this.session,
      type: 'reveal',
      data: { gameId: this.gameId, n, of: this.questions.length, text: q.text, choices: q.choices, timeLimitMs: q.timeLimitMs, closed: true, answer: q.answer },
      snapshot: 'question',
      id: `${this.gameId}/reveal/${n}`,
    });
    events.push({
      session: this.session,
      type: 'leaderboard',
      data: { gameId: this.gameId, after: n, entries: board },
      snapshot: 'leaderboard',
      conflate: true,
      id: `${this.gameId}/board/${n}`,
    });
    if (last) {
      events.push({
        session: this.session,
        type: 'gameover',
        data: { gameId: this.gameId, state: 'over', scoreboard: board },
        snapshot: 'game',
        id: `${this.gameId}/over`,
      });
    }
    await this.ctx.publish(...events);
    if (!last) this.ctx.later(this.ctx.timing.revealMs, () => this.ask(n + 1));
    else this.ctx.log.info({ session: this.session, gameId: this.gameId, players: board.length }, 'game over; scoreboard stored');
  }

  /** Standings by score (then name) from `scores` (user → score); equal scores share a rank. */
  private board(scores: Map<string, number>): ScoreLine[] {
    const score = (user: string) => scores.get(user) ?? 0;
    const sorted = [...this.players.values()].sort((a, b) => score(b.user) - score(a.user) || a.name.localeCompare(b.name));
    return sorted.map((p) => ({ user: p.user, name: p.name, score: score(p.user), rank: sorted.findIndex((x) => score(x.user) === score(p.user)) + 1 }));
  }

  private playersEvent(id: string): SinkEvent {
    this.playersChanged = false;
    return {
      session: this.session,
      type: 'players',
      data: { players: [...this.players.values()].map((p) => ({ user: p.user, name: p.name })) },
      snapshot: 'players',
      conflate: true,
      id,
    };
  }
}
