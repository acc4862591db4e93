/**
 * Quiz questions: the built-in set the host gets by default, and the checks on a set
 * the host sends with `start` (every field bounded, the right answer one of the
 * choices), so a bad set is refused whole before a game begins.
 */
import { Refusal, intField, record, textField } from '../toolkit/refusal.js';

/** One multiple-choice question. */
export interface Question {
  text: string;
  choices: string[];
  /** Index of the right choice. */
  answer: number;
  /** How long players have, from when the question reaches them. */
  timeLimitMs: number;
}

/** The questions a game runs when the host sends none. */
export const DEFAULT_QUESTIONS: readonly Question[] = [
  { text: 'How many bytes does a msgpack fixmap header take?', choices: ['1', '2', '3', '5'], answer: 0, timeLimitMs: 20_000 },
  { text: 'Which RabbitMQ exchange type spreads sessions over partitions?', choices: ['direct', 'fanout', 'x-consistent-hash', 'headers'], answer: 2, timeLimitMs: 20_000 },
  { text: 'What does a seq gap on a client mean?', choices: ['loss', 'an event for other users, or conflation', 'a bug', 'a new epoch'], answer: 1, timeLimitMs: 20_000 },
];

export const MAX_QUESTIONS = 50;

/** The questions of a `start` command: its `questions` when given (checked), else the defaults. */
export function questionsOf(data: unknown): Question[] {
  if (data === null || data === undefined) return DEFAULT_QUESTIONS.map((q) => ({ ...q, choices: [...q.choices] }));
  const d = record(data, 'start');
  if (d.questions === undefined) return DEFAULT_QUESTIONS.map((q) => ({ ...q, choices: [...q.choices] }));
  if (!Array.isArray(d.questions) || d.questions.length === 0 || d.questions.length > MAX_QUESTIONS) {
    throw new Refusal('invalid', `start: "questions" must be a list of 1 to ${MAX_QUESTIONS} questions`);
  }
  return d.questions.map((raw: unknown, i) => {
    const q = record(raw, `start: question ${i + 1}`);
    const what = `start: question ${i + 1}`;
    const text = textField(q, 'text', 500, what);
    if (!Array.isArray(q.choices) || q.choices.length < 2 || q.choices.length > 6) throw new Refusal('invalid', `${what}: "choices" must be a list of 2 to 6 texts`);
    const choices = q.choices.map((c: unknown, j) => textField({ c }, 'c', 200, `${what} choice ${j + 1}`));
    const answer = intField(q, 'answer', 0, choices.length - 1, what);
    const timeLimitMs = q.timeLimitMs === undefined ? 20_000 : intField(q, 'timeLimitMs', 1000, 300_000, what);
    return { text, choices, answer, timeLimitMs };
  });
}
