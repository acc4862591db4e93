/**
 * The command journal on Postgres, shared by every instance on the same database
 * and schema (table `command_journal`, created by migrations.ts; docs/postgres.md).
 * It honours the contract of command-journal.ts:
 *
 * Idempotence: `unique (session, "user", cid)`. A record is an
 * `INSERT ... ON CONFLICT DO NOTHING RETURNING pos`; a key already present (recorded
 * by this instance or another) is answered with its first position.
 *
 * Group commit: `record` only queues the command. The queue is flushed at the end of
 * the current event-loop turn (setImmediate), and while a flush is in flight new
 * calls wait for it and go together in the next one: at most one flush per journal at
 * a time, at most `maxBatch` commands and about `maxBatchBytes` of data each. A flush is ONE statement, so one round
 * trip and one commit (fsync) for the whole batch: the batch travels as one JSON
 * parameter (data as base64 msgpack), a CTE inserts the rows in batch order and
 * returns their positions, and the same statement looks up the first position of
 * each key that conflicted. A key twice in one batch is sent once; its other callers
 * get `duplicate: true` with that position. A failed flush (Postgres down, timeout)
 * rejects every caller of the batch: nothing of it is acked, and the clients retry
 * with the same cid, which is safe whether or not the rows were in fact committed.
 * A command the journal cannot store at all (a NUL character in a text field,
 * non-integer stamps) is rejected alone, before it joins a batch.
 *
 * Visibility (positions become readable in order): positions come from a sequence,
 * handed out before commit, so two concurrent transactions could commit out of
 * order and a reader paging by position could pass a lower position that commits a
 * moment later. To rule that out the flush statement takes a transaction-level
 * advisory lock, `pg_advisory_xact_lock(JOURNAL_LOCK_CLASS, hashtext('<schema>.command_journal'))`,
 * before it takes its first position (a one-time filter of the INSERT's SELECT,
 * evaluated before any row reaches the sequence; a test holds the lock elsewhere and
 * sees a flush wait), and holds it until its commit is
 * visible. Every writer of the table, in every instance, takes that lock, so writers
 * take positions and commit one after the other: a snapshot that sees some flush
 * sees every flush with lower positions. Readers take no lock: a plain
 * `WHERE pos > after ORDER BY pos` never skips a command. Gaps (a conflicting row
 * consumes a sequence value; a failed flush rolls back) are allowed by the contract.
 * This needs the sequence's CACHE to be 1 (the default): with a cache, each session
 * would hand out positions from its own range, out of commit order. The journal
 * checks it at start and refuses otherwise.
 *
 * The cost: inserts into one journal are serialized over all instances, each flush
 * holding the lock for its insert plus its commit (WAL flush). Group commit keeps
 * flushes few (one per instance at a time, up to `maxBatch` commands each), so the
 * bound is about `maxBatch` commands per commit latency for the whole deployment;
 * docs/postgres.md has measurements. Readers never wait.
 *
 * Ownership: the journal does not own `sql` (the engine does). close() stops taking
 * records, flushes what is queued, waits for flushes in flight and leaves `sql` open.
 */
import { Buffer } from 'node:buffer';
import type { Value } from '../../protocol/frames.js';
import type { Logger } from '../log.js';
import { commandKey, decodedEntry, splitCommand, type CommandFields, type CommandInput, type CommandJournal, type EncodedJournalEntry, type JournalEntry, type RecordResult } from './command-journal.js';
import { DEFAULT_SCHEMA, migrate, quoteSchema, type Sql } from './migrations.js';

/** First key of the journal's writer lock (the second is hashtext('<schema>.command_journal')): "SCJL". */
export const JOURNAL_LOCK_CLASS = 0x53434a4c;

/** Interval of the failure log lines while flushes keep failing. */
const FAILURE_LOG_MS = 10_000;

/** What a stored command costs besides its data, for read's `maxBytes` (as in the memory journal). */
const ENTRY_OVERHEAD_BYTES = 256;

