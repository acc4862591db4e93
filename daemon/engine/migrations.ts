/**
 * Versioned SQL migrations of the Postgres engine's schema, run at start by every
 * instance (docs/postgres.md describes the tables).
 *
 * One source: the SQL lives here, one entry per version, as template strings, so it
 * ships inside the compiled JS (no .sql files to copy next to dist/). A version,
 * once released, never changes: a later change is a new entry. Migrations must be
 * compatible with the previous release's code (add, then stop using, then drop,
 * across releases), because during a rolling deploy old and new instances share
 * the schema.
 *
 * `migrate()` is idempotent and safe when several instances start at once. It runs
 * in one transaction:
 * - it takes a transaction-level advisory lock, `pg_try_advisory_xact_lock(
 *   MIGRATION_LOCK_CLASS, hashtext(<schema>))`, polling so it can give up after
 *   `lockTimeoutMs` and log while it waits; a second instance waits there until the
 *   first has committed, then finds nothing left to apply;
 * - creates the schema if missing, and `schema_migrations(version, name,
 *   applied_at)` in it;
 * - applies each version not yet in `schema_migrations`, in increasing order, each
 *   in its own savepoint with `search_path` set to the schema (the SQL names its
 *   tables unqualified) together with its `schema_migrations` row: a migration is
 *   applied entirely or not at all; when one fails, the versions before it are
 *   committed and the run stops with its error;
 * - the lock ends with the transaction (a dropped connection ends both).
 * Not a reserved connection: postgres.js 3.4.9 never hands one out from a fresh
 * connection when array types are not fetched (postgres-client.ts says why they
 * are not); a transaction takes its connection like any query.
 * A version found in `schema_migrations` that this code does not know (a newer
 * release migrated already) is accepted: the compatibility rule above covers it.
 */
import type postgres from 'postgres';
import type { Logger } from '../log.js';

/** A postgres.js client (porsager/postgres v3), whatever its custom types. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type Sql = postgres.Sql<any>;

/** One schema version. */
export interface Migration {
  /** Positive, increasing; the order of application. */
  readonly version: number;
  /** Short description, stored in schema_migrations. */
  readonly name: string;
  /** Statements run in one transaction with search_path = the schema; name tables unqualified. */
  readonly sql: string;
}

/** First key of the migration lock (the second is hashtext(schema)): "SCMG". */
export const MIGRATION_LOCK_CLASS = 0x53434d47;

/** Schema used when none is configured. */
export const DEFAULT_SCHEMA = 'public';

/** The schema versions, oldest first. Append only; never edit a released entry. */
export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'command_journal',
    // The command journal (postgres-command-journal.ts). `pos` is handed out by a
    // sequence with CACHE 1 (the default; the journal refuses to start otherwise):
    // positions are taken and committed in order under the journal's advisory lock.
    sql: `
      create table command_journal (
        pos         bigserial primary key,
        session     text      not null,
        "user"      text      not null,
        cid         text      not null,
        role        text      not null,
        type        text      not null,
        data        bytea     not null,
        received_at bigint    not null,
        last_seq    bigint    not null,
        last_seq_at bigint    not null,
        conn        text      not null,
        shard       integer   not null,
        recorded_at timestamptz not null default now(),
        constraint command_journal_key unique (session, "user", cid)
      );
      comment on table command_journal is
        'Shardcast: participants'' commands, recorded before the client is acked; read in pos order (docs/postgres.md).';
      comment on column command_journal.data is 'msgpack of the command''s data';
    `,
  },
  {
    version: 2,
    name: 'relay_cursors',
    // Cursors of command relays (postgres-cursor-store.ts): the last journal
    // position a relay's sink accepted, by relay name.
    sql: `
      create table relay_cursors (
        name       text        primary key,
        pos        bigint      not null check (pos >= 0),
        updated_at timestamptz not null default now()
      );
      comment on table relay_cursors is
        'Shardcast: the last command_journal position each named relay delivered.';
    `,
  },
  {
    version: 3,
    name: 'relay_leases',
    // Who relays (egress/relay-leader.ts): one instance holds a renewed lease per
    // relay name; another takes it over once it expired.
    sql: `
      create table relay_leases (
        name       text        primary key,
        holder     text        not null,
        expires_at timestamptz not null
      );
      comment on table relay_leases is
        'Shardcast: the instance that relays commands upstream, and until when its lease runs.';
    `,
  },
  {
    version: 4,
    name: 'command_stamps_us',
    // Fair timing in microseconds. The ms stamps stay, and the new columns may be
    // null: an instance of an older version still inserting during a rolling
    // update must not fail. Readers take ms × 1000 where µs is null.
    sql: `
      alter table command_journal add column received_at_us bigint, add column last_seq_at_us bigint;
      comment on column command_journal.received_at_us is 'µs since the epoch when the shard received the command (shard clock)';
      comment on column command_journal.last_seq_at_us is 'µs since the epoch when last_seq was handed to the socket (same clock): received_at_us - last_seq_at_us is the time to answer';
    `,
  },
  {
    version: 5,
    name: 'admin_audit',
    // Mutating admin API calls (admin/audit.ts): who kicked or drained what, when.
    sql: `
      create table admin_audit (
        id       bigserial   primary key,
        at       timestamptz not null default now(),
        instance text        not null,
        action   text        not null,
        target   text        not null,
        reason   text        not null,
        remote   text        not null,
        outcome  text        not null
      );
      comment on table admin_audit is
        'Shardcast: mutating admin API calls (kick, drain), newest last (docs/admin.md).';
    `,
  },
];

