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
 * that misses them (its stated bound). Each user holds at most `maxBytesPerUser` of
 * it: past that, that user's own oldest commands go, so one participant sending at
 * its rate limit cannot push everyone else's commands out before upstream read them.
 *
 * Layout: `entries` in position order, from which a user's dropped commands are cut
 * out in bulk once they are many (so positions have gaps: reads find their start
 * by binary search); each user's live commands also in a queue of their own, oldest
 * first, so dropping a user's oldest is O(1).
 */
import {
  commandKey,
  decodedEntry,
  splitCommand,
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
  /** Most bytes kept of one user's commands (default: maxBytes, no share). */
  maxBytesPerUser?: number;
}

interface StoredCommand {
  command: CommandFields;
  data: Uint8Array;
  pos: number;
  bytes: number;
  /** Dropped: no longer readable, waiting to be cut out of `entries`. */
  dropped: boolean;
}

/** One user's live commands, oldest first (items[head..]), and their bytes. */
interface UserShare {
  items: StoredCommand[];
  head: number;
  bytes: number;
}

/** What a stored command costs besides its data: ids, strings, the entry itself. */
const ENTRY_OVERHEAD_BYTES = 256;
const NO_DATA = new Uint8Array(0);

/** Creates the in-memory journal; see the header comment for its bounds. */
export function createMemoryCommandJournal(opts: MemoryJournalOptions): CommandJournal {
  const maxBytesPerUser = opts.maxBytesPerUser ?? opts.maxBytes;
  // entries[head..] hold every live command and the dropped ones not cut out yet;
  // dead prefixes and dropped entries are cut off in bulk (per-command splices
  // would copy the whole array).
  let entries: StoredCommand[] = [];
  let head = 0;
  /** Dropped entries in entries[head..]. */
  let dropped = 0;
  let bytes = 0;
  const byKey = new Map<string, number>();
  const shares = new Map<string, UserShare>();
  let nextPos = 1;

  /** Forgets a live command: the oldest of its user's share, whichever bound it is dropped for. */
  function drop(share: UserShare, user: string): void {
    const old = share.items[share.head++];
    share.bytes -= old.bytes;
    if (share.head === share.items.length) shares.delete(user);
    else if (share.head >= 64 && share.head * 2 >= share.items.length) {
      share.items = share.items.slice(share.head);
      share.head = 0;
    }
    byKey.delete(commandKey(old.command));
    bytes -= old.bytes;
    old.dropped = true;
    old.data = NO_DATA;
    dropped++;
  }

  /** Moves `head` past dropped entries: the first entry is then live (or there is none). */
  function skipDropped(): void {
    while (head < entries.length && entries[head].dropped) {
      head++;
      dropped--;
    }
  }

  /** Drops the oldest live command of all. */
  function dropOldest(): void {
    skipDropped();
    const user = entries[head].command.user;
    drop(shares.get(user)!, user);
  }

  /** Cuts dropped entries out of `entries` once they are at least half of it. */
  function compact(): void {
    skipDropped();
    if (dropped >= 1024 && dropped * 2 >= entries.length - head) {
      entries = entries.slice(head).filter((e) => !e.dropped);
      head = 0;
      dropped = 0;
    } else if (head >= 1024 && head * 2 >= entries.length) {
      entries = entries.slice(head);
      head = 0;
    }
  }

  /** Commands kept. */
  const live = () => entries.length - head - dropped;

  /** Index of the first entry with a position above `after`. */
  function firstAfter(after: number): number {
    let lo = head;
    let hi = entries.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (entries[mid].pos <= after) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  const journal = {
    async record(cmd: CommandInput): Promise<RecordResult> {
      const key = commandKey(cmd);
      const existing = byKey.get(key);
      if (existing !== undefined) return { duplicate: true, pos: existing };
      const { fields: command, data: encoded } = splitCommand(cmd);
      const stored: StoredCommand = { command, data: encoded, pos: nextPos++, bytes: encoded.length + ENTRY_OVERHEAD_BYTES, dropped: false };
      entries.push(stored);
      let share = shares.get(command.user);
      if (share === undefined) {
        share = { items: [], head: 0, bytes: 0 };
        shares.set(command.user, share);
      }
      share.items.push(stored);
      share.bytes += stored.bytes;
      bytes += stored.bytes;
      byKey.set(key, stored.pos);
      // The newest command is always kept, whatever its size.
      while (share.bytes > maxBytesPerUser && share.items.length - share.head > 1) drop(share, command.user);
      while (live() > opts.capacity || (bytes > opts.maxBytes && live() > 1)) dropOldest();
      compact();
      return { duplicate: false, pos: stored.pos };
    },
    async read(after: number, limit: number, maxBytes?: number): Promise<JournalEntry[]> {
      // The bytes were encoded here from validated values: decoding cannot fail.
      return (await journal.readEncoded(after, limit, maxBytes)).map((e) => decodedEntry(e));
    },
    async readEncoded(after: number, limit: number, maxBytes = Number.POSITIVE_INFINITY): Promise<EncodedJournalEntry[]> {
      const out: EncodedJournalEntry[] = [];
      let size = 0;
      for (let i = firstAfter(after); i < entries.length && out.length < limit; i++) {
        if (entries[i].dropped) continue;
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
      dropped = 0;
      bytes = 0;
      byKey.clear();
      shares.clear();
    },
  } satisfies CommandJournal;
  return journal;
}