/** Options of the Postgres journal. */
export interface PostgresJournalOptions {
  /** postgres.js client; not ended by close(). */
  sql: Sql;
  /** Schema of the tables (`public` by default). */
  schema?: string;
  /** Run the migrations before starting (default true; idempotent and safe with several instances). */
  migrate?: boolean;
  /** Most commands per flush (default 500). */
  maxBatch?: number;
  /** Most bytes of command data per flush (default 4 MiB; a single larger command goes alone). */
  maxBatchBytes?: number;
  /**
   * A flush not answered within this many ms rejects its callers (default 10,000), so
   * a hung connection cannot hold acks forever; the statement may still commit later,
   * which a retry with the same cid then reports as a duplicate.
   */
  flushTimeoutMs?: number;
  log?: Logger;
}

/** Counters, for tests and metrics. */
export interface PostgresJournalStats {
  /** Flush statements sent (one round trip each). */
  flushes: number;
  /** Flushes that failed or timed out (every caller of the batch was rejected). */
  failedFlushes: number;
  /** Flushes failed since the last one that succeeded (0 when the last one succeeded): a health signal. */
  failedInARow: number;
  /** record() calls resolved. */
  records: number;
  /** ... of which were duplicates. */
  duplicates: number;
  /** Most commands in one flush. */
  largestBatch: number;
}

/** The Postgres journal: a CommandJournal plus start() and its counters. */
export interface PostgresCommandJournal extends CommandJournal {
  /**
   * Runs the migrations (unless `migrate: false`) and checks the table; rejects when
   * Postgres cannot be reached or the schema is wrong (it may be called again).
   */
  start(): Promise<void>;
  readonly stats: Readonly<PostgresJournalStats>;
}

/** A command the journal refuses to store (it never will: retrying does not help). */
export class UnstorableCommandError extends Error {
  override readonly name = 'UnstorableCommandError';
}

interface Pending {
  cmd: CommandFields;
  data: Uint8Array;
  resolve(result: RecordResult): void;
  reject(err: Error): void;
}

/** One row of the flush statement's JSON parameter. */
interface Row {
  i: number;
  session: string;
  user: string;
  cid: string;
  role: string;
  type: string;
  /** base64 of the msgpack data */
  data: string;
  received_at: number;
  last_seq: number;
  last_seq_at: number;
  conn: string;
  shard: number;
  received_at_us: number;
  last_seq_at_us: number;
}

/** A row as read; bigint columns arrive as strings (or BigInt with a custom type): Number() them. */
interface StoredRow {
  pos: string;
  session: string;
  user: string;
  cid: string;
  role: string;
  type: string;
  data: Uint8Array;
  receivedat: string;
  lastseq: string;
  lastseqat: string;
  receivedatus: string;
  lastseqatus: string;
  conn: string;
  shard: number;
}

const TEXT_FIELDS = ['session', 'user', 'cid', 'role', 'type', 'conn'] as const;
const INTEGER_FIELDS = ['receivedAt', 'receivedAtUs', 'lastSeq', 'lastSeqAt', 'lastSeqAtUs', 'shard'] as const;

/** Why Postgres could never store `cmd`, or undefined. */
function unstorable(cmd: CommandFields): string | undefined {
  for (const f of TEXT_FIELDS) {
    const v: unknown = cmd[f];
    if (typeof v !== 'string') return `${f} is not a string`;
    // Postgres text cannot hold NUL.
    if (v.includes('\u0000')) return `${f} contains a NUL character`;
  }
  for (const f of INTEGER_FIELDS) {
    if (!Number.isSafeInteger(cmd[f])) return `${f} is not a safe integer`;
  }
  if (cmd.shard < -(2 ** 31) || cmd.shard >= 2 ** 31) return 'shard is out of the int4 range';
  return undefined;
}

const base64 = (bytes: Uint8Array) => Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64');

/** Creates and starts the journal (createPostgresCommandJournal + start()). */
export async function openPostgresCommandJournal(opts: PostgresJournalOptions): Promise<PostgresCommandJournal> {
  const journal = createPostgresCommandJournal(opts);
  await journal.start();
  return journal;
}

/**
 * Creates the journal on `opts.sql`; nothing touches Postgres until start(), and
 * record() and read() reject until start() has resolved.
 */
