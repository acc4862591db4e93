/**
 * The command journal makes participants' commands durable before they are acked,
 * and hands them upstream.
 *
 * Contract for writers: `record` is idempotent on (session, user, cid): the first
 * call stores the command and returns `duplicate: false`; any later call with the
 * same key stores nothing and returns `duplicate: true` with the first position. A
 * command is acked to the client only after `record` resolved. `record` rejects
 * (never resolves falsely) when the journal cannot store it; the client then gets a
 * retryable error and retries with the same cid.
 *
 * Contract for readers (GET /v1/commands, the relay in daemon/egress/):
 * - Positions increase: a command recorded after another one resolved has a higher
 *   position; `read(after, limit, maxBytes)` returns entries with positions above
 *   `after`, in increasing order, at most `limit`, and stops before passing about
 *   `maxBytes` of command data (but returns at least one entry when there is one).
 * - Visibility: once a `read` returned an entry at position p (or a read after p
 *   returned entries), no entry at or below p may appear in a later read. So a
 *   reader paging by `after` (the last position it got) never skips a command.
 * - A bounded implementation (the memory journal) forgets its oldest entries past
 *   its capacity, and those upstream has taken (`taken`) after a grace period; a
 *   reader behind by more than that misses them. That is the only way a paging
 *   reader loses a command, and it is the implementation's stated bound.
 *
 * Guidance for implementers: positions must become visible in order. A journal
 * whose positions are taken before commit (a Postgres sequence) must not let a read
 * pass a position still in flight: read only up to the lowest position of an
 * uncommitted record (e.g. track in-flight positions, or hand out positions at
 * commit under a lock), otherwise a reader may page past a command that commits
 * a moment later and never see it. Gaps (rolled-back positions) are allowed.
 */
import type { Value } from '../../protocol/frames.js';
import { decode, encode } from '../../protocol/codec.js';

/** A participant's command as the shard stamped it. */
export interface Command {
  session: string;
  user: string;
  role: string;
  /** Client-chosen id, unique per (session, user). */
  cid: string;
  type: string;
  data: Value;
  /** Server time (ms) the shard received the frame: `floor(receivedAtUs / 1000)`. */
  receivedAt: number;
  /** The same in µs since the epoch, from the shard's microsecond clock. */
  receivedAtUs: number;
  /** Last session seq handed to the sending connection before the command arrived. */
  lastSeq: number;
  /** When that seq was handed to the connection (ms): `floor(lastSeqAtUs / 1000)`. */
  lastSeqAt: number;
  /** The same in µs, same clock as `receivedAtUs`: `receivedAtUs − lastSeqAtUs` is the participant's time to answer. */
  lastSeqAtUs: number;
  /** Connection id and shard that received it (for support). */
  conn: string;
  shard: number;
}

/** A command's fields besides its data. */
export type CommandFields = Omit<Command, 'data'>;

/**
 * A command to record: with `data` as a value, or with `encodedData`, the msgpack of
 * its data as the participant sent it (validated by the shard that received it). A
 * shard passes the latter, so the primary thread neither copies a decoded tree out
 * of the shard's message nor encodes it again: a 15 KiB command of 5,000 empty maps
 * costs it a 15 KiB copy, not 5,000 objects made and walked twice.
 */
export type CommandInput = Command | (CommandFields & { encodedData: Uint8Array });

/** The fields and the msgpack data of a command to record; throws when `data` cannot be encoded. */
export function splitCommand(cmd: CommandInput): { fields: CommandFields; data: Uint8Array } {
  if ('encodedData' in cmd) {
    const { encodedData, ...fields } = cmd;
    return { fields, data: encodedData };
  }
  const { data, ...fields } = cmd;
  return { fields, data: encode(data) };
}

/** The identity a command is stored once under: (session, user, cid). */
export function commandKey(c: Pick<CommandFields, 'session' | 'user' | 'cid'>): string {
  return `${c.session}\u0000${c.user}\u0000${c.cid}`;
}

/** A stored command with its journal position. */
export interface JournalEntry extends Command {
  /** Position in the journal, increasing. */
  pos: number;
}

/**
 * A stored command with its data still msgpack, as stored: what `GET /v1/commands`
 * pages carry from the primary to the shard that answers (which decodes them in
 * turn with its other heavy work), so a page of large commands costs the primary a
 * copy of bytes rather than every object of every command, decoded and cloned.
 */
export interface EncodedJournalEntry extends CommandFields {
  pos: number;
  /** msgpack of the command's data. */
  data: Uint8Array;
}

/** An entry with its data decoded (`onBad` hears of data that is not msgpack; it is relayed as null). */
export function decodedEntry(e: EncodedJournalEntry, onBad?: (reason: string) => void): JournalEntry {
  const r = decode(e.data);
  if (!r.ok) onBad?.(r.reason);
  return { ...e, data: (r.ok ? r.value : null) as Value };
}

/** Outcome of recording a command. */
export interface RecordResult {
  duplicate: boolean;
  pos: number;
}

/** Durable, idempotent store of commands on their way upstream; see the contract above. */
export interface CommandJournal {
  record(cmd: CommandInput): Promise<RecordResult>;
  /** Entries after position `after`, oldest first, at most `limit`; see the visibility rule above. */
  read(after: number, limit: number, maxBytes?: number): Promise<JournalEntry[]>;
  /** The same entries as `read`, their data left as stored. */
  readEncoded(after: number, limit: number, maxBytes?: number): Promise<EncodedJournalEntry[]>;
  /**
   * The highest position recorded (0 when none): with a reader's position, how far
   * it is behind (the journal backlog metric). Positions may have gaps, so the
   * difference is an upper bound on the commands between them.
   */
  head(): Promise<number>;
  /**
   * Upstream has taken every command at or below `upTo` (the relay once RabbitMQ
   * confirmed them; without a relay, a `GET /v1/commands` reader asking for what
   * comes after them). The memory journal frees them after its grace period; the
   * Postgres journal keeps them by its own retention (journal-retention.ts).
   */
  taken(upTo: number): void;
  close(): Promise<void>;
}
