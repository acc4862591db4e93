/**
 * Standalone command journal: commands in this process's memory, bounded, read by
 * upstream through `GET /v1/commands`. Durable only as long as the process lives;
 * the Postgres journal is the production path. A position is handed out and made
 * readable in the same synchronous step, so readers see positions in order (the
 * visibility rule of command-journal.ts) with no bookkeeping; its bound is
 * `capacity`: a reader further behind than that misses the evicted commands.
 */
import type { Command, CommandJournal, JournalEntry, RecordResult } from './command-journal.js';

/** Creates the in-memory journal keeping the newest `capacity` commands. */
export function createMemoryCommandJournal(capacity: number): CommandJournal {
  // entries[head..] are live; the dead prefix is cut off in bulk (shift() per
  // command would copy the whole array).
  let entries: JournalEntry[] = [];
  let head = 0;
  const byKey = new Map<string, JournalEntry>();
  let nextPos = 1;

  const keyOf = (c: Command) => `${c.session}\u0000${c.user}\u0000${c.cid}`;

  const journal = {
    async record(cmd: Command): Promise<RecordResult> {
      const key = keyOf(cmd);
      const existing = byKey.get(key);
      if (existing) return { duplicate: true, pos: existing.pos };
      const entry: JournalEntry = { ...cmd, pos: nextPos++ };
      entries.push(entry);
      byKey.set(key, entry);
      if (entries.length - head > capacity) {
        byKey.delete(keyOf(entries[head]));
        head++;
        if (head >= capacity) {
          entries = entries.slice(head);
          head = 0;
        }
      }
      return { duplicate: false, pos: entry.pos };
    },
    async read(after: number, limit: number) {
      // Positions are dense, so the first wanted entry is found by arithmetic.
      if (entries.length === head) return [];
      const first = head + Math.max(0, after + 1 - entries[head].pos);
      return entries.slice(first, first + limit);
    },
    async close() {
      entries = [];
      head = 0;
      byKey.clear();
    },
  } satisfies CommandJournal;
  return journal;
}