export function createPostgresCommandJournal(opts: PostgresJournalOptions): PostgresCommandJournal {
  const { sql, log } = opts;
  const schema = opts.schema ?? DEFAULT_SCHEMA;
  const maxBatch = opts.maxBatch ?? 500;
  const maxBatchBytes = opts.maxBatchBytes ?? 4 * 1024 * 1024;
  const flushTimeoutMs = opts.flushTimeoutMs ?? 10_000;
  if (!Number.isSafeInteger(maxBatch) || maxBatch < 1) throw new RangeError(`maxBatch must be an integer ≥ 1, got ${maxBatch}`);
  if (!Number.isSafeInteger(maxBatchBytes) || maxBatchBytes < 1) throw new RangeError(`maxBatchBytes must be an integer ≥ 1, got ${maxBatchBytes}`);
  if (!Number.isSafeInteger(flushTimeoutMs) || flushTimeoutMs < 1) throw new RangeError(`flushTimeoutMs must be an integer ≥ 1, got ${flushTimeoutMs}`);
  const s = quoteSchema(schema);
  const table = sql.unsafe(`${s}.command_journal`);
  const lockKey = `${schema}.command_journal`;

  /** Migrations, then the checks the journal relies on. */
  async function prepare(): Promise<void> {
    if (opts.migrate ?? true) await migrate(sql, { schema, log });
    const [seq] = await sql<[{ cache: string } | undefined]>`
      select seqcache::text as cache from pg_sequence
      where seqrelid = pg_get_serial_sequence(${`${s}.command_journal`}, 'pos')::regclass`;
    if (seq === undefined) throw new Error(`${s}.command_journal has no sequence on pos: run the migrations`);
    if (seq.cache !== '1') {
      throw new Error(`the sequence of ${s}.command_journal.pos has CACHE ${seq.cache}: positions would commit out of order; ALTER SEQUENCE ... CACHE 1`);
    }
  }
  let starting: Promise<void> | undefined;
  let started = false;

  const stats: PostgresJournalStats = { flushes: 0, failedFlushes: 0, failedInARow: 0, records: 0, duplicates: 0, largestBatch: 0 };
  const queue: Pending[] = [];
  let scheduled = false;
  let inFlight: Promise<void> | undefined;
  let closed = false;

  function schedule(): void {
    if (scheduled || inFlight !== undefined || queue.length === 0) return;
    scheduled = true;
    setImmediate(drain);
  }

  function drain(): void {
    scheduled = false;
    if (inFlight !== undefined || queue.length === 0) return;
    let n = 0;
    let bytes = 0;
    while (n < queue.length && n < maxBatch && (n === 0 || bytes + queue[n].data.length <= maxBatchBytes)) bytes += queue[n++].data.length;
    const batch = queue.splice(0, n);
    const done = flushWithTimeout(batch);
    inFlight = done;
    void done.then(() => {
      inFlight = undefined;
      schedule();
    });
  }

  // Failure logs: the first failed flush of an outage, then one line every
  // FAILURE_LOG_MS while it lasts, and one when a flush succeeds again.
  let lastFailureLog = 0;
  function failed(err: Error, commands: number): void {
    stats.failedFlushes++;
    const failedInARow = ++stats.failedInARow;
    const now = Date.now();
    if (failedInARow === 1 || now - lastFailureLog >= FAILURE_LOG_MS) {
      lastFailureLog = now;
      log?.warn({ err, commands, failedInARow }, 'recording commands in Postgres failed; their clients get a retryable error');
    }
  }
  function recovered(): void {
    if (stats.failedInARow === 0) return;
    log?.info({ failedFlushes: stats.failedInARow }, 'recording commands in Postgres works again');
    stats.failedInARow = 0;
  }

  /**
   * Flushes `batch`, settling every caller; resolves (never rejects) when done or
   * timed out. A timed-out statement is left to finish (or fail) on its own: the
   * next batch does not wait for it, and close() does not either.
   */
  function flushWithTimeout(batch: Pending[]): Promise<void> {
    let settled = false;
    const settle = (fn: () => void) => {
      if (settled) return;
      settled = true;
      fn();
    };
    const work = flush(batch).then(
      (results) => settle(() => {
        recovered();
        batch.forEach((p, i) => {
          stats.records++;
          if (results[i].duplicate) stats.duplicates++;
          p.resolve(results[i]);
        });
      }),
      (err: unknown) => settle(() => {
        const error = err instanceof Error ? err : new Error(String(err));
        failed(error, batch.length);
        for (const p of batch) p.reject(error);
      }),
    );
    return new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        settle(() => {
          const error = new Error(`Postgres did not answer a flush of ${batch.length} commands within ${flushTimeoutMs} ms`);
          failed(error, batch.length);
          for (const p of batch) p.reject(error);
        });
        resolve();
      }, flushTimeoutMs);
      timer.unref();
      void work.then(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  /** One statement for the batch; returns each caller's result, in batch order. */
  async function flush(batch: Pending[]): Promise<RecordResult[]> {
    stats.flushes++;
    stats.largestBatch = Math.max(stats.largestBatch, batch.length);
    // Each key once: `leaderOf[i]` is the index in `rows` of caller i's key.
    const firstOfKey = new Map<string, number>();
    const leaderOf: number[] = [];
    const follows: boolean[] = [];
    const rows: Row[] = [];
    for (const { cmd, data } of batch) {
      const key = commandKey(cmd);
      let leader = firstOfKey.get(key);
      follows.push(leader !== undefined);
      if (leader === undefined) {
        leader = rows.length;
        firstOfKey.set(key, leader);
        rows.push({
          i: leader, session: cmd.session, user: cmd.user, cid: cmd.cid, role: cmd.role, type: cmd.type, data: base64(data),
          received_at: cmd.receivedAt, last_seq: cmd.lastSeq, last_seq_at: cmd.lastSeqAt, conn: cmd.conn, shard: cmd.shard,
          received_at_us: cmd.receivedAtUs, last_seq_at_us: cmd.lastSeqAtUs,
        });
      }
      leaderOf.push(leader);
    }
    const answers = await sql<{ i: number; pos: string | null; duplicate: boolean }[]>`
      with input as (
        select * from json_to_recordset(${JSON.stringify(rows)}::text::json) as r(
          i int, session text, "user" text, cid text, role text, type text, data text,
          received_at bigint, last_seq bigint, last_seq_at bigint, conn text, shard int,
          received_at_us bigint, last_seq_at_us bigint)
      ), inserted as (
        insert into ${table} (session, "user", cid, role, type, data, received_at, last_seq, last_seq_at, conn, shard, received_at_us, last_seq_at_us)
        select session, "user", cid, role, type, decode(data, 'base64'), received_at, last_seq, last_seq_at, conn, shard, received_at_us, last_seq_at_us
        from input
        -- A one-time filter (an InitPlan, run before the first row reaches the
        -- sequence) takes the lock. Not EXISTS: the planner drops its target list.
        where (select true from pg_advisory_xact_lock(${JOURNAL_LOCK_CLASS}, hashtext(${lockKey})))
        order by i
        on conflict (session, "user", cid) do nothing
        returning pos, session, "user", cid
      )
      select input.i,
             coalesce(inserted.pos, (select j.pos from ${table} j
                                     where j.session = input.session and j."user" = input."user" and j.cid = input.cid)) as pos,
             inserted.pos is null as duplicate
      from input
      left join inserted on inserted.session = input.session and inserted."user" = input."user" and inserted.cid = input.cid`;
    const outcome: Array<RecordResult | undefined> = new Array(rows.length);
    const missing: Row[] = [];
    for (const a of answers) {
      if (a.pos !== null) outcome[a.i] = { duplicate: a.duplicate, pos: Number(a.pos) };
      else missing.push(rows[a.i]);
    }
    if (missing.length > 0) {
      // The conflicting row was committed by another instance after this
      // statement's snapshot was taken (its insert waited for it): a new statement
      // sees it.
      const found = await sql<{ i: number; pos: string }[]>`
        select m.i, j.pos from json_to_recordset(${JSON.stringify(missing.map(({ i, session, user, cid }) => ({ i, session, user, cid })))}::text::json)
          as m(i int, session text, "user" text, cid text)
        join ${table} j on j.session = m.session and j."user" = m."user" and j.cid = m.cid`;
      for (const f of found) outcome[f.i] = { duplicate: true, pos: Number(f.pos) };
    }
    return leaderOf.map((leader, i) => {
      const result = outcome[leader];
      if (result === undefined) throw new Error(`Postgres neither stored nor found command ${JSON.stringify(batch[i].cmd.cid)}`);
      // Later callers of a key in the same batch repeat its first caller.
      return follows[i] ? { duplicate: true, pos: result.pos } : result;
    });
  }

  function entryOf(r: StoredRow): EncodedJournalEntry {
    return {
      session: r.session,
      user: r.user,
      role: r.role,
      cid: r.cid,
      type: r.type,
      data: r.data,
      receivedAt: Number(r.receivedat),
      receivedAtUs: Number(r.receivedatus),
      lastSeq: Number(r.lastseq),
      lastSeqAt: Number(r.lastseqat),
      lastSeqAtUs: Number(r.lastseqatus),
      conn: r.conn,
      shard: r.shard,
      pos: Number(r.pos),
    };
  }

  const notStarted = () => Promise.reject(new Error('the Postgres command journal is not started'));

  const journal: PostgresCommandJournal = {
    stats,
    start(): Promise<void> {
      starting ??= prepare().then(
        () => {
          started = true;
        },
        (err: unknown) => {
          starting = undefined; // start() may be called again
          throw err;
        },
      );
      return starting;
    },
    record(input: CommandInput): Promise<RecordResult> {
      if (closed) return Promise.reject(new Error('the Postgres command journal is closed'));
      if (!started) return notStarted();
      const problem = unstorable(input);
      if (problem !== undefined) return Promise.reject(new UnstorableCommandError(`the command cannot be stored: ${problem}`));
      let cmd: CommandFields;
      let data: Uint8Array;
      try {
        ({ fields: cmd, data } = splitCommand(input));
      } catch (err) {
        return Promise.reject(new UnstorableCommandError(`the command's data cannot be encoded: ${err instanceof Error ? err.message : String(err)}`));
      }
      return new Promise<RecordResult>((resolve, reject) => {
        queue.push({ cmd, data, resolve, reject });
        schedule();
      });
    },

    async read(after: number, limit: number, maxBytes?: number): Promise<JournalEntry[]> {
      return (await journal.readEncoded(after, limit, maxBytes)).map((e) =>
        decodedEntry(e, (reason) => log?.error({ pos: e.pos, reason }, 'a command in the Postgres journal has data that is not msgpack; relaying it with null data')),
      );
    },

    async readEncoded(after: number, limit: number, maxBytes = Number.MAX_SAFE_INTEGER): Promise<EncodedJournalEntry[]> {
      if (!started) return notStarted();
      if (!(limit >= 1)) return [];
      const from = Number.isFinite(after) ? Math.max(0, Math.floor(after)) : after > 0 ? Number.MAX_SAFE_INTEGER : 0;
      const budget = Number.isFinite(maxBytes) ? Math.max(0, Math.floor(maxBytes)) : Number.MAX_SAFE_INTEGER;
      const rows = await sql<StoredRow[]>`
        -- Aliases without underscores: a client with a column-name transform (e.g.
        -- postgres.camel) returns them unchanged.
        select pos, session, "user", cid, role, type, data,
               received_at as receivedat, last_seq as lastseq, last_seq_at as lastseqat, conn, shard,
               coalesce(received_at_us, received_at * 1000) as receivedatus,
               coalesce(last_seq_at_us, last_seq_at * 1000) as lastseqatus
        from (
          select page.*,
                 sum(octet_length(page.data) + ${ENTRY_OVERHEAD_BYTES}) over (order by page.pos) as total,
                 row_number() over (order by page.pos) as n
          from (
            select * from ${table} where pos > ${String(from)}::bigint order by pos limit ${Math.min(Math.floor(limit), 2 ** 31 - 1)}::int
          ) page
        ) sized
        where n = 1 or total <= ${String(budget)}::bigint
        order by pos`;
      return rows.map(entryOf);
    },

    async head(): Promise<number> {
      if (!started) return notStarted();
      // max(pos) of the rows there (the primary key's index: one probe), not the
      // sequence: a rolled-back or conflicting insert leaves no row behind.
      const [row] = await sql<[{ head: string }]>`select coalesce(max(pos), 0)::text as head from ${table}`;
      return Number(row.head);
    },

    taken() {
      // Kept by commandRetentionHours (journal-retention.ts), which reads the relay's cursor itself.
    },
    async close(): Promise<void> {
      closed = true;
      // Flush what is queued, one batch after the other, and wait for the last.
      while (queue.length > 0 || inFlight !== undefined) {
        if (inFlight !== undefined) await inFlight;
        else drain();
      }
    },
  };
  return journal;
}
