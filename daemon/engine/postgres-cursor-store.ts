/**
 * A command relay's cursor (daemon/egress/command-relay.ts, CursorStore) kept in
 * Postgres, table `relay_cursors` (migration 2, migrations.ts): one row per relay
 * name, so a relay restarted on any instance resumes from the last position its sink
 * accepted instead of the journal's start.
 *
 * `save` overwrites (the relay saves increasing positions); two relays sharing a
 * name would move one row back and forth, which only widens what a restart
 * redelivers (the relay is at least once). The tables must exist: run migrate()
 * first (createPostgresCommandJournal does by default). `sql` is the caller's.
 */
import type { CursorStore } from '../egress/command-relay.js';
import { DEFAULT_SCHEMA, quoteSchema, type Sql } from './migrations.js';

/** Name of the RabbitMQ command relay's cursor and lease rows. */
export const AMQP_RELAY = 'amqp';

/** The cursor of relay `name` in `relay_cursors` of `schema` (`public` by default). */
export function createPostgresCursorStore(sql: Sql, name: string, opts: { schema?: string } = {}): CursorStore {
  const table = sql.unsafe(`${quoteSchema(opts.schema ?? DEFAULT_SCHEMA)}.relay_cursors`);
  return {
    async load(): Promise<number> {
      const [row] = await sql<[{ pos: string } | undefined]>`select pos from ${table} where name = ${name}`;
      return row === undefined ? 0 : Number(row.pos);
    },
    async save(pos: number): Promise<void> {
      if (!Number.isSafeInteger(pos) || pos < 0) throw new RangeError(`a relay cursor is an integer ≥ 0, got ${pos}`);
      await sql`
        insert into ${table} (name, pos) values (${name}, ${String(pos)}::bigint)
        on conflict (name) do update set pos = excluded.pos, updated_at = now()`;
    },
  };
}
