/**
 * Standalone command journal: commands in this process's memory, bounded, read by
 * upstream through `GET /v1/commands` (and by the RabbitMQ relay when one is set).
 * Durable only as long as the process lives; the Postgres journal is the production
 * path. A position is handed out and made readable in the same synchronous step, so
 * readers see positions in order (the visibility rule of command-journal.ts) with no
 * bookkeeping.
 *
 * It keeps two things with different bounds:
 * - **Outcomes** (key → position), to answer retries `duplicate`: those of every
 *   readable command, and of the newest `capacity` commands upstream took that are
 *   no longer readable. A few dozen bytes each, so a retry is answered right long
 *   after the data went. A command pushed out before upstream took it loses its
 *   outcome with its data: its retry is journaled again, its one way upstream (with
 *   the relay, that retry's ack waits for RabbitMQ as the first one's did).
 * - **Readable commands** (fields and data), for readers: each command's data kept
 *   msgpack-encoded (about its wire size, where the decoded objects can be many
 *   times larger: a 16 KB frame of empty maps decodes to ~1 MB), at most `capacity`
 *   commands and `maxBytes` of them; past either bound the oldest go, so a reader
 *   further behind than that misses them (its stated bound). Each user holds at most
 *   `maxBytesPerUser`: past that, that user's own oldest go, so one participant
 *   sending at its rate limit cannot push everyone else's commands out before
 *   upstream read them. A command upstream has taken (`taken`) stays readable
 *   `keepTakenMs` longer, for a reader that lost what it read in a crash, and then
 *   goes: commands upstream has taken do not hold memory until newer ones push
 *   them out.
 *
 * Data lives in a slab arena (slab-arena.ts), so what the journal lets go leaves
 * the process's memory instead of staying resident between other allocations; the
 * global byte bound also holds the slabs themselves to `maxBytes` (plus one).
 *
 * Layout: `entries` in position order, from which dropped commands are cut out in
 * bulk once they are many (so positions have gaps: reads find their start by binary
 * search); each user's readable commands also in a queue of their own, oldest
 * first, so dropping a user's oldest is O(1). What upstream has taken is a prefix
 * of positions, so what outlived `keepTakenMs` is dropped from the front.
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
import { Fifo } from './fifo.js';
import { SLAB_BYTES, SlabArena, type SlabCell } from './slab-arena.js';
import { releasedBufferMemory } from '../memory-release.js';

/** Bounds of the memory journal. */
export interface MemoryJournalOptions {
  /** Most commands kept. */
  capacity: number;
  /** Most bytes kept (encoded data plus a fixed allowance per command). */
  maxBytes: number;
  /** Most bytes kept of one user's commands (default: maxBytes, no share). */
  maxBytesPerUser?: number;
  /** How long a command stays readable once upstream has taken it (`taken`; ms; default: until a bound pushes it out). */
  keepTakenMs?: number;
}

interface StoredCommand extends SlabCell {
  command: CommandFields;
  /** commandKey(command), the key of its outcome. */
  key: string;
  pos: number;
  bytes: number;
  /** Dropped: no longer readable, waiting to be cut out of `entries`. */
  dropped: boolean;
}

/** One user's live commands, oldest first, and their bytes. */
interface UserShare {
  items: Fifo<StoredCommand>;
  bytes: number;
}

