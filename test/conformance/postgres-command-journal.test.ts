// The shared CommandJournal suite on the Postgres journal (a schema per journal,
// dropped when the suite closes it), plus what only Postgres shows: group commit
// batches concurrent records into few statements, the migration runner is
// idempotent and safe with five instances starting at once, two instances on one
// schema share keys and positions, positions commit in order under concurrent
// writers (the writer lock), the relay cursor store, and an outage of a private
// Postgres (records reject, nothing unstored is acked, data survives a restart).
import t, { type Test } from 'tap';
import type { Command, CommandJournal } from '../../daemon/engine/command-journal.js';
import { MIGRATIONS, migrate, type Migration, type Sql } from '../../daemon/engine/migrations.js';
import {
  createPostgresCommandJournal,
  openPostgresCommandJournal,
  JOURNAL_LOCK_CLASS,
  UnstorableCommandError,
  type PostgresCommandJournal,
  type PostgresJournalOptions,
} from '../../daemon/engine/postgres-command-journal.js';
import { AMQP_RELAY, createPostgresCursorStore } from '../../daemon/engine/postgres-cursor-store.js';
import { BATCH, JournalRetention, pruneJournal } from '../../daemon/engine/journal-retention.js';
import { command, commandJournalConformance, visibilityProblems, writeWhileReading } from './command-journal.js';
import { connect, connectTest, createTestSchema, schemaName, withSchema } from '../support/postgres.js';
import { startPostgresServer } from '../support/postgres-server.js';
import { createLogger } from '../../daemon/log.js';

const shared = connectTest(t);

commandJournalConformance(t, 'postgres', async () => {
  const { schema, drop } = await createTestSchema();
  const j = await openPostgresCommandJournal({ sql: shared, schema });
  return {
    record: (cmd) => j.record(cmd),
    read: (after, limit, maxBytes) => j.read(after, limit, maxBytes),
    readEncoded: (after, limit, maxBytes) => j.readEncoded(after, limit, maxBytes),
    head: () => j.head(),
    taken: (upTo) => j.taken(upTo),
    async close() {
      await j.close();
      await drop();
    },
  };
});

