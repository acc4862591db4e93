/**
 * A service's Postgres: one pool whose connections use the service's own schema
 * (`search_path`), so its tables never mix with Shardcast's journal or another
 * service's; the schema and tables are created at start, idempotently, under an
 * advisory lock so replicas starting together do not race.
 */
import postgres from 'postgres';

/** The `postgres` client type the services use. */
export type Sql = postgres.Sql<Record<string, never>>;

/** Opens a pool on `schema` and applies `ddl` (statements that are safe to run again). */
export async function openServiceDatabase(url: string, schema: string, ddl: string[]): Promise<Sql> {
  // fetch_types off: postgres.js's array-types query on each new connection fails
  // unhandled (ending the process) when Postgres resets the connection during it.
  const sql = postgres(url, { max: 4, fetch_types: false, onnotice: () => {}, connect_timeout: 5, connection: { search_path: schema } }) as unknown as Sql;
  try {
    await sql.begin(async (tx) => {
      await tx`select pg_advisory_xact_lock(hashtext(${`shardcast-example:${schema}`}))`;
      await tx.unsafe(`create schema if not exists "${schema}"`);
      for (const statement of ddl) await tx.unsafe(statement);
    });
  } catch (err) {
    await sql.end({ timeout: 5 });
    throw new Error(`postgres (EXAMPLE_DATABASE_URL) could not be used for schema ${schema}: ${(err as Error).message}`);
  }
  return sql;
}
