/**
 * Where the tests find Postgres: the machine's Postgres 15 (trust auth, database
 * `test`), shared by every test file at once, so each isolates itself in a schema of
 * its own (`withSchema`, `createTestSchema`), dropped at teardown.
 *
 * Schema names are `test_<base36 ms>_<hex>`: a run that died before its teardown
 * leaves its schemas behind, and the next `createTestSchema` drops those older than
 * STALE_SCHEMA_MS (never a live run's: no test file runs that long).
 */
import { randomBytes } from 'node:crypto';
import postgres from 'postgres';
import type { Test } from 'tap';
import type { Sql } from '../../daemon/engine/migrations.js';

/** URL of the machine's Postgres. */
export const DATABASE_URL = process.env.SHARDCAST_TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

/** Schemas of dead runs older than this are dropped. */
const STALE_SCHEMA_MS = 6 * 3600_000;
const SCHEMA_PATTERN = /^test_([0-9a-z]+)_[0-9a-f]+$/;

/** A client of the test database, or of `url` (notices silenced); `end()` it, or use `connectTest`. */
export function connect(options: postgres.Options<Record<string, postgres.PostgresType>> = {}, url = DATABASE_URL): Sql {
  return postgres(url, { max: 10, onnotice: () => {}, ...options });
}

/** A client ended at the test's teardown. */
export function connectTest(t: Test, options: postgres.Options<Record<string, postgres.PostgresType>> = {}): Sql {
  const sql = connect(options);
  t.teardown(() => sql.end({ timeout: 5 }));
  return sql;
}

/** A fresh schema name (not created). */
export function schemaName(): string {
  return `test_${Date.now().toString(36)}_${randomBytes(4).toString('hex')}`;
}

/** Creates a fresh, empty schema and returns its name and a drop() that removes it with everything in it. */
export async function createTestSchema(): Promise<{ schema: string; drop(): Promise<void> }> {
  const schema = schemaName();
  const admin = connect({ max: 1 });
  try {
    await dropStaleSchemas(admin);
    await admin.unsafe(`create schema "${schema}"`);
  } finally {
    await admin.end({ timeout: 5 });
  }
  let dropped = false;
  return {
    schema,
    async drop() {
      if (dropped) return;
      dropped = true;
      const sql = connect({ max: 1 });
      try {
        await sql.unsafe(`drop schema if exists "${schema}" cascade`);
      } finally {
        await sql.end({ timeout: 5 });
      }
    },
  };
}

/** A fresh schema for test `t`, dropped (with its tables) at its teardown. */
export async function withSchema(t: Test): Promise<string> {
  const { schema, drop } = await createTestSchema();
  t.teardown(drop);
  return schema;
}

async function dropStaleSchemas(sql: Sql): Promise<void> {
  const rows = await sql<{ nspname: string }[]>`select nspname from pg_namespace where nspname like 'test\\_%'`;
  for (const { nspname } of rows) {
    const m = SCHEMA_PATTERN.exec(nspname);
    if (m && Date.now() - parseInt(m[1], 36) > STALE_SCHEMA_MS) {
      await sql.unsafe(`drop schema if exists "${nspname}" cascade`).catch(() => undefined);
    }
  }
}