/** Options of migrate(). */
export interface MigrateOptions {
  /** Schema holding the tables (created if missing); `public` by default. */
  schema?: string;
  /** The versions to apply (MIGRATIONS by default; tests pass their own). */
  migrations?: readonly Migration[];
  /** How long to wait for another instance's migrations before failing (default 60 s). */
  lockTimeoutMs?: number;
  log?: Logger;
}

/** What migrate() did. */
export interface MigrateResult {
  /** Versions this call applied, in order (empty when the schema was up to date). */
  applied: number[];
  /** Highest version present after the call. */
  version: number;
}

/** Schema names accepted: an unquoted-style SQL identifier (letters, digits, `_`), at most 63 bytes. */
const SCHEMA_NAME = /^[A-Za-z_][A-Za-z0-9_]{0,62}$/;

/** Throws unless `schema` is a plain identifier (see SCHEMA_NAME); returns it double-quoted. */
export function quoteSchema(schema: string): string {
  if (!SCHEMA_NAME.test(schema)) {
    throw new Error(`Postgres schema ${JSON.stringify(schema)} must be letters, digits and _ (not starting with a digit), at most 63 characters`);
  }
  return `"${schema}"`;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Throws when versions are not positive, strictly increasing integers. */
function checkMigrations(migrations: readonly Migration[]): void {
  let prev = 0;
  for (const m of migrations) {
    if (!Number.isSafeInteger(m.version) || m.version <= prev) {
      throw new Error(`migration versions must be positive, strictly increasing integers: ${m.version} after ${prev}`);
    }
    prev = m.version;
  }
}

/** Brings `schema` up to date; see the header comment. Uses one connection of `sql` for its duration. */
export async function migrate(sql: Sql, opts: MigrateOptions = {}): Promise<MigrateResult> {
  const schema = opts.schema ?? DEFAULT_SCHEMA;
  const migrations = opts.migrations ?? MIGRATIONS;
  const lockTimeoutMs = opts.lockTimeoutMs ?? 60_000;
  checkMigrations(migrations);
  const s = quoteSchema(schema);

  // A failed version is thrown after the commit, so the versions before it stay applied.
  let failure: Error | undefined;
  const result = await sql.begin(async (tx) => {
    const c = tx as unknown as Sql;
    const deadline = Date.now() + lockTimeoutMs;
    let waiting = false;
    for (;;) {
      const [{ locked }] = await c<[{ locked: boolean }]>`select pg_try_advisory_xact_lock(${MIGRATION_LOCK_CLASS}, hashtext(${schema})) as locked`;
      if (locked) break;
      if (Date.now() >= deadline) {
        throw new Error(`another instance held the migration lock of schema ${s} for more than ${lockTimeoutMs} ms`);
      }
      if (!waiting) opts.log?.info({ schema }, 'waiting for another instance migrating the Postgres schema');
      waiting = true;
      await sleep(50 + Math.random() * 100);
    }
    const applied = await applyPending(c, schema, s, migrations, opts.log);
    failure = applied.failure;
    return applied.result;
  });
  if (failure !== undefined) throw failure;
  return result as MigrateResult;
}

async function applyPending(
  c: Sql,
  schema: string,
  s: string,
  migrations: readonly Migration[],
  log: Logger | undefined,
): Promise<{ result: MigrateResult; failure?: Error }> {
  // Existence checks first: CREATE ... IF NOT EXISTS checks the privilege to create
  // before it looks, and a role allowed only to use an existing schema would fail.
  const [{ hasSchema, hasTable }] = await c<[{ hasSchema: boolean; hasTable: boolean }]>`
    select exists (select 1 from pg_namespace where nspname = ${schema}) as "hasSchema",
           to_regclass(${`${s}.schema_migrations`}) is not null as "hasTable"`;
  if (!hasSchema) await c.unsafe(`create schema ${s}`);
  if (!hasTable) {
    await c.unsafe(`create table ${s}.schema_migrations (
      version    integer     primary key,
      name       text        not null,
      applied_at timestamptz not null default now()
    )`);
  }
  const rows = await c<{ version: number }[]>`select version from ${c.unsafe(s)}.schema_migrations`;
  const present = new Set(rows.map((r) => r.version));
  const applied: number[] = [];
  const result = () => ({ applied, version: Math.max(0, ...present) });
  for (const m of migrations) {
    if (present.has(m.version)) continue;
    const started = Date.now();
    try {
      await (c as unknown as postgres.TransactionSql).savepoint(async (sp) => {
        await sp.unsafe(`set local search_path to ${s}`);
        await sp.unsafe(m.sql);
        await sp`insert into ${sp.unsafe(s)}.schema_migrations (version, name) values (${m.version}, ${m.name})`;
      });
    } catch (err) {
      const failure = new Error(`Postgres migration ${m.version} (${m.name}) of schema ${s} failed: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
      return { result: result(), failure };
    }
    present.add(m.version);
    applied.push(m.version);
    log?.info({ schema, version: m.version, name: m.name, ms: Date.now() - started }, 'applied a Postgres migration');
  }
  return { result: result() };
}
