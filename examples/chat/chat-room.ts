/**
 * Seed 003's chat rooms, as a command handler. A participant's message is a `say`
 * command, not a client `pub` (SPEC §12): a `pub` carries no trusted author, has no
 * idempotency key, and never reaches an upstream, so it could not be stored. A
 * command is stamped with the author (the token's `sub`), retried safely by `cid`,
 * and comes here; the service stores it in Postgres, then publishes it. The order
 * in which the service stores messages is the order everyone receives them (one
 * publisher, one session stream).
 *
 * | Command | Data | Answer |
 * | --- | --- | --- |
 * | `say` | `{ text }`: 1–2000 characters, no control characters but newline and tab | `msg` to the room: `{ n, from, text, at }`; `refused` to the sender when invalid |
 *
 * Besides, `recent` (snapshot key `recent`, conflatable), at most once per
 * `recentEveryMs` per room: the last `recentSize` messages, so a client joining
 * without a position sees the conversation at once. Who is in the room (presence,
 * `pjoin`/`pleave`) is the gateway's, across its instances: configure the namespace
 * with `joinLeave: true`.
 */
import type { SinkEvent } from '../toolkit/event-sink.js';
import { Refusal, record, refusalEvent } from '../toolkit/refusal.js';
import type { SerialSteps } from '../toolkit/serial-steps.js';
import type { UpstreamCommand } from '../toolkit/upstream-command.js';
import type { ChatStore } from './chat-store.js';

/** Limits of the chat. */
export interface ChatRules {
  maxLength: number;
  recentSize: number;
  recentEveryMs: number;
}

/** The chat rooms of every session. */
export class ChatRooms {
  private readonly recentDue = new Set<string>();

  constructor(
    private readonly store: ChatStore,
    private readonly publish: (...events: SinkEvent[]) => Promise<void>,
    private readonly steps: SerialSteps,
    private readonly rules: ChatRules,
  ) {}

  /** Applies one command; refusals are published to the sender. */
  async handle(command: UpstreamCommand): Promise<void> {
    try {
      if (command.type !== 'say') throw new Refusal('unknown_command', `the chat takes say, not "${command.type}"`);
      const text = this.textOf(command.data);
      const m = await this.store.add({ session: command.session, user: command.user, cid: command.cid, text, receivedAtUs: command.receivedAtUs });
      await this.publish({ session: command.session, type: 'msg', data: { ...m }, id: `msg/${m.n}` });
      this.recentSoon(command.session);
    } catch (err) {
      if (!(err instanceof Refusal)) throw err;
      await this.publish(refusalEvent(command, err));
    }
  }

  private textOf(data: unknown): string {
    const text = record(data, 'say').text;
    const max = this.rules.maxLength;
    if (typeof text !== 'string' || text.trim().length === 0 || text.length > max) throw new Refusal('invalid', `say: "text" must be 1 to ${max} characters`);
    if (/[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/.test(text)) throw new Refusal('invalid', 'say: "text" contains control characters (only newline and tab are allowed)');
    return text.trim();
  }

  private recentSoon(session: string): void {
    if (this.recentDue.has(session)) return;
    this.recentDue.add(session);
    this.steps.later(session, this.rules.recentEveryMs, async () => {
      this.recentDue.delete(session);
      const messages = await this.store.recent(session, this.rules.recentSize);
      const last = messages.at(-1)?.n ?? 0;
      await this.publish({ session, type: 'recent', data: { messages }, snapshot: 'recent', conflate: true, id: `recent/${last}` });
    });
  }
}
