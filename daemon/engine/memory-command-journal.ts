/**
 * Standalone command journal: commands in this process's memory, bounded, read by
 * upstream through `GET /v1/commands`. Durable only as long as the process lives;
 * the Postgres journal is the production path. A position is handed out and made
 * readable in the same synchronous step, so readers see positions in order (the
 * visibility rule of command-journal.ts) with no bookkeeping.
 *
 * Memory: each command's data is kept msgpack-encoded (about its wire size, where
 * the decoded objects can be many times larger: a 16 KB frame of empty maps decodes
 * to ~1 MB), and the journal holds at most `capacity` commands and `maxBytes` of
 * them; past either bound the oldest are forgotten, so a reader further behind than
 * that misses them (its stated bound).
 */
import {
  decodedEntry,
  splitCommand,
  type Command,
  type CommandFields,
  type CommandInput,
  type CommandJournal,
  type EncodedJournalEntry,
  type JournalEntry,
  type RecordResult,
} from './command-journal.js';

/** Bounds of the memory journal. */
export interface MemoryJournalOptions {
  /** Most commands kept. */
  capacity: number;
  /** Most bytes kept (encoded data plus a fixed allowance per command). */
  maxBytes: number;
}

interface StoredCommand {
  command: CommandFields;
  data: Uint8Array;
  pos: number;
  bytes: number;
}

/** What a stored command costs besides its data: ids, strings, the entry itself. */
const ENTRY_OVERHEAD_BYTES = 256;

/** Creates the in-memory journal; see the header comment for its bounds. */
export function createMemoryCommandJournal(opts: MemoryJournalOptions): CommandJournal {
  // entries[head..] are live; the dead prefix is cut off in bulk (shift() per
  // command would copy the whole array).
  let entries: StoredCommand[] = [];
  let head = 0;
  let bytes = 0;
  const byKey = new Map<string, number>();
  let nextPos = 1;

  const keyOf = (c: Pick<Command, 'session' | 'user' | 'cid'>) => `${c.session}\u0000${c.user}\u0000${c.cid}`;

  function evictOldest(): void {
    const old = entries[head++];
    byKey.delete(keyOf(old.command));
    bytes -= old.bytes;
    if (head >= 1024 && head * 2 >= entries.length) {
      entries = entries.slice(head);
      head = 0;
    }
  }

  const journal = {
    async record(cmd: CommandInput): Promise<RecordResult> {
      const key = keyOf(cmd);
      const existing = byKey.get(key);
      if (existing !== undefined) return { duplicate: true, pos: existing };
      const { fields: command, data: encoded } = splitCommand(cmd);
      const stored: StoredCommand = { command, data: encoded, pos: nextPos++, bytes: encoded.length + ENTRY_OVERHEAD_BYTES };
      entries.push(stored);
      bytes += stored.bytes;
      byKey.set(key, stored.pos);
      while (entries.length - head > opts.capacity || (bytes > opts.maxBytes && entries.length - head > 1)) evictOldest();
      return { duplicate: false, pos: stored.pos };
    },
    async read(after: number, limit: number, maxBytes?: number): Promise<JournalEntry[]> {
      // The bytes were encoded here from validated values: decoding cannot fail.
      return (await journal.readEncoded(after, limit, maxBytes)).map((e) => decodedEntry(e));
    },
    async readEncoded(after: number, limit: number, maxBytes = Number.POSITIVE_INFINITY): Promise<EncodedJournalEntry[]> {
      // Positions are dense, so the first wanted entry is found by arithmetic.
      if (entries.length === head) return [];
      const first = head + Math.max(0, after + 1 - entries[head].pos);
      const out: EncodedJournalEntry[] = [];
      let size = 0;
      for (let i = first; i < entries.length && out.length < limit; i++) {
        size += entries[i].bytes;
        // At least one entry, so a reader always advances.
        if (out.length > 0 && size > maxBytes) break;
        const { command, data, pos } = entries[i];
        out.push({ ...command, pos, data });
      }
      return out;
    },
    async head() {
      // Positions are handed out and readable in the same step: the last one handed out.
      return nextPos - 1;
    },
    async close() {
      entries = [];
      head = 0;
      bytes = 0;
      byKey.clear();
    },
  } satisfies CommandJournal;
  return journal;
}