/** A journal on `schema`, closed at teardown. */
async function journalOn(t: Test, schema: string, opts: Partial<PostgresJournalOptions> = {}): Promise<PostgresCommandJournal> {
  const j = await openPostgresCommandJournal({ sql: shared, schema, ...opts });
  t.teardown(() => j.close());
  return j;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Settles to 'pending' if `p` has not settled after `ms`. */
async function stateAfter(p: Promise<unknown>, ms: number): Promise<'resolved' | 'rejected' | 'pending'> {
  return Promise.race([p.then(() => 'resolved' as const, () => 'rejected' as const), sleep(ms).then(() => 'pending' as const)]);
}

t.test('group commit: concurrent records go in few statements', async (t) => {
  const schema = await withSchema(t);
  const j = await journalOn(t, schema);
  const results = await Promise.all(Array.from({ length: 200 }, (_, i) => j.record(command({ cid: `c${i}` }))));
  t.equal(j.stats.flushes, 1, '200 records of one turn: one statement');
  t.equal(new Set(results.map((r) => r.pos)).size, 200, 'distinct positions');
  t.ok(results.every((r) => !r.duplicate));
  t.same(results.map((r) => r.pos), [...results.map((r) => r.pos)].sort((a, b) => a - b), 'a batch takes positions in call order');

  const small = await journalOn(t, schema, { maxBatch: 50 });
  await Promise.all(Array.from({ length: 200 }, (_, i) => small.record(command({ cid: `d${i}` }))));
  t.equal(small.stats.flushes, 4, 'maxBatch bounds a statement: 200 records in 4');
  t.equal(small.stats.largestBatch, 50);

  // Records arriving while a flush is in flight wait for it and go together.
  const before = j.stats.flushes;
  const waves: Promise<unknown>[] = [];
  for (let w = 0; w < 20; w++) {
    for (let i = 0; i < 10; i++) waves.push(j.record(command({ cid: `w${w}-${i}` })));
    await new Promise((resolve) => setImmediate(resolve));
  }
  await Promise.all(waves);
  const used = j.stats.flushes - before;
  t.ok(used < 20, `20 waves of 10 records a turn apart took ${used} statements`);
  t.equal((await j.read(0, 1000)).length, 200 + 200 + 200);
});

t.test('group commit: a key twice in one batch, and keys known before, resolve every caller', async (t) => {
  const schema = await withSchema(t);
  const j = await journalOn(t, schema);
  const known = await j.record(command({ cid: 'known' }));
  const [a, b, c, d, e] = await Promise.all([
    j.record(command({ cid: 'twice', data: 1 })),
    j.record(command({ cid: 'other' })),
    j.record(command({ cid: 'twice', data: 2 })),
    j.record(command({ cid: 'known' })),
    j.record(command({ cid: 'known' })),
  ]);
  t.equal(j.stats.flushes, 2, 'one statement for the five');
  t.equal(a.duplicate, false);
  t.same(c, { duplicate: true, pos: a.pos }, 'the second of a key in a batch is a duplicate of the first');
  t.equal(b.duplicate, false);
  t.same(d, { duplicate: true, pos: known.pos });
  t.same(e, { duplicate: true, pos: known.pos });
  const all = await j.read(0, 100);
  t.same(all.map((x) => [x.cid, x.data]), [['known', { choice: 'A' }], ['twice', 1], ['other', { choice: 'A' }]], 'the first version is kept');
});

t.test('a command Postgres cannot store is rejected alone', async (t) => {
  const schema = await withSchema(t);
  const j = await journalOn(t, schema);
  const [bad, good, float] = await Promise.allSettled([
    j.record(command({ cid: 'nul\u0000cid' })),
    j.record(command({ cid: 'fine' })),
    j.record(command({ cid: 'float', receivedAt: 1.5 })),
  ]);
  t.equal(bad.status, 'rejected');
  t.ok(bad.status === 'rejected' && bad.reason instanceof UnstorableCommandError, 'an UnstorableCommandError');
  t.equal(float.status, 'rejected');
  t.equal(good.status, 'fulfilled', 'its batch-mates are stored');
  t.same((await j.read(0, 10)).map((e) => e.cid), ['fine']);
});

t.test('read: numbers, data and stamps as recorded; maxBytes; limit; a large journal pages by index', async (t) => {
  const schema = await withSchema(t);
  const j = await journalOn(t, schema);
  const big = { list: Array.from({ length: 1000 }, (_, i) => ({ i, s: 'x'.repeat(10) })), n: 2 ** 40, neg: -3, f: 1.5, nil: null, bin: true };
  const cmd: Command = command({ cid: 'big', data: big, receivedAt: 2 ** 52, lastSeq: 2 ** 40 + 1, lastSeqAt: 0, shard: 31, conn: 'x.1.2', role: 'host', type: 'vote' });
  const r = await j.record(cmd);
  const [entry] = await j.read(0, 10);
  t.same(entry, { ...cmd, pos: r.pos }, 'every field back, numbers as numbers');
  t.type(entry.pos, 'number');
  t.type(entry.receivedAt, 'number');
  for (let i = 0; i < 9; i++) await j.record(command({ cid: `small${i}`, data: 'y'.repeat(1000) }));
  const bigSize = (await j.read(0, 1)).length;
  t.equal(bigSize, 1);
  t.equal((await j.read(0, 100, 10)).length, 1, 'at least one entry, whatever the budget');
  const smalls = await j.read(r.pos, 100, 3 * (1003 + 256) + 10);
  t.equal(smalls.length, 3, 'stops before passing maxBytes (data + 256 per entry)');
  t.equal((await j.read(0, 4)).length, 4, 'limit');
  t.same(await j.read(0, 0), [], 'limit 0 reads nothing');

  await shared.unsafe(`insert into "${schema}".command_journal (session, "user", cid, role, type, data, received_at, last_seq, last_seq_at, conn, shard)
    select 's', 'u', 'bulk' || g, 'participant', 'answer', '\\x80'::bytea, 1700000000000 + g, 0, 1700000000000, 'c', 0 from generate_series(1, 50000) g`);
  // Rows as an instance older than migration 4 writes them (no µs columns) read back in ms × 1000.
  const [oldStyle] = (await j.read(0, 100)).filter((e) => e.cid === 'bulk1');
  t.same([oldStyle?.receivedAtUs, oldStyle?.lastSeqAtUs], [1_700_000_000_001_000, 1_700_000_000_000_000], 'rows without µs stamps read as ms × 1000');
  await shared.unsafe(`analyze "${schema}".command_journal`);
  const plan = await shared.unsafe(`explain select * from "${schema}".command_journal where pos > 25000 order by pos limit 100`);
  t.match(JSON.stringify(plan), /Index Scan using command_journal_pkey/, 'paging uses the primary key');
  const page = await j.read(25_000, 100);
  t.equal(page.length, 100);
  t.same(page[0].data, {}, 'an empty map read back');
});

t.test('migrations: idempotent; five runners at once apply each version once', async (t) => {
  const schema = schemaName(); // not created: migrate creates it
  const sqls = Array.from({ length: 5 }, () => connect({ max: 2 }));
  t.teardown(async () => {
    await shared.unsafe(`drop schema if exists "${schema}" cascade`);
    await Promise.all(sqls.map((s) => s.end({ timeout: 5 })));
  });
  const results = await Promise.all(sqls.map((sql) => migrate(sql, { schema })));
  const applied = results.flatMap((r) => r.applied).sort((a, b) => a - b);
  t.same(applied, MIGRATIONS.map((m) => m.version), 'each version applied by exactly one runner');
  t.ok(results.every((r) => r.version === MIGRATIONS.at(-1)!.version), 'every runner ends at the last version');
  const rows = await shared.unsafe(`select version, name from "${schema}".schema_migrations order by version`);
  t.same(rows.map((r) => [r.version, r.name]), MIGRATIONS.map((m) => [m.version, m.name]), 'schema_migrations has each version once');
  const again = await migrate(shared, { schema });
  t.same(again.applied, [], 'a later run applies nothing');
  const tables = await shared<{ t: string }[]>`select tablename as t from pg_tables where schemaname = ${schema} order by 1`;
  t.same(tables.map((r) => r.t), ['admin_audit', 'command_journal', 'relay_cursors', 'relay_leases', 'schema_migrations']);
  const locks = await shared`select count(*)::int as n from pg_locks where locktype = 'advisory' and granted and classid = ${0x53434d47}`;
  t.equal(locks[0].n, 0, 'no migration lock left behind');
});

t.test('migrations: a failing version is rolled back and stops the run; a fixed one goes on from there', async (t) => {
  const schema = await withSchema(t);
  const first: Migration = { version: 1, name: 'one', sql: 'create table one (x int)' };
  const broken: Migration = { version: 2, name: 'two', sql: 'create table two (x int); select no_such_function()' };
  const third: Migration = { version: 3, name: 'three', sql: 'create table three (x int)' };
  await t.rejects(migrate(shared, { schema, migrations: [first, broken, third] }), /migration 2 \(two\).*no_such_function/);
  const versions = async () => (await shared.unsafe(`select version from "${schema}".schema_migrations order by 1`)).map((r) => r.version);
  t.same(await versions(), [1]);
  const [{ two }] = await shared`select to_regclass(${`"${schema}".two`}) is not null as two`;
  t.equal(two, false, 'the failed version left nothing');
  const fixed = await migrate(shared, { schema, migrations: [first, { ...broken, sql: 'create table two (x int)' }, third] });
  t.same(fixed.applied, [2, 3]);
  t.same(await versions(), [1, 2, 3]);
  await t.rejects(migrate(shared, { schema, migrations: [third, first] }), /increasing/);
  await t.rejects(migrate(shared, { schema: 'bad"name' }), /schema/);
});

t.test('two instances on one schema share keys and positions', async (t) => {
  const schema = await withSchema(t);
  const sqlA = connectTest(t);
  const sqlB = connectTest(t);
  const a = await openPostgresCommandJournal({ sql: sqlA, schema });
  const b = await openPostgresCommandJournal({ sql: sqlB, schema });
  t.teardown(() => Promise.all([a.close(), b.close()]));
  const first = await a.record(command({ cid: 'x' }));
  t.same(await b.record(command({ cid: 'x' })), { duplicate: true, pos: first.pos }, "one instance's cid is a duplicate for the other");
  for (let round = 0; round < 20; round++) {
    const results = await Promise.all([
      ...Array.from({ length: 5 }, () => a.record(command({ cid: `race${round}` }))),
      ...Array.from({ length: 5 }, () => b.record(command({ cid: `race${round}` }))),
    ]);
    if (results.filter((r) => !r.duplicate).length !== 1 || new Set(results.map((r) => r.pos)).size !== 1) {
      t.fail(`round ${round}: ${JSON.stringify(results)}`);
    }
  }
  t.equal((await a.read(0, 100)).length, 21, 'each raced key stored once');
});

t.test('positions commit in order: a writer waits for another holding the writer lock', async (t) => {
  const schema = await withSchema(t);
  const j = await journalOn(t, schema);
  await j.record(command({ cid: 'first' }));
  const other = connectTest(t, { max: 1 });
  let release!: () => void;
  const released = new Promise<void>((resolve) => {
    release = resolve;
  });
  let slowPos = 0;
  let inserted!: () => void;
  const insertedYet = new Promise<void>((resolve) => {
    inserted = resolve;
  });
  const slow = other.begin(async (tx) => {
    // What another instance's flush does: lock, take a position, (slowly) commit.
    await tx`select pg_advisory_xact_lock(${JOURNAL_LOCK_CLASS}, hashtext(${`${schema}.command_journal`}))`;
    const [row] = await tx.unsafe(`insert into "${schema}".command_journal (session, "user", cid, role, type, data, received_at, last_seq, last_seq_at, conn, shard)
      values ('quiz:1', 'zoe', 'slow', 'participant', 'answer', '\\xc0', 0, 0, 0, 'c', 0) returning pos`);
    slowPos = Number(row.pos);
    inserted();
    await released;
  });
  // Not a sleep: on a loaded machine the other transaction may take longer than any guess.
  await insertedYet;
  const fast = j.record(command({ cid: 'fast' }));
  t.equal(await stateAfter(fast, 300), 'pending', 'a record waits while a lower position is uncommitted');
  t.same((await j.read(0, 10)).map((e) => e.cid), ['first'], 'readers meanwhile see only committed positions');
  release();
  await slow;
  const r = await fast;
  t.ok(r.pos > slowPos, 'and then takes a higher position');
  t.same((await j.read(0, 10)).map((e) => e.cid), ['first', 'slow', 'fast']);
});

t.test('without the writer lock, positions can commit out of order (why the journal takes it)', async (t) => {
  const schema = await withSchema(t);
  await journalOn(t, schema); // migrates
  const one = connectTest(t, { max: 1 });
  const insert = (sql: Pick<Sql, 'unsafe'>, cid: string) =>
    sql.unsafe(`insert into "${schema}".command_journal (session, "user", cid, role, type, data, received_at, last_seq, last_seq_at, conn, shard)
      values ('s', 'u', '${cid}', 'r', 't', '\\xc0', 0, 0, 0, 'c', 0) returning pos`);
  let release!: () => void;
  const released = new Promise<void>((resolve) => {
    release = resolve;
  });
  const early = one.begin(async (tx) => {
    await insert(tx, 'early');
    await released;
  });
  await sleep(100);
  await insert(shared, 'late');
  const seen = await shared.unsafe(`select cid from "${schema}".command_journal order by pos`);
  t.same(seen.map((r) => r.cid), ['late'], 'a reader sees the higher position while the lower one is in flight');
  release();
  await early;
});

t.test('visibility under concurrent writers on two instances: paging readers never miss a command', async (t) => {
  const schema = await withSchema(t);
  const sqlA = connectTest(t);
  const sqlB = connectTest(t);
  const sqlR = connectTest(t);
  const a = await openPostgresCommandJournal({ sql: sqlA, schema });
  const b = await openPostgresCommandJournal({ sql: sqlB, schema, migrate: false });
  const reader = await openPostgresCommandJournal({ sql: sqlR, schema, migrate: false });
  t.teardown(() => Promise.all([a.close(), b.close(), reader.close()]));
  let rounds = 0;
  let problems: string[] = [];
  let total = 0;
  const started = Date.now();
  for (let round = 0; round < 12 && problems.length === 0; round++) {
    // Each round's commands come after every earlier round's: its readers start
    // from the last position so far, as if the journal were empty.
    const base = (await reader.read(0, 1_000_000)).at(-1)?.pos ?? 0;
    // Writers alternate between the two instances; readers read through a third.
    const both: CommandJournal = {
      record: (cmd) => (Number(/^w(\d+)/.exec(cmd.cid)?.[1] ?? 0) % 2 === 0 ? a : b).record({ ...cmd, session: `r${round}` }),
      read: (after, limit) => reader.read(Math.max(after, base), limit),
      readEncoded: (after, limit) => reader.readEncoded(Math.max(after, base), limit),
      head: () => reader.head(),
      taken: () => {},
      close: async () => {},
    };
    const run = await writeWhileReading(both, { writers: 8, rounds: 10, inFlight: 5, readers: 3, limit: 13 });
    problems = visibilityProblems(run);
    total += run.recorded.size;
    rounds++;
  }
  t.same(problems.slice(0, 5), [], `${rounds} rounds, ${total} commands from two instances, 3 paging readers each: none skipped, repeated or reordered (${Date.now() - started} ms)`);
});

t.test('close() flushes what is queued; record() after close rejects', async (t) => {
  const schema = await withSchema(t);
  const j = await openPostgresCommandJournal({ sql: shared, schema, maxBatch: 7 });
  const pending = Array.from({ length: 50 }, (_, i) => j.record(command({ cid: `q${i}` })));
  await j.close();
  const results = await Promise.all(pending);
  t.equal(results.length, 50, 'every queued record resolved');
  await t.rejects(j.record(command({ cid: 'late' })), /closed/);
  const check = await openPostgresCommandJournal({ sql: shared, schema, migrate: false });
  t.equal((await check.read(0, 100)).length, 50);
  await check.close();
});

t.test('a flush that takes too long rejects its callers; a retry then learns it was stored', async (t) => {
  const schema = await withSchema(t);
  const j = await journalOn(t, schema, { flushTimeoutMs: 300 });
  const other = connectTest(t, { max: 1 });
  let release!: () => void;
  const released = new Promise<void>((resolve) => {
    release = resolve;
  });
  let locked!: () => void;
  const lockedYet = new Promise<void>((resolve) => {
    locked = resolve;
  });
  const holder = other.begin(async (tx) => {
    await tx`select pg_advisory_xact_lock(${JOURNAL_LOCK_CLASS}, hashtext(${`${schema}.command_journal`}))`;
    locked();
    await released;
  });
  await lockedYet;
  await t.rejects(j.record(command({ cid: 'slow' })), /within 300 ms/, 'rejected: the client retries');
  t.equal(j.stats.failedFlushes, 1);
  release();
  await holder;
  await sleep(100);
  const retry = await j.record(command({ cid: 'slow' }));
  t.equal(retry.duplicate, true, 'the late statement did commit: the retry is a duplicate, the command stored once');
});

t.test('the journal refuses a position sequence with a cache', async (t) => {
  const schema = await withSchema(t);
  await migrate(shared, { schema });
  await shared.unsafe(`alter sequence "${schema}".command_journal_pos_seq cache 20`);
  await t.rejects(openPostgresCommandJournal({ sql: shared, schema }), /CACHE 20/);
});

t.test('relay cursor store', async (t) => {
  const schema = await withSchema(t);
  await migrate(shared, { schema });
  const one = createPostgresCursorStore(shared, 'amqp', { schema });
  const two = createPostgresCursorStore(shared, 'other', { schema });
  t.equal(await one.load(), 0, 'no saved cursor: 0');
  await one.save(41);
  await one.save(2 ** 40);
  t.equal(await one.load(), 2 ** 40);
  t.equal(await two.load(), 0, 'cursors are per name');
  t.equal(await createPostgresCursorStore(shared, 'amqp', { schema }).load(), 2 ** 40, 'a new store (a restarted instance) loads it');
  await t.rejects(one.save(-1), RangeError);
});

t.test('performance: 2,000 concurrent records', async (t) => {
  const schema = await withSchema(t);
  const j = await journalOn(t, schema);
  await j.record(command({ cid: 'warm' }));
  const flushes = j.stats.flushes;
  const started = process.hrtime.bigint();
  const results = await Promise.all(Array.from({ length: 2000 }, (_, i) => j.record(command({ cid: `p${i}`, user: `u${i % 97}`, data: { choice: 'ABCD'[i % 4], t: i } }))));
  const ms = Number(process.hrtime.bigint() - started) / 1e6;
  const used = j.stats.flushes - flushes;
  t.equal(new Set(results.map((r) => r.pos)).size, 2000);
  t.ok(used <= 4, `${used} statements`);
  t.comment(`2,000 concurrent records: ${ms.toFixed(0)} ms, ${Math.round(2000 / (ms / 1000))} records/s, ${used} statements (${2000 / used} per round trip)`);

  // Two instances, 10 waves of 2,000 each.
  const b = await journalOn(t, schema, { migrate: false, sql: connectTest(t) });
  const t0 = process.hrtime.bigint();
  await Promise.all([j, b].map(async (x, n) => {
    for (let w = 0; w < 10; w++) await Promise.all(Array.from({ length: 2000 }, (_, i) => x.record(command({ cid: `m${n}-${w}-${i}` }))));
  }));
  const ms2 = Number(process.hrtime.bigint() - t0) / 1e6;
  t.comment(`two instances, 40,000 records in waves of 2,000: ${ms2.toFixed(0)} ms, ${Math.round(40000 / (ms2 / 1000))} records/s`);
  const one = await j.read(0, 100_000);
  t.equal(one.length, 1 + 2000 + 40000);
});

t.test('a private Postgres goes down and comes back: records reject meanwhile, data is kept', async (t) => {
  const t0 = Date.now();
  const server = await startPostgresServer();
  t.teardown(() => server.close());
  const startedMs = Date.now() - t0;
  const sql = connect({ max: 4, connect_timeout: 2 }, server.url);
  t.teardown(() => sql.end({ timeout: 1 }));
  const [{ one }] = await sql`select 1 as one`;
  t.equal(one, 1, `initdb + start in ${startedMs} ms`);
  const lines: Array<{ level: number; msg: string; failedInARow?: number }> = [];
  const log = createLogger({ level: 'info', destination: { write: (line: string) => void lines.push(JSON.parse(line)) } });
  const j = createPostgresCommandJournal({ sql, flushTimeoutMs: 5000, log });
  t.teardown(() => j.close());
  await t.rejects(j.record(command({ cid: 'early' })), /not started/, 'record() before start() rejects');
  await j.start();
  const stored = await j.record(command({ cid: 'before' }));

  const s0 = Date.now();
  await server.stop();
  const stopMs = Date.now() - s0;
  await t.rejects(j.record(command({ cid: 'during' })), 'a record while Postgres is down rejects (never a false ack)');
  await t.rejects(j.record(command({ cid: 'during' })), 'and again');
  await t.rejects(j.read(0, 10), 'so does a read');
  await t.rejects(createPostgresCommandJournal({ sql }).start(), 'and a start');
  t.equal(lines.filter((l) => /failed/.test(l.msg)).length, 1, 'one log line for the outage so far, not one per failed flush');
  t.equal(j.stats.failedInARow, 2, 'stats count the failed flushes in a row');

  const s1 = Date.now();
  await server.start();
  const restartMs = Date.now() - s1;
  t.comment(`private Postgres: initdb + start ${startedMs} ms, stop ${stopMs} ms, start again ${restartMs} ms`);
  // The pool's connections died with the server; postgres.js reconnects on use.
  let again: Awaited<ReturnType<typeof j.record>> | undefined;
  for (let i = 0; i < 20 && again === undefined; i++) {
    again = await j.record(command({ cid: 'during' })).catch(() => undefined);
    if (again === undefined) await sleep(100);
  }
  t.equal(again?.duplicate, false, 'the retry stores it: the rejected attempts had stored nothing');
  t.same((await j.read(0, 10)).map((e) => [e.cid, e.pos]), [['before', stored.pos], ['during', again?.pos]], 'what was stored before the outage is kept');
  t.ok(lines.some((l) => /works again/.test(l.msg)), 'recovery is logged');
  t.equal(j.stats.failedInARow, 0);
});

t.test('retention: commands older than it go, in batches; with a relay, only those relayed', async (t) => {
  const schema = await withSchema(t);
  const j = await journalOn(t, schema);
  const pos: number[] = [];
  for (let i = 1; i <= 6; i++) pos.push((await j.record(command({ cid: `r${i}` }))).pos);
  // r1–r4 recorded three hours ago; r5, r6 just now.
  await shared.unsafe(`update "${schema}".command_journal set recorded_at = now() - interval '3 hours' where cid in ('r1', 'r2', 'r3', 'r4')`);
  const cids = async () => (await j.read(0, 100)).map((e) => e.cid);
  const hour = 3_600_000;
  t.equal(await pruneJournal({ sql: shared, schema, retentionMs: 4 * hour }), 0, 'nothing older than 4 h');
  await createPostgresCursorStore(shared, AMQP_RELAY, { schema }).save(pos[1]);
  t.equal(await pruneJournal({ sql: shared, schema, retentionMs: hour, relay: AMQP_RELAY }), 2, 'with the relay at r2: r1 and r2 only');
  t.same(await cids(), ['r3', 'r4', 'r5', 'r6'], 'r3 and r4 wait for the relay, however old');
  t.equal(await pruneJournal({ sql: shared, schema, retentionMs: hour, relay: 'never-ran' }), 0, 'a relay without a cursor has relayed nothing');
  t.equal(await pruneJournal({ sql: shared, schema, retentionMs: hour }), 2, 'without a relay: by age alone');
  t.same(await cids(), ['r5', 'r6']);
  t.same(await j.record(command({ cid: 'r1' })), { duplicate: false, pos: pos[5] + 1 }, 'a retry after its command was pruned is journaled again (documented)');

  await shared.unsafe(`insert into "${schema}".command_journal (session, "user", cid, role, type, data, received_at, last_seq, last_seq_at, conn, shard, recorded_at)
    select 's', 'u', 'old' || g, 'participant', 'answer', '\\x80'::bytea, 0, 0, 0, 'c', 0, now() - interval '2 days' from generate_series(1, ${BATCH + 5}) g`);
  const retention = new JournalRetention({ sql: shared, schema, retentionMs: hour, roundMs: 50 });
  retention.start();
  const deadline = Date.now() + 10_000;
  while (retention.deleted < BATCH + 5 && Date.now() < deadline) await sleep(50);
  await retention.stop();
  t.equal(retention.deleted, BATCH + 5, 'the loop worked off more than one batch');
  t.same(await cids(), ['r5', 'r6', 'r1'], 'and left the recent ones');
});
