/**
 * Seed 004's polls, as a command handler: the host opens and closes polls; a
 * participant votes once per poll, or skips it, within a daily vote limit; tallies
 * go live to everyone as conflatable snapshots (a lagging client gets only the
 * newest), at most one per poll every `tallyEveryMs` however fast votes come.
 *
 * Commands (`poll.<type>`), data, and what answers them:
 *
 * | Command | Data | Success | Refused (`refused`, to the sender) |
 * | --- | --- | --- | --- |
 * | `open` (role `host`) | `{ poll, question, options: [2–10 texts] }` | `poll` event (key `poll:<id>`), a first `tally` | `forbidden`, `invalid`, `exists` |
 * | `close` (role `host`) | `{ poll }` | `poll` event with `open: false`, the final `tally` | `forbidden`, `unknown_poll` |
 * | `vote` | `{ poll, option }` (index) | `responses` to the voter (per-user key `responses`) | `invalid`, `unknown_poll`, `closed`, `already_responded`, `daily_limit` |
 * | `skip` | `{ poll }` | the same; a skip is a response, so no vote after it, and it does not count against the limit | as `vote`, without `daily_limit` |
 *
 * `tally` (key `tally:<id>`, conflatable): `{ poll, counts: [per option], skips, total }`.
 * `responses` (per user, key `responses`): `{ responses: { <poll>: option or null } }`.
 *
 * The rules are kept by Postgres (poll-store.ts), so they hold across replicas and
 * restarts, and a redelivered command is answered as the first time, not refused.
 */
import { randomBytes } from 'node:crypto';
import type { SinkEvent } from '../toolkit/event-sink.js';
import { Refusal, intField, record, refusalEvent, textField } from '../toolkit/refusal.js';
import type { SerialSteps } from '../toolkit/serial-steps.js';
import { eventIdFor, type UpstreamCommand } from '../toolkit/upstream-command.js';
import type { PollStore } from './poll-store.js';

/** Limits of the polls. */
export interface PollRules {
  /** Votes a user may cast per UTC day, across polls and sessions. */
  dailyVoteLimit: number;
  /** Shortest interval between two tallies of one poll. */
  tallyEveryMs: number;
}

const POLL_ID = /^[A-Za-z0-9_.:-]{1,64}$/;

/** The polls of every session. */
export class Polls {
  /** Polls whose tally is due (`session\n poll`), each published once per interval. */
  private readonly due = new Set<string>();
  /** Makes this process's tally event ids unique (tallies are not tied to one command). */
  private readonly tag = randomBytes(4).toString('hex');
  private tallies = 0;

  constructor(
    private readonly store: PollStore,
    private readonly publish: (...events: SinkEvent[]) => Promise<void>,
    private readonly steps: SerialSteps,
    private readonly rules: PollRules,
  ) {}

  /** Applies one command; refusals are published to the sender. */
  async handle(command: UpstreamCommand): Promise<void> {
    try {
      switch (command.type) {
        case 'open':
          return await this.open(command);
        case 'close':
          return await this.close(command);
        case 'vote':
        case 'skip':
          return await this.respond(command);
        default:
          throw new Refusal('unknown_command', `polls take open, close, vote and skip, not "${command.type}"`);
      }
    } catch (err) {
      if (!(err instanceof Refusal)) throw err;
      await this.publish(refusalEvent(command, err));
    }
  }

  private pollId(data: Record<string, unknown>, command: string): string {
    const poll = data.poll;
    if (typeof poll !== 'string' || !POLL_ID.test(poll)) throw new Refusal('invalid', `${command}: "poll" must be 1-64 of letters, digits, _ . : -`);
    return poll;
  }

  private async open(command: UpstreamCommand): Promise<void> {
    if (command.role !== 'host') throw new Refusal('forbidden', 'only a host may open a poll');
    const d = record(command.data, 'open');
    const poll = this.pollId(d, 'open');
    const question = textField(d, 'question', 300, 'open');
    if (!Array.isArray(d.options) || d.options.length < 2 || d.options.length > 10) throw new Refusal('invalid', 'open: "options" must be a list of 2 to 10 texts');
    const options = d.options.map((o: unknown, i) => textField({ o }, 'o', 100, `open: option ${i + 1}`));
    if (!(await this.store.create(command.session, poll, question, options))) {
      const existing = await this.store.get(command.session, poll);
      // A redelivered `open` finds its own poll: publish the same events again (same ids).
      if (existing === undefined || existing.question !== question || existing.options.join('\n') !== options.join('\n')) {
        throw new Refusal('exists', `poll "${poll}" exists in this session`);
      }
    }
    await this.publish(this.pollEvent(command, poll, question, options, true));
    await this.publishTally(command.session, poll);
  }

  private async close(command: UpstreamCommand): Promise<void> {
    if (command.role !== 'host') throw new Refusal('forbidden', 'only a host may close a poll');
    const poll = this.pollId(record(command.data, 'close'), 'close');
    const found = await this.store.get(command.session, poll);
    if (found === undefined) throw new Refusal('unknown_poll', `no poll "${poll}" in this session`);
    await this.store.close(command.session, poll);
    await this.publish(this.pollEvent(command, poll, found.question, found.options, false));
    await this.publishTally(command.session, poll);
  }

  private async respond(command: UpstreamCommand): Promise<void> {
    const d = record(command.data, command.type);
    const poll = this.pollId(d, command.type);
    const found = await this.store.get(command.session, poll);
    if (found === undefined) throw new Refusal('unknown_poll', `no poll "${poll}" in this session`);
    if (!found.open) throw new Refusal('closed', `poll "${poll}" is closed`);
    const option = command.type === 'vote' ? intField(d, 'option', 0, found.options.length - 1, 'vote') : null;
    const outcome = await this.store.respond({ session: command.session, poll, user: command.user, cid: command.cid, option, receivedAtUs: command.receivedAtUs }, this.rules.dailyVoteLimit);
    if (outcome === 'already_responded') throw new Refusal('already_responded', `you already voted on or skipped poll "${poll}"`);
    if (outcome === 'daily_limit') throw new Refusal('daily_limit', `you cast your ${this.rules.dailyVoteLimit} votes for today (UTC)`);
    await this.publish({
      session: command.session,
      type: 'responses',
      data: { responses: await this.store.responsesOf(command.session, command.user) },
      to: [command.user],
      snapshot: 'responses',
      id: eventIdFor('responses', command),
    });
    this.tallySoon(command.session, poll);
  }

  /** Schedules the poll's tally (one per interval, whatever the number of votes). */
  private tallySoon(session: string, poll: string): void {
    const key = `${session}\n${poll}`;
    if (this.due.has(key)) return;
    this.due.add(key);
    this.steps.later(session, this.rules.tallyEveryMs, async () => {
      this.due.delete(key);
      await this.publishTally(session, poll);
    });
  }

  private async publishTally(session: string, poll: string): Promise<void> {
    const found = await this.store.get(session, poll);
    if (found === undefined) return;
    const { counts, skips } = await this.store.tally(session, poll, found.options.length);
    await this.publish({
      session,
      type: 'tally',
      data: { poll, counts, skips, total: counts.reduce((a, b) => a + b, 0) + skips, open: found.open },
      snapshot: `tally:${poll}`,
      conflate: true,
      id: `tally/${this.tag}/${++this.tallies}`,
    });
  }

  private pollEvent(command: UpstreamCommand, poll: string, question: string, options: string[], open: boolean): SinkEvent {
    return { session: command.session, type: 'poll', data: { poll, question, options, open }, snapshot: `poll:${poll}`, id: eventIdFor(open ? 'open' : 'close', command) };
  }
}