/** What a stored command costs besides its data: ids, strings, the entry itself. */
const ENTRY_OVERHEAD_BYTES = 256;
const NO_DATA = new Uint8Array(0);
/** How often taken commands past `keepTakenMs` are looked for (at most). */
const EXPIRY_SWEEP_MS = 1000;

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
  const arena = new SlabArena(releasedBufferMemory);
  /** Outcomes of readable commands and of those in `gone[goneHead..]`. */
  const byKey = new Map<string, number>();
  /** Keys of commands upstream took, no longer readable, whose outcome is still known, oldest first. */
  const gone = new Fifo<string>();
  const shares = new Map<string, UserShare>();
  let nextPos = 1;
  /** Upstream has taken every command at or below this position. */
  let takenUpTo = 0;
  /**
   * When takenUpTo moved, oldest first: a command goes keepTakenMs after the first
   * mark at or above it. Marks within EXPIRY_SWEEP_MS of each other are one (the
   * first one's time), so a reader polling all the time adds a mark a second, and
   * a command may go up to that much early.
   */
  const marks = new Fifo<{ upTo: number; at: number }>();
  const keepTakenMs = opts.keepTakenMs ?? Number.POSITIVE_INFINITY;
  const sweeper = Number.isFinite(keepTakenMs) ? setInterval(expireTaken, Math.min(EXPIRY_SWEEP_MS, Math.max(10, keepTakenMs))) : undefined;
  // The journal's owner closes it; a sweep pending alone must not keep the process up.
  sweeper?.unref();

  /** Makes a live command unreadable: the oldest of its user's share, whichever bound it is dropped for. Its outcome stays once upstream took it. */
  function drop(share: UserShare, user: string): void {
    const old = share.items.shift()!;
    share.bytes -= old.bytes;
    if (share.items.size === 0) shares.delete(user);
    bytes -= old.bytes;
    if (old.pos <= takenUpTo) gone.push(old.key);
    else byKey.delete(old.key);
    old.dropped = true;
    arena.free(old);
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

  /** Drops the readable commands upstream took more than keepTakenMs ago (a timer calls it). */
  function expireTaken(): void {
    const before = performance.now() - keepTakenMs;
    let upTo = 0;
    while ((marks.peek()?.at ?? Infinity) <= before) upTo = marks.shift()!.upTo;
    if (upTo === 0) return;
    skipDropped();
    while (head < entries.length && entries[head].pos <= upTo) {
      dropOldest();
      skipDropped();
    }
    arena.compact();
    compact();
  }

  /** Forgets the oldest outcomes of commands no longer readable past `capacity`, then cuts dropped entries out of `entries` once they are at least half of it. */
  function compact(): void {
    while (gone.size > opts.capacity) byKey.delete(gone.shift()!);
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

  /** The readable commands a read returns: after `after`, at most `limit`, stopping before passing `maxBytes` (but at least one). */
  function page(after: number, limit: number, maxBytes = Number.POSITIVE_INFINITY): StoredCommand[] {
    const out: StoredCommand[] = [];
    let size = 0;
    for (let i = firstAfter(after); i < entries.length && out.length < limit; i++) {
      if (entries[i].dropped) continue;
      size += entries[i].bytes;
      // At least one entry, so a reader always advances.
      if (out.length > 0 && size > maxBytes) break;
      out.push(entries[i]);
    }
    return out;
  }

  const journal = {
    async record(cmd: CommandInput): Promise<RecordResult> {
      const key = commandKey(cmd);
      const existing = byKey.get(key);
      if (existing !== undefined) return { duplicate: true, pos: existing };
      const { fields: command, data: encoded } = splitCommand(cmd);
      const stored: StoredCommand = { command, key, data: NO_DATA, slab: null, pos: nextPos++, bytes: encoded.length + ENTRY_OVERHEAD_BYTES, dropped: false };
      arena.store(stored, encoded);
      entries.push(stored);
      let share = shares.get(command.user);
      if (share === undefined) {
        share = { items: new Fifo(), bytes: 0 };
        shares.set(command.user, share);
      }
      share.items.push(stored);
      share.bytes += stored.bytes;
      bytes += stored.bytes;
      byKey.set(key, stored.pos);
      // The newest command is always kept, whatever its size.
      while (share.bytes > maxBytesPerUser && share.items.size > 1) drop(share, command.user);
      while (live() > opts.capacity || (bytes > opts.maxBytes && live() > 1)) dropOldest();
      // Compacting after the drops above copies only what stays; slabs pinned past
      // the bound by a few survivors each cost their oldest commands.
      arena.compact();
      while (arena.held > opts.maxBytes + SLAB_BYTES && live() > 1) {
        dropOldest();
        arena.compact();
      }
      compact();
      return { duplicate: false, pos: stored.pos };
    },
    async read(after: number, limit: number, maxBytes?: number): Promise<JournalEntry[]> {
      // Decoded straight from the slab. The bytes were encoded here from validated
      // values: decoding cannot fail.
      return page(after, limit, maxBytes).map(({ command, pos, data }) => decodedEntry({ ...command, pos, data }));
    },
    async readEncoded(after: number, limit: number, maxBytes?: number): Promise<EncodedJournalEntry[]> {
      // Copies: a view would take its whole slab along wherever it is posted (a
      // structured clone copies a view's entire buffer), and pin it there.
      return page(after, limit, maxBytes).map(({ command, pos, data }) => ({ ...command, pos, data: data.slice() }));
    },
    taken(position: number) {
      // Nothing past the last position handed out can have been taken.
      const upTo = Math.min(position, nextPos - 1);
      if (upTo <= takenUpTo) return;
      takenUpTo = upTo;
      if (!Number.isFinite(keepTakenMs)) return;
      const now = performance.now();
      const last = marks.last();
      if (last !== undefined && now - last.at < EXPIRY_SWEEP_MS) last.upTo = upTo;
      else marks.push({ upTo, at: now });
    },
    async head() {
      // Positions are handed out and readable in the same step: the last one handed out.
      return nextPos - 1;
    },
    async close() {
      clearInterval(sweeper);
      marks.clear();
      entries = [];
      head = 0;
      dropped = 0;
      bytes = 0;
      byKey.clear();
      gone.clear();
      shares.clear();
      arena.clear();
    },
  } satisfies CommandJournal;
  return journal;
}
