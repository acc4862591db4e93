/**
 * The command journal makes participants' commands durable before they are acked,
 * and hands them upstream.
 *
 * Contract: `record` is idempotent on (session, user, cid): the first call stores
 * the command and returns `duplicate: false`; any later call with the same key
 * stores nothing and returns `duplicate: true`. A command is acked to the client
 * only after `record` resolved. `record` rejects (never resolves falsely) when the
 * journal cannot store it; the client then gets a retryable error and retries with
 * the same cid.
 */
import type { Value } from '../../protocol/frames.js';

/** A participant's command as the shard stamped it. */
export interface Command {
  session: string;
  user: string;
  role: string;
  /** Client-chosen id, unique per (session, user). */
  cid: string;
  type: string;
  data: Value;
  /** Server time (ms) the shard received the frame. */
  receivedAt: number;
  /** Last session seq handed to the sending connection before the command arrived. */
  lastSeq: number;
  /** When that seq was handed to the connection (ms), for fair answer timing. */
  lastSeqAt: number;
  /** Connection id and shard that received it (for support). */
  conn: string;
  shard: number;
}

/** A stored command with its journal position. */
export interface JournalEntry extends Command {
  /** Position in the journal, increasing. */
  pos: number;
}

/** Outcome of recording a command. */
export interface RecordResult {
  duplicate: boolean;
  pos: number;
}

/** Durable, idempotent store of commands on their way upstream; see the contract above. */
export interface CommandJournal {
  record(cmd: Command): Promise<RecordResult>;
  /** Entries after position `after`, oldest first, at most `limit`. */
  read(after: number, limit: number): Promise<JournalEntry[]>;
  close(): Promise<void>;
}
